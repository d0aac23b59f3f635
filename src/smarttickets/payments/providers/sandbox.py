"""The embedded sandbox provider: hosted card page, 3-D Secure-style challenge, signed webhooks.

It behaves like an outside payment service that happens to run in-process: sessions live in
its own tables, the card number is reduced to brand, last four and a keyed fingerprint the
moment it arrives, and outcomes reach us only through signed webhooks and re-fetches.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _

from smarttickets.core import clock
from smarttickets.core.audit import log_action
from smarttickets.payments import conf
from smarttickets.payments.exceptions import ProviderError, WebhookRejected
from smarttickets.payments.models import SandboxEvent, SandboxRefund, SandboxSession
from smarttickets.payments.providers import cards, signing
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

DEFAULT_SESSION_LIFETIME = timedelta(minutes=30)
CHALLENGE_DIGITS = 6


def _public_id(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')}"


def effective_state(session: SandboxSession, now: datetime) -> str:
    if session.state in (SandboxSession.State.OPEN, SandboxSession.State.CHALLENGE) \
            and now >= session.expires_at:
        return SandboxSession.State.EXPIRED
    return session.state


def event_body(event: SandboxEvent) -> bytes:
    """The exact bytes delivered for an event; identical on every retry."""
    return json.dumps(event.payload, sort_keys=True, separators=(",", ":")).encode()


class SandboxProvider(PaymentProvider):
    name = "sandbox"

    def create_checkout(self, request: CheckoutRequest) -> ProviderSession:
        now = clock.now()
        items = request.items()
        session = SandboxSession.objects.filter(idempotency_key=request.idempotency_key).first()
        if session is None:
            try:
                with transaction.atomic():
                    session = SandboxSession.objects.create(
                        public_id=_public_id("cs"),
                        idempotency_key=request.idempotency_key,
                        order_code=request.order_code,
                        description=request.description[:300],
                        buyer_email=request.buyer_email,
                        amount_minor=request.amount_minor,
                        currency=request.currency.upper(),
                        line_items=[{"name": i.name, "unit_amount_minor": i.unit_amount_minor,
                                     "quantity": i.quantity} for i in items],
                        return_url=request.return_url,
                        cancel_url=request.cancel_url,
                        created_at=now,
                        expires_at=request.expires_at or now + DEFAULT_SESSION_LIFETIME,
                    )
            except IntegrityError:
                session = SandboxSession.objects.get(idempotency_key=request.idempotency_key)
        if (session.amount_minor, session.currency, session.order_code) != (
                request.amount_minor, request.currency.upper(), request.order_code):
            # What real providers do: a key replayed with different parameters is an error.
            raise ProviderError(_("The payment provider refused a reused idempotency key."),
                                code="idempotency_key_in_use", status=409)
        return ProviderSession(reference=session.public_id,
                               redirect_url=reverse("payments:sandbox_checkout",
                                                    args=[session.public_id]),
                               expires_at=session.expires_at)

    def fetch_payment(self, reference: str) -> PaymentSnapshot:
        session = (SandboxSession.objects.filter(public_id=reference).first()
                   or SandboxSession.objects.filter(payment_id=reference).first())
        if session is None:
            raise ProviderError(_("The payment provider does not know this payment."),
                                code="provider_unknown_reference", status=404)
        return snapshot(session, clock.now())

    def refund(self, *, reference: str, amount_minor: int, idempotency_key: str,
               reason: str = "") -> RefundResult:
        with transaction.atomic():
            existing = SandboxRefund.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return RefundResult(existing.public_id, RefundStatus.SUCCEEDED,
                                    existing.amount_minor)
            session = (SandboxSession.objects.select_for_update()
                       .filter(Q(public_id=reference) | Q(payment_id=reference)).first())
            if session is None or session.state != SandboxSession.State.SUCCEEDED:
                raise ProviderError(_("The payment provider cannot refund this payment."),
                                    code="provider_refund_refused", status=409)
            if amount_minor <= 0 or \
                    session.amount_refunded_minor + amount_minor > session.amount_minor:
                raise ProviderError(_("The refund is larger than what is left of the payment."),
                                    code="provider_refund_refused", status=409)
            refund = SandboxRefund.objects.create(public_id=_public_id("re"), session=session,
                                                  amount_minor=amount_minor,
                                                  idempotency_key=idempotency_key,
                                                  created_at=clock.now())
            session.amount_refunded_minor += amount_minor
            session.save(update_fields=["amount_refunded_minor"])
            log_action(action="sandbox.refund", obj=refund,
                       data={"session": session.public_id, "amount_minor": amount_minor,
                             "reason": reason})
        return RefundResult(refund.public_id, RefundStatus.SUCCEEDED, amount_minor)

    def parse_and_verify_webhook(self, body: bytes, headers: Mapping[str, str], *,
                                 now: datetime | None = None) -> ProviderEvent:
        moment = now or clock.now()
        try:
            signing.verify(body, headers.get(signing.HEADER), conf.sandbox_webhook_secret(),
                           now=int(moment.timestamp()),
                           tolerance=conf.webhook_tolerance_seconds())
        except signing.SignatureError as exc:
            raise WebhookRejected(_signature_message(exc.code), code=exc.code) from exc
        try:
            data = json.loads(body)
            event_id = str(data["id"])
            raw_type = str(data["type"])
            obj = data["data"]
            reference = str(obj["session"])
            amount = obj.get("amount_minor")
            card = obj.get("card") or {}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookRejected(_("The webhook body is not a valid event."),
                                  code="malformed_payload") from exc
        try:
            event_type = EventType(raw_type)
        except ValueError as exc:
            raise WebhookRejected(_("This webhook event type is not handled."),
                                  code="unknown_event_type") from exc
        if not event_id or not reference or (amount is not None and not isinstance(amount, int)):
            raise WebhookRejected(_("The webhook body is not a valid event."),
                                  code="malformed_payload")
        return ProviderEvent(id=event_id, type=event_type, raw_type=raw_type,
                             reference=reference, amount_minor=amount,
                             currency=str(obj.get("currency", "")),
                             order_code=str(obj.get("order_code", "")),
                             card_fingerprint=str(card.get("fingerprint", "")),
                             card_last4=str(card.get("last4", "")),
                             decline_code=str(obj.get("decline_code", "")))


def _signature_message(code: str) -> str:
    return {
        "missing_signature": _("The webhook signature header is missing."),
        "stale_timestamp": _("The webhook signature is too old or from the future."),
    }.get(code, _("The webhook signature does not match."))


def snapshot(session: SandboxSession, now: datetime) -> PaymentSnapshot:
    state = effective_state(session, now)
    status = {
        SandboxSession.State.SUCCEEDED: PaymentStatus.SUCCEEDED,
        SandboxSession.State.FAILED: PaymentStatus.FAILED,
        SandboxSession.State.EXPIRED: PaymentStatus.EXPIRED,
    }.get(state, PaymentStatus.OPEN)
    return PaymentSnapshot(reference=session.public_id, status=status,
                           amount_minor=session.amount_minor, currency=session.currency,
                           order_code=session.order_code, payment_id=session.payment_id or "",
                           card_brand=session.card_brand, card_last4=session.card_last4,
                           card_fingerprint=session.card_fingerprint,
                           decline_code=session.decline_code or (
                               "expired" if status == PaymentStatus.EXPIRED else ""),
                           amount_refunded_minor=session.amount_refunded_minor)


# --- the hosted page's side --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardInput:
    """What the hosted page collected. Lives only for the request; never stored."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    name: str


