"""Test data for payments: pending orders made through booking's own services, staff users."""

from __future__ import annotations

from datetime import datetime

from django.urls import reverse

from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.booking import services as booking_services
from smarttickets.booking.models import Order
from smarttickets.booking.tests.factories import buyer, ga_performance
from smarttickets.core import clock
from smarttickets.events.models import Membership
from smarttickets.payments.models import SandboxSession

__all__ = ["UserFactory", "buyer", "card", "ga_performance", "organizer_staff", "pending_order",
           "session_of", "start"]


def pending_order(*, quantity: int = 2, performance=None, zone=None, user=None,
                  now: datetime | None = None, **performance_kwargs) -> Order:
    """An order awaiting payment for ``quantity`` general-admission places."""
    if performance is None:
        performance, zone = ga_performance(**performance_kwargs)
    user = user or buyer()
    now = now or clock.now()
    hold = booking_services.create_hold(
        user=user, performance=performance, now=now,
        selection=booking_services.Selection(zone_id=zone.pk, quantity=quantity))
    return booking_services.place_order(hold=hold, buyer=user, holder_names=[], now=now)


def organizer_staff(order: Order, **permissions) -> UserFactory:
    """A user on the staff of the order's organizer (may manage events unless told not)."""
    permissions.setdefault("can_manage_events", True)
    user = UserFactory()
    Membership.objects.create(organizer=order.performance.event.organizer, user=user,
                              **permissions)
    return user


def card(number: str = "4242 4242 4242 4242", expiry: str = "12 / 34", cvc: str = "123",
         name: str = "Chan Tai Man") -> dict[str, str]:
    return {"number": number, "expiry": expiry, "cvc": cvc, "name": name}


def start(client, order) -> str:
    """POST the order's 'Pay' button; returns the sandbox page path it redirects to."""
    response = client.post(reverse("payments:start", args=[order.code]))
    assert response.status_code == 302, response.content
    return response["Location"]


def session_of(order) -> SandboxSession:
    return SandboxSession.objects.get(order_code=order.code)
