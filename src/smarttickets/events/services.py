"""Writers for venues, seat maps, events, performances and price zones. Each is one transaction
with one audit entry; validation happens before anything is written."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils.formats import date_format
from django.utils.text import slugify
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from smarttickets.core.audit import log_action
from smarttickets.core.exceptions import InvalidInput
from smarttickets.core.money import CURRENCY_EXPONENTS, quantize
from smarttickets.events import phases, seatmap
from smarttickets.events.exceptions import (
    InvalidSeatMap,
    InvalidState,
    NotPublishable,
    SeatMapLocked,
)
from smarttickets.events.models import (
    Event,
    GAArea,
    Organizer,
    Performance,
    PriceZone,
    Seat,
    Section,
    Venue,
)

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_PRICE = Decimal("1000000")
MAX_PER_PERSON = 10
MAX_HOLD_MINUTES = 60
EVENT_FIELDS = ("title", "artist", "description", "venue", "personalised", "per_person_limit",
                "hold_minutes", "currency")
PERFORMANCE_FIELDS = ("starts_at", "doors_open_at", "ends_at", "sale_mode", *phases.FIRST_COME_FIELDS,
                      *phases.LOTTERY_FIELDS)
ZONE_FIELDS = ("name", "price", "color", "sort_order", "section_ids", "ga_area_ids")


def _unique_slug(queryset: QuerySet, text: str, *, max_length: int, fallback: str) -> str:
    base = slugify(text)[: max_length - 6].strip("-") or fallback
    slug, n = base, 2
    while queryset.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


# --- Venues and seat maps -------------------------------------------------------------------


def _parse_seatmap(data: bytes, filename: str) -> seatmap.SeatMap:
    try:
        return seatmap.parse_seatmap(data, filename=filename)
    except seatmap.SeatMapError as exc:
        raise InvalidSeatMap(
            ngettext("The seat map has %(n)s problem; nothing was imported.",
                     "The seat map has %(n)s problems; nothing was imported.",
                     len(exc.problems)) % {"n": len(exc.problems)},
            problems=exc.problems, truncated=exc.truncated) from exc


def _write_seatmap(venue: Venue, parsed: seatmap.SeatMap) -> None:
    """Make the venue's sections, seats and GA areas equal to ``parsed``.

    Sections and areas are matched by code so that draft events keep their price-zone choices.
    """
    old_sections = {s.code: s for s in venue.sections.all()}
    keep = {spec.code for spec in parsed.sections}
    venue.sections.exclude(code__in=keep).delete()
    Seat.objects.filter(section__venue=venue).delete()
    seats: list[Seat] = []
    for order, spec in enumerate(parsed.sections):
        section = old_sections.get(spec.code)
        if section is None:
            section = Section.objects.create(venue=venue, code=spec.code, name=spec.name,
                                             sort_order=order)
        elif (section.name, section.sort_order) != (spec.name, order):
            section.name, section.sort_order = spec.name, order
            section.save(update_fields=["name", "sort_order"])
        seats.extend(Seat(section=section, row=s.row, number=s.number, x=s.x, y=s.y,
                          accessible=s.accessible) for s in spec.seats)
    Seat.objects.bulk_create(seats, batch_size=2000)

    old_areas = {a.code: a for a in venue.ga_areas.all()}
    venue.ga_areas.exclude(code__in={a.code for a in parsed.ga_areas}).delete()
    for spec in parsed.ga_areas:
        values = {"name": spec.name, "capacity": spec.capacity, "x": spec.x, "y": spec.y,
                  "width": spec.width, "height": spec.height}
        area = old_areas.get(spec.code)
        if area is None:
            GAArea.objects.create(venue=venue, code=spec.code, **values)
        else:
            for key, value in values.items():
                setattr(area, key, value)
            area.save(update_fields=list(values))

    venue.map_width, venue.map_height = parsed.width, parsed.height
    if parsed.stage:
        venue.stage_label = parsed.stage.label
        venue.stage_x, venue.stage_y = parsed.stage.x, parsed.stage.y
        venue.stage_width, venue.stage_height = parsed.stage.width, parsed.stage.height
    else:
        # No stage row: a bar centred along the top edge, clear of the seats below it.
        venue.stage_width = max(120.0, parsed.width * 0.3)
        venue.stage_x = (parsed.width - venue.stage_width) / 2
        venue.stage_y, venue.stage_height = 0.0, 30.0


def _check_venue_fields(name: str, address: str, city: str) -> None:
    fields: dict[str, list[str]] = {}
    if not name.strip():
        fields["name"] = [_("Enter the venue's name.")]
    elif len(name) > 200:
        fields["name"] = [_("At most 200 characters.")]
    if len(address) > 300:
        fields["address"] = [_("At most 300 characters.")]
    if len(city) > 100:
        fields["city"] = [_("At most 100 characters.")]
    if fields:
        raise InvalidInput(_("Please correct the venue details."), fields=fields)


def create_venue(*, organizer: Organizer, name: str, data: bytes, filename: str, actor: Any,
                 now: datetime, address: str = "", city: str = "Hong Kong") -> Venue:
    """Create a venue and import its seat map from a CSV or JSON file, all or nothing."""
    _check_venue_fields(name, address, city)
    parsed = _parse_seatmap(data, filename)
    with transaction.atomic():
        venue = Venue.objects.create(
            organizer=organizer, name=name.strip(), address=address.strip(),
            city=city.strip() or "Hong Kong",
            slug=_unique_slug(organizer.venues.all(), name, max_length=80, fallback="venue"),
            seatmap_updated_at=now)
        _write_seatmap(venue, parsed)
        venue.save()
        log_action(action="events.venue.created", obj=venue, actor=actor, now=now,
                   data={"name": venue.name, "organizer": organizer.pk, "filename": filename,
                         "seats": parsed.seat_count, "ga_capacity": parsed.ga_capacity})
    return venue


def replace_seatmap(*, venue: Venue, data: bytes, filename: str, actor: Any,
                    now: datetime) -> Venue:
    """Replace a venue's seat map. Refused once any event on the venue has left draft."""
    parsed = _parse_seatmap(data, filename)
    with transaction.atomic():
        # Publishing locks the venue too, so no event can go on sale mid-import.
        venue = Venue.objects.select_for_update().get(pk=venue.pk)
        if venue.events.exclude(state=Event.State.DRAFT).exists():
            raise SeatMapLocked(_("This venue has published or cancelled events, whose tickets "
                                  "refer to its seats, so its seat map can no longer change. "
                                  "Create a new venue instead."))
        _write_seatmap(venue, parsed)
        venue.seatmap_updated_at = now
        venue.save()
        log_action(action="events.venue.seatmap_replaced", obj=venue, actor=actor, now=now,
                   data={"filename": filename, "seats": parsed.seat_count,
                         "ga_capacity": parsed.ga_capacity})
    return venue


