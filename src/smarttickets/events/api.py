"""Events API: the public catalogue and availability, and organizer endpoints behind a token."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from smarttickets.accounts.api_auth import token_auth
from smarttickets.core import clock
from smarttickets.core.exceptions import InvalidInput, NotFound
from smarttickets.core.money import quantize
from smarttickets.events import access, phases, selectors, services
from smarttickets.events.models import Event, Performance, PriceZone, Venue

router = Router(tags=["events"])


class VenueOut(Schema):
    id: int
    name: str
    city: str
    address: str


class PerformanceOut(Schema):
    id: int
    starts_at: datetime
    doors_open_at: datetime | None
    ends_at: datetime | None
    cancelled: bool
    sale_mode: str
    status: str
    onsale_starts_at: datetime | None
    onsale_ends_at: datetime | None
    entry_opens_at: datetime | None
    entry_closes_at: datetime | None
    draw_at: datetime | None
    purchase_opens_at: datetime | None
    purchase_closes_at: datetime | None


class PriceZoneOut(Schema):
    id: int
    name: str
    price: Decimal
    currency: str
    color: str
    section_codes: list[str]
    ga_area_codes: list[str]


class EventOut(Schema):
    id: int
    slug: str
    title: str
    artist: str
    state: str
    venue: VenueOut
    organizer: str
    currency: str
    first_start: datetime | None
    last_start: datetime | None
    min_price: Decimal | None


class EventDetailOut(EventOut):
    description: str
    personalised: bool
    per_person_limit: int
    hold_minutes: int
    performances: list[PerformanceOut]
    price_zones: list[PriceZoneOut]


class EventPage(Schema):
    count: int
    page: int
    pages: int
    items: list[EventOut]


class ZoneAvailabilityOut(Schema):
    zone_id: int
    name: str
    price: Decimal
    currency: str
    capacity: int
    available: int


class AvailabilityOut(Schema):
    performance_id: int
    event_slug: str
    status: str
    zones: list[ZoneAvailabilityOut]


class EventFilters(Schema):
    q: str = Field("", max_length=100)
    date_from: date | None = None
    date_to: date | None = None
    venue: int | None = None
    max_price: Decimal | None = Field(None, ge=0)
    past: bool = False
    page: int = Field(1, ge=1)
    page_size: int = Field(20, ge=1, le=100)


def _performance_out(perf: Performance, now: datetime) -> dict:
    out = {f: getattr(perf, f) for f in PerformanceOut.model_fields if hasattr(perf, f)}
    out["status"] = phases.phase_status(phases.PhaseDates.of(perf), now)
    return out


def _event_out(event: Event) -> dict:
    return {
        "id": event.pk, "slug": event.slug, "title": event.title, "artist": event.artist,
        "state": event.state, "venue": event.venue, "organizer": event.organizer.name,
        "currency": event.currency,
        "first_start": getattr(event, "first_start", None),
        "last_start": getattr(event, "last_start", None),
        # SQLite's MIN() drops trailing zeros; the API always shows the currency's decimals.
        "min_price": None if getattr(event, "min_price", None) is None
        else quantize(event.min_price, event.currency),
    }


def _event_detail(event: Event, now: datetime) -> dict:
    performances = list(event.performances.filter(cancelled=False))
    zones = event.price_zones.prefetch_related("sections", "ga_areas")
    return {
        **_event_out(event),
        "first_start": min((p.starts_at for p in performances), default=None),
        "last_start": max((p.starts_at for p in performances), default=None),
        "min_price": min((z.price for z in zones), default=None),
        "description": event.description, "personalised": event.personalised,
        "per_person_limit": event.per_person_limit, "hold_minutes": event.hold_minutes,
        "performances": [_performance_out(p, now) for p in performances],
        "price_zones": [{"id": z.pk, "name": z.name, "price": z.price, "currency": z.currency,
                         "color": z.color,
                         "section_codes": [s.code for s in z.sections.all()],
                         "ga_area_codes": [a.code for a in z.ga_areas.all()]} for z in zones],
    }


@router.get("/events", response=EventPage, summary="Published events: search, filter, page")
def list_events(request, filters: Query[EventFilters]):
    events = selectors.public_events(
        now=clock.now(), q=filters.q, date_from=filters.date_from, date_to=filters.date_to,
        venue_id=filters.venue, max_price=filters.max_price, past=filters.past)
    paginator = Paginator(events, filters.page_size)
    if filters.page > max(1, paginator.num_pages):
        raise InvalidInput(_("There is no page %(page)s.") % {"page": filters.page},
                           code="invalid_page")
    page = paginator.page(filters.page)
    return {"count": paginator.count, "page": page.number, "pages": paginator.num_pages,
            "items": [_event_out(e) for e in page.object_list]}


@router.get("/events/{slug}", response=EventDetailOut, summary="One published event")
def get_event(request, slug: str):
    # The API has no session: drafts are not visible here, only through the organizer API.
    event = selectors.get_public_event(slug=slug, user=None)
    return _event_detail(event, clock.now())


@router.get("/performances/{performance_id}/availability", response=AvailabilityOut,
            summary="Capacity and availability per price zone")
def performance_availability(request, performance_id: int):
    perf = selectors.get_public_performance(performance_id=performance_id)
    return {"performance_id": perf.pk, "event_slug": perf.event.slug,
            "status": phases.phase_status(phases.PhaseDates.of(perf), clock.now()),
            "zones": [_zone_dict(z) for z in selectors.availability_summary(perf)]}


def _zone_dict(zone: selectors.ZoneAvailability) -> dict:
    return {name: getattr(zone, name) for name in ZoneAvailabilityOut.model_fields}


# --- Organizer endpoints --------------------------------------------------------------------


class EventCreateIn(Schema):
    organizer_id: int | None = None
    venue_id: int
    title: str = Field(max_length=200)
    artist: str = Field("", max_length=200)
    description: str = Field("", max_length=20000)
    personalised: bool = False
    per_person_limit: int = 4
    hold_minutes: int = 10
    currency: str = Field("HKD", min_length=3, max_length=3)


class EventPatchIn(Schema):
    venue_id: int | None = None
    title: str | None = Field(None, max_length=200)
    artist: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=20000)
    personalised: bool | None = None
    per_person_limit: int | None = None
    hold_minutes: int | None = None
    currency: str | None = Field(None, min_length=3, max_length=3)


class PerformanceIn(Schema):
    starts_at: datetime
    sale_mode: Literal["first_come", "lottery"]
    doors_open_at: datetime | None = None
    ends_at: datetime | None = None
    onsale_starts_at: datetime | None = None
    onsale_ends_at: datetime | None = None
    entry_opens_at: datetime | None = None
    entry_closes_at: datetime | None = None
    draw_at: datetime | None = None
    purchase_opens_at: datetime | None = None
    purchase_closes_at: datetime | None = None


class PriceZoneIn(Schema):
    name: str = Field(max_length=100)
    price: Decimal = Field(ge=0, max_digits=10, decimal_places=2)
    color: str = "#2563eb"
    section_codes: list[str] = Field(default_factory=list, max_length=1000)
    ga_area_codes: list[str] = Field(default_factory=list, max_length=1000)


class PriceZoneCreated(Schema):
    id: int
    name: str
    price: Decimal
    currency: str
    color: str
    section_codes: list[str]
    ga_area_codes: list[str]
    capacity: int


def _venue_for(user, venue_id: int) -> Venue:
    try:
        return access.access_venue_by_user(user, venue_id)
    except NotFound:
        raise InvalidInput(_("Choose one of your venues."),
                           fields={"venue_id": [_("Unknown venue.")]}) from None


def _aware(values: dict, tz: ZoneInfo) -> dict:
    """Times without an offset are read in the venue's time zone (Asia/Hong_Kong)."""
    return {k: timezone.make_aware(v, tz) if isinstance(v, datetime) and timezone.is_naive(v)
            else v for k, v in values.items()}


