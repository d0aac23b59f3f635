"""Stripe Checkout through the official library: sessions, re-fetch, refunds, signed webhooks.

Configured by STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET. Every POST carries our idempotency
key, so a retried call can never open a second session or refund twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from django.utils.translation import gettext as _

from smarttickets.core import clock
from smarttickets.payments import conf
from smarttickets.payments.exceptions import ProviderError, WebhookRejected
from smarttickets.payments.providers.base import (
    CheckoutRequest,
    EventType,
    PaymentProvider,
    PaymentSnapshot,
    PaymentStatus,
    ProviderEvent,
    ProviderSession,
    RefundResult,
    RefundStatus,
)

SIGNATURE_HEADER = "Stripe-Signature"
# Stripe accepts a session expiry between 30 minutes and 24 hours from now. A hold usually ends
# sooner; a payment after the hold is then refunded automatically (PaidAfterExpiry).
MIN_EXPIRY = timedelta(minutes=31)
MAX_EXPIRY = timedelta(hours=23)
EVENT_TYPES = {
    "checkout.session.completed": EventType.PAYMENT_SUCCEEDED,
    "checkout.session.async_payment_succeeded": EventType.PAYMENT_SUCCEEDED,
    "checkout.session.async_payment_failed": EventType.PAYMENT_FAILED,
    "checkout.session.expired": EventType.PAYMENT_FAILED,
}
SESSION_EXPAND = ["payment_intent.payment_method", "payment_intent.latest_charge"]

# Tests put a fake stripe.HTTPClient here; None means the library's default client.
http_client: stripe.HTTPClient | None = None


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


class StripeProvider(PaymentProvider):
    name = "stripe"

    def __init__(self, *, api_key: str | None = None, webhook_secret: str | None = None,
                 client: stripe.HTTPClient | None = None) -> None:
        self.api_key = api_key if api_key is not None else conf.stripe_secret_key()
        self.webhook_secret = (webhook_secret if webhook_secret is not None
                               else conf.stripe_webhook_secret())
        self._http_client = client or http_client

    @property
    def client(self) -> stripe.StripeClient:
        if not self.api_key:
            raise ProviderError(_("Card payments are not configured."),
                                code="provider_not_configured", status=503)
        return stripe.StripeClient(self.api_key, http_client=self._http_client,
                                   max_network_retries=2)

    def _call(self, func, *args: Any) -> dict[str, Any]:
        try:
            return func(*args).to_dict()
        except stripe.StripeError as exc:
            raise ProviderError(code=f"stripe_{exc.code or 'error'}"
                                if isinstance(exc, stripe.CardError) else "provider_error",
                                status=502) from exc

    def create_checkout(self, request: CheckoutRequest) -> ProviderSession:
        now = clock.now()
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": request.order_code,
            "success_url": request.return_url,
            "cancel_url": request.cancel_url,
            "line_items": [
                {"quantity": item.quantity,
                 "price_data": {"currency": request.currency.lower(),
                                "unit_amount": item.unit_amount_minor,
                                "product_data": {"name": item.name}}}
                for item in request.items()
            ],
            "metadata": {"order_code": request.order_code},
            "payment_intent_data": {"description": request.description,
                                    "metadata": {"order_code": request.order_code}},
        }
        if request.buyer_email:
            params["customer_email"] = request.buyer_email
        if request.expires_at is not None:
            expires = min(max(request.expires_at, now + MIN_EXPIRY), now + MAX_EXPIRY)
            params["expires_at"] = int(expires.timestamp())
        session = self._call(self.client.v1.checkout.sessions.create, params,
                             {"idempotency_key": request.idempotency_key})
        expires_at = session.get("expires_at")
        return ProviderSession(
            reference=session["id"], redirect_url=session["url"],
            expires_at=datetime.fromtimestamp(expires_at, UTC) if expires_at else None)

    def fetch_payment(self, reference: str) -> PaymentSnapshot:
        session = self._call(self.client.v1.checkout.sessions.retrieve, reference,
                             {"expand": SESSION_EXPAND})
        intent = session.get("payment_intent")
        intent = intent if isinstance(intent, dict) else {}
        charge = intent.get("latest_charge")
        charge = charge if isinstance(charge, dict) else {}
        card = (_dig(intent, "payment_method", "card")
                or _dig(charge, "payment_method_details", "card") or {})
        error = intent.get("last_payment_error") or {}
        if session.get("status") == "complete" and session.get("payment_status") in (
                "paid", "no_payment_required"):
            status = PaymentStatus.SUCCEEDED
        elif session.get("status") == "expired":
            status = PaymentStatus.EXPIRED
        elif intent.get("status") == "canceled" or (
                session.get("status") == "complete" and error):
            status = PaymentStatus.FAILED
        else:
            status = PaymentStatus.OPEN
        return PaymentSnapshot(
            reference=session["id"], status=status,
            amount_minor=int(session.get("amount_total") or 0),
            currency=str(session.get("currency") or "").upper(),
            order_code=str(session.get("client_reference_id") or ""),
            payment_id=str(intent.get("id") or ""),
            card_brand=str(card.get("brand") or ""),
            card_last4=str(card.get("last4") or ""),
            card_fingerprint=str(card.get("fingerprint") or ""),
            decline_code=str(error.get("decline_code") or error.get("code")
                             or ("expired" if status == PaymentStatus.EXPIRED else "")),
            amount_refunded_minor=int(charge.get("amount_refunded") or 0),
        )

    def refund(self, *, reference: str, amount_minor: int, idempotency_key: str,
               reason: str = "") -> RefundResult:
        payment_intent = reference
        if reference.startswith("cs_"):
            payment_intent = self.fetch_payment(reference).payment_id
            if not payment_intent:
                raise ProviderError(_("The payment provider cannot refund this payment."),
                                    code="provider_refund_refused", status=409)
        refund = self._call(
            self.client.v1.refunds.create,
            {"payment_intent": payment_intent, "amount": amount_minor,
             "reason": "requested_by_customer", "metadata": {"reason": reason[:400]}},
            {"idempotency_key": idempotency_key})
        status = {"succeeded": RefundStatus.SUCCEEDED, "pending": RefundStatus.PENDING,
                  "requires_action": RefundStatus.PENDING}.get(refund.get("status"),
                                                               RefundStatus.FAILED)
        return RefundResult(refund["id"], status, int(refund.get("amount") or amount_minor))

    def parse_and_verify_webhook(self, body: bytes, headers: Mapping[str, str], *,
                                 now: datetime | None = None) -> ProviderEvent:
        if not self.webhook_secret:
            raise ProviderError(_("Card payments are not configured."),
                                code="provider_not_configured", status=503)
        header = headers.get(SIGNATURE_HEADER)
        if not header:
            raise WebhookRejected(_("The webhook signature header is missing."),
                                  code="missing_signature")
        try:
            event = stripe.Webhook.construct_event(body, header, self.webhook_secret,
                                                   tolerance=conf.webhook_tolerance_seconds())
        except stripe.SignatureVerificationError as exc:
            if "tolerance" in str(exc):
                raise WebhookRejected(_("The webhook signature is too old or from the future."),
                                      code="stale_timestamp") from exc
            raise WebhookRejected(_("The webhook signature does not match."),
                                  code="invalid_signature") from exc
        except ValueError as exc:  # also UnicodeDecodeError and JSONDecodeError
            raise WebhookRejected(_("The webhook body is not a valid event."),
                                  code="malformed_payload") from exc
        data = event.to_dict()
        raw_type = str(data.get("type") or "")
        if raw_type not in EVENT_TYPES:
            raise WebhookRejected(_("This webhook event type is not handled."),
                                  code="unknown_event_type")
        obj = _dig(data, "data", "object")
        if not isinstance(obj, dict) or not obj.get("id") or not data.get("id"):
            raise WebhookRejected(_("The webhook body is not a valid event."),
                                  code="malformed_payload")
        return ProviderEvent(id=str(data["id"]), type=EVENT_TYPES[raw_type], raw_type=raw_type,
                             reference=str(obj["id"]),
                             amount_minor=obj.get("amount_total"),
                             currency=str(obj.get("currency") or "").upper(),
                             order_code=str(obj.get("client_reference_id") or ""),
                             extra={"livemode": bool(data.get("livemode"))})
