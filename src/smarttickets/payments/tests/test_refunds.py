"""Organizer refunds: whole orders and chosen tickets, through the confirmation page."""

from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from smarttickets.booking.models import InventoryBucket, Order
from smarttickets.core import clock
from smarttickets.core.exceptions import NotFound
from smarttickets.core.models import AuditEntry
from smarttickets.payments import selectors, services
from smarttickets.payments.exceptions import ProviderError, RefundNotAllowed
from smarttickets.payments.models import Payment, Refund, SandboxRefund
from smarttickets.payments.providers.sandbox import SandboxProvider
from smarttickets.payments.tests.factories import (
    UserFactory,
    card,
    organizer_staff,
    pending_order,
    start,
)
from smarttickets.tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_order(client, fan, django_capture_on_commit_callbacks):
    """Three paid standing tickets at HK$480; the client is then logged out."""
    order = pending_order(user=fan, quantity=3, price="480.00")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(start(client, order), card())
    client.logout()
    order.refresh_from_db()
    assert order.state == Order.State.PAID
    return order


def taken(order) -> int:
    return sum(InventoryBucket.objects.filter(performance=order.performance)
               .values_list("taken", flat=True))


def test_full_refund_through_the_confirmation_page(client, paid_order,
                                                   django_capture_on_commit_callbacks):
    staff = organizer_staff(paid_order)
    client.force_login(staff)
    url = reverse("payments:refund", args=[paid_order.code])

    form = client.get(url)
    review = client.post(url, {"scope": "all", "reason": "Show moved"})
    assert form.status_code == 200 and b"HK$1,440.00" in form.content
    assert review.status_code == 200 and b"Confirm refund" in review.content
    assert b"HK$1,440.00" in review.content
    assert Refund.objects.count() == 0  # reviewing changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"scope": "all", "reason": "Show moved", "confirm": "yes"})

    assert done.status_code == 302 and done["Location"] == url
    refund = Refund.objects.get()
    payment = Payment.objects.get(order=paid_order)
    paid_order.refresh_from_db()
    assert (refund.state, refund.amount, refund.kind) == ("succeeded", Decimal("1440.00"),
                                                          "organizer")
    assert refund.actor == staff and refund.ticket_ids is None
    assert SandboxRefund.objects.get().amount_minor == 144000
    assert (payment.state, payment.amount_refunded) == (Payment.State.REFUNDED,
                                                        Decimal("1440.00"))
    assert paid_order.state == Order.State.REFUNDED
    assert Ticket.objects.filter(order=paid_order, state="valid").count() == 0
    assert taken(paid_order) == 0
    assert AuditEntry.objects.filter(action="refund.succeeded", actor=staff).count() == 1
    notice = mail.outbox[-1]  # after the order confirmation
    assert notice.to == [paid_order.buyer.email]
    assert notice.subject == f"Your refund for order {paid_order.code}"
    assert "HK$1,440.00" in notice.body
    assert b"Refunded HK$1,440.00. The buyer has been emailed." in client.get(url).content


def test_partial_refunds_of_chosen_tickets(client, paid_order):
    staff = organizer_staff(paid_order)
    client.force_login(staff)
    url = reverse("payments:refund", args=[paid_order.code])
    first, second, third = Ticket.objects.filter(order=paid_order).order_by("pk")

    client.post(url, {"scope": "tickets", "tickets": [first.pk], "reason": "Duplicate",
                      "confirm": "yes"})

    payment = Payment.objects.get(order=paid_order)
    assert Order.objects.get(pk=paid_order.pk).state == Order.State.PAID
    assert (payment.state, payment.amount_refunded) == (Payment.State.PARTIALLY_REFUNDED,
                                                        Decimal("480.00"))
    assert list(Ticket.objects.filter(order=paid_order, state="valid")) == [second, third]
    assert taken(paid_order) == 2
    assert Refund.objects.get().ticket_ids == [first.pk]

    # The same ticket again is refused and nothing moves.
    again = client.post(url, {"scope": "tickets", "tickets": [first.pk], "reason": "Oops",
                              "confirm": "yes"})
    assert again.status_code == 400
    assert Refund.objects.count() == 1 and SandboxRefund.objects.count() == 1

    # The rest of the order takes whatever is left.
    client.post(url, {"scope": "all", "reason": "Cancelled", "confirm": "yes"})
    payment.refresh_from_db()
    assert (payment.state, payment.amount_refunded) == (Payment.State.REFUNDED,
                                                        Decimal("1440.00"))
    assert Order.objects.get(pk=paid_order.pk).state == Order.State.REFUNDED
    assert sorted(r.amount for r in Refund.objects.all()) == [Decimal("480.00"),
                                                              Decimal("960.00")]
    assert taken(paid_order) == 0


