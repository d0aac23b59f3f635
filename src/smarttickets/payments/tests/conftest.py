"""Payment test fixtures: the sandbox provider, a clean cache, a logged-in buyer, card data."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from smarttickets.payments.tests.factories import buyer


@pytest.fixture(autouse=True)
def _payments_settings(settings):
    settings.PAYMENT_PROVIDER = "sandbox"
    settings.PAYMENTS_SANDBOX_WEBHOOK_SECRET = "sbx_whsec_test"
    settings.PAYMENTS_SANDBOX_FINGERPRINT_SECRET = "sbx_fp_test"
    cache.clear()  # booking's velocity counters
    yield
    cache.clear()


@pytest.fixture
def fan(client):
    """A verified buyer, logged in on ``client``."""
    user = buyer()
    client.force_login(user)
    return user