# --- Events ---------------------------------------------------------------------------------


def _check_event_values(values: Mapping[str, Any], *, organizer: Organizer) -> dict[str, Any]:
    fields: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key not in EVENT_FIELDS:
            raise InvalidInput(_("“%(field)s” cannot be changed here.") % {"field": key})
        if key == "title":
            value = (value or "").strip()
            if not value:
                fields[key] = [_("Enter a title.")]
            elif len(value) > 200:
                fields[key] = [_("At most 200 characters.")]
        elif key == "artist":
            value = (value or "").strip()
            if len(value) > 200:
                fields[key] = [_("At most 200 characters.")]
        elif key == "description":
            value = (value or "").strip()
            if len(value) > 20000:
                fields[key] = [_("At most 20,000 characters.")]
        elif key == "venue":
            if not isinstance(value, Venue) or value.organizer_id != organizer.pk:
                fields[key] = [_("Choose one of your venues.")]
        elif key == "personalised":
            value = bool(value)
        elif key == "per_person_limit":
            if not isinstance(value, int) or not 1 <= value <= MAX_PER_PERSON:
                fields[key] = [_("Between 1 and %(max)s.") % {"max": MAX_PER_PERSON}]
        elif key == "hold_minutes":
            if not isinstance(value, int) or not 1 <= value <= MAX_HOLD_MINUTES:
                fields[key] = [_("Between 1 and %(max)s minutes.") % {"max": MAX_HOLD_MINUTES}]
        elif key == "currency":
            value = (value or "").upper()
            if value not in CURRENCY_EXPONENTS:
                fields[key] = [_("Unsupported currency.")]
        clean[key] = value
    if fields:
        raise InvalidInput(_("Please correct the event details."), fields=fields)
    return clean


