"""The shipped model in the running platform: an ordinary fan's first hold goes through.

Every other live test forces its outcome with a tiny model or a policy; this one keeps the
model a fresh install ships and the thresholds it chose, as `make run` has them.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from smarttickets.booking.models import Hold
from smarttickets.booking.tests.factories import buyer, ga_performance
from smarttickets.risk import decisions as D
from smarttickets.risk import model as M
from smarttickets.risk.models import Decision
from smarttickets.risk.tests.live_fixtures import MIDDLEWARE

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipped(settings):
    settings.RISK_GATES_ENABLED = True
    settings.RISK_TELEMETRY_ENABLED = True
    settings.RISK_MODEL_PATH = str(M.DEFAULT_MODEL_PATH)
    if MIDDLEWARE not in settings.MIDDLEWARE:
        at = settings.MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")
        settings.MIDDLEWARE = [*settings.MIDDLEWARE[:at + 1], MIDDLEWARE,
                               *settings.MIDDLEWARE[at + 1:]]
    cache.clear()
    D.reset_model_cache()
    yield settings
    D.reset_model_cache()
    cache.clear()


@pytest.mark.parametrize("browsed", [0, 3])
def test_an_ordinary_fans_first_hold_is_allowed_by_the_shipped_model(client, shipped, browsed):
    # given a verified fan, new to the platform, who looks at the event page (or goes straight
    # to the hold, as a returning fan with a bookmark does)
    performance, zone = ga_performance()
    fan = buyer()
    client.force_login(fan)
    for _ in range(browsed):
        client.get(reverse("events:detail", args=[performance.event.slug]))

    # when the fan holds two places
    response = client.post(reverse("booking:hold_create", args=[performance.pk]),
                           {"zone": zone.pk, "quantity": 2})

    # then the shipped model lets the hold through, with its own thresholds and no reason
    decision = Decision.objects.get(account=fan)
    assert (decision.decision, decision.failsafe) == ("allow", False), decision.reasons
    assert decision.model_version == M.load(M.DEFAULT_MODEL_PATH).model_version
    assert response.status_code == 302
    assert Hold.objects.filter(user=fan).exists()