class SessionClosed(Exception):
    """The session can no longer take a card (paid, failed or expired)."""


def get_open_session(*, public_id: str, now: datetime, for_update: bool = False
                     ) -> SandboxSession:
    queryset = SandboxSession.objects.filter(public_id=public_id)
    if for_update:
        queryset = queryset.select_for_update()
    session = queryset.get()
    if effective_state(session, now) not in (SandboxSession.State.OPEN,
                                              SandboxSession.State.CHALLENGE):
        raise SessionClosed(session.state)
    return session


def pay(*, public_id: str, card: CardInput, now: datetime) -> SandboxSession:
    """Charge the card for the session: succeed, decline, or ask for a one-time code."""
    behaviour = cards.behaviour(card.number)
    with transaction.atomic():
        session = get_open_session(public_id=public_id, now=now, for_update=True)
        if session.state != SandboxSession.State.OPEN:
            raise SessionClosed(session.state)
        session.card_brand = cards.brand(card.number)
        session.card_last4 = card.number[-4:]
        session.card_fingerprint = cards.fingerprint(card.number,
                                                     conf.sandbox_fingerprint_secret())
        session.cardholder_name = card.name[:200]
        fields = ["card_brand", "card_last4", "card_fingerprint", "cardholder_name"]
        if behaviour.outcome == cards.Outcome.CHALLENGE:
            session.state = SandboxSession.State.CHALLENGE
            session.challenge_code = "".join(secrets.choice("0123456789")
                                             for _ in range(CHALLENGE_DIGITS))
            session.save(update_fields=[*fields, "state", "challenge_code"])
            log_action(action="sandbox.challenge", obj=session, now=now,
                       data={"brand": session.card_brand, "last4": session.card_last4})
            return session
        session.save(update_fields=fields)
        return _complete(session, succeeded=behaviour.outcome == cards.Outcome.SUCCEED,
                         decline_code=behaviour.decline_code, now=now)


