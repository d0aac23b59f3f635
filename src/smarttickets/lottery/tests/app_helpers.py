"""Test data for the lottery app: a published lottery performance with a seated zone (10 seats
in section A) and a standing zone (FLOOR, 50 places), and verified fans."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core import clock
from smarttickets.events.models import Event, Membership
from smarttickets.events.tests.factories import (
    EventFactory,
    LotteryPerformanceFactory,
    PriceZoneFactory,
)
from smarttickets.lottery import services, signing
from smarttickets.lottery.models import Lottery

_phones = itertools.count(1)


def fan(**kwargs):
    """A verified fan with a unique mobile number (+852 61xx xxxx range)."""
    return UserFactory(verified=True, phone=f"+8526{next(_phones) % 10**7:07d}", **kwargs)


def lottery_performance(*, now: datetime | None = None, personalised: bool = False,
                        per_person_limit: int = 4, **dates):
    """A published lottery performance whose entry window is open at ``now``."""
    now = now or clock.now()
    event = EventFactory(state=Event.State.PUBLISHED, published_at=now, personalised=personalised,
                         per_person_limit=per_person_limit)
    defaults = {"entry_opens_at": now - timedelta(days=1),
                "entry_closes_at": now + timedelta(days=2),
                "draw_at": now + timedelta(days=2, hours=1),
                "purchase_opens_at": now + timedelta(days=3),
                "purchase_closes_at": now + timedelta(days=6),
                "starts_at": now + timedelta(days=30)}
    defaults.update(dates)
    performance = LotteryPerformanceFactory(event=event, **defaults)
    seated = PriceZoneFactory(event=event, name="Seated", price=Decimal("880.00"),
                              section_codes=["A"], sort_order=0)
    standing = PriceZoneFactory(event=event, name="Standing", price=Decimal("480.00"),
                                ga_codes=["FLOOR"], sort_order=1)
    return performance, seated, standing


def lottery_for(performance, zone, now: datetime | None = None, **settings) -> Lottery:
    lotteries = services.ensure_lotteries(performance=performance, now=now or clock.now())
    lottery = next(lot for lot in lotteries if lot.zone_id == zone.pk)
    if settings:
        Lottery.objects.filter(pk=lottery.pk).update(**settings)
        lottery.refresh_from_db()
    return lottery


def runner_of(organizer):
    """Staff of ``organizer`` who may run lotteries."""
    user = UserFactory(verified=True, phone=f"+8526{next(_phones) % 10**7:07d}")
    Membership.objects.create(organizer=organizer, user=user, can_run_lotteries=True)
    return user


@pytest.fixture
def signing_key_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.LOTTERY_SIGNING_KEY_PATH = None
    settings.LOTTERY_RETIRED_PUBLIC_KEYS = []
    signing._cache.clear()
    yield
    signing._cache.clear()


class FakeRisk:
    """Stands in for the risk model at the boundary (risk.decisions.decide): every account is
    allowed unless told otherwise."""

    def __init__(self) -> None:
        self.outcomes: dict[int, str] = {}
        self.calls: list[tuple[int, str, str]] = []

    def flag(self, user, outcome: str = "review") -> None:
        self.outcomes[user.pk] = outcome

    def decide(self, *, activity, checkpoint, thresholds=None, now=None):
        from types import SimpleNamespace

        self.calls.append((activity.account_id, checkpoint, activity.object_id))
        outcome = self.outcomes.get(activity.account_id, "allow")
        return SimpleNamespace(decision=outcome, score=0.9 if outcome != "allow" else 0.05)


@pytest.fixture
def risk(monkeypatch):
    fake = FakeRisk()
    monkeypatch.setattr("smarttickets.risk.decisions.decide", fake.decide)
    return fake
