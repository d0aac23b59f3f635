"""Webhooks: signatures, replays, reordering, amount checks and automatic refunds."""

import json
import logging
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from smarttickets.booking import services as booking_services
from smarttickets.booking.models import Hold, InventoryBucket, Order
from smarttickets.core import clock
from smarttickets.core.models import AuditEntry
from smarttickets.payments.models import (
    Payment,
    Refund,
    SandboxEvent,
    SandboxRefund,
    SandboxSession,
    WebhookEvent,
)
from smarttickets.payments.providers import signing
from smarttickets.payments.providers.base import CheckoutRequest
from smarttickets.payments.providers.sandbox import SandboxProvider, signed_delivery
from smarttickets.payments.tests.factories import (
    buyer,
    card,
    ga_performance,
    pending_order,
    start,
)
from smarttickets.tickets.models import Ticket

pytestmark = pytest.mark.django_db
URL = "/pay/webhooks/sandbox"


def post(client, body: bytes, header: str | None):
    headers = {signing.HEADER: header} if header is not None else {}
    return client.post(URL, body, content_type="application/json", headers=headers)


def sign(body: bytes, at=None) -> str:
    return signing.sign(body, "sbx_whsec_test", int((at or clock.now()).timestamp()))


def paid_but_not_delivered(client, order, number="4242 4242 4242 4242",
                           capture=None) -> SandboxEvent:
    """Pay on the hosted page but keep the webhook back (as if it were still in flight)."""
    page_url = start(client, order)
    with capture(execute=False):
        client.post(page_url, card(number))
    return SandboxEvent.objects.get(session__order_code=order.code)


def body_of(event: SandboxEvent) -> bytes:
    return signed_delivery(event, clock.now())[0]


def nothing_changed(order) -> None:
    order.refresh_from_db()
    assert order.state == Order.State.PENDING
    assert Ticket.objects.filter(order=order).count() == 0
    assert WebhookEvent.objects.filter(outcome="paid").count() == 0


@pytest.fixture
def undelivered(client, fan, django_capture_on_commit_callbacks):
    order = pending_order(user=fan, quantity=2)
    return order, paid_but_not_delivered(client, order, capture=django_capture_on_commit_callbacks)


def test_a_signed_event_is_processed_once(client, undelivered):
    order, event = undelivered
    body = body_of(event)

    response = post(client, body, sign(body))

    assert response.status_code == 200
    assert response.json() == {"code": "ok", "event": event.public_id, "outcome": "paid"}
    order.refresh_from_db()
    assert order.state == Order.State.PAID
    assert Ticket.objects.filter(order=order).count() == 2


def test_a_replayed_event_changes_nothing(client, undelivered):
    order, event = undelivered
    body = body_of(event)
    post(client, body, sign(body))
    tickets = list(Ticket.objects.filter(order=order).values_list("pk", flat=True))

    replay = post(client, body, sign(body))

    assert replay.status_code == 200
    assert replay.json()["code"] == "duplicate_event"
    assert list(Ticket.objects.filter(order=order).values_list("pk", flat=True)) == tickets
    assert WebhookEvent.objects.get(event_id=event.public_id).deliveries == 2
    assert AuditEntry.objects.filter(action="order.paid").count() == 1
    assert AuditEntry.objects.filter(action="payment.webhook_processed").count() == 1


def test_an_event_id_reused_with_a_different_body_is_refused(client, undelivered):
    order, event = undelivered
    body = body_of(event)
    post(client, body, sign(body))
    forged = json.loads(body)
    forged["data"]["amount_minor"] = 1
    forged_body = json.dumps(forged).encode()

    response = post(client, forged_body, sign(forged_body))

    assert response.status_code == 400
    assert response.json()["code"] == "event_id_conflict"
    assert WebhookEvent.objects.get(event_id=event.public_id).outcome == "paid"
    assert Order.objects.get(pk=order.pk).paid_amount_minor == 96000


