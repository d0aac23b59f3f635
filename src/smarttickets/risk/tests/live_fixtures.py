"""Fixtures for the live-platform risk tests: gates and telemetry on, the tiny model, helpers."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from smarttickets.accounts import sms
from smarttickets.risk.models import RiskPolicy

MIDDLEWARE = "smarttickets.risk.middleware.RiskTelemetryMiddleware"


@pytest.fixture
def live(settings, use_tiny_model):
    """The risk layer as the running platform has it (the settings change the report asks for)."""
    settings.RISK_GATES_ENABLED = True
    settings.RISK_TELEMETRY_ENABLED = True
    if MIDDLEWARE not in settings.MIDDLEWARE:
        at = settings.MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")
        settings.MIDDLEWARE = [*settings.MIDDLEWARE[:at + 1], MIDDLEWARE,
                               *settings.MIDDLEWARE[at + 1:]]
    settings.SMS_BACKEND = "smarttickets.accounts.sms.LocmemSMSBackend"
    settings.PAYMENT_PROVIDER = "sandbox"
    settings.PAYMENTS_SANDBOX_WEBHOOK_SECRET = "sbx_whsec_test"
    settings.PAYMENTS_SANDBOX_FINGERPRINT_SECRET = "sbx_fp_test"
    sms.outbox.clear()
    cache.clear()
    yield settings
    sms.outbox.clear()
    cache.clear()


def policy(event, **values) -> RiskPolicy:
    """Force an outcome: challenge_at=0 challenges everyone, review_at=0 reviews everyone."""
    defaults = {"enabled": True, "challenge_at": None, "review_at": None, "block_at": None}
    defaults.update(values)
    made, _ = RiskPolicy.objects.update_or_create(event=event, defaults=defaults)
    cache.clear()
    return made


def allow_all(event) -> RiskPolicy:
    return policy(event, challenge_at=1.0, review_at=1.0, block_at=1.0)


def challenge_all(event) -> RiskPolicy:
    return policy(event, challenge_at=0.0, review_at=1.0, block_at=1.0)


def review_all(event) -> RiskPolicy:
    return policy(event, challenge_at=0.0, review_at=0.0, block_at=1.0)


def sms_code() -> str:
    body = sms.outbox[-1].body
    return body.split()[0]
