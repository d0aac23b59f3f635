"""Draw a venue's seat map as accessible, responsive SVG, coloured by an event's price zones.

``render_seatmap`` is shared with booking pages: every seat is
``<circle class="seat" data-seat-id="…" data-zone-id="…">`` so they can add ``unavailable`` and
``selected`` classes and their own script.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from itertools import count, pairwise

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from smarttickets.core.money import format_money
from smarttickets.events.models import Event, PriceZone, Seat, Venue

NO_ZONE_COLOR = "#b8bcc8"
_ids = count(1)

# Kept inside the SVG so every page that draws a map (booking included) gets the same look.
_STYLE = (
    "<style>"
    ".seatmap .seat.nozone{fill-opacity:.55}"
    ".seatmap .seat.accessible{stroke:#0b1020;stroke-width:1.1}"
    ".seatmap .seat.unavailable{fill-opacity:1}"
    ".seatmap .label{font:700 22px system-ui,sans-serif;fill:#151826;paint-order:stroke;"
    "stroke:#f6f7fb;stroke-width:4px;stroke-linejoin:round;pointer-events:none}"
    ".seatmap .ga-label{font:700 20px system-ui,sans-serif;fill:#fff;pointer-events:none}"
    ".seatmap .stage-label{pointer-events:none}"
    ".seatmap [data-seat-id][tabindex]{cursor:pointer}"
    "</style>"
)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def seat_radius(seats: list[tuple]) -> float:
    """Half-ish of the typical gap between neighbours in a row, so seats never touch."""
    rows: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for seat in seats:
        rows[(seat[1], seat[2])].append((seat[4], seat[5]))
    gaps = []
    for points in rows.values():
        points.sort()
        gaps.extend(((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5
                    for a, b in pairwise(points))
    gaps = [g for g in gaps if g > 0]
    if not gaps:
        return 6.0
    return max(1.5, min(12.0, statistics.median(gaps) * 0.42))


def render_seatmap(venue: Venue, event: Event | None = None,
                   unavailable_seat_ids: Iterable[int] = (), selectable: bool = False,
                   selected_seat_ids: Iterable[int] = ()) -> SafeString:
    """The venue's map as an inline ``<svg>``; seats coloured by ``event``'s zones if given."""
    unavailable = set(unavailable_seat_ids)
    selected = set(selected_seat_ids)
    zone_of_section: dict[int, PriceZone] = {}
    zone_of_area: dict[int, PriceZone] = {}
    if event is not None:
        for zone in event.price_zones.prefetch_related("sections", "ga_areas"):
            for section in zone.sections.all():
                zone_of_section[section.pk] = zone
            for area in zone.ga_areas.all():
                zone_of_area[area.pk] = zone

    sections = {s.pk: s for s in venue.sections.all()}
    seats = list(Seat.objects.filter(section__venue=venue).order_by("section_id", "id")
                 .values_list("id", "section_id", "row", "number", "x", "y", "accessible"))
    radius = _n(seat_radius(seats))
    uid = next(_ids)
    title = _("Seat map of %(venue)s") % {"venue": venue.name}
    parts = [
        f'<svg class="seatmap" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {venue.map_width} {venue.map_height}" '
        f'preserveAspectRatio="xMidYMid meet" '
        + (f'role="group" aria-label="{escape(title)}"' if selectable
           else f'role="img" aria-labelledby="seatmap-title-{uid} seatmap-desc-{uid}"')
        + f' data-venue-id="{venue.pk}"'
        + (f' data-event-id="{event.pk}"' if event else "") + ">",
        f'<title id="seatmap-title-{uid}">{escape(title)}</title>',
        f'<desc id="seatmap-desc-{uid}">{escape(_describe(venue, event, zone_of_section, zone_of_area, sections))}</desc>',
        _STYLE,
        f'<rect class="stage" x="{_n(venue.stage_x)}" y="{_n(venue.stage_y)}" '
        f'width="{_n(venue.stage_width)}" height="{_n(venue.stage_height)}" rx="6"/>',
        f'<text class="stage-label" x="{_n(venue.stage_x + venue.stage_width / 2)}" '
        f'y="{_n(venue.stage_y + venue.stage_height / 2)}" text-anchor="middle" '
        f'dominant-baseline="central">{escape(venue.stage_label)}</text>',
    ]

    for area in venue.ga_areas.all():
        zone = zone_of_area.get(area.pk)
        color = zone.color if zone else NO_ZONE_COLOR
        label = _("%(name)s (standing, capacity %(capacity)s)") % {
            "name": area.name, "capacity": area.capacity}
        label += " — " + (format_money(zone.price, zone.currency) if zone else _("not on sale"))
        parts.append(
            f'<g class="ga-area"><rect class="ga{"" if zone else " nozone"}" '
            f'data-ga-id="{area.pk}" data-zone-id="{zone.pk if zone else ""}" '
            f'x="{_n(area.x)}" y="{_n(area.y)}" width="{_n(area.width)}" '
            f'height="{_n(area.height)}" rx="8" fill="{escape(color)}">'
            f"<title>{escape(label)}</title></rect>"
            f'<text class="ga-label" x="{_n(area.x + area.width / 2)}" '
            f'y="{_n(area.y + area.height / 2)}" text-anchor="middle" '
            f'dominant-baseline="central">{escape(area.name)}</text></g>')

    by_section: dict[int, list[tuple]] = defaultdict(list)
    for seat in seats:
        by_section[seat[1]].append(seat)
    seat_text = _("%(section)s, row %(row)s, seat %(number)s")
    accessible_text = escape(_("wheelchair accessible"))
    not_on_sale = _("not on sale")
    labels = []
    for section_id, section_seats in by_section.items():
        section = sections[section_id]
        zone = zone_of_section.get(section_id)
        price = escape(format_money(zone.price, zone.currency) if zone else not_on_sale)
        color = escape(zone.color) if zone else NO_ZONE_COLOR
        zone_id = zone.pk if zone else ""
        parts.append(f'<g class="section" data-section-id="{section_id}" '
                     f'data-zone-id="{zone_id}" fill="{color}">')
        name = escape(section.name)
        for seat_id, _sid, row, number, x, y, accessible in section_seats:
            classes = "seat"
            if zone is None:
                classes += " nozone"
            if accessible:
                classes += " accessible"
            if seat_id in unavailable:
                classes += " unavailable"
            if seat_id in selected:
                classes += " selected"
            text = seat_text % {"section": name, "row": escape(row), "number": escape(number)}
            if accessible:
                text += f" ({accessible_text})"
            text += f" — {price}"
            extra = ""
            if selectable and zone is not None:
                if seat_id in unavailable:
                    extra = ' aria-disabled="true"'
                else:
                    extra = (f' tabindex="0" role="checkbox" aria-checked='
                             f'"{"true" if seat_id in selected else "false"}" '
                             f'aria-label="{text}"')
            parts.append(f'<circle class="{classes}" data-seat-id="{seat_id}" '
                         f'data-zone-id="{zone_id}" cx="{_n(x)}" cy="{_n(y)}" r="{radius}"'
                         f"{extra}><title>{text}</title></circle>")
        parts.append("</g>")
        cx = sum(s[4] for s in section_seats) / len(section_seats)
        cy = sum(s[5] for s in section_seats) / len(section_seats)
        labels.append(f'<text class="label" x="{_n(cx)}" y="{_n(cy)}" text-anchor="middle" '
                      f'dominant-baseline="central" aria-hidden="true">{escape(section.code)}'
                      f"</text>")
    parts.extend(labels)
    parts.append("</svg>")
    # Safe: every value interpolated above went through escape().
    return mark_safe("".join(parts))


def _describe(venue, event, zone_of_section, zone_of_area, sections) -> str:
    """A one-paragraph text version of the map for screen readers."""
    if event is None:
        return _("%(sections)s seated sections and %(areas)s standing areas.") % {
            "sections": len(sections), "areas": venue.ga_areas.count()}
    per_zone: dict[int, list[str]] = defaultdict(list)
    zones: dict[int, PriceZone] = {}
    for section_id, zone in zone_of_section.items():
        per_zone[zone.pk].append(sections[section_id].name)
        zones[zone.pk] = zone
    for area in venue.ga_areas.all():
        if area.pk in zone_of_area:
            zone = zone_of_area[area.pk]
            per_zone[zone.pk].append(area.name)
            zones[zone.pk] = zone
    sentences = [
        _("%(zone)s, %(price)s: %(areas)s.") % {
            "zone": zone.name, "price": format_money(zone.price, zone.currency),
            "areas": ", ".join(sorted(per_zone[pk]))}
        for pk, zone in sorted(zones.items(), key=lambda item: -item[1].price)]
    return " ".join(sentences) or _("No price zones yet.")
