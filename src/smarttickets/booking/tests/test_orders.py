"""Orders and the payments contract: names, paid, failed, refunded, paid after expiry."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db.models import Sum
from django.utils import timezone

from smarttickets.booking import services
from smarttickets.booking.exceptions import (
    BookingLimitReached,
    HoldNotLive,
    PaidAfterExpiry,
    PaymentMismatch,
)
from smarttickets.booking.models import Hold, InventoryBucket, LimitHit, Order, SeatClaim
from smarttickets.booking.tests.factories import buyer, ga_performance, seated_performance
from smarttickets.core.exceptions import InvalidInput
from smarttickets.core.models import AuditEntry
from smarttickets.tickets.models import Ticket

pytestmark = pytest.mark.django_db


def taken(performance, zone) -> int:
    return InventoryBucket.objects.filter(performance=performance, zone=zone).aggregate(
        n=Sum("taken"))["n"]


def pending_order(performance, selection, *, user=None, names=None, now=None):
    user = user or buyer()
    now = now or timezone.now()
    hold = services.create_hold(user=user, performance=performance, selection=selection, now=now)
    return services.place_order(hold=hold, buyer=user, holder_names=names or [], now=now)


def pay(order, *, now=None, fingerprint="card-1", amount=None):
    return services.mark_order_paid(
        order_id=order.pk, provider="sandbox", payment_reference=f"pay_{order.code}",
        amount_minor=int(order.total * 100) if amount is None else amount, currency="HKD",
        card_fingerprint=fingerprint, now=now or timezone.now())


def test_order_totals_the_hold_and_has_a_short_unique_code():
    performance, zone = ga_performance(price="480.00")

    order = pending_order(performance, services.Selection(zone_id=zone.pk, quantity=3))

    assert order.state == Order.State.PENDING
    assert order.total == Decimal("1440.00")
    assert order.currency == "HKD"
    assert len(order.code) == 10 and order.code.isalnum()
    assert order.expires_at == order.hold.expires_at
    assert AuditEntry.objects.filter(action="order.created", object_id=str(order.pk)).exists()


def test_personalised_event_needs_every_companion_name():
    performance, zone = ga_performance(personalised=True)
    user = buyer(legal_name="Chan Tai Man")
    now = timezone.now()
    hold = services.create_hold(user=user, performance=performance, now=now,
                                selection=services.Selection(zone_id=zone.pk, quantity=3))

    with pytest.raises(InvalidInput) as exc:
        services.place_order(hold=hold, buyer=user, holder_names=["", "Wong Siu Ming", " "],
                             now=now)
    assert set(exc.value.fields) == {"holder_2"}
    assert Order.objects.count() == 0

    order = services.place_order(hold=hold, buyer=user, now=now,
                                 holder_names=["Someone Else", "Wong  Siu Ming", "Lee Ka Yan"])
    tickets = pay(order).tickets.order_by("pk")

    assert [t.holder_name for t in tickets] == ["Chan Tai Man", "Wong Siu Ming", "Lee Ka Yan"]


def test_non_personalised_event_defaults_names_to_the_buyer():
    performance, zone = ga_performance()
    user = buyer(legal_name="Chan Tai Man")

    order = pending_order(performance, services.Selection(zone_id=zone.pk, quantity=2), user=user)

    assert [i.holder_name for i in order.hold.items.all()] == ["Chan Tai Man"] * 2


def test_paid_order_issues_tickets_and_queues_the_email_in_the_buyers_language(
        django_capture_on_commit_callbacks):
    performance, zone, seats = seated_performance()
    user = buyer(preferred_language="zh-hant")
    order = pending_order(performance, services.Selection(seat_ids=(seats[0].pk, seats[1].pk)),
                          user=user)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        paid = pay(order)

    assert paid.state == Order.State.PAID
    tickets = list(Ticket.objects.filter(order=order).order_by("seat_id"))
    assert [t.seat_id for t in tickets] == [seats[0].pk, seats[1].pk]
    assert all(t.state == Ticket.State.VALID and t.zone_id == zone.pk for t in tickets)
    assert len({t.serial for t in tickets}) == 2
    assert Hold.objects.get(pk=order.hold_id).state == Hold.State.PURCHASED
    assert SeatClaim.objects.filter(hold_id=order.hold_id).count() == 2
    assert len(callbacks) == 1
    assert len(mail.outbox) == 1
    assert order.code in mail.outbox[0].subject
    assert mail.outbox[0].to == [user.email]


def test_mark_order_paid_is_idempotent():
    performance, zone = ga_performance()
    order = pending_order(performance, services.Selection(zone_id=zone.pk, quantity=2))
    pay(order)

    again = pay(order)

    assert again.state == Order.State.PAID
    assert Ticket.objects.filter(order=order).count() == 2
    assert AuditEntry.objects.filter(action="order.paid", object_id=str(order.pk)).count() == 1


def test_wrong_amount_is_refused_and_nothing_is_issued():
    performance, zone = ga_performance()
    order = pending_order(performance, services.Selection(zone_id=zone.pk, quantity=1))

    with pytest.raises(PaymentMismatch):
        pay(order, amount=100)

    order.refresh_from_db()
    assert order.state == Order.State.PENDING
    assert Ticket.objects.count() == 0


def test_card_limit_across_buyers_refuses_payment_and_records_it():
    performance, zone = ga_performance(capacity=20)  # per_person_limit 4
    first = pending_order(performance, services.Selection(zone_id=zone.pk, quantity=3))
    second = pending_order(performance, services.Selection(zone_id=zone.pk, quantity=2))
    pay(first, fingerprint="fp-shared")

    with pytest.raises(BookingLimitReached) as exc:
        pay(second, fingerprint="fp-shared")

    assert exc.value.limit == "card"
    second.refresh_from_db()
    assert second.state == Order.State.PENDING
    assert Ticket.objects.filter(order=second).count() == 0
    assert LimitHit.objects.get().limit == "card"
    assert pay(second, fingerprint="fp-other").state == Order.State.PAID


def test_payment_failure_releases_the_hold_exactly_once():
    performance, zone = ga_performance(capacity=5)
    order = pending_order(performance, services.Selection(zone_id=zone.pk, quantity=2))
    now = timezone.now()

    services.mark_payment_failed(order_id=order.pk, reason="card_declined", now=now)
    again = services.mark_payment_failed(order_id=order.pk, reason="card_declined", now=now)

    assert again.state == Order.State.CANCELLED
    assert Hold.objects.get(pk=order.hold_id).state == Hold.State.RELEASED
    assert taken(performance, zone) == 0


def test_payment_after_expiry_still_succeeds_when_units_are_free():
    performance, zone = ga_performance(capacity=5)
    start = timezone.now()
    order = pending_order(performance, services.Selection(zone_id=zone.pk, quantity=2),
                          now=start)
    services.expire_holds(now=start + timedelta(minutes=11))
    assert taken(performance, zone) == 0

    paid = pay(order, now=start + timedelta(minutes=12))

    assert paid.state == Order.State.PAID
    assert taken(performance, zone) == 2
    assert Ticket.objects.filter(order=order).count() == 2


def test_payment_after_expiry_raises_when_units_are_gone():
    performance, zone, seats = seated_performance()
    start = timezone.now()
    order = pending_order(performance, services.Selection(seat_ids=(seats[0].pk,)), now=start)
    later = start + timedelta(minutes=11)
    pending_order(performance, services.Selection(seat_ids=(seats[0].pk,)), now=later)

    with pytest.raises(PaidAfterExpiry):
        pay(order, now=later)

    order.refresh_from_db()
    assert order.state == Order.State.EXPIRED
    assert Ticket.objects.count() == 0
    assert taken(performance, zone) == 1


def test_expiry_racing_payment_gives_units_back_once():
    performance, zone = ga_performance(capacity=5)
    start = timezone.now()
    order = pending_order(performance, services.Selection(zone_id=zone.pk, quantity=2),
                          now=start)
    late = start + timedelta(minutes=10, seconds=1)

    pay(order, now=late)  # the payment wins the hold transition
    services.expire_holds(now=late)

    assert Hold.objects.get(pk=order.hold_id).state == Hold.State.PURCHASED
    assert taken(performance, zone) == 2


def test_place_order_on_an_ended_hold_is_refused():
    performance, zone = ga_performance()
    user = buyer()
    start = timezone.now()
    hold = services.create_hold(user=user, performance=performance, now=start,
                                selection=services.Selection(zone_id=zone.pk, quantity=1))

    with pytest.raises(HoldNotLive):
        services.place_order(hold=hold, buyer=user, holder_names=[],
                             now=start + timedelta(minutes=10))
    assert Order.objects.count() == 0


def test_partial_then_full_refund_returns_units_exactly_once():
    performance, zone, seats = seated_performance()
    order = pending_order(performance, services.Selection(seat_ids=(seats[0].pk, seats[1].pk)))
    pay(order)
    first, _second = Ticket.objects.filter(order=order).order_by("pk")
    now = timezone.now()

    services.record_refund(order_id=order.pk, ticket_ids=[first.pk], actor=None,
                           reason="customer request", now=now)
    services.record_refund(order_id=order.pk, ticket_ids=[first.pk], actor=None,
                           reason="replayed", now=now)
    order.refresh_from_db()
    assert order.state == Order.State.PAID
    assert taken(performance, zone) == 1
    assert list(SeatClaim.objects.values_list("seat_id", flat=True)) == [seats[1].pk]

    services.record_refund(order_id=order.pk, ticket_ids=None, actor=None, reason="event",
                           now=now)
    order.refresh_from_db()
    assert order.state == Order.State.REFUNDED
    assert taken(performance, zone) == 0
    assert SeatClaim.objects.count() == 0
    assert Ticket.objects.filter(state=Ticket.State.VALID).count() == 0


def test_refund_of_unknown_ticket_ids_changes_nothing():
    performance, zone = ga_performance()
    order = pending_order(performance, services.Selection(zone_id=zone.pk, quantity=1))
    pay(order)

    with pytest.raises(InvalidInput):
        services.record_refund(order_id=order.pk, ticket_ids=[123456], actor=None, reason="x",
                               now=timezone.now())
    assert Ticket.objects.get(order=order).state == Ticket.State.VALID
    assert taken(performance, zone) == 1
