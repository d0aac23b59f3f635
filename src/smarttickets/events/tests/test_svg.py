"""The seat map drawn as SVG: zones' colours, accessible titles, hooks for booking pages."""

import re

import pytest
from django.template import Context, Template

from smarttickets.events.models import Seat
from smarttickets.events.seatmap_svg import NO_ZONE_COLOR, render_seatmap
from smarttickets.events.tests.factories import publishable_event

pytestmark = pytest.mark.django_db


def test_seats_are_coloured_by_zone_with_titles_and_data_attributes():
    event = publishable_event()
    seated = event.price_zones.get(name="Seated")
    seat = Seat.objects.get(section__venue=event.venue, section__code="A", row="1", number="3")

    svg = render_seatmap(event.venue, event)

    assert svg.startswith('<svg class="seatmap"')
    assert 'role="img"' in svg
    assert f'viewBox="0 0 {event.venue.map_width} {event.venue.map_height}"' in svg
    assert svg.count('<circle class="seat') == 20
    assert (f'<circle class="seat" data-seat-id="{seat.pk}" data-zone-id="{seated.pk}"'
            in svg)
    assert "<title>Section A, row 1, seat 3 — HK$880.00</title>" in svg
    assert f'data-section-id="{seat.section_id}" data-zone-id="{seated.pk}" fill="#4f46e5"' in svg
    # Section B is in no zone: grey, and the title says so.
    assert f'fill="{NO_ZONE_COLOR}"' in svg
    assert "<title>Section B, row 1, seat 1 — not on sale</title>" in svg
    assert "Standing floor (standing, capacity 50) — HK$480.00" in svg
    assert "Section A, row 2, seat 1 (wheelchair accessible) — HK$880.00" in svg


def test_unavailable_and_selectable_seats_for_booking_pages():
    event = publishable_event()
    taken, free = Seat.objects.filter(section__venue=event.venue, section__code="A")[:2]

    svg = render_seatmap(event.venue, event, unavailable_seat_ids=[taken.pk], selectable=True)

    taken_tag = re.search(rf'<circle [^>]*data-seat-id="{taken.pk}"[^>]*>', svg).group(0)
    free_tag = re.search(rf'<circle [^>]*data-seat-id="{free.pk}"[^>]*>', svg).group(0)
    assert 'class="seat unavailable"' in taken_tag or 'unavailable"' in taken_tag
    assert 'aria-disabled="true"' in taken_tag and "tabindex" not in taken_tag
    assert 'tabindex="0"' in free_tag and 'role="checkbox"' in free_tag
    assert 'role="group"' in svg


def test_names_are_escaped():
    event = publishable_event()
    event.venue.sections.filter(code="A").update(name='<script>"x"</script>')

    svg = render_seatmap(event.venue, event)

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_template_tag_renders_the_same_map():
    event = publishable_event()

    html = Template("{% load seatmap %}{% render_seatmap venue event %}").render(
        Context({"venue": event.venue, "event": event}))

    assert html.count("<circle") == 20
