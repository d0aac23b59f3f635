"""Stripe provider at the HTTP boundary: a fake transport inside the official library, no network."""

import hashlib
import hmac
import json
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from django.urls import reverse

from smarttickets.booking.models import Order
from smarttickets.payments import services
from smarttickets.payments.exceptions import ProviderError, WebhookRejected
from smarttickets.payments.models import Payment, Refund, WebhookEvent
from smarttickets.payments.providers import stripe_provider
from smarttickets.payments.providers.base import (
    CheckoutRequest,
    EventType,
    LineItem,
    PaymentStatus,
    RefundStatus,
)
from smarttickets.payments.providers.stripe_provider import StripeProvider
from smarttickets.payments.tests.factories import organizer_staff, pending_order
from smarttickets.tickets.models import Ticket

SECRET = "whsec_test_secret"
API = "https://api.stripe.com"


class FakeStripe(stripe.HTTPClient):
    """Answers the library's requests from recorded JSON and remembers what was asked."""

    name = "fake"

    def __init__(self, routes: dict[tuple[str, str], tuple[int, dict]]) -> None:
        super().__init__()
        self.routes = routes
        self.requests: list[dict] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        self.requests.append({"method": method, "url": url, "path": parts.path,
                              "query": parse_qs(parts.query), "headers": dict(headers or {}),
                              "form": parse_qs(post_data or "")})
        status, body = self.routes.get((method, parts.path), (404, {"error": {
            "type": "invalid_request_error", "message": "No such resource"}}))
        return json.dumps(body), status, {"Request-Id": "req_fake"}

    def close(self):
        pass


def session_json(status="open", payment_status="unpaid", amount=96000, code="ORDER1",
                 intent=None):
    return {"id": "cs_test_123", "object": "checkout.session", "status": status,
            "payment_status": payment_status, "amount_total": amount, "currency": "hkd",
            "client_reference_id": code, "expires_at": 1_900_000_000,
            "url": "https://checkout.stripe.com/c/pay/cs_test_123", "payment_intent": intent}


def paid_intent():
    return {"id": "pi_test_1", "object": "payment_intent", "status": "succeeded",
            "payment_method": {"id": "pm_1", "object": "payment_method", "type": "card",
                               "card": {"brand": "visa", "last4": "4242",
                                        "fingerprint": "Xt5EWLLDS7FJjR1c"}},
            "latest_charge": {"id": "ch_1", "object": "charge", "amount_refunded": 0}}


