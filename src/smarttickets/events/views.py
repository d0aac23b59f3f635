"""Public catalogue pages: the home page with search and filters, and the event page."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from smarttickets.core import clock
from smarttickets.core.exceptions import NotFound
from smarttickets.events import phases, selectors
from smarttickets.events.access import organizers_for_user
from smarttickets.events.forms import CatalogueFilterForm

PAGE_SIZE = 12


def home(request):
    now = clock.now()
    form = CatalogueFilterForm(request.GET or None, venues=selectors.catalogue_venues())
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    events = selectors.public_events(
        now=now, q=filters.get("q", ""), date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
        venue_id=filters["venue"].pk if filters.get("venue") else None,
        max_price=filters.get("max_price"), past=bool(filters.get("past")))
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "events/home.html", {
        "form": form,
        "page": page,
        "cards": selectors.event_cards(list(page.object_list), now=now),
        "query": query.urlencode(),
        "filtered": bool(filters and any(v not in (None, "", False) for v in filters.values())),
        "past": bool(filters.get("past")),
    })


def detail(request, slug: str):
    now = clock.now()
    try:
        event = selectors.get_public_event(slug=slug, user=request.user)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    performances = []
    for perf in event.performances.all():
        dates = phases.PhaseDates.of(perf)
        status = phases.phase_status(dates, now)
        performances.append({"performance": perf, "status": status,
                             "status_label": phases.status_label(status),
                             "selling": status in (phases.ON_SALE, phases.ENTRY_OPEN,
                                                   phases.WINNERS_PURCHASE)})
    zones = list(event.price_zones.all())
    capacities = selectors.zone_capacities(event)
    return render(request, "events/detail.html", {
        "event": event,
        "performances": performances,
        "zones": [(z, capacities.get(z.pk, 0)) for z in zones],
        "min_price": min((z.price for z in zones), default=None),
        "preview": event.state == event.State.DRAFT,
        "can_manage": organizers_for_user(request.user).filter(pk=event.organizer_id).exists(),
        "now": now,
    })