@pytest.mark.parametrize(("tamper", "code"), [
    (lambda body: (body.replace(b'"currency":"HKD"', b'"currency":"USD"'), sign(body)),
     "invalid_signature"),
    (lambda body: (body, signing.sign(body, "not-the-secret", int(clock.now().timestamp()))),
     "invalid_signature"),
    (lambda body: (body, sign(body, clock.now() - timedelta(seconds=301))), "stale_timestamp"),
    (lambda body: (body, sign(body, clock.now() + timedelta(seconds=301))), "stale_timestamp"),
    (lambda body: (body, None), "missing_signature"),
    (lambda body: (body, "t=1,v2=abc"), "invalid_signature"),
])
def test_tampered_webhooks_are_refused_and_change_nothing(client, undelivered, tamper, code):
    order, event = undelivered
    body, header = tamper(body_of(event))

    response = post(client, body, header)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert WebhookEvent.objects.count() == 0
    nothing_changed(order)


@pytest.mark.parametrize(("body", "code"), [
    (b"{not json", "malformed_payload"),
    (b'{"id": "evt_x", "type": "payment.succeeded"}', "malformed_payload"),
    (b'{"id": "evt_x", "type": "payment.succeeded", "data": {"session": "cs", '
     b'"amount_minor": "96000"}}', "malformed_payload"),
    (b"\xff\xfe", "malformed_payload"),
    (b'{"id": "evt_x", "type": "charge.dispute.created", "data": {"session": "cs"}}',
     "unknown_event_type"),
])
def test_well_signed_nonsense_is_refused(client, undelivered, body, code):
    order, _event = undelivered

    response = post(client, body, sign(body))

    assert response.status_code == 400
    assert response.json()["code"] == code
    nothing_changed(order)


def test_an_event_about_an_unknown_session_is_refused(client, undelivered):
    order, event = undelivered
    data = json.loads(body_of(event))
    data["id"], data["data"]["session"] = "evt_sbx_other", "cs_sbx_nobody"
    body = json.dumps(data).encode()

    response = post(client, body, sign(body))

    assert response.status_code == 404
    assert response.json()["code"] == "provider_unknown_reference"
    nothing_changed(order)


def test_webhook_endpoint_only_takes_post(client):
    assert client.get(URL).status_code == 405


def test_a_failed_event_after_paid_changes_nothing(client, undelivered):
    order, event = undelivered
    body = body_of(event)
    post(client, body, sign(body))
    late = json.loads(body)
    late["id"], late["type"] = "evt_sbx_late_failure", "payment.failed"
    late["data"]["decline_code"] = "generic_decline"
    late_body = json.dumps(late).encode()

    response = post(client, late_body, sign(late_body))

    # The handler re-fetches the session, which says paid: the payload's claim is ignored.
    assert response.status_code == 200 and response.json()["outcome"] == "paid"
    order.refresh_from_db()
    assert order.state == Order.State.PAID
    assert Ticket.objects.filter(order=order, state="valid").count() == 2
    assert Payment.objects.get(order=order).state == Payment.State.SUCCEEDED
    assert Hold.objects.get(pk=order.hold_id).state == Hold.State.PURCHASED


def test_a_forged_success_for_a_declined_payment_changes_nothing(
        client, fan, django_capture_on_commit_callbacks):
    order = pending_order(user=fan)
    event = paid_but_not_delivered(client, order, "4000 0000 0000 0002",
                                   capture=django_capture_on_commit_callbacks)
    forged = json.loads(body_of(event))
    forged["id"], forged["type"] = "evt_sbx_forged", "payment.succeeded"
    body = json.dumps(forged).encode()

    response = post(client, body, sign(body))

    assert response.status_code == 200 and response.json()["outcome"] == "failed"
    order.refresh_from_db()
    assert order.state == Order.State.CANCELLED
    assert Ticket.objects.filter(order=order).count() == 0


def test_a_webhook_before_the_checkout_was_recorded_adopts_the_session(client, fan):
    # Out of order: the provider's event arrives for a session we never wrote down (say we
    # crashed right after the provider answered).
    order = pending_order(user=fan)
    session = SandboxProvider().create_checkout(CheckoutRequest(
        order_code=order.code, amount_minor=96000, currency="HKD", description="x",
        buyer_email=fan.email, return_url="http://testserver/r", cancel_url="http://testserver/c",
        idempotency_key=f"order-{order.code}-checkout-1"))
    assert Payment.objects.count() == 0
    SandboxSession.objects.filter(public_id=session.reference).update(
        state="succeeded", payment_id="pi_sbx_1", card_brand="visa", card_last4="4242",
        card_fingerprint="fp1")
    body = json.dumps({"id": "evt_sbx_adopt", "type": "payment.succeeded",
                       "data": {"session": session.reference}}).encode()

    response = post(client, body, sign(body))

    assert response.status_code == 200 and response.json()["outcome"] == "paid"
    payment = Payment.objects.get(order=order)
    assert (payment.reference, payment.state) == (session.reference, Payment.State.SUCCEEDED)
    assert Order.objects.get(pk=order.pk).state == Order.State.PAID
    # And a retried start for the order now refuses instead of opening a second session.
    assert client.post(reverse("payments:start", args=[order.code])).status_code == 302
    assert SandboxSession.objects.count() == 1


