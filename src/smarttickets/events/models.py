"""Organizers and their staff, venues with seat maps, events, performances, price zones and
sales phases."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Organizer(models.Model):
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    description = models.TextField(_("description"), blank=True)
    contact_email = models.EmailField(_("contact email"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("organizer")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's place on an organizer's staff, with what they may do there."""

    PERMISSIONS = ("can_manage_events", "can_view_reports", "can_review_risk",
                   "can_run_lotteries", "can_scan_tickets")

    organizer = models.ForeignKey(Organizer, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships")
    can_manage_events = models.BooleanField(_("manage events"), default=False)
    can_view_reports = models.BooleanField(_("view reports"), default=False)
    can_review_risk = models.BooleanField(_("review risk"), default=False)
    can_run_lotteries = models.BooleanField(_("run lotteries"), default=False)
    can_scan_tickets = models.BooleanField(_("scan tickets"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("organizer membership")
        constraints = [models.UniqueConstraint(fields=["organizer", "user"],
                                               name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organizer}"


class Venue(models.Model):
    organizer = models.ForeignKey(Organizer, on_delete=models.CASCADE, related_name="venues")
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=80)
    address = models.CharField(_("address"), max_length=300, blank=True)
    city = models.CharField(_("city"), max_length=100, default="Hong Kong")
    timezone = models.CharField(_("time zone"), max_length=64, default="Asia/Hong_Kong")
    # Drawing area of the seat map in map units (see docs/seatmap-format.md).
    map_width = models.PositiveIntegerField(default=1000)
    map_height = models.PositiveIntegerField(default=800)
    stage_label = models.CharField(max_length=60, default="STAGE", blank=True)
    # The stage rectangle in map units; imported from the seat map's ``stage`` row.
    stage_x = models.FloatField(default=350)
    stage_y = models.FloatField(default=20)
    stage_width = models.FloatField(default=300)
    stage_height = models.FloatField(default=60)
    seatmap_updated_at = models.DateTimeField(_("seat map updated at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("venue")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organizer", "slug"],
                                               name="venue_unique_slug")]

    def __str__(self) -> str:
        return self.name

    @property
    def seat_count(self) -> int:
        return Seat.objects.filter(section__venue=self).count()


class Section(models.Model):
    """A block of reserved seats."""

    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="sections")
    code = models.CharField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=100)
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("section")
        ordering = ["sort_order", "code"]
        constraints = [models.UniqueConstraint(fields=["venue", "code"],
                                               name="section_unique_code")]

    def __str__(self) -> str:
        return f"{self.venue} / {self.name}"


class Seat(models.Model):
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="seats")
    row = models.CharField(_("row"), max_length=10)
    number = models.CharField(_("number"), max_length=10)
    # Centre of the seat in map units; the map's y axis points away from the stage.
    x = models.FloatField()
    y = models.FloatField()
    accessible = models.BooleanField(_("wheelchair accessible"), default=False)

    class Meta:
        verbose_name = _("seat")
        ordering = ["section_id", "row", "id"]
        constraints = [models.UniqueConstraint(fields=["section", "row", "number"],
                                               name="seat_unique_position")]

    def __str__(self) -> str:
        return f"{self.section.code}-{self.row}-{self.number}"

    @property
    def label(self) -> str:
        return f"{self.section.code} {self.row}{self.number}"


class GAArea(models.Model):
    """A general-admission area: a capacity, no seats."""

    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="ga_areas")
    code = models.CharField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=100)
    capacity = models.PositiveIntegerField(_("capacity"), validators=[MinValueValidator(1)])
    x = models.FloatField(default=0)
    y = models.FloatField(default=0)
    width = models.FloatField(default=100)
    height = models.FloatField(default=50)

    class Meta:
        verbose_name = _("general-admission area")
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["venue", "code"],
                                               name="gaarea_unique_code")]

    def __str__(self) -> str:
        return f"{self.venue} / {self.name}"


class Event(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        CANCELLED = "cancelled", _("Cancelled")

    organizer = models.ForeignKey(Organizer, on_delete=models.CASCADE, related_name="events")
    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="events")
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    artist = models.CharField(_("artist"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    state = models.CharField(_("state"), max_length=12, choices=State.choices,
                             default=State.DRAFT, db_index=True)
    personalised = models.BooleanField(
        _("real-name tickets"), default=False,
        help_text=_("Each ticket carries its holder's legal name, checked at the gate."))
    per_person_limit = models.PositiveSmallIntegerField(
        _("tickets per person per performance"), default=4,
        validators=[MinValueValidator(1)])
    hold_minutes = models.PositiveSmallIntegerField(_("hold time (minutes)"), default=10,
                                                    validators=[MinValueValidator(1)])
    currency = models.CharField(_("currency"), max_length=3, default="HKD")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("event")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class Performance(models.Model):
    """One show of an event, with its sales phase."""

    class SaleMode(models.TextChoices):
        FIRST_COME = "first_come", _("First come, first served")
        LOTTERY = "lottery", _("Lottery")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="performances")
    starts_at = models.DateTimeField(_("starts at"), db_index=True)
    doors_open_at = models.DateTimeField(_("doors open at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    cancelled = models.BooleanField(default=False)
    sale_mode = models.CharField(_("sales phase"), max_length=12, choices=SaleMode.choices,
                                 default=SaleMode.FIRST_COME)
    # first_come
    onsale_starts_at = models.DateTimeField(_("on-sale starts"), null=True, blank=True)
    onsale_ends_at = models.DateTimeField(_("on-sale ends"), null=True, blank=True)
    # lottery
    entry_opens_at = models.DateTimeField(_("lottery entry opens"), null=True, blank=True)
    entry_closes_at = models.DateTimeField(_("lottery entry closes"), null=True, blank=True)
    draw_at = models.DateTimeField(_("draw time"), null=True, blank=True)
    purchase_opens_at = models.DateTimeField(_("winners' purchase opens"), null=True, blank=True)
    purchase_closes_at = models.DateTimeField(_("winners' purchase closes"), null=True,
                                              blank=True)

    class Meta:
        verbose_name = _("performance")
        ordering = ["starts_at"]

    def __str__(self) -> str:
        return f"{self.event} — {self.starts_at:%Y-%m-%d %H:%M}"


class PriceZone(models.Model):
    """A price for a set of sections and GA areas. Inventory is kept per performance x zone."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="price_zones")
    name = models.CharField(_("name"), max_length=100)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2,
                                validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(_("currency"), max_length=3, default="HKD")
    color = models.CharField(_("colour"), max_length=7, default="#2563eb")
    sort_order = models.PositiveIntegerField(default=0)
    sections = models.ManyToManyField(Section, blank=True, related_name="price_zones")
    ga_areas = models.ManyToManyField(GAArea, blank=True, related_name="price_zones")

    class Meta:
        verbose_name = _("price zone")
        ordering = ["sort_order", "-price"]

    def __str__(self) -> str:
        return f"{self.event} / {self.name}"
