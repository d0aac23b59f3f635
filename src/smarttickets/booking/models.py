"""Inventory counters, holds, seat claims, orders, entitlements and purchase-limit records."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

# The idempotency table belongs to core; importing it here registers it with the app registry
# until core/models.py imports it itself.
from smarttickets.core.idempotency import IdempotencyKey  # noqa: F401
from smarttickets.events.models import Performance, PriceZone, Seat


class InventoryBucket(models.Model):
    """One shard of the inventory of a performance × price zone.

    A zone's capacity is split over a few shard rows so that concurrent buyers of one zone do
    not all queue on one row lock. ``taken`` counts live holds + sold tickets + open
    entitlements, and changes only by a conditional UPDATE (see services.take_units).
    """

    performance = models.ForeignKey(Performance, on_delete=models.CASCADE, related_name="+")
    zone = models.ForeignKey(PriceZone, on_delete=models.CASCADE, related_name="+")
    shard = models.PositiveSmallIntegerField(default=0)
    capacity = models.PositiveIntegerField()
    taken = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("inventory bucket")
        ordering = ["performance_id", "zone_id", "shard"]
        constraints = [
            models.UniqueConstraint(fields=["performance", "zone", "shard"],
                                    name="bucket_unique_shard"),
            # The database itself refuses an oversell, whatever the code above it does.
            models.CheckConstraint(condition=Q(taken__lte=F("capacity")) & Q(taken__gte=0),
                                   name="bucket_taken_within_capacity"),
        ]

    def __str__(self) -> str:
        return f"{self.performance_id}/{self.zone_id}#{self.shard}: {self.taken}/{self.capacity}"


class Entitlement(models.Model):
    """A right to buy ``quantity`` tickets in a zone (a lottery win or a queue admission).

    Its units are reserved in the inventory counters while it is open.
    """

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        USED = "used", _("Used")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="entitlements")
    performance = models.ForeignKey(Performance, on_delete=models.CASCADE, related_name="+")
    zone = models.ForeignKey(PriceZone, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveSmallIntegerField()
    expires_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    source = models.CharField(max_length=100, help_text=_("What granted it, e.g. lottery:42"))
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("entitlement")
        indexes = [models.Index(fields=["performance", "state"]),
                   models.Index(fields=["user", "performance", "state"])]

    def __str__(self) -> str:
        return f"{self.user_id} × {self.quantity} ({self.state})"


class Hold(models.Model):
    """Units taken for one buyer until ``expires_at``; a row, so it survives restarts."""

    class State(models.TextChoices):
        LIVE = "live", _("Held")
        PURCHASED = "purchased", _("Purchased")
        RELEASED = "released", _("Released")
        EXPIRED = "expired", _("Expired")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="holds")
    performance = models.ForeignKey(Performance, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.LIVE)
    quantity = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=100, blank=True)
    entitlement = models.ForeignKey(Entitlement, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="holds")
    ip = models.GenericIPAddressField(null=True, blank=True)
    device_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("hold")
        indexes = [models.Index(fields=["performance", "state", "expires_at"]),
                   models.Index(fields=["user", "performance", "state"]),
                   models.Index(fields=["state", "expires_at"])]

    def __str__(self) -> str:
        return f"hold {self.pk} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state == self.State.LIVE


class HoldItem(models.Model):
    """One unit of a hold: a seat, or one general-admission place; later one ticket."""

    hold = models.ForeignKey(Hold, on_delete=models.CASCADE, related_name="items")
    zone = models.ForeignKey(PriceZone, on_delete=models.PROTECT, related_name="+")
    seat = models.ForeignKey(Seat, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="+")
    price = models.DecimalField(max_digits=10, decimal_places=2)
    holder_name = models.CharField(_("ticket holder"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("hold item")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.hold_id}: {self.seat_id or 'GA'}"


class SeatClaim(models.Model):
    """The claim on a reserved seat. Inserting it is the claim: the unique constraint makes a
    seat belong to at most one live hold or issued ticket, with no check-then-act."""

    performance = models.ForeignKey(Performance, on_delete=models.CASCADE, related_name="+")
    seat = models.ForeignKey(Seat, on_delete=models.CASCADE, related_name="+")
    hold = models.ForeignKey(Hold, on_delete=models.CASCADE, related_name="seat_claims")

    class Meta:
        verbose_name = _("seat claim")
        constraints = [models.UniqueConstraint(fields=["performance", "seat"],
                                               name="seatclaim_unique_seat")]

    def __str__(self) -> str:
        return f"{self.performance_id}/{self.seat_id} → hold {self.hold_id}"


class Order(models.Model):
    """What a buyer pays for: the units of one hold."""

    class State(models.TextChoices):
        PENDING = "pending", _("Awaiting payment")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")
        EXPIRED = "expired", _("Expired")

    code = models.CharField(max_length=16, unique=True)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="orders")
    performance = models.ForeignKey(Performance, on_delete=models.PROTECT, related_name="+")
    hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="order")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    payment_provider = models.CharField(max_length=30, blank=True)
    payment_reference = models.CharField(max_length=200, blank=True)
    paid_amount_minor = models.BigIntegerField(null=True, blank=True)
    card_fingerprint = models.CharField(max_length=128, blank=True)

    class Meta:
        verbose_name = _("order")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["performance", "state"]),
                   models.Index(fields=["buyer", "created_at"]),
                   models.Index(fields=["performance", "card_fingerprint"])]

    def __str__(self) -> str:
        return self.code


class CardUsage(models.Model):
    """A lock row per (performance, card fingerprint): serialises the card limit check."""

    performance = models.ForeignKey(Performance, on_delete=models.CASCADE, related_name="+")
    card_fingerprint = models.CharField(max_length=128)

    class Meta:
        verbose_name = _("card usage")
        constraints = [models.UniqueConstraint(fields=["performance", "card_fingerprint"],
                                               name="cardusage_unique")]

    def __str__(self) -> str:
        return f"{self.performance_id}/{self.card_fingerprint[:8]}"


class LimitHit(models.Model):
    """A purchase limit refused a request; kept for organizers and the risk model."""

    class Limit(models.TextChoices):
        PER_PERSON = "per_person", _("Tickets per person")
        CARD = "card", _("Tickets per payment card")
        IP = "ip", _("Requests per network address")
        DEVICE = "device", _("Requests per device")

    created_at = models.DateTimeField(db_index=True)
    limit = models.CharField(max_length=12, choices=Limit.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    performance = models.ForeignKey(Performance, null=True, blank=True,
                                    on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=128, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("purchase limit hit")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.limit} {self.subject}"
