"""Fixtures for wallet and scanning tests: paid tickets for a show starting soon, a fan's
device key, gate staff, and codes made exactly as the wallet makes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.cache import cache

from smarttickets.booking import services as booking
from smarttickets.booking.tests.factories import buyer, seated_performance
from smarttickets.core import clock
from smarttickets.events.models import Performance
from smarttickets.events.tests.factories import MembershipFactory
from smarttickets.tickets import codes, keys
from smarttickets.tickets import services as tickets
from smarttickets.tickets.models import IssuedCredential, Ticket


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    # Each test signs with its own keyring file; the booking velocity counters start at zero.
    settings.VAR_DIR = tmp_path
    keys._cache.clear()
    cache.clear()
    yield
    keys._cache.clear()
    cache.clear()


def buy(user, performance, seats, *, now=None):
    now = now or clock.now()
    hold = booking.create_hold(user=user, performance=performance, now=now,
                               selection=booking.Selection(seat_ids=tuple(s.pk for s in seats)))
    order = booking.place_order(hold=hold, buyer=user, holder_names=[], now=now)
    booking.mark_order_paid(order_id=order.pk, provider="sandbox", payment_reference="r",
                            amount_minor=int(order.total * 100), currency="HKD",
                            card_fingerprint="", now=now)
    return list(Ticket.objects.filter(order=order).order_by("pk"))


@dataclass
class Show:
    performance: Performance
    seats: list
    fan: object
    tickets: list[Ticket]

    @property
    def event(self):
        return self.performance.event


def make_show(*, n_tickets: int = 1, starts_in: timedelta = timedelta(hours=1),
              personalised: bool = False, legal_name: str = "Chan Tai Man") -> Show:
    """A fan with ``n_tickets`` paid seats for a show starting ``starts_in`` from now."""
    performance, _zone, seats = seated_performance(price="100.00")
    fan = buyer(legal_name=legal_name)
    bought = buy(fan, performance, seats[:n_tickets])
    # Sold a month ahead; the show is now about to start (validity windows are computed when
    # credentials are issued, so this comes before any device is registered).
    Performance.objects.filter(pk=performance.pk).update(starts_at=clock.now() + starts_in)
    performance.event.__class__.objects.filter(pk=performance.event_id).update(
        personalised=personalised)
    performance.refresh_from_db()
    return Show(performance=performance, seats=seats, fan=fan, tickets=bought)


@pytest.fixture
def show():
    return make_show()


@dataclass
class Wallet:
    """A fan's phone: the private key stays here, as WebCrypto keeps it on a real phone."""

    user: object
    private_key: object
    public_key: bytes
    device: object

    def credential(self, ticket: Ticket) -> IssuedCredential:
        return IssuedCredential.objects.get(ticket=ticket, device=self.device,
                                            kind=IssuedCredential.Kind.DEVICE,
                                            revoked_at__isnull=True)

    def code(self, ticket: Ticket, *, at=None, step: int | None = None) -> str:
        cred = self.credential(ticket)
        if step is None:
            step = codes.step_at((at or clock.now()).timestamp())
        return codes.make_code(bytes(cred.data), bytes(cred.signature), self.private_key, step)


def register_wallet(user, *, password: str | None = None) -> Wallet:
    private_key, public = codes.new_device_key()
    device = tickets.register_device(user=user, public_key=public, label="test phone",
                                     password=password, now=clock.now())
    return Wallet(user=user, private_key=private_key, public_key=public, device=device)


@pytest.fixture
def wallet(show):
    return register_wallet(show.fan)


def gate_staff_of(organizer, **perms):
    perms = perms or {"can_scan_tickets": True}
    return MembershipFactory(organizer=organizer, can_manage_events=False, **perms).user


@pytest.fixture
def gate_staff(show):
    return gate_staff_of(show.event.organizer)

