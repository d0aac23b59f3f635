"""Reads for payment pages; ``access_*`` answer "missing" and "not yours" the same way."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from smarttickets.booking.models import Order
from smarttickets.core.exceptions import NotFound
from smarttickets.events.models import Membership
from smarttickets.payments.models import Payment, Refund


def access_order_by_buyer(*, code: str, user) -> Order:
    order = (Order.objects.select_related("performance__event", "buyer")
             .filter(code=code, buyer_id=getattr(user, "pk", None)).first())
    if order is None:
        raise NotFound(_("That order does not exist."))
    return order


def can_refund(*, order: Order, user) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return Membership.objects.filter(user=user, can_manage_events=True,
                                     organizer_id=order.performance.event.organizer_id).exists()


def access_order_for_refund(*, code: str, user) -> Order:
    """The order, if ``user`` manages events for its organizer."""
    order = (Order.objects.select_related("performance__event__organizer", "buyer")
             .filter(code=code).first())
    if order is None or not can_refund(order=order, user=user):
        raise NotFound(_("That order does not exist."))
    return order


def latest_payment(*, order: Order) -> Payment | None:
    return Payment.objects.filter(order=order).order_by("-created_at", "-id").first()


def charged_payment(*, order: Order) -> Payment | None:
    return (Payment.objects.filter(order=order, state__in=Payment.CHARGED_STATES)
            .order_by("-created_at").first()
            or Payment.objects.filter(order=order, state=Payment.State.REFUNDED)
            .exclude(succeeded_at=None).order_by("-created_at").first())


def refunds_of_order(*, order: Order) -> QuerySet[Refund]:
    return (Refund.objects.filter(payment__order=order).select_related("actor", "payment")
            .order_by("-created_at", "-id"))


def refundable_tickets(*, order: Order) -> list:
    """Valid tickets of the order not covered by a refund already made or under way."""
    taken = {pk for ids in Refund.objects.filter(payment__order=order)
             .exclude(state=Refund.State.FAILED).values_list("ticket_ids", flat=True)
             for pk in (ids or [])}
    return list(order.tickets.filter(state="valid").exclude(pk__in=taken)
                .select_related("zone", "seat__section").order_by("pk"))