def test_an_amount_mismatch_is_refused_flagged_and_alerted(
        client, fan, django_capture_on_commit_callbacks, caplog):
    order = pending_order(user=fan, quantity=2)
    page_url = start(client, order)
    # The provider charges something else than the order total.
    SandboxSession.objects.filter(order_code=order.code).update(amount_minor=100)

    with caplog.at_level(logging.ERROR, logger="smarttickets.payments.services"), \
            django_capture_on_commit_callbacks(execute=True):
        client.post(page_url, card())

    event = SandboxEvent.objects.get()
    payment = Payment.objects.get(order=order)
    assert event.last_status == 400 and event.last_error == "amount_mismatch"
    assert WebhookEvent.objects.get().outcome == "amount_mismatch"
    assert payment.review_reason == "amount_mismatch"
    assert payment.state == Payment.State.OPEN
    assert AuditEntry.objects.filter(action="payment.amount_mismatch").count() == 1
    assert any("not fulfilled" in r.getMessage() for r in caplog.records)
    nothing_changed(order)
    page = client.get(reverse("payments:return", args=[order.code]))
    assert b"We are checking your payment" in page.content


def test_a_payment_after_the_hold_was_resold_is_refunded_in_full(
        client, fan, django_capture_on_commit_callbacks):
    performance, zone = ga_performance(capacity=2, price="480.00")
    order = pending_order(user=fan, quantity=2, performance=performance, zone=zone)
    page_url = start(client, order)
    with django_capture_on_commit_callbacks(execute=False) as delivery:
        client.post(page_url, card())
    # The webhook is late; meanwhile the hold expires and another fan buys the same places.
    later = order.expires_at + timedelta(minutes=1)
    with clock.frozen(later):
        booking_services.expire_holds(now=later)
        other = pending_order(quantity=2, performance=performance, zone=zone, now=later)

        with django_capture_on_commit_callbacks(execute=True):
            for callback in delivery:
                callback()
        page = client.get(reverse("payments:return", args=[order.code]))

    order.refresh_from_db()
    payment = Payment.objects.get(order=order)
    refund = Refund.objects.get()
    assert order.state == Order.State.EXPIRED
    assert Ticket.objects.filter(order=order).count() == 0
    assert (payment.state, payment.amount_refunded) == (Payment.State.REFUNDED, order.total)
    assert (refund.kind, refund.reason, refund.amount) == ("automatic", "paid_after_expiry",
                                                           order.total)
    assert SandboxRefund.objects.get().amount_minor == 96000
    assert SandboxSession.objects.get(order_code=order.code).amount_refunded_minor == 96000
    assert WebhookEvent.objects.get().outcome == "refunded_paid_after_expiry"
    assert Order.objects.get(pk=other.pk).state == Order.State.PENDING
    assert sum(InventoryBucket.objects.values_list("taken", flat=True)) == 2
    assert b"Your payment has been refunded" in page.content
    assert len(mail.outbox) == 1 and order.code in mail.outbox[0].subject


def test_a_late_payment_is_honoured_when_the_places_are_still_free(
        client, fan, django_capture_on_commit_callbacks):
    order = pending_order(user=fan, quantity=1)
    page_url = start(client, order)
    with django_capture_on_commit_callbacks(execute=False) as delivery:
        client.post(page_url, card())
    later = order.expires_at + timedelta(minutes=1)
    with clock.frozen(later):
        booking_services.expire_holds(now=later)
        with django_capture_on_commit_callbacks(execute=True):
            for callback in delivery:
                callback()

    assert Order.objects.get(pk=order.pk).state == Order.State.PAID
    assert Refund.objects.count() == 0


