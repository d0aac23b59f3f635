"""Issued tickets, their signed credentials, fans' wallet devices, per-event gate policy,
check-ins and transfers between fans."""

from __future__ import annotations

import base64

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from smarttickets.booking.models import Order
from smarttickets.events.models import Event, Performance, PriceZone, Seat


class Ticket(models.Model):
    class State(models.TextChoices):
        VALID = "valid", _("Valid")
        CANCELLED = "cancelled", _("Cancelled")

    serial = models.CharField(_("serial"), max_length=20, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="tickets")
    # Who holds the ticket now: the buyer until a transfer to another fan is accepted.
    holder_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="held_tickets", verbose_name=_("holder"))
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
    # The credential generation: 0 before any credential, +1 on every re-issue (device move,
    # transfer). Scanners refuse lower serials as superseded.
    credential_serial = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("ticket")
        ordering = ["performance_id", "id"]
        indexes = [models.Index(fields=["performance", "state"]),
                   models.Index(fields=["holder_user", "performance"])]
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


class TicketingPolicy(models.Model):
    """How an event's tickets are checked at the gate. Created with defaults on first use.

    The fallback tiers are WEAKER than the device-bound rotating code (a printed copy or a shared
    wallet pass works for whoever holds it), so they are off unless an organizer turns them on
    and admit only after an ID check.
    """

    DEFAULT_GATE = "MAIN"

    event = models.OneToOneField(Event, on_delete=models.CASCADE,
                                 related_name="ticketing_policy")
    default_gate_group = models.CharField(
        _("default gate group"), max_length=16, default=DEFAULT_GATE, blank=True,
        help_text=_("Gate group printed on tickets of zones without their own. Empty: any "
                    "gate."))
    # {str(price zone id): gate group}; zones not listed use the default.
    zone_gate_groups = models.JSONField(_("gate group per price zone"), default=dict,
                                        blank=True)
    reentry_allowed = models.BooleanField(
        _("re-entry allowed"), default=False,
        help_text=_("Fans may leave and come back in; exits are scanned."))
    totp_fallback = models.BooleanField(
        _("wallet-pass code (TOTP) fallback — weaker"), default=False,
        help_text=_("Fans can export a rotating number for wallet apps. Anyone the pass is "
                    "shared with can use it: admitted only with an ID check."))
    printed_fallback = models.BooleanField(
        _("printable ticket fallback — weaker"), default=False,
        help_text=_("Fans can print a static code. A photocopy works too: admitted only "
                    "with an ID check."))
    valid_from_minutes_before = models.PositiveIntegerField(
        _("codes valid from (minutes before the show)"), default=6 * 60)
    valid_until_minutes_after = models.PositiveIntegerField(
        _("codes valid until (minutes after the show starts)"), default=8 * 60)
    transfers_allowed = models.BooleanField(
        _("fans may transfer tickets"), default=True,
        help_text=_("Free hand-over to another fan's verified account. The recipient accepts; "
                    "the old code stops working. There is no resale price."))
    max_transfers_per_ticket = models.PositiveSmallIntegerField(
        _("transfers per ticket"), default=1, validators=[MaxValueValidator(10)],
        help_text=_("How many times one ticket may change hands. 1: the buyer can pass it on "
                    "once, the recipient cannot pass it on again."))
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("ticketing policy")
        verbose_name_plural = _("ticketing policies")

    def __str__(self) -> str:
        return f"{self.event}"

    def gate_group_for(self, zone_id: int) -> str:
        return str(self.zone_gate_groups.get(str(zone_id), self.default_gate_group))

    @property
    def gate_groups(self) -> list[str]:
        groups = {self.default_gate_group, *map(str, self.zone_gate_groups.values())}
        return sorted(g for g in groups if g)