def answer_challenge(*, public_id: str, code: str, now: datetime) -> SandboxSession:
    """A right code completes the payment; a wrong one fails it, as a bank would."""
    with transaction.atomic():
        session = get_open_session(public_id=public_id, now=now, for_update=True)
        if session.state != SandboxSession.State.CHALLENGE:
            raise SessionClosed(session.state)
        ok = secrets.compare_digest(code.strip(), session.challenge_code)
        return _complete(session, succeeded=ok,
                         decline_code="" if ok else "authentication_failed", now=now)


def _complete(session: SandboxSession, *, succeeded: bool, decline_code: str,
              now: datetime) -> SandboxSession:
    """Must be called in a transaction holding the session row."""
    from smarttickets.core.tasks import enqueue_on_commit
    from smarttickets.payments.tasks import deliver_sandbox_event

    session.state = SandboxSession.State.SUCCEEDED if succeeded else SandboxSession.State.FAILED
    session.decline_code = decline_code
    session.completed_at = now
    session.challenge_code = ""
    if succeeded:
        session.payment_id = _public_id("pi")
    session.save(update_fields=["state", "decline_code", "completed_at", "challenge_code",
                                "payment_id"])
    event = SandboxEvent.objects.create(
        public_id=_public_id("evt"), session=session, created_at=now,
        type=EventType.PAYMENT_SUCCEEDED if succeeded else EventType.PAYMENT_FAILED,
        payload={})
    event.payload = {
        "id": event.public_id,
        "type": event.type,
        "created": int(now.timestamp()),
        "data": {
            "session": session.public_id,
            "payment": session.payment_id or "",
            "order_code": session.order_code,
            "amount_minor": session.amount_minor,
            "currency": session.currency,
            "card": {"brand": session.card_brand, "last4": session.card_last4,
                     "fingerprint": session.card_fingerprint},
            "decline_code": decline_code,
        },
    }
    event.save(update_fields=["payload"])
    log_action(action=f"sandbox.{event.type}", obj=session, now=now,
               data={"brand": session.card_brand, "last4": session.card_last4,
                     "decline_code": decline_code})
    enqueue_on_commit(deliver_sandbox_event, event.public_id)
    return session


def signed_delivery(event: SandboxEvent, now: datetime) -> tuple[bytes, dict[str, str]]:
    body = event_body(event)
    header = signing.sign(body, conf.sandbox_webhook_secret(), int(now.timestamp()))
    return body, {signing.HEADER: header, "Content-Type": "application/json"}