def test_choosing_no_ticket_or_no_reason_is_a_form_error(client, paid_order):
    client.force_login(organizer_staff(paid_order))
    url = reverse("payments:refund", args=[paid_order.code])

    no_ticket = client.post(url, {"scope": "tickets", "reason": "x", "confirm": "yes"})
    no_reason = client.post(url, {"scope": "all", "reason": "", "confirm": "yes"})

    assert no_ticket.status_code == 400 and b"Choose at least one ticket" in no_ticket.content
    assert no_reason.status_code == 400 and b"This field is required." in no_reason.content
    assert Refund.objects.count() == 0


@pytest.mark.parametrize("who", ["buyer", "other_organizer", "no_permission", "stranger"])
def test_only_event_managers_of_the_organizer_see_the_refund_page(client, paid_order, who):
    user = {
        "buyer": lambda: paid_order.buyer,
        "other_organizer": lambda: organizer_staff(pending_order()),
        "no_permission": lambda: organizer_staff(paid_order, can_manage_events=False,
                                                 can_view_reports=True),
        "stranger": lambda: UserFactory(),
    }[who]()
    client.force_login(user)
    url = reverse("payments:refund", args=[paid_order.code])

    assert client.get(url).status_code == 404
    assert client.post(url, {"scope": "all", "reason": "x", "confirm": "yes"}).status_code == 404
    assert client.get(reverse("payments:refund", args=["NOSUCHCODE"])).status_code == 404
    assert Refund.objects.count() == 0
    assert Order.objects.get(pk=paid_order.pk).state == Order.State.PAID


def test_an_unpaid_order_cannot_be_refunded():
    order = pending_order()
    staff = organizer_staff(order)

    with pytest.raises(RefundNotAllowed) as exc:
        services.refund(order=order, ticket_ids=None, actor=staff, reason="x", now=clock.now())

    assert exc.value.code == "order_not_paid"
    assert Refund.objects.count() == 0
    with pytest.raises(NotFound):
        selectors.access_order_for_refund(code=order.code, user=order.buyer)


def test_a_provider_failure_leaves_the_tickets_alone(client, paid_order, monkeypatch):
    def down(self, **kwargs):
        raise ProviderError()

    monkeypatch.setattr(SandboxProvider, "refund", down)
    client.force_login(organizer_staff(paid_order))
    url = reverse("payments:refund", args=[paid_order.code])

    response = client.post(url, {"scope": "all", "reason": "x", "confirm": "yes"}, follow=True)

    assert b"payment provider is not available" in response.content
    refund = Refund.objects.get()
    assert (refund.state, refund.failure_code) == ("failed", "provider_error")
    assert Order.objects.get(pk=paid_order.pk).state == Order.State.PAID
    assert Ticket.objects.filter(order=paid_order, state="valid").count() == 3
    assert Payment.objects.get(order=paid_order).amount_refunded == Decimal("0")
    # A failed refund does not block a later attempt.
    monkeypatch.undo()
    client.post(url, {"scope": "all", "reason": "x", "confirm": "yes"})
    assert Order.objects.get(pk=paid_order.pk).state == Order.State.REFUNDED
