"""Sandbox checkout end to end through HTTP: start → hosted page → card → webhook → order."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from smarttickets.booking.models import Hold, InventoryBucket, Order
from smarttickets.core import clock
from smarttickets.core.models import AuditEntry
from smarttickets.payments.models import Payment, SandboxEvent, SandboxSession, WebhookEvent
from smarttickets.payments.providers import cards
from smarttickets.payments.tests.factories import (
    buyer,
    card,
    pending_order,
    session_of,
    start,
)
from smarttickets.tickets.models import Ticket

pytestmark = pytest.mark.django_db


def taken(order) -> int:
    return sum(InventoryBucket.objects.filter(performance=order.performance)
               .values_list("taken", flat=True))


def test_paying_with_4242_issues_the_tickets(client, fan, django_capture_on_commit_callbacks):
    order = pending_order(user=fan, quantity=2, price="480.00")

    page_url = start(client, order)
    page = client.get(page_url)

    session = session_of(order)
    assert page_url == f"/pay/sandbox/checkout/{session.public_id}"
    assert page.status_code == 200
    assert b"TEST MODE" in page.content and b"HK$960.00" in page.content
    assert session.amount_minor == 96000 and session.currency == "HKD"
    assert session.line_items == [{"name": "Standing", "unit_amount_minor": 48000,
                                   "quantity": 2}]

    with django_capture_on_commit_callbacks(execute=True):
        paid = client.post(page_url, card())

    assert paid.status_code == 302
    assert paid["Location"] == f"http://testserver/pay/orders/{order.code}/return"
    order.refresh_from_db()
    assert order.state == Order.State.PAID
    assert order.paid_amount_minor == 96000
    assert Ticket.objects.filter(order=order, state="valid").count() == 2
    payment = Payment.objects.get(order=order)
    assert payment.state == Payment.State.SUCCEEDED
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert payment.card_fingerprint == cards.fingerprint("4242424242424242", "sbx_fp_test")
    assert order.card_fingerprint == payment.card_fingerprint
    event = SandboxEvent.objects.get(session=session)
    assert (event.type, event.attempts, event.last_status) == ("payment.succeeded", 1, 200)
    assert WebhookEvent.objects.get(event_id=event.public_id).outcome == "paid"
    assert Hold.objects.get(pk=order.hold_id).state == Hold.State.PURCHASED

    result = client.get(paid["Location"])
    assert result.status_code == 200
    assert b"Payment received" in result.content


def test_the_card_number_is_stored_nowhere(client, fan, django_capture_on_commit_callbacks):
    order = pending_order(user=fan)
    page_url = start(client, order)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(page_url, card("4000 0000 0000 3220", cvc="987"))
    challenge = client.get(f"{page_url}/challenge")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{page_url}/challenge", {"code": session_of(order).challenge_code})

    dump = StringIO()
    call_command("dumpdata", stdout=dump)
    assert challenge.status_code == 200
    assert Order.objects.get(pk=order.pk).state == Order.State.PAID
    assert "4000000000003220" not in dump.getvalue()
    assert "4000 0000 0000 3220" not in dump.getvalue()
    assert '"987"' not in dump.getvalue()


@pytest.mark.parametrize(("number", "decline_code", "message"), [
    ("4000 0000 0000 0002", "generic_decline", b"declined by your bank"),
    ("4000 0000 0000 9995", "insufficient_funds", b"insufficient funds"),
])
def test_a_declined_card_fails_the_order_and_releases_the_hold(
        client, fan, django_capture_on_commit_callbacks, number, decline_code, message):
    order = pending_order(user=fan, quantity=2)
    page_url = start(client, order)
    assert taken(order) == 2

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page_url, card(number))

    order.refresh_from_db()
    payment = Payment.objects.get(order=order)
    assert response.status_code == 302
    assert order.state == Order.State.CANCELLED
    assert Hold.objects.get(pk=order.hold_id).state == Hold.State.RELEASED
    assert taken(order) == 0
    assert Ticket.objects.filter(order=order).count() == 0
    assert (payment.state, payment.decline_code) == (Payment.State.FAILED, decline_code)
    result = client.get(response["Location"])
    assert b"Payment not completed" in result.content and message in result.content


def test_3d_secure_challenge_with_the_right_code_pays(client, fan,
                                                       django_capture_on_commit_callbacks):
    order = pending_order(user=fan)
    page_url = start(client, order)

    first = client.post(page_url, card("4000 0000 0000 3220"))
    session = session_of(order)
    challenge = client.get(first["Location"])
    assert first.status_code == 302 and first["Location"] == f"{page_url}/challenge"
    assert session.state == SandboxSession.State.CHALLENGE
    assert SandboxEvent.objects.count() == 0
    assert session.challenge_code.encode() in challenge.content  # shown in test mode

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(f"{page_url}/challenge", {"code": session.challenge_code})

    assert done["Location"].endswith(f"/pay/orders/{order.code}/return")
    assert Order.objects.get(pk=order.pk).state == Order.State.PAID


def test_3d_secure_challenge_with_a_wrong_code_fails(client, fan,
                                                      django_capture_on_commit_callbacks):
    order = pending_order(user=fan)
    page_url = start(client, order)
    client.post(page_url, card("4000 0000 0000 3220"))
    wrong = "000000" if session_of(order).challenge_code != "000000" else "111111"

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{page_url}/challenge", {"code": wrong})

    order.refresh_from_db()
    assert order.state == Order.State.CANCELLED
    assert Payment.objects.get(order=order).decline_code == "authentication_failed"
    assert Ticket.objects.filter(order=order).count() == 0


@pytest.mark.parametrize(("data", "field", "message"), [
    (card("4242 4242 4242 4241"), "number", b"Your card number is invalid."),
    (card("4242 4242"), "number", b"Your card number is incomplete."),
    (card("4242 abcd 4242 4242"), "number", b"Enter the card number using digits only."),
    (card(expiry="01 / 20"), "expiry", b"expiry date is in the past"),
    (card(expiry="13 / 30"), "expiry", b"Enter the expiry date as MM / YY."),
    (card(cvc="12"), "cvc", b"security code is 3 digits"),
    (card("3782 822463 10005", cvc="123"), "cvc", b"security code is 4 digits"),
    (card(name="  "), "name", b"This field is required."),
])
def test_bad_card_input_gets_a_field_error_and_changes_nothing(client, fan, data, field,
                                                               message):
    order = pending_order(user=fan)
    page_url = start(client, order)

    response = client.post(page_url, data)

    assert response.status_code == 400
    assert message in response.content
    assert f'id="{field}-error"'.encode() in response.content
    session = session_of(order)
    assert session.state == SandboxSession.State.OPEN and session.card_last4 == ""
    assert SandboxEvent.objects.count() == 0
    assert Order.objects.get(pk=order.pk).state == Order.State.PENDING


def test_a_retried_start_reuses_the_open_session(client, fan):
    order = pending_order(user=fan)

    first = start(client, order)
    second = start(client, order)

    assert first == second
    assert Payment.objects.filter(order=order).count() == 1
    assert SandboxSession.objects.count() == 1
    assert AuditEntry.objects.filter(action="payment.checkout_started").count() == 1


def test_someone_elses_order_is_not_found_and_nothing_starts(client, fan):
    order = pending_order(user=buyer())

    response = client.post(reverse("payments:start", args=[order.code]))
    page = client.get(reverse("payments:return", args=[order.code]))

    assert response.status_code == 404 and page.status_code == 404
    assert Payment.objects.count() == 0 and SandboxSession.objects.count() == 0


def test_start_needs_post_and_a_login(client):
    order = pending_order()

    assert client.get(reverse("payments:start", args=[order.code])).status_code == 302
    client.force_login(order.buyer)
    assert client.get(reverse("payments:start", args=[order.code])).status_code == 405
    assert Payment.objects.count() == 0


def test_an_expired_order_cannot_start_paying(client, fan):
    order = pending_order(user=fan)

    with clock.frozen(order.expires_at + timedelta(seconds=1)):
        response = client.post(reverse("payments:start", args=[order.code]))
        page = client.get(response["Location"])

    assert response["Location"] == reverse("payments:return", args=[order.code])
    assert b"The hold on these tickets has ended" in page.content
    assert Payment.objects.count() == 0 and SandboxSession.objects.count() == 0


def test_return_page_refetches_when_the_webhook_is_late(client, fan,
                                                         django_capture_on_commit_callbacks):
    order = pending_order(user=fan, quantity=1)
    page_url = start(client, order)
    with django_capture_on_commit_callbacks(execute=False) as delivery:
        response = client.post(page_url, card())
    assert Order.objects.get(pk=order.pk).state == Order.State.PENDING

    page = client.get(response["Location"])

    assert b"Payment received" in page.content
    assert Order.objects.get(pk=order.pk).state == Order.State.PAID
    assert Ticket.objects.filter(order=order).count() == 1
    # The late webhook then arrives and changes nothing.
    for callback in delivery:
        callback()
    event = SandboxEvent.objects.get()
    assert event.last_status == 200
    assert WebhookEvent.objects.get(event_id=event.public_id).outcome == "paid"
    assert Ticket.objects.filter(order=order).count() == 1
    assert AuditEntry.objects.filter(action="order.paid").count() == 1


def test_return_page_while_paying_and_after_cancel(client, fan):
    order = pending_order(user=fan)
    start(client, order)
    url = reverse("payments:return", args=[order.code])

    processing = client.get(url)
    cancelled = client.get(url + "?cancelled=1")

    assert b"Confirming your payment" in processing.content
    assert b'http-equiv="refresh"' in processing.content
    assert b"Payment not finished" in cancelled.content
    assert Order.objects.get(pk=order.pk).state == Order.State.PENDING


def test_a_paid_session_page_cannot_take_a_second_card(client, fan,
                                                        django_capture_on_commit_callbacks):
    order = pending_order(user=fan)
    page_url = start(client, order)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(page_url, card())

    again = client.post(page_url, card("5555 5555 5555 4444"))

    assert again.status_code == 200 and b"Already paid" in again.content
    assert SandboxEvent.objects.count() == 1
    assert session_of(order).card_last4 == "4242"


def test_an_expired_sandbox_session_refuses_payment(client, fan):
    order = pending_order(user=fan)
    page_url = start(client, order)

    with clock.frozen(session_of(order).expires_at + timedelta(seconds=1)):
        response = client.post(page_url, card())

    assert response.status_code == 410
    assert b"This checkout has expired" in response.content
    assert SandboxEvent.objects.count() == 0
    assert session_of(order).card_last4 == ""


def test_pages_speak_traditional_chinese(client, fan, settings):
    order = pending_order(user=fan)
    page_url = start(client, order)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hant"

    page = client.get(page_url)
    error = client.post(page_url, card("4242 4242 4242 4241"))
    result = client.get(reverse("payments:return", args=[order.code]) + "?cancelled=1")

    assert "測試模式" in page.content.decode() and "以信用卡付款" in page.content.decode()
    assert "卡號無效。" in error.content.decode()
    assert "付款尚未完成" in result.content.decode()