def create_event(*, organizer: Organizer, venue: Venue, title: str, actor: Any, now: datetime,
                 artist: str = "", description: str = "", personalised: bool = False,
                 per_person_limit: int = 4, hold_minutes: int = 10,
                 currency: str = "HKD") -> Event:
    """Create a draft event."""
    values = _check_event_values(
        {"title": title, "venue": venue, "artist": artist, "description": description,
         "personalised": personalised, "per_person_limit": per_person_limit,
         "hold_minutes": hold_minutes, "currency": currency}, organizer=organizer)
    with transaction.atomic():
        event = Event.objects.create(
            organizer=organizer,
            slug=_unique_slug(Event.objects.all(), f"{values['artist']} {values['title']}"
                              if values["artist"] and values["artist"].lower()
                              not in values["title"].lower() else values["title"],
                              max_length=100, fallback="event"),
            **values)
        log_action(action="events.event.created", obj=event, actor=actor, now=now,
                   data={"title": event.title, "organizer": organizer.pk, "venue": venue.pk})
    return event


def update_event(*, event: Event, changes: Mapping[str, Any], actor: Any, now: datetime) -> Event:
    """Change an event's details. Venue and currency are fixed once it leaves draft."""
    values = _check_event_values(changes, organizer=event.organizer)
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event.pk)
        if event.state == Event.State.CANCELLED:
            raise InvalidState(_("A cancelled event cannot be edited."))
        values = {k: v for k, v in values.items() if getattr(event, k) != v}
        if ("venue" in values or "currency" in values) and event.state != Event.State.DRAFT:
            raise InvalidState(_("The venue and currency cannot change after publishing."))
        if "venue" in values and event.price_zones.exists():
            raise InvalidState(_("Delete this event's price zones before moving it to another "
                                 "venue: they refer to the current venue's sections."))
        if not values:
            return event
        for key, value in values.items():
            setattr(event, key, value)
        event.save(update_fields=[*values, "updated_at"])
        if "currency" in values:
            event.price_zones.update(currency=event.currency)
        log_action(action="events.event.updated", obj=event, actor=actor, now=now,
                   data={k: (v.pk if isinstance(v, Venue) else v) for k, v in values.items()})
    return event


def publish_problems(event: Event, *, now: datetime) -> list[str]:
    """Everything that stops ``event`` from being published; empty when it can be."""
    from smarttickets.events.selectors import zone_capacities

    problems: list[str] = []
    performances = [p for p in event.performances.all() if not p.cancelled]
    if not performances:
        problems.append(_("Add at least one performance."))
    elif all(p.starts_at <= now for p in performances):
        problems.append(_("At least one performance must be in the future."))
    for perf in performances:
        for message in phases.phase_problems(phases.PhaseDates.of(perf)).values():
            problems.append(_("Performance on %(when)s: %(problem)s") % {
                "when": date_format(localtime(perf.starts_at), "DATETIME_FORMAT"),
                "problem": message})
    capacities = zone_capacities(event)
    if not capacities:
        problems.append(_("Add at least one price zone."))
    for zone in event.price_zones.all():
        if capacities.get(zone.pk, 0) <= 0:
            problems.append(_("Price zone “%(name)s” has no seats or standing capacity.")
                            % {"name": zone.name})
    return problems


def publish_event(*, event: Event, actor: Any, now: datetime) -> Event:
    """Put a draft event on the public catalogue, if ``publish_problems`` finds nothing."""
    with transaction.atomic():
        Venue.objects.select_for_update().filter(pk=event.venue_id).first()
        event = Event.objects.select_for_update().select_related("venue").get(pk=event.pk)
        if event.state != Event.State.DRAFT:
            raise InvalidState(_("Only a draft event can be published."))
        problems = publish_problems(event, now=now)
        if problems:
            raise NotPublishable(_("This event cannot be published yet."), problems=problems)
        event.state, event.published_at = Event.State.PUBLISHED, now
        event.save(update_fields=["state", "published_at", "updated_at"])
        log_action(action="events.event.published", obj=event, actor=actor, now=now)
    return event