@router.post("/organizer/events", auth=token_auth, response={201: EventDetailOut},
             summary="Create a draft event")
def create_event(request, payload: EventCreateIn):
    user = request.auth
    if payload.organizer_id is not None:
        organizer = access.access_organizer_by_user(user, payload.organizer_id)
    else:
        organizers = list(access.organizers_for_user(user)[:2])
        if len(organizers) != 1:
            raise InvalidInput(_("Say which organizer the event belongs to."),
                               fields={"organizer_id": [_("This field is required.")]})
        organizer = organizers[0]
    venue = _venue_for(user, payload.venue_id)
    data = payload.dict(exclude={"organizer_id", "venue_id"})
    event = services.create_event(organizer=organizer, venue=venue, actor=user,
                                  now=clock.now(), **data)
    return Status(201, _event_detail(event, clock.now()))


@router.patch("/organizer/events/{event_id}", auth=token_auth, response=EventDetailOut,
              summary="Change an event's details")
def patch_event(request, event_id: int, payload: EventPatchIn):
    user = request.auth
    event = access.access_event_by_user(user, event_id)
    changes = payload.dict(exclude_unset=True)
    if "venue_id" in changes:
        changes["venue"] = _venue_for(user, changes.pop("venue_id"))
    for key, value in list(changes.items()):
        if value is None:
            raise InvalidInput(_("“%(field)s” cannot be empty.") % {"field": key},
                               fields={key: [_("This field cannot be null.")]})
    event = services.update_event(event=event, changes=changes, actor=user, now=clock.now())
    return _event_detail(event, clock.now())