def signed(payload: dict, *, secret=SECRET, at=None) -> tuple[bytes, str]:
    """Sign as Stripe does: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    body = json.dumps(payload).encode()
    t = int(at if at is not None else time.time())
    v1 = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={t},v1={v1}"


def event(kind="checkout.session.completed", obj=None, event_id="evt_1"):
    return {"id": event_id, "object": "event", "type": kind, "livemode": False,
            "data": {"object": obj or session_json("complete", "paid")}}


def provider(routes) -> tuple[StripeProvider, FakeStripe]:
    fake = FakeStripe(routes)
    return StripeProvider(api_key="sk_test_123", webhook_secret=SECRET, client=fake), fake


def test_create_checkout_posts_a_session_with_our_idempotency_key():
    stripe_, fake = provider({("post", "/v1/checkout/sessions"): (200, session_json())})

    session = stripe_.create_checkout(CheckoutRequest(
        order_code="ORDER1", amount_minor=136000, currency="HKD", description="Concert",
        buyer_email="fan@example.com", return_url="https://t.example/return",
        cancel_url="https://t.example/return?cancelled=1", idempotency_key="order-ORDER1-1",
        line_items=(LineItem("Stalls", 88000, 1), LineItem("Standing", 48000, 1))))

    assert (session.reference, session.redirect_url) == (
        "cs_test_123", "https://checkout.stripe.com/c/pay/cs_test_123")
    [sent] = fake.requests
    form = {k: v[0] for k, v in sent["form"].items()}
    assert (sent["method"], sent["url"]) == ("post", f"{API}/v1/checkout/sessions")
    assert sent["headers"]["Idempotency-Key"] == "order-ORDER1-1"
    assert sent["headers"]["Authorization"] == "Bearer sk_test_123"
    assert form["mode"] == "payment"
    assert form["client_reference_id"] == "ORDER1"
    assert form["metadata[order_code]"] == "ORDER1"
    assert form["customer_email"] == "fan@example.com"
    assert form["success_url"] == "https://t.example/return"
    assert form["line_items[0][price_data][unit_amount]"] == "88000"
    assert form["line_items[0][price_data][currency]"] == "hkd"
    assert form["line_items[0][price_data][product_data][name]"] == "Stalls"
    assert form["line_items[1][quantity]"] == "1"
    assert form["payment_intent_data[metadata][order_code]"] == "ORDER1"


def test_line_items_that_do_not_add_up_are_a_programming_error():
    stripe_, fake = provider({})

    with pytest.raises(ValueError):
        stripe_.create_checkout(CheckoutRequest(
            order_code="O", amount_minor=100, currency="HKD", description="d", buyer_email="",
            return_url="r", cancel_url="c", idempotency_key="k",
            line_items=(LineItem("x", 99, 1),)))
    assert fake.requests == []


def test_fetch_payment_expands_the_card_and_reads_the_state():
    stripe_, fake = provider({("get", "/v1/checkout/sessions/cs_test_123"): (
        200, session_json("complete", "paid", intent=paid_intent()))})

    snap = stripe_.fetch_payment("cs_test_123")

    assert snap.status == PaymentStatus.SUCCEEDED
    assert (snap.amount_minor, snap.currency, snap.order_code) == (96000, "HKD", "ORDER1")
    assert (snap.payment_id, snap.card_brand, snap.card_last4, snap.card_fingerprint) == (
        "pi_test_1", "visa", "4242", "Xt5EWLLDS7FJjR1c")
    assert fake.requests[0]["query"]["expand[0]"] == ["payment_intent.payment_method"]
    assert fake.requests[0]["query"]["expand[1]"] == ["payment_intent.latest_charge"]


@pytest.mark.parametrize(("session", "status", "decline"), [
    (session_json("open"), PaymentStatus.OPEN, ""),
    (session_json("expired"), PaymentStatus.EXPIRED, "expired"),
    (session_json("complete", "unpaid", intent={
        "id": "pi_2", "status": "requires_payment_method",
        "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}}),
     PaymentStatus.FAILED, "insufficient_funds"),
])
def test_fetch_payment_states(session, status, decline):
    stripe_, _fake = provider({("get", "/v1/checkout/sessions/cs_test_123"): (200, session)})

    snap = stripe_.fetch_payment("cs_test_123")

    assert (snap.status, snap.decline_code) == (status, decline)


def test_refund_posts_the_payment_intent_amount_and_key():
    stripe_, fake = provider({("post", "/v1/refunds"): (200, {
        "id": "re_1", "object": "refund", "status": "succeeded", "amount": 48000})})

    result = stripe_.refund(reference="pi_test_1", amount_minor=48000, idempotency_key="rf-1",
                            reason="Show moved")

    assert (result.id, result.status, result.amount_minor) == ("re_1", RefundStatus.SUCCEEDED,
                                                               48000)
    [sent] = fake.requests
    assert (sent["method"], sent["path"]) == ("post", "/v1/refunds")
    assert sent["headers"]["Idempotency-Key"] == "rf-1"
    assert sent["form"]["payment_intent"] == ["pi_test_1"]
    assert sent["form"]["amount"] == ["48000"]
    assert sent["form"]["metadata[reason]"] == ["Show moved"]


def test_a_stripe_error_becomes_a_provider_error():
    stripe_, _fake = provider({("post", "/v1/refunds"): (400, {"error": {
        "type": "invalid_request_error", "code": "charge_already_refunded",
        "message": "Charge has already been refunded."}})})

    with pytest.raises(ProviderError) as exc:
        stripe_.refund(reference="pi_test_1", amount_minor=1, idempotency_key="rf-2")

    assert exc.value.status == 502


def test_a_verified_webhook_is_normalised():
    stripe_, fake = provider({})
    body, header = signed(event())

    parsed = stripe_.parse_and_verify_webhook(body, {"Stripe-Signature": header})

    assert (parsed.id, parsed.type, parsed.reference, parsed.amount_minor, parsed.currency) == (
        "evt_1", EventType.PAYMENT_SUCCEEDED, "cs_test_123", 96000, "HKD")
    assert parsed.order_code == "ORDER1"
    assert fake.requests == []  # verification needs no network


@pytest.mark.parametrize(("make", "code"), [
    (lambda: (signed(event(), secret="whsec_other")), "invalid_signature"),
    (lambda: (signed(event(), at=time.time() - 400)), "stale_timestamp"),
    (lambda: (signed(event())[0] + b" ", signed(event())[1]), "invalid_signature"),
    (lambda: (signed(event())[0], None), "missing_signature"),
    (lambda: (signed(event("customer.created"))), "unknown_event_type"),
])
def test_bad_stripe_webhooks_are_refused(make, code):
    stripe_, _fake = provider({})
    body, header = make()
    headers = {"Stripe-Signature": header} if header else {}

    with pytest.raises(WebhookRejected) as exc:
        stripe_.parse_and_verify_webhook(body, headers)

    assert exc.value.code == code


def test_well_signed_malformed_json_is_refused():
    stripe_, _fake = provider({})
    body = b"{oops"
    t = int(time.time())
    v1 = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()

    with pytest.raises(WebhookRejected) as exc:
        stripe_.parse_and_verify_webhook(body, {"Stripe-Signature": f"t={t},v1={v1}"})

    assert exc.value.code == "malformed_payload"


def test_stripe_without_keys_is_not_configured(settings):
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(ProviderError) as exc:
        StripeProvider(api_key="").fetch_payment("cs_1")
    assert exc.value.code == "provider_not_configured"


@pytest.mark.django_db
def test_stripe_checkout_end_to_end_over_http(client, fan, settings, monkeypatch,
                                              django_capture_on_commit_callbacks):
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    order = pending_order(user=fan, quantity=2, price="480.00")
    paid = session_json("complete", "paid", code=order.code, intent=paid_intent())
    fake = FakeStripe({
        ("post", "/v1/checkout/sessions"): (200, session_json(code=order.code)),
        ("get", "/v1/checkout/sessions/cs_test_123"): (200, paid),
        ("post", "/v1/refunds"): (200, {"id": "re_9", "object": "refund",
                                        "status": "pending", "amount": 96000}),
    })
    monkeypatch.setattr(stripe_provider, "http_client", fake)

    start = client.post(reverse("payments:start", args=[order.code]))
    retry = client.post(reverse("payments:start", args=[order.code]))

    assert start["Location"] == retry["Location"] == paid["url"]
    assert [r["path"] for r in fake.requests] == ["/v1/checkout/sessions"]
    assert fake.requests[0]["headers"]["Idempotency-Key"] == f"order-{order.code}-checkout-1"
    assert fake.requests[0]["form"]["success_url"] == [
        f"http://testserver/pay/orders/{order.code}/return"]

    body, header = signed(event(obj=session_json("complete", "paid", code=order.code)))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/pay/webhooks/stripe", body, content_type="application/json",
                               headers={"Stripe-Signature": header})
    replay = client.post("/pay/webhooks/stripe", body, content_type="application/json",
                         headers={"Stripe-Signature": header})

    assert response.status_code == 200 and response.json()["outcome"] == "paid"
    assert replay.json()["code"] == "duplicate_event"
    assert fake.requests[1]["path"] == "/v1/checkout/sessions/cs_test_123"  # re-fetched
    assert len(fake.requests) == 2  # the replay did not even re-fetch
    order.refresh_from_db()
    payment = Payment.objects.get(order=order)
    assert order.state == Order.State.PAID
    assert order.card_fingerprint == "Xt5EWLLDS7FJjR1c"
    assert (payment.provider, payment.payment_id, payment.card_last4) == ("stripe", "pi_test_1",
                                                                          "4242")
    assert Ticket.objects.filter(order=order).count() == 2
    assert WebhookEvent.objects.get().deliveries == 2

    refund = services.refund(order=order, ticket_ids=None, actor=organizer_staff(order),
                             reason="Cancelled", now=order.paid_at)

    sent = fake.requests[-1]
    assert (sent["path"], sent["form"]["payment_intent"], sent["form"]["amount"]) == (
        "/v1/refunds", ["pi_test_1"], ["96000"])
    assert sent["headers"]["Idempotency-Key"] == refund.idempotency_key
    assert Refund.objects.get().provider_refund_id == "re_9"
    assert Payment.objects.get(order=order).amount_refunded == Decimal("960.00")
    assert Order.objects.get(pk=order.pk).state == Order.State.REFUNDED


@pytest.mark.django_db
def test_a_stripe_amount_mismatch_is_refused(client, fan, settings, monkeypatch):
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    order = pending_order(user=fan, quantity=2, price="480.00")
    fake = FakeStripe({
        ("post", "/v1/checkout/sessions"): (200, session_json(code=order.code)),
        ("get", "/v1/checkout/sessions/cs_test_123"): (200, session_json(
            "complete", "paid", amount=100, code=order.code, intent=paid_intent())),
    })
    monkeypatch.setattr(stripe_provider, "http_client", fake)
    client.post(reverse("payments:start", args=[order.code]))
    body, header = signed(event(obj=session_json("complete", "paid", code=order.code)))

    response = client.post("/pay/webhooks/stripe", body, content_type="application/json",
                           headers={"Stripe-Signature": header})

    assert response.status_code == 400 and response.json()["code"] == "amount_mismatch"
    assert Order.objects.get(pk=order.pk).state == Order.State.PENDING
    assert Payment.objects.get(order=order).review_reason == "amount_mismatch"
