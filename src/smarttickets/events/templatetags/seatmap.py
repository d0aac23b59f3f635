"""``{% load seatmap %}``: ``{% render_seatmap venue event unavailable_seat_ids=ids selectable=True %}``."""

from django import template

from smarttickets.events import seatmap_svg
from smarttickets.events.phases import PhaseDates, phase_status, status_label

register = template.Library()


@register.simple_tag
def render_seatmap(venue, event=None, unavailable_seat_ids=(), selectable=False,
                   selected_seat_ids=()):
    return seatmap_svg.render_seatmap(venue, event, unavailable_seat_ids=unavailable_seat_ids,
                                      selectable=selectable, selected_seat_ids=selected_seat_ids)


@register.simple_tag
def sales_status(performance, now):
    """The phase a performance is in at ``now``, as a short human label."""
    return status_label(phase_status(PhaseDates.of(performance), now))


@register.filter
def poster_variant(event) -> str:
    """A stable colour scheme for an event's card, so the catalogue is not one colour."""
    return f"poster-{(event.pk or 0) % 6}"


@register.simple_tag(takes_context=True)
def querystring_page(context, number):
    """The current filters with another page number."""
    query = context.get("query", "")
    return f"?{query}&page={number}" if query else f"?page={number}"
