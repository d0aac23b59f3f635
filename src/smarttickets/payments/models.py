"""Payments, refunds and received webhooks; plus the sandbox provider's own records."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from smarttickets.booking.models import Order


class Payment(models.Model):
    """One checkout session at a provider for one order.

    An order has at most one open session (a retried start reuses it) and at most one payment
    that took money and kept it; both are database constraints, not just code paths.
    """

    class State(models.TextChoices):
        OPEN = "open", _("Awaiting payment")
        SUCCEEDED = "succeeded", _("Paid")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
        REFUNDED = "refunded", _("Refunded")

    CHARGED_STATES = (State.SUCCEEDED, State.PARTIALLY_REFUNDED)

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(_("provider"), max_length=30)
    reference = models.CharField(_("provider reference"), max_length=200)
    payment_id = models.CharField(_("provider payment id"), max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200)
    redirect_url = models.CharField(max_length=2000, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    amount_refunded = models.DecimalField(_("amount refunded"), max_digits=12,
                                          decimal_places=2, default=Decimal("0"))
    state = models.CharField(_("state"), max_length=20, choices=State.choices,
                             default=State.OPEN)
    card_brand = models.CharField(_("card brand"), max_length=20, blank=True)
    card_last4 = models.CharField(_("card last four"), max_length=4, blank=True)
    card_fingerprint = models.CharField(_("card fingerprint"), max_length=128, blank=True)
    decline_code = models.CharField(_("decline code"), max_length=60, blank=True)
    # Set when something needs a person: an amount mismatch, a duplicate charge.
    review_reason = models.CharField(max_length=60, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("payment")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "reference"],
                                    name="payment_unique_provider_reference"),
            models.UniqueConstraint(fields=["order"], condition=Q(state="open"),
                                    name="payment_one_open_per_order"),
            models.UniqueConstraint(fields=["order"],
                                    condition=Q(state__in=["succeeded", "partially_refunded"]),
                                    name="payment_one_charge_per_order"),
            models.CheckConstraint(condition=Q(amount_refunded__gte=0)
                                   & Q(amount_refunded__lte=models.F("amount")),
                                   name="payment_refund_within_amount"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.reference}"

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.amount_refunded


class Refund(models.Model):
    """Money given back for a payment: all of it, or the price of chosen tickets."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Failed")

    class Kind(models.TextChoices):
        ORGANIZER = "organizer", _("By the organizer")
        AUTOMATIC = "automatic", _("Automatic")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ORGANIZER)
    state = models.CharField(_("state"), max_length=10, choices=State.choices,
                             default=State.PENDING)
    reason = models.CharField(_("reason"), max_length=500)
    # None means the whole order; otherwise the ids of the tickets given back.
    ticket_ids = models.JSONField(null=True, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    idempotency_key = models.CharField(max_length=200, unique=True)
    provider_refund_id = models.CharField(max_length=200, blank=True)
    failure_code = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0),
                                              name="refund_amount_positive")]

    def __str__(self) -> str:
        return f"refund {self.pk} of {self.payment}"


class WebhookEvent(models.Model):
    """A provider event we received. The unique (provider, event id) makes replays no-ops."""

    provider = models.CharField(max_length=30)
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=100)
    reference = models.CharField(max_length=200, blank=True)
    payload_hash = models.CharField(max_length=64)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=60, blank=True)
    deliveries = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = _("webhook event")
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"],
                                               name="webhookevent_unique_event")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} {self.event_type}"


# The sandbox provider's side. In production these would live at the payment service; here
# they let the embedded default behave like one (sessions, refunds, signed outgoing events).
# They never hold a card number: only brand, last four and a keyed fingerprint.


class SandboxSession(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Open")
        CHALLENGE = "challenge", _("Awaiting verification")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    public_id = models.CharField(max_length=64, unique=True)
    payment_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    order_code = models.CharField(max_length=32)
    description = models.CharField(max_length=300)
    buyer_email = models.EmailField(blank=True)
    amount_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    line_items = models.JSONField(default=list, blank=True)
    return_url = models.CharField(max_length=2000)
    cancel_url = models.CharField(max_length=2000)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_fingerprint = models.CharField(max_length=64, blank=True)
    cardholder_name = models.CharField(max_length=200, blank=True)
    decline_code = models.CharField(max_length=60, blank=True)
    challenge_code = models.CharField(max_length=6, blank=True)
    amount_refunded_minor = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("sandbox checkout session")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.public_id


class SandboxRefund(models.Model):
    public_id = models.CharField(max_length=64, unique=True)
    session = models.ForeignKey(SandboxSession, on_delete=models.CASCADE, related_name="refunds")
    amount_minor = models.PositiveBigIntegerField()
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("sandbox refund")

    def __str__(self) -> str:
        return self.public_id


class SandboxEvent(models.Model):
    """An outgoing sandbox webhook: stored once, signed afresh on every delivery attempt."""

    public_id = models.CharField(max_length=64, unique=True)
    session = models.ForeignKey(SandboxSession, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=60)
    payload = models.JSONField()
    created_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("sandbox webhook event")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"