class Device(models.Model):
    """A fan's phone or browser: the public half of a WebCrypto key whose private half never
    leaves it. One active device per user; registering another revokes this one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="ticket_devices")
    public_key = models.CharField(_("public key (compressed SEC1, hex)"), max_length=66)
    label = models.CharField(_("label"), max_length=100, blank=True)
    registered_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("wallet device")
        ordering = ["-registered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=Q(revoked_at__isnull=True),
                                    name="device_one_active_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.public_key[:12]}…"

    @property
    def public_key_bytes(self) -> bytes:
        return bytes.fromhex(self.public_key)


class IssuedCredential(models.Model):
    """One signed credential for a ticket: device-bound or printed. A ticket's serial goes up
    when its credentials are re-issued (device move, transfer); older serials are revoked."""

    class Kind(models.TextChoices):
        DEVICE = "device", _("Phone (rotating code)")
        PRINTED = "printed", _("Printed (weaker)")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DEVICE)
    serial = models.PositiveIntegerField()
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="credentials")
    kid = models.PositiveIntegerField()
    data = models.BinaryField()
    signature = models.BinaryField()
    issued_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("issued credential")
        ordering = ["ticket_id", "-serial", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "serial", "kind"],
                                    name="credential_unique_serial_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}#{self.serial} {self.kind}"

    @property
    def data_b64(self) -> str:
        return base64.b64encode(bytes(self.data)).decode("ascii")

    @property
    def signature_b64(self) -> str:
        return base64.b64encode(bytes(self.signature)).decode("ascii")


class CheckIn(models.Model):
    """One scan that reached the admission log: an admission, an exit, or a duplicate attempt.

    ``nonce`` is the scanner's per-scan random id, so a retried or re-uploaded scan is stored
    once. ``duplicate`` marks entries the merge refused (a second admission of the ticket).
    """

    class Direction(models.TextChoices):
        ENTRY = "entry", _("Entry")
        EXIT = "exit", _("Exit")

    class Source(models.TextChoices):
        ONLINE = "online", _("Online")
        OFFLINE = "offline", _("Offline upload")

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="checkins")
    performance = models.ForeignKey(Performance, on_delete=models.PROTECT, related_name="+")
    serial = models.PositiveIntegerField()
    tier = models.CharField(max_length=10, default="device")
    entry_policy = models.CharField(max_length=10, default="single")
    scanner_id = models.CharField(_("scanner"), max_length=64)
    gate = models.CharField(_("gate"), max_length=16, blank=True)
    direction = models.CharField(max_length=5, choices=Direction.choices,
                                 default=Direction.ENTRY)
    scanned_at = models.DateTimeField(_("scanned at"))
    nonce = models.CharField(max_length=32, unique=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ONLINE)
    duplicate = models.BooleanField(_("duplicate"), default=False)
    reason_code = models.CharField(max_length=30, default="ok")
    scanned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        verbose_name = _("check-in")
        ordering = ["scanned_at", "id"]
        indexes = [models.Index(fields=["ticket", "scanned_at"]),
                   models.Index(fields=["performance", "scanned_at"])]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.direction} @ {self.scanned_at:%H:%M:%S}"


class Transfer(models.Model):
    """A holder's offer to hand a ticket to the account with ``to_email``; the ticket moves only
    when that account accepts. Free on purpose: there is no price, so it cannot carry a resale.

    Addressed to an email address rather than an account, so the offer does not reveal whether
    an account exists, and a friend can still sign up and accept before it expires."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting for the recipient")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="transfers")
    performance = models.ForeignKey(Performance, on_delete=models.PROTECT, related_name="+")
    from_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="transfers_out", verbose_name=_("from"))
    to_email = models.EmailField(_("recipient's email address"))
    # The account that accepted; empty until then.
    to_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.PROTECT, related_name="transfers_in",
                                verbose_name=_("to"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices,
                             default=State.PENDING)
    created_at = models.DateTimeField(_("offered at"))
    expires_at = models.DateTimeField(_("expires at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    close_reason = models.CharField(max_length=30, blank=True)
    # The ticket's credential serial after the hand-over: every older code is revoked.
    credential_serial = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("ticket transfer")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["to_email", "state"]),
                   models.Index(fields=["from_user", "state"]),
                   models.Index(fields=["state", "expires_at"])]
        constraints = [
            models.UniqueConstraint(fields=["ticket"], condition=Q(state="pending"),
                                    name="transfer_one_pending_per_ticket"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} → {self.to_email} ({self.state})"

    @property
    def is_pending(self) -> bool:
        return self.state == self.State.PENDING