def cancel_event(*, event: Event, actor: Any, reason: str, now: datetime) -> Event:
    """Cancel a draft or published event. Refunds for sold tickets are the booking app's job."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Give a reason for cancelling."),
                           fields={"reason": [_("This field is required.")]})
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event.pk)
        if event.state == Event.State.CANCELLED:
            raise InvalidState(_("This event is already cancelled."))
        previous = event.state
        event.state = Event.State.CANCELLED
        event.save(update_fields=["state", "updated_at"])
        log_action(action="events.event.cancelled", obj=event, actor=actor, now=now,
                   data={"reason": reason[:500], "previous_state": previous})
    return event


# --- Performances ---------------------------------------------------------------------------


def _phase_values(values: dict[str, Any]) -> dict[str, Any]:
    """Check a performance's dates and blank the fields of the other sales mode."""
    for key in values:
        if key not in PERFORMANCE_FIELDS:
            raise InvalidInput(_("“%(field)s” cannot be changed here.") % {"field": key})
    other = (phases.LOTTERY_FIELDS if values.get("sale_mode") == phases.FIRST_COME
             else phases.FIRST_COME_FIELDS)
    for key in other:
        values[key] = None
    problems = phases.phase_problems(phases.PhaseDates(**values))
    if problems:
        raise InvalidInput(_("Please correct the performance dates."),
                           fields={k: [v] for k, v in problems.items()})
    return values


def add_performance(*, event: Event, starts_at: datetime, sale_mode: str, actor: Any,
                    now: datetime, doors_open_at: datetime | None = None,
                    ends_at: datetime | None = None, **phase_dates: datetime | None
                    ) -> Performance:
    """Add a performance with its sales phase (``onsale_*`` or lottery dates)."""
    values = _phase_values({"starts_at": starts_at, "sale_mode": sale_mode,
                            "doors_open_at": doors_open_at, "ends_at": ends_at, **phase_dates})
    if starts_at <= now:
        raise InvalidInput(_("Please correct the performance dates."),
                           fields={"starts_at": [_("The performance must be in the future.")]})
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event.pk)
        if event.state == Event.State.CANCELLED:
            raise InvalidState(_("A cancelled event cannot get new performances."))
        performance = Performance.objects.create(event=event, **values)
        log_action(action="events.performance.added", obj=performance, actor=actor, now=now,
                   data={"event": event.pk, "starts_at": starts_at.isoformat(),
                         "sale_mode": sale_mode})
    return performance


def update_performance(*, performance: Performance, changes: Mapping[str, Any], actor: Any,
                       now: datetime) -> Performance:
    """Change a performance's times or sales phase.

    On a published event the sales mode is fixed once its sales or lottery entry have opened.
    """
    with transaction.atomic():
        performance = (Performance.objects.select_for_update().select_related("event")
                       .get(pk=performance.pk))
        event = performance.event
        if event.state == Event.State.CANCELLED or performance.cancelled:
            raise InvalidState(_("A cancelled performance cannot be edited."))
        current = {k: getattr(performance, k) for k in PERFORMANCE_FIELDS}
        values = _phase_values({**current, **changes})
        changed = [k for k in PERFORMANCE_FIELDS if values[k] != current[k]]
        if not changed:
            return performance
        opened = phases.phase_status(phases.PhaseDates.of(performance), now) not in (
            phases.NOT_SCHEDULED, phases.SALE_UPCOMING, phases.ENTRY_UPCOMING)
        if (event.state == Event.State.PUBLISHED and opened
                and values["sale_mode"] != current["sale_mode"]):
            raise InvalidState(_("Sales have opened, so the sales mode cannot change."))
        for key in changed:
            setattr(performance, key, values[key])
        performance.save(update_fields=changed)
        log_action(action="events.performance.updated", obj=performance, actor=actor, now=now,
                   data={k: (v.isoformat() if isinstance(v, datetime) else v)
                         for k, v in values.items() if k in changed})
    return performance


# --- Price zones ----------------------------------------------------------------------------


