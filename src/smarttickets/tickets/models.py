"""Issued tickets: one per seat or general-admission place of a paid order."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from smarttickets.booking.models import Order
from smarttickets.events.models import Performance, PriceZone, Seat


class Ticket(models.Model):
    class State(models.TextChoices):
        VALID = "valid", _("Valid")
        CANCELLED = "cancelled", _("Cancelled")

    serial = models.CharField(_("serial"), max_length=20, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="tickets")
    performance = models.ForeignKey(Performance, on_delete=models.PROTECT, related_name="+")
    zone = models.ForeignKey(PriceZone, on_delete=models.PROTECT, related_name="+")
    seat = models.ForeignKey(Seat, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="+")
    holder_name = models.CharField(_("ticket holder"), max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=10, choices=State.choices, default=State.VALID)
    issued_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("ticket")
        ordering = ["performance_id", "id"]
        indexes = [models.Index(fields=["performance", "state"])]
        constraints = [
            # Backstop for invariant 2 next to the seat claim: one valid ticket per seat.
            models.UniqueConstraint(fields=["performance", "seat"],
                                    condition=Q(state="valid", seat__isnull=False),
                                    name="ticket_unique_valid_seat"),
        ]

    def __str__(self) -> str:
        return self.serial

    @property
    def is_valid(self) -> bool:
        return self.state == self.State.VALID
