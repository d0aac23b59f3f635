"""Lotteries (one per performance × price zone) and their entries, with the published record."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from smarttickets.events.models import Performance, PriceZone


class Lottery(models.Model):
    """The lottery for the seats of one price zone of one performance.

    Created lazily (selectors.ensure_lotteries) the first time anyone looks at a lottery
    performance, with a fresh 32-byte seed whose SHA-256 is public from that moment on.
    """

    class State(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        OPEN = "open", _("Open for entries")
        CLOSED = "closed", _("Closed, commitment published")
        DRAWN = "drawn", _("Drawn")
        PURCHASE = "purchase", _("Winners buying")
        FINISHED = "finished", _("Finished")

    class FlaggedPolicy(models.TextChoices):
        EXCLUDE = "exclude", _("Excluded before the draw")
        REVIEW = "review", _("Held for staff review")

    class BeaconKind(models.TextChoices):
        NONE = "none", _("No beacon (committed seed only)")
        PUBLIC = "public", _("A public value named in advance")
        DRAND = "drand", _("drand quicknet round")

    public_id = models.CharField(max_length=40, unique=True)
    performance = models.ForeignKey(Performance, on_delete=models.CASCADE,
                                    related_name="lotteries")
    zone = models.ForeignKey(PriceZone, on_delete=models.CASCADE, related_name="lotteries")
    state = models.CharField(_("state"), max_length=10, choices=State.choices,
                             default=State.SCHEDULED, db_index=True)
    capacity = models.PositiveIntegerField(_("seats to give away"))
    flagged_policy = models.CharField(_("flagged entries"), max_length=10,
                                      choices=FlaggedPolicy.choices,
                                      default=FlaggedPolicy.REVIEW)
    beacon_kind = models.CharField(_("beacon"), max_length=10, choices=BeaconKind.choices,
                                   default=BeaconKind.DRAND)
    beacon_source = models.CharField(_("public value source"), max_length=63, blank=True,
                                     help_text=_("e.g. hk-mark-six"))
    beacon_draw = models.CharField(_("public value draw"), max_length=100, blank=True,
                                   help_text=_("e.g. 26/041"))
    offer_hours = models.PositiveSmallIntegerField(
        _("hours each winner has to buy"), default=24,
        help_text=_("Unpaid seats then pass down the waiting list."))

    # The seed: its SHA-256 is public from creation; the secret is kept encrypted until reveal.
    seed_commitment = models.CharField(max_length=64)
    seed_ciphertext = models.TextField()
    seed_committed_at = models.DateTimeField()

    # Published when entries close.
    commitment = models.JSONField(null=True, blank=True)
    commitment_hash = models.CharField(max_length=64, blank=True)
    signature = models.JSONField(null=True, blank=True)
    entries_document = models.TextField(blank=True)
    committed_at = models.DateTimeField(null=True, blank=True)
    n_duplicates = models.PositiveIntegerField(default=0)
    n_excluded = models.PositiveIntegerField(default=0)
    duplicate_attempts = models.PositiveIntegerField(default=0)

    # The beacon's value, once the organizer has supplied verified evidence.
    beacon_value = models.CharField(max_length=512, blank=True)
    beacon_evidence = models.JSONField(null=True, blank=True)
    beacon_entered_at = models.DateTimeField(null=True, blank=True)

    # Published after the draw; ``allocation`` then follows pass-downs.
    result = models.JSONField(null=True, blank=True)
    drawn_at = models.DateTimeField(null=True, blank=True)
    allocation = models.JSONField(null=True, blank=True)
    purchase_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("lottery")
        verbose_name_plural = _("lotteries")
        ordering = ["performance_id", "zone__sort_order", "zone_id"]
        constraints = [models.UniqueConstraint(fields=["performance", "zone"],
                                               name="lottery_unique_zone")]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.state})"

    @property
    def is_published(self) -> bool:
        return self.commitment is not None


class Entry(models.Model):
    """One fan's entry: ``quantity`` seats, all or nothing, under a platform-chosen id."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Entered")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        DUPLICATE = "duplicate", _("Removed as a duplicate")
        EXCLUDED = "excluded", _("Excluded after risk review")

    class Review(models.TextChoices):
        NONE = "", _("Not flagged")
        PENDING = "pending", _("Awaiting review")
        INCLUDED = "included", _("Included by staff")
        EXCLUDED = "excluded", _("Excluded by staff")

    class Outcome(models.TextChoices):
        NONE = "", _("Not drawn yet")
        WON = "won", _("Won")
        WAITLISTED = "waitlisted", _("Waiting list")
        PURCHASED = "purchased", _("Bought")
        LAPSED = "lapsed", _("Did not buy in time")
        NOT_SELECTED = "not_selected", _("Not selected")

    entry_id = models.CharField(max_length=32, unique=True)
    lottery = models.ForeignKey(Lottery, on_delete=models.CASCADE, related_name="entries")
    # Denormalised so the database refuses a second entry for the same performance.
    performance = models.ForeignKey(Performance, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="lottery_entries")
    quantity = models.PositiveSmallIntegerField(_("tickets"))
    weight = models.PositiveSmallIntegerField(default=1)
    companions = models.JSONField(_("companions"), default=list, blank=True)
    phone = models.CharField(max_length=20, help_text=_("Verified number at entry time"))
    legal_name = models.CharField(max_length=200)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    flagged = models.BooleanField(default=False)
    risk_decision = models.CharField(max_length=10, blank=True)
    risk_score = models.FloatField(null=True, blank=True)
    review = models.CharField(max_length=10, choices=Review.choices, default=Review.NONE,
                              blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.NONE,
                               blank=True)
    waitlist_position = models.PositiveIntegerField(null=True, blank=True)
    promoted = models.BooleanField(default=False)
    entitlement = models.OneToOneField("booking.Entitlement", null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="lottery_entry")
    offered_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("lottery entry")
        verbose_name_plural = _("lottery entries")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["lottery", "state"]),
                   models.Index(fields=["lottery", "outcome"])]
        constraints = [
            # The published duplicate rule, enforced by the database: one live entry per
            # performance for an account and for a verified mobile number.
            models.UniqueConstraint(fields=["performance", "user"],
                                    condition=~Q(state="withdrawn"),
                                    name="lottery_entry_one_per_user"),
            models.UniqueConstraint(fields=["performance", "phone"],
                                    condition=~Q(state="withdrawn"),
                                    name="lottery_entry_one_per_phone"),
        ]

    def __str__(self) -> str:
        return self.entry_id

    @property
    def in_draw(self) -> bool:
        """Whether this entry is one of the committed entries (or would be, if closed now)."""
        return self.state == self.State.ACTIVE and self.review != self.Review.PENDING
