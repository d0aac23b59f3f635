"""Reads for pages and the API: the public catalogue, event pages, capacities, availability and
the organizer dashboard."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Count,
    Exists,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from smarttickets.core.exceptions import NotFound
from smarttickets.events import phases
from smarttickets.events.access import can_preview, organizers_for_user
from smarttickets.events.models import (
    Event,
    GAArea,
    Performance,
    PriceZone,
    Seat,
    Venue,
)


def _local_day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def _live_performances() -> QuerySet[Performance]:
    return Performance.objects.filter(cancelled=False)


def public_events(*, now: datetime, q: str = "", date_from: date | None = None,
                  date_to: date | None = None, venue_id: int | None = None,
                  max_price: Decimal | None = None, past: bool = False) -> QuerySet[Event]:
    """Published events matching the filters, annotated with ``first_start``, ``last_start``
    and ``min_price``. Upcoming events (a performance still ahead) by default, or past ones."""
    live = _live_performances().filter(event=OuterRef("pk"))
    events = (Event.objects.filter(state=Event.State.PUBLISHED)
              .select_related("venue", "organizer")
              .annotate(first_start=Subquery(live.order_by("starts_at").values("starts_at")[:1]),
                        last_start=Subquery(live.order_by("-starts_at").values("starts_at")[:1]),
                        next_start=Subquery(live.filter(starts_at__gte=now).order_by("starts_at")
                                            .values("starts_at")[:1]),
                        min_price=Min("price_zones__price")))
    if past:
        events = events.filter(last_start__lt=now).order_by("-last_start", "pk")
    else:
        events = events.filter(next_start__isnull=False).order_by("next_start", "pk")
    q = (q or "").strip()
    if q:
        events = events.filter(Q(title__icontains=q) | Q(artist__icontains=q)
                               | Q(venue__name__icontains=q))
    if date_from or date_to:
        window = live
        if date_from:
            window = window.filter(starts_at__gte=_local_day_start(date_from))
        if date_to:
            window = window.filter(starts_at__lt=_local_day_start(date_to + timedelta(days=1)))
        events = events.filter(Exists(window))
    if venue_id:
        events = events.filter(venue_id=venue_id)
    if max_price is not None:
        events = events.filter(min_price__lte=max_price)
    return events


def catalogue_venues() -> QuerySet[Venue]:
    """Venues that have at least one published event (for the filter list)."""
    return (Venue.objects.filter(events__state=Event.State.PUBLISHED).distinct()
            .order_by("name"))


@dataclass(frozen=True, slots=True)
class EventCard:
    event: Event
    first_start: datetime | None
    last_start: datetime | None
    min_price: Decimal | None
    modes: frozenset[str]
    selling_now: bool
    sold_out: bool
    next_sale: datetime | None


def event_cards(events: list[Event], *, now: datetime) -> list[EventCard]:
    """What a catalogue card shows: sales modes, on sale now, sold out, next on-sale."""
    perfs: dict[int, list[Performance]] = defaultdict(list)
    for perf in _live_performances().filter(event__in=[e.pk for e in events]):
        perfs[perf.event_id].append(perf)
    cards = []
    for event in events:
        upcoming = [p for p in perfs[event.pk] if p.starts_at > now]
        statuses = [phases.phase_status(phases.PhaseDates.of(p), now) for p in upcoming]
        selling = any(s in (phases.ON_SALE, phases.ENTRY_OPEN, phases.WINNERS_PURCHASE)
                      for s in statuses)
        sold_out = False
        if upcoming and any(s == phases.ON_SALE for s in statuses):
            sold_out = all(sum(z.available for z in availability_summary(p)) <= 0
                           for p in upcoming)
        next_sales = [m for p in upcoming
                      if (m := phases.next_sale_moment(phases.PhaseDates.of(p), now))]
        cards.append(EventCard(
            event=event, first_start=getattr(event, "first_start", None),
            last_start=getattr(event, "last_start", None),
            min_price=getattr(event, "min_price", None),
            modes=frozenset(p.sale_mode for p in upcoming or perfs[event.pk]),
            selling_now=selling, sold_out=sold_out,
            next_sale=min(next_sales) if next_sales else None))
    return cards


def get_public_event(*, slug: str, user) -> Event:
    """A published or cancelled event by slug; drafts only for their organizer's staff."""
    try:
        event = (Event.objects.select_related("venue", "organizer")
                 .prefetch_related(Prefetch("performances", _live_performances()),
                                   Prefetch("price_zones", PriceZone.objects.prefetch_related(
                                       "sections", "ga_areas")))
                 .get(slug=slug))
    except Event.DoesNotExist:
        raise NotFound(_("Event not found.")) from None
    if event.state == Event.State.DRAFT and not can_preview(user, event):
        raise NotFound(_("Event not found."))
    return event


def get_public_performance(*, performance_id: int) -> Performance:
    try:
        return (Performance.objects.select_related("event__venue")
                .get(pk=performance_id, event__state=Event.State.PUBLISHED))
    except (Performance.DoesNotExist, ValueError, TypeError):
        raise NotFound(_("Performance not found.")) from None