def test_a_card_over_its_ticket_limit_is_refunded(client, fan,
                                                  django_capture_on_commit_callbacks):
    performance, zone = ga_performance(capacity=10, per_person_limit=2)
    first = pending_order(user=buyer(), quantity=2, performance=performance, zone=zone)
    client.force_login(first.buyer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(start(client, first), card())
    second = pending_order(user=fan, quantity=2, performance=performance, zone=zone)
    client.force_login(fan)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(start(client, second), card())

    second.refresh_from_db()
    assert Order.objects.get(pk=first.pk).state == Order.State.PAID
    assert second.state == Order.State.PENDING
    assert Ticket.objects.filter(order=second).count() == 0
    refund = Refund.objects.get()
    assert (refund.payment.order_id, refund.reason) == (second.pk, "limit_reached")
    assert Payment.objects.get(order=second).state == Payment.State.REFUNDED
    page = client.get(reverse("payments:return", args=[second.code]))
    assert b"over the ticket limit" in page.content


def test_a_second_charge_for_a_paid_order_is_refunded(client, fan,
                                                      django_capture_on_commit_callbacks):
    order = pending_order(user=fan, quantity=1, price="480.00")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(start(client, order), card())
    # A second session for the same order, paid too (a provider-side retry gone wrong).
    stray = SandboxProvider().create_checkout(CheckoutRequest(
        order_code=order.code, amount_minor=48000, currency="HKD", description="x",
        buyer_email=fan.email, return_url="http://testserver/r", cancel_url="http://testserver/c",
        idempotency_key="stray"))
    SandboxSession.objects.filter(public_id=stray.reference).update(
        state="succeeded", payment_id="pi_sbx_stray", card_brand="visa", card_last4="4242")
    body = json.dumps({"id": "evt_sbx_stray", "type": "payment.succeeded",
                       "data": {"session": stray.reference}}).encode()

    response = post(client, body, sign(body))

    assert response.json()["outcome"] == "refunded_duplicate"
    assert Order.objects.get(pk=order.pk).state == Order.State.PAID
    assert Ticket.objects.filter(order=order, state="valid").count() == 1
    second = Payment.objects.get(reference=stray.reference)
    assert (second.state, second.review_reason) == (Payment.State.REFUNDED, "duplicate_charge")
    assert Refund.objects.get().reason == "duplicate_charge"
    assert Payment.objects.filter(order=order, state="succeeded").count() == 1


def test_sandbox_delivery_is_retried_with_backoff_on_a_real_queue(
        client, fan, django_capture_on_commit_callbacks, settings, monkeypatch):
    from smarttickets.payments import services, tasks

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    order = pending_order(user=fan)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(start(client, order), card())
    event = SandboxEvent.objects.get()
    calls = []

    def busy(**kwargs):
        calls.append(kwargs)
        return services.WebhookResponse(503, {"code": "busy"})

    monkeypatch.setattr(services, "receive_webhook", busy)

    status = tasks.deliver_sandbox_event.call(event.public_id, 1)

    backend = tasks.deliver_sandbox_event.get_backend()
    retry = [r for r in backend.results if r.args == [event.public_id, 2]]
    event.refresh_from_db()
    assert status == 503 and len(calls) == 1
    assert (event.attempts, event.last_status, event.delivered_at) == (1, 503, None)
    assert len(retry) == 1 and retry[0].task.run_after is not None
    assert tasks.backoff(1) == timedelta(seconds=10) and tasks.backoff(3) == timedelta(seconds=40)
    assert tasks.backoff(20) == timedelta(hours=1)


def test_a_charge_booking_was_too_busy_for_is_settled_by_the_return_page(
        client, fan, django_capture_on_commit_callbacks, monkeypatch):
    from smarttickets.core.exceptions import Busy
    from smarttickets.payments import services

    real = services.booking_services.mark_order_paid
    monkeypatch.setattr(services.booking_services, "mark_order_paid",
                        lambda **kwargs: (_ for _ in ()).throw(Busy("busy")))
    order = pending_order(user=fan)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(start(client, order), card())
    event = SandboxEvent.objects.get()
    assert (event.last_status, event.delivered_at) == (503, None)
    assert WebhookEvent.objects.get().processed_at is None
    assert Payment.objects.get(order=order).state == Payment.State.SUCCEEDED
    assert Order.objects.get(pk=order.pk).state == Order.State.PENDING

    monkeypatch.setattr(services.booking_services, "mark_order_paid", real)
    page = client.get(reverse("payments:return", args=[order.code]))

    assert b"Payment received" in page.content
    assert Ticket.objects.filter(order=order).count() == 2