def _check_zone(event: Event, values: dict[str, Any], *, zone: PriceZone | None) -> dict[str, Any]:
    fields: dict[str, list[str]] = {}
    for key in values:
        if key not in ZONE_FIELDS:
            raise InvalidInput(_("“%(field)s” cannot be changed here.") % {"field": key})
    if "name" in values:
        values["name"] = (values["name"] or "").strip()
        if not values["name"]:
            fields["name"] = [_("Enter a name.")]
        elif len(values["name"]) > 100:
            fields["name"] = [_("At most 100 characters.")]
        elif event.price_zones.exclude(pk=getattr(zone, "pk", None)).filter(
                name__iexact=values["name"]).exists():
            fields["name"] = [_("Another price zone of this event has this name.")]
    if "price" in values:
        price = values["price"]
        try:
            if isinstance(price, float):
                raise TypeError
            price = quantize(Decimal(price), event.currency)
            if not Decimal(0) <= price <= MAX_PRICE:
                raise ValueError
            values["price"] = price
        except (TypeError, ValueError, InvalidOperation):
            fields["price"] = [_("Enter an amount between 0 and %(max)s.") % {"max": MAX_PRICE}]
    if "color" in values and not COLOR_RE.match(values["color"] or ""):
        fields["color"] = [_("Use a colour like #2563eb.")]
    for key, model, label in (("section_ids", Section, _("Section")),
                              ("ga_area_ids", GAArea, _("General-admission area"))):
        if key not in values:
            continue
        ids = set(values[key] or ())
        found = set(model.objects.filter(venue_id=event.venue_id, pk__in=ids)
                    .values_list("pk", flat=True))
        if ids - found:
            fields[key] = [_("Choose sections and areas of this event's venue.")]
            continue
        relation = "sections" if key == "section_ids" else "ga_areas"
        taken = (PriceZone.objects.filter(event=event, **{f"{relation}__in": ids})
                 .exclude(pk=getattr(zone, "pk", None))
                 .values_list(f"{relation}__name", "name"))
        if taken:
            fields[key] = [_("%(what)s “%(area)s” is already in price zone “%(zone)s”.")
                           % {"what": label, "area": area, "zone": other}
                           for area, other in sorted(taken)]
        values[key] = sorted(ids)
    if fields:
        raise InvalidInput(_("Please correct the price zone."), fields=fields)
    return values


def _zones_editable(event: Event) -> None:
    if event.state != Event.State.DRAFT:
        raise InvalidState(_("Price zones are fixed once an event is published: tickets are "
                             "counted per zone."))


def create_price_zone(*, event: Event, name: str, price: Decimal, actor: Any, now: datetime,
                      color: str = "#2563eb", section_ids: Iterable[int] = (),
                      ga_area_ids: Iterable[int] = (), sort_order: int | None = None
                      ) -> PriceZone:
    """Add a price zone to a draft event; each section or GA area may be in only one zone."""
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event.pk)
        _zones_editable(event)
        values = _check_zone(event, {"name": name, "price": price, "color": color,
                                     "section_ids": list(section_ids),
                                     "ga_area_ids": list(ga_area_ids)}, zone=None)
        if sort_order is None:
            sort_order = event.price_zones.count()
        zone = PriceZone.objects.create(event=event, name=values["name"], price=values["price"],
                                        color=values["color"].lower(), currency=event.currency,
                                        sort_order=sort_order)
        zone.sections.set(values["section_ids"])
        zone.ga_areas.set(values["ga_area_ids"])
        log_action(action="events.price_zone.created", obj=zone, actor=actor, now=now,
                   data={"event": event.pk, "name": zone.name, "price": str(zone.price),
                         "sections": values["section_ids"], "ga_areas": values["ga_area_ids"]})
    return zone


def update_price_zone(*, zone: PriceZone, changes: Mapping[str, Any], actor: Any,
                      now: datetime) -> PriceZone:
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=zone.event_id)
        _zones_editable(event)
        zone = PriceZone.objects.get(pk=zone.pk)
        values = _check_zone(event, dict(changes), zone=zone)
        plain = [k for k in ("name", "price", "color", "sort_order") if k in values]
        for key in plain:
            setattr(zone, key, values[key].lower() if key == "color" else values[key])
        if plain:
            zone.save(update_fields=plain)
        if "section_ids" in values:
            zone.sections.set(values["section_ids"])
        if "ga_area_ids" in values:
            zone.ga_areas.set(values["ga_area_ids"])
        log_action(action="events.price_zone.updated", obj=zone, actor=actor, now=now,
                   data={k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()})
    return zone


def delete_price_zone(*, zone: PriceZone, actor: Any, now: datetime) -> None:
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=zone.event_id)
        _zones_editable(event)
        log_action(action="events.price_zone.deleted", obj=zone, actor=actor, now=now,
                   data={"event": event.pk, "name": zone.name})
        zone.delete()