def zone_capacities(event: Event) -> dict[int, int]:
    """Price zone id → seats in its sections plus its GA areas' capacity."""
    seats = (Seat.objects.filter(section__price_zones=OuterRef("pk"))
             .order_by().values("section__price_zones").annotate(n=Count("pk")).values("n"))
    standing = (GAArea.objects.filter(price_zones=OuterRef("pk"))
                .order_by().values("price_zones").annotate(n=Sum("capacity")).values("n"))
    rows = (PriceZone.objects.filter(event=event)
            .annotate(seats=Coalesce(Subquery(seats, output_field=IntegerField()), Value(0)),
                      standing=Coalesce(Subquery(standing, output_field=IntegerField()),
                                        Value(0)))
            .values_list("pk", "seats", "standing"))
    return {pk: seats + standing for pk, seats, standing in rows}


@dataclass(frozen=True, slots=True)
class ZoneAvailability:
    zone_id: int
    name: str
    price: Decimal
    currency: str
    color: str
    capacity: int
    available: int


def _taken_by_zone(performance: Performance) -> dict[int, int]:
    # Booking sits above events in the import order, so events only peeks at it when installed.
    try:
        from smarttickets.booking.selectors import taken_by_zone
    except ImportError:
        return {}
    return dict(taken_by_zone(performance))


def availability_summary(performance: Performance) -> list[ZoneAvailability]:
    """Per price zone of the performance's event: capacity and what is still available."""
    event = performance.event
    capacities = zone_capacities(event)
    taken = _taken_by_zone(performance)
    return [ZoneAvailability(zone_id=z.pk, name=z.name, price=z.price, currency=z.currency,
                             color=z.color, capacity=capacities.get(z.pk, 0),
                             available=max(0, capacities.get(z.pk, 0) - taken.get(z.pk, 0)))
            for z in event.price_zones.all()]


def seat_zone_map(event: Event) -> dict[int, PriceZone]:
    """Section id → its price zone for this event (sections outside every zone are absent)."""
    return {section.pk: zone for zone in event.price_zones.all()
            for section in zone.sections.all()}


# --- Organizer side -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DashboardRow:
    event: Event
    performances: int
    capacity: int
    first_start: datetime | None
    next_sale: datetime | None


def organizer_events(user) -> QuerySet[Event]:
    return (Event.objects.filter(organizer__in=organizers_for_user(user))
            .select_related("venue", "organizer")
            .annotate(n_performances=Count("performances", filter=Q(performances__cancelled=False),
                                           distinct=True),
                      first_start=Min("performances__starts_at"),
                      last_start=Max("performances__starts_at"))
            .order_by("state", "-created_at"))


def dashboard(user, *, now: datetime) -> dict:
    """The organizer home: my events with capacity and upcoming on-sales, plus totals."""
    events = list(organizer_events(user))
    perfs: dict[int, list[Performance]] = defaultdict(list)
    for perf in _live_performances().filter(event__in=[e.pk for e in events]):
        perfs[perf.event_id].append(perf)
    rows = []
    upcoming_sales = []
    for event in events:
        moments = [m for p in perfs[event.pk]
                   if (m := phases.next_sale_moment(phases.PhaseDates.of(p), now))]
        for perf in perfs[event.pk]:
            moment = phases.next_sale_moment(phases.PhaseDates.of(perf), now)
            if moment and event.state == Event.State.PUBLISHED:
                upcoming_sales.append((moment, perf, event))
        rows.append(DashboardRow(event=event, performances=event.n_performances,
                                 capacity=sum(zone_capacities(event).values()),
                                 first_start=event.first_start,
                                 next_sale=min(moments) if moments else None))
    upcoming_sales.sort(key=lambda item: item[0])
    return {
        "rows": rows,
        "counts": {state: sum(1 for e in events if e.state == state) for state in Event.State},
        "upcoming_sales": upcoming_sales[:8],
        "organizers": list(organizers_for_user(user)),
    }


def organizer_venues(user) -> QuerySet[Venue]:
    return (Venue.objects.filter(organizer__in=organizers_for_user(user))
            .select_related("organizer")
            .annotate(n_sections=Count("sections", distinct=True),
                      n_ga=Count("ga_areas", distinct=True),
                      n_events=Count("events", distinct=True)))


def venue_stats(venue: Venue) -> dict[str, int]:
    return {
        "seats": Seat.objects.filter(section__venue=venue).count(),
        "accessible": Seat.objects.filter(section__venue=venue, accessible=True).count(),
        "sections": venue.sections.count(),
        "ga_capacity": venue.ga_areas.aggregate(n=Coalesce(Sum("capacity"), 0))["n"],
    }


def event_summary(event: Event, *, now: datetime) -> dict:
    """The organizer's event page: performances with phase status, zones with capacity."""
    capacities = zone_capacities(event)
    zones = list(event.price_zones.prefetch_related("sections", "ga_areas"))
    performances = []
    for perf in event.performances.all():
        dates = phases.PhaseDates.of(perf)
        status = phases.phase_status(dates, now)
        performances.append({"performance": perf, "status": status,
                             "status_label": phases.status_label(status),
                             "availability": availability_summary(perf)})
    assigned_sections = {s.pk for z in zones for s in z.sections.all()}
    assigned_areas = {a.pk for z in zones for a in z.ga_areas.all()}
    unassigned = ([s.name for s in event.venue.sections.exclude(pk__in=assigned_sections)]
                  + [a.name for a in event.venue.ga_areas.exclude(pk__in=assigned_areas)])
    return {
        "zones": [(z, capacities.get(z.pk, 0)) for z in zones],
        "capacity": sum(capacities.values()),
        "performances": performances,
        "unassigned": unassigned,
    }