@router.post("/organizer/events/{event_id}/publish", auth=token_auth, response=EventDetailOut,
             summary="Publish a draft event (409 not_publishable lists what is missing)")
def publish_event(request, event_id: int):
    event = access.access_event_by_user(request.auth, event_id)
    event = services.publish_event(event=event, actor=request.auth, now=clock.now())
    return _event_detail(event, clock.now())


@router.post("/organizer/events/{event_id}/performances", auth=token_auth,
             response={201: PerformanceOut}, summary="Add a performance with its sales phase")
def add_performance(request, event_id: int, payload: PerformanceIn):
    event = access.access_event_by_user(request.auth, event_id)
    values = _aware(payload.dict(), ZoneInfo(event.venue.timezone))
    perf = services.add_performance(event=event, actor=request.auth, now=clock.now(), **values)
    return Status(201, _performance_out(perf, clock.now()))


@router.post("/organizer/events/{event_id}/price-zones", auth=token_auth,
             response={201: PriceZoneCreated},
             summary="Add a price zone by section and standing-area codes")
def add_price_zone(request, event_id: int, payload: PriceZoneIn):
    event = access.access_event_by_user(request.auth, event_id)
    sections = dict(event.venue.sections.filter(code__in=payload.section_codes)
                    .values_list("code", "pk"))
    areas = dict(event.venue.ga_areas.filter(code__in=payload.ga_area_codes)
                 .values_list("code", "pk"))
    unknown = ([c for c in payload.section_codes if c not in sections]
               + [c for c in payload.ga_area_codes if c not in areas])
    if unknown:
        raise InvalidInput(_("Unknown section or area codes: %(codes)s.")
                           % {"codes": ", ".join(unknown[:20])},
                           fields={"section_codes": [_("Use codes from the venue's seat map.")]})
    zone: PriceZone = services.create_price_zone(
        event=event, name=payload.name, price=payload.price, color=payload.color,
        section_ids=list(sections.values()), ga_area_ids=list(areas.values()),
        actor=request.auth, now=clock.now())
    return Status(201, {"id": zone.pk, "name": zone.name, "price": zone.price,
                 "currency": zone.currency, "color": zone.color,
                 "section_codes": sorted(sections), "ga_area_codes": sorted(areas),
                 "capacity": selectors.zone_capacities(event).get(zone.pk, 0)})
