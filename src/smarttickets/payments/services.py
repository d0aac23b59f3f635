"""Payment use cases: start a checkout, take in provider events, refund.

No transaction is ever open while a provider is called (DESIGN invariant 9): each function
validates, talks to the provider, then records the outcome in its own short transaction.
Booking is reached only through its contract (mark_order_paid, mark_payment_failed,
record_refund).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from smarttickets.booking import services as booking_services
from smarttickets.booking.exceptions import PaidAfterExpiry, PaymentMismatch
from smarttickets.booking.models import Order
from smarttickets.core import clock
from smarttickets.core.audit import log_action
from smarttickets.core.exceptions import DomainError, LimitReached
from smarttickets.core.money import from_minor, quantize, to_minor
from smarttickets.core.tasks import enqueue_on_commit
from smarttickets.payments import conf
from smarttickets.payments.exceptions import (
    CheckoutNotAllowed,
    ProviderError,
    RefundNotAllowed,
    WebhookRejected,
)
from smarttickets.payments.models import Payment, Refund, WebhookEvent
from smarttickets.payments.providers import get_provider
from smarttickets.payments.providers.base import (
    CheckoutRequest,
    LineItem,
    PaymentProvider,
    PaymentSnapshot,
    PaymentStatus,
    RefundStatus,
)

logger = logging.getLogger(__name__)


# --- checkout ---------------------------------------------------------------------------------


def check_checkout_allowed(*, order: Order, now: datetime) -> None:
    if order.state != Order.State.PENDING:
        raise CheckoutNotAllowed(_("This order is not awaiting payment."),
                                 code="order_not_pending")
    if order.expires_at <= now:
        raise CheckoutNotAllowed(_("The hold on these tickets has ended. Please choose your "
                                   "tickets again."), code="order_expired")


def _description(order: Order) -> str:
    performance = order.performance
    starts = formats.date_format(timezone.localtime(performance.starts_at), "Y-m-d H:i")
    return f"{performance.event.title} — {starts} ({order.code})"


def _line_items(order: Order, amount_minor: int) -> tuple[LineItem, ...]:
    grouped: dict[tuple[str, int], int] = {}
    for item in order.hold.items.select_related("zone").order_by("pk"):
        key = (item.zone.name, to_minor(item.price, order.currency))
        grouped[key] = grouped.get(key, 0) + 1
    items = tuple(LineItem(name, unit, qty) for (name, unit), qty in grouped.items())
    # A fee or discount booking adds would break the sum; one line for the total is then honest.
    if sum(i.unit_amount_minor * i.quantity for i in items) != amount_minor:
        return ()
    return items


def start_checkout(*, order: Order, return_url: str, now: datetime,
                   cancel_url: str | None = None) -> str:
    """The URL to send the buyer to for paying ``order``. Re-uses the order's open session.

    Must be called with no transaction open: it calls the provider.
    """
    check_checkout_allowed(order=order, now=now)
    open_payment = Payment.objects.filter(order=order, state=Payment.State.OPEN).first()
    if open_payment is not None:
        if open_payment.expires_at is None or open_payment.expires_at > now:
            return open_payment.redirect_url
        _close_payment(payment_id=open_payment.pk, state=Payment.State.EXPIRED,
                       decline_code="expired", now=now)
    if Payment.objects.filter(order=order, state__in=Payment.CHARGED_STATES).exists():
        raise CheckoutNotAllowed(_("This order has already been paid."), code="already_paid")
    provider = get_provider()
    amount_minor = to_minor(order.total, order.currency)
    # Deterministic per attempt: if we crash after the provider answered, the retry gets the
    # same session back instead of opening a second one.
    attempt = Payment.objects.filter(order=order).count() + 1
    request = CheckoutRequest(
        order_code=order.code, amount_minor=amount_minor, currency=order.currency,
        description=_description(order), buyer_email=order.buyer.email,
        return_url=return_url, cancel_url=cancel_url or f"{return_url}?cancelled=1",
        idempotency_key=f"order-{order.code}-checkout-{attempt}",
        expires_at=order.expires_at, line_items=_line_items(order, amount_minor))
    session = provider.create_checkout(request)
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                order=order, provider=provider.name, reference=session.reference,
                idempotency_key=request.idempotency_key, redirect_url=session.redirect_url,
                amount=order.total, currency=order.currency, expires_at=session.expires_at,
                created_at=now, updated_at=now)
            log_action(action="payment.checkout_started", obj=payment, actor=order.buyer,
                       now=now, data={"order": order.code, "provider": provider.name,
                                      "reference": session.reference,
                                      "amount_minor": amount_minor})
    except IntegrityError:
        # A concurrent start for the same order got there first; both share its session.
        existing = Payment.objects.filter(order=order, state=Payment.State.OPEN).first()
        if existing is None:
            raise
        return existing.redirect_url
    return payment.redirect_url


def _close_payment(*, payment_id: int, state: str, decline_code: str, now: datetime) -> bool:
    with transaction.atomic():
        changed = Payment.objects.filter(pk=payment_id, state=Payment.State.OPEN).update(
            state=state, decline_code=decline_code[:60], updated_at=now)
        if changed:
            log_action(action=f"payment.{state}", object_type="payments.payment",
                       object_id=payment_id, now=now, data={"decline_code": decline_code})
    return bool(changed)


# --- webhooks and re-fetch ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status: int
    body: dict[str, Any]


def receive_webhook(*, provider_name: str, body: bytes, headers: Mapping[str, str],
                    now: datetime | None = None) -> WebhookResponse:
    """The one entry point for webhooks: the HTTP endpoint and the sandbox's in-process
    delivery both come through here, so both get the same verification."""
    now = now or clock.now()
    try:
        record, duplicate = handle_webhook_event(provider_name=provider_name, body=body,
                                                 headers=headers, now=now)
    except DomainError as exc:
        if exc.status >= 500:
            logger.warning("webhook %s not processed, the provider will retry: %s",
                           provider_name, exc.code)
        else:
            logger.info("webhook %s refused: %s", provider_name, exc.code)
        return WebhookResponse(exc.status, exc.as_dict())
    if duplicate:
        # An identical redelivery (the provider did not see our answer): acknowledge it so
        # the provider stops retrying; it changes nothing.
        return WebhookResponse(200, {"code": "duplicate_event",
                                     "message": _("This event was already processed."),
                                     "event": record.event_id, "outcome": record.outcome})
    return WebhookResponse(200, {"code": "ok", "event": record.event_id,
                                 "outcome": record.outcome})


def handle_webhook_event(*, provider_name: str, body: bytes, headers: Mapping[str, str],
                         now: datetime) -> tuple[WebhookEvent, bool]:
    """Verify, de-duplicate on the event id, re-fetch the payment and apply it.

    Returns the stored event and whether it was an already-processed duplicate. Raises
    WebhookRejected (nothing changed) or a 5xx DomainError (left unprocessed for a retry).
    """
    if provider_name not in conf.PROVIDERS:
        raise WebhookRejected(_("Unknown payment provider."), code="unknown_provider",
                              status=404)
    provider = get_provider(provider_name)
    event = provider.parse_and_verify_webhook(body, headers, now=now)
    digest = hashlib.sha256(body).hexdigest()
    try:
        with transaction.atomic():
            record = WebhookEvent.objects.create(
                provider=provider_name, event_id=event.id[:200], event_type=event.raw_type[:100],
                reference=event.reference[:200], payload_hash=digest, received_at=now)
    except IntegrityError:
        record = WebhookEvent.objects.get(provider=provider_name, event_id=event.id[:200])
        if record.payload_hash != digest:
            raise WebhookRejected(_("This event id was already used for a different event."),
                                  code="event_id_conflict") from None
        WebhookEvent.objects.filter(pk=record.pk).update(deliveries=F("deliveries") + 1)
        if record.processed_at is not None:
            return record, True
    try:
        outcome = apply_provider_state(provider=provider, reference=event.reference, now=now)
    except WebhookRejected as exc:
        _finish_event(record, outcome=exc.code, now=now)
        raise
    _finish_event(record, outcome=outcome, now=now)
    return record, False


def _finish_event(record: WebhookEvent, *, outcome: str, now: datetime) -> None:
    with transaction.atomic():
        WebhookEvent.objects.filter(pk=record.pk).update(processed_at=now, outcome=outcome)
        log_action(action="payment.webhook_processed", obj=record, now=now,
                   data={"provider": record.provider, "event": record.event_id,
                         "type": record.event_type, "outcome": outcome})
    record.processed_at = now
    record.outcome = outcome


def sync_checkout(*, order: Order, now: datetime) -> Payment | None:
    """Re-fetch the order's latest open payment from its provider and apply what it says.

    The return page calls this so the buyer sees the outcome even when the webhook is late.
    """
    payment = Payment.objects.filter(order=order).order_by("-created_at", "-id").first()
    if payment is None:
        return None
    # Also retry a charge that booking has not taken yet (it was busy when the webhook came).
    unsettled = payment.state in Payment.CHARGED_STATES and order.state == Order.State.PENDING
    if payment.state != Payment.State.OPEN and not unsettled:
        return payment
    try:
        apply_provider_state(provider=get_provider(payment.provider),
                             reference=payment.reference, now=now)
    except WebhookRejected:
        pass  # already flagged and logged for a person to look at
    except ProviderError:
        logger.warning("could not re-fetch payment %s", payment.pk)
    payment.refresh_from_db()
    return payment


def apply_provider_state(*, provider: PaymentProvider, reference: str, now: datetime) -> str:
    """Fetch the session from the provider (never trusting a webhook body) and bring the
    payment and the order in line with it. Idempotent; returns a short outcome."""
    snap = provider.fetch_payment(reference)
    payment = (Payment.objects.select_related("order")
               .filter(provider=provider.name, reference=snap.reference).first())
    if payment is None:
        payment = _adopt_session(provider_name=provider.name, snap=snap, now=now)
    if snap.status == PaymentStatus.OPEN:
        return "still_open"
    if snap.status == PaymentStatus.SUCCEEDED:
        return _on_succeeded(provider=provider, payment=payment, snap=snap, now=now)
    return _on_failed(payment=payment, snap=snap, now=now)


def _adopt_session(*, provider_name: str, snap: PaymentSnapshot, now: datetime) -> Payment:
    """A session we opened but never recorded (we crashed in between): record it now."""
    order = Order.objects.filter(code=snap.order_code).first() if snap.order_code else None
    if order is None:
        raise WebhookRejected(_("This payment does not belong to any order here."),
                              code="unknown_reference")
    try:
        with transaction.atomic():
            Payment.objects.filter(order=order, state=Payment.State.OPEN).update(
                state=Payment.State.EXPIRED, updated_at=now)
            payment = Payment.objects.create(
                order=order, provider=provider_name, reference=snap.reference,
                idempotency_key=f"adopted-{snap.reference}"[:200],
                amount=from_minor(snap.amount_minor, snap.currency or order.currency),
                currency=snap.currency or order.currency, created_at=now, updated_at=now)
            log_action(action="payment.adopted", obj=payment, now=now,
                       data={"order": order.code, "reference": snap.reference})
    except IntegrityError:
        payment = Payment.objects.get(provider=provider_name, reference=snap.reference)
    return payment


def _mismatch(*, payment: Payment, snap: PaymentSnapshot, now: datetime) -> WebhookRejected:
    order = payment.order
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(review_reason="amount_mismatch",
                                                    updated_at=now)
        log_action(action="payment.amount_mismatch", obj=payment, now=now,
                   data={"order": order.code, "paid_minor": snap.amount_minor,
                         "paid_currency": snap.currency,
                         "expected_minor": to_minor(order.total, order.currency),
                         "expected_currency": order.currency})
    # The alert: ERROR reaches whoever watches the logs (and mail_admins when configured).
    logger.error("payment %s for order %s: paid %s %s but the order is %s %s; not fulfilled",
                 payment.reference, order.code, snap.amount_minor, snap.currency,
                 to_minor(order.total, order.currency), order.currency)
    return WebhookRejected(_("The paid amount does not match the order."),
                           code="amount_mismatch")


def _on_succeeded(*, provider: PaymentProvider, payment: Payment, snap: PaymentSnapshot,
                  now: datetime) -> str:
    order = payment.order
    if snap.currency.upper() != order.currency.upper() or \
            snap.amount_minor != to_minor(order.total, order.currency):
        raise _mismatch(payment=payment, snap=snap, now=now)
    duplicate = False
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.state == Payment.State.REFUNDED:
            return "already_refunded"
        if locked.state not in Payment.CHARGED_STATES:
            other = (Payment.objects.filter(order_id=locked.order_id,
                                            state__in=Payment.CHARGED_STATES)
                     .exclude(pk=locked.pk).exists())
            _copy_card(locked, snap)
            locked.updated_at = now
            if other:
                duplicate = True
                locked.review_reason = "duplicate_charge"
                locked.save()
            else:
                locked.state = Payment.State.SUCCEEDED
                locked.succeeded_at = now
                locked.save()
            log_action(action="payment.duplicate_charge" if duplicate else "payment.succeeded",
                       obj=locked, now=now,
                       data={"order": order.code, "amount_minor": snap.amount_minor,
                             "currency": snap.currency, "brand": snap.card_brand,
                             "last4": snap.card_last4})
    if duplicate:
        logger.error("order %s was charged twice (%s); refunding the second charge",
                     order.code, payment.reference)
        _auto_refund(provider=provider, payment=locked, reason="duplicate_charge", now=now)
        return "refunded_duplicate"
    try:
        booking_services.mark_order_paid(
            order_id=order.pk, provider=payment.provider, payment_reference=payment.reference,
            amount_minor=snap.amount_minor, currency=snap.currency,
            card_fingerprint=snap.card_fingerprint, now=now)
    except PaymentMismatch:
        raise _mismatch(payment=payment, snap=snap, now=now) from None
    except PaidAfterExpiry:
        _auto_refund(provider=provider, payment=locked, reason="paid_after_expiry", now=now)
        return "refunded_paid_after_expiry"
    except LimitReached:
        _auto_refund(provider=provider, payment=locked, reason="limit_reached", now=now)
        return "refunded_limit_reached"
    except DomainError as exc:
        if exc.status >= 500:
            raise  # busy: leave the event unprocessed so it is retried
        # Booking refuses this order for good, and the money must not stay with us.
        logger.warning("order %s refused a payment (%s); refunding", order.code, exc.code)
        _auto_refund(provider=provider, payment=locked, reason=exc.code, now=now)
        return f"refunded_{exc.code}"[:60]
    return "paid"


def _copy_card(payment: Payment, snap: PaymentSnapshot) -> None:
    payment.payment_id = snap.payment_id[:200]
    payment.card_brand = snap.card_brand[:20]
    payment.card_last4 = snap.card_last4[-4:]
    payment.card_fingerprint = snap.card_fingerprint[:128]


def _on_failed(*, payment: Payment, snap: PaymentSnapshot, now: datetime) -> str:
    state = Payment.State.EXPIRED if snap.status == PaymentStatus.EXPIRED else \
        Payment.State.FAILED
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.state != Payment.State.OPEN:
            return f"already_{locked.state}"
        _copy_card(locked, snap)
        locked.state = state
        locked.decline_code = (snap.decline_code or state)[:60]
        locked.updated_at = now
        locked.save()
        log_action(action=f"payment.{state}", obj=locked, now=now,
                   data={"order": payment.order.code, "decline_code": locked.decline_code,
                         "brand": snap.card_brand, "last4": snap.card_last4})
    charged = Payment.objects.filter(order_id=payment.order_id,
                                     state__in=Payment.CHARGED_STATES).exists()
    if not charged:
        booking_services.mark_payment_failed(order_id=payment.order_id,
                                             reason=locked.decline_code, now=now)
    return state


# --- refunds -----------------------------------------------------------------------------------


def _new_refund(*, payment: Payment, amount: Decimal, kind: str, reason: str, actor: Any,
                ticket_ids: list[int] | None, key: str, now: datetime) -> Refund:
    refund, created = Refund.objects.get_or_create(
        idempotency_key=key,
        defaults={"payment": payment, "amount": amount, "currency": payment.currency,
                  "kind": kind, "reason": reason[:500], "ticket_ids": ticket_ids,
                  "actor": actor if getattr(actor, "is_authenticated", False) else None,
                  "created_at": now})
    if created:
        log_action(action="refund.requested", obj=refund, actor=actor, now=now,
                   data={"payment": payment.reference, "amount": str(amount),
                         "currency": payment.currency, "kind": kind, "reason": reason,
                         "tickets": ticket_ids})
    return refund


def _refund_at_provider(*, provider: PaymentProvider, refund: Refund, now: datetime) -> None:
    """Call the provider (no transaction open) and record the answer."""
    payment = refund.payment
    try:
        result = provider.refund(reference=payment.payment_id or payment.reference,
                                 amount_minor=to_minor(refund.amount, refund.currency),
                                 idempotency_key=refund.idempotency_key, reason=refund.reason)
    except ProviderError as exc:
        _fail_refund(refund=refund, code=exc.code, now=now)
        raise
    if result.status == RefundStatus.FAILED:
        _fail_refund(refund=refund, code="provider_refund_failed", now=now)
        raise ProviderError(_("The payment provider could not refund this payment."),
                            code="provider_refund_failed")
    with transaction.atomic():
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if locked.state == Refund.State.SUCCEEDED:
            return
        # A pending provider refund is accepted money movement; it settles on their side.
        locked.state = Refund.State.SUCCEEDED
        locked.provider_refund_id = result.id[:200]
        locked.completed_at = now
        locked.save(update_fields=["state", "provider_refund_id", "completed_at"])
        p = Payment.objects.select_for_update().get(pk=payment.pk)
        p.amount_refunded = quantize(p.amount_refunded + locked.amount, p.currency)
        p.state = (Payment.State.REFUNDED if p.amount_refunded >= p.amount
                   else Payment.State.PARTIALLY_REFUNDED)
        p.updated_at = now
        p.save(update_fields=["amount_refunded", "state", "updated_at"])
        log_action(action="refund.succeeded", obj=locked, actor=locked.actor, now=now,
                   data={"payment": p.reference, "amount": str(locked.amount),
                         "provider_refund_id": result.id, "provider_status": result.status})
        refund.state, refund.provider_refund_id = locked.state, locked.provider_refund_id
        refund.completed_at = now
        from smarttickets.payments.tasks import send_refund_notice

        enqueue_on_commit(send_refund_notice, refund.pk)


def _fail_refund(*, refund: Refund, code: str, now: datetime) -> None:
    with transaction.atomic():
        Refund.objects.filter(pk=refund.pk, state=Refund.State.PENDING).update(
            state=Refund.State.FAILED, failure_code=code[:60], completed_at=now)
        log_action(action="refund.failed", obj=refund, now=now, data={"code": code})
    refund.state = Refund.State.FAILED
    refund.failure_code = code[:60]


def _auto_refund(*, provider: PaymentProvider, payment: Payment, reason: str,
                 now: datetime) -> Refund:
    """Give back everything of a payment booking could not honour (or a second charge)."""
    refund = _new_refund(payment=payment, amount=payment.amount - payment.amount_refunded,
                         kind=Refund.Kind.AUTOMATIC, reason=reason, actor=None, ticket_ids=None,
                         key=f"auto-{payment.provider}-{payment.reference}"[:200], now=now)
    if refund.state != Refund.State.SUCCEEDED:
        _refund_at_provider(provider=provider, refund=refund, now=now)
    return refund


def refund(*, order: Order, ticket_ids: list[int] | None, actor: Any, reason: str,
           now: datetime) -> Refund:
    """Refund a paid order in full (``ticket_ids=None``) or the chosen tickets.

    The provider refunds first, with no transaction open; then booking cancels the tickets
    and gives their units back (record_refund).
    """
    reason = (reason or "").strip()
    if not reason:
        raise RefundNotAllowed(_("Please give a reason for the refund."), code="reason_required",
                               status=400, fields={"reason": [_("This field is required.")]})
    payment = Payment.objects.filter(order=order, state__in=Payment.CHARGED_STATES).first()
    if order.state != Order.State.PAID or payment is None:
        raise RefundNotAllowed(_("Only a paid order can be refunded."), code="order_not_paid")
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        earlier = list(locked.refunds.exclude(state=Refund.State.FAILED))
        if any(r.state == Refund.State.PENDING for r in earlier):
            raise RefundNotAllowed(_("Another refund of this order is in progress. Please "
                                     "try again in a moment."), code="refund_in_progress")
        # Read under the payment lock, and minus what earlier refunds paid back, so two
        # organizers refunding the same ticket at once cannot both pay it out.
        refunded = {pk for r in earlier for pk in (r.ticket_ids or [])}
        valid = {t.pk: t for t in order.tickets.filter(state="valid").exclude(pk__in=refunded)}
        if ticket_ids is None:
            amount = locked.refundable
        else:
            wanted = sorted(set(ticket_ids))
            unknown = [pk for pk in wanted if pk not in valid]
            if not wanted or unknown:
                raise RefundNotAllowed(
                    _("These tickets cannot be refunded: %(ids)s.")
                    % {"ids": ", ".join(map(str, unknown)) or "—"},
                    code="tickets_not_refundable", status=400)
            ticket_ids = wanted
            amount = quantize(sum((valid[pk].price for pk in wanted), Decimal("0")),
                              locked.currency)
            if len(wanted) == len(valid):
                # The last tickets take whatever is left, so rounding never strands a cent.
                amount = locked.refundable
        if amount <= 0 or amount > locked.refundable:
            raise RefundNotAllowed(_("There is nothing left to refund on this order."),
                                   code="nothing_to_refund")
        pending = _new_refund(payment=locked, amount=amount, kind=Refund.Kind.ORGANIZER,
                              reason=reason, actor=actor, ticket_ids=ticket_ids,
                              key=f"refund-{order.code}-{secrets.token_hex(8)}", now=now)
    _refund_at_provider(provider=get_provider(payment.provider), refund=pending, now=now)
    try:
        booking_services.record_refund(order_id=order.pk, ticket_ids=ticket_ids, actor=actor,
                                       reason=reason, now=now)
    except DomainError as exc:
        # The money is back with the buyer already; a person has to finish the tickets.
        Refund.objects.filter(pk=pending.pk).update(failure_code=f"booking_{exc.code}"[:60])
        logger.error("refund %s: provider refunded but booking refused: %s", pending.pk,
                     exc.code)
        raise
    return pending
