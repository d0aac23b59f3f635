"""Organizer dashboard pages: events, performances, price zones, publishing and venues.

Each view parses a form, fetches what it acts on through an ``access_*`` helper and calls one
service; domain errors come back as form errors or a message.
"""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError, NotFound
from smarttickets.events import access, selectors, services
from smarttickets.events.exceptions import InvalidSeatMap, NotPublishable
from smarttickets.events.forms import (
    CancelForm,
    EventForm,
    PerformanceForm,
    PriceZoneForm,
    SeatMapReplaceForm,
    VenueForm,
    add_domain_errors,
)
from smarttickets.events.models import Event, Seat, Venue
from smarttickets.events.seatmap import GASpec, SeatMap, SeatSpec, SectionSpec, StageSpec, to_csv


def _login_url() -> str:
    try:
        return reverse(settings.LOGIN_URL)
    except NoReverseMatch:
        return reverse("admin:login")


def organizer_required(view):
    """Logged-in users on some organizer's staff; NotFound from access helpers becomes 404."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), _login_url())
        if not access.organizers_for_user(request.user).exists():
            return render(request, "events/organizer/no_access.html", status=403)
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(str(exc)) from exc

    return wrapper


def _venue_tz(event: Event):
    return ZoneInfo(event.venue.timezone or settings.TIME_ZONE)


@organizer_required
def dashboard(request):
    data = selectors.dashboard(request.user, now=clock.now())
    return render(request, "events/organizer/dashboard.html", data)


@organizer_required
@require_http_methods(["GET", "POST"])
def event_create(request):
    organizers = list(access.organizers_for_user(request.user))
    venues = selectors.organizer_venues(request.user)
    form = EventForm(request.POST or None, organizers=organizers, venues=venues)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            event = services.create_event(
                organizer=data["organizer"], venue=data["venue"], title=data["title"],
                artist=data["artist"], description=data["description"],
                personalised=data["personalised"], per_person_limit=data["per_person_limit"],
                hold_minutes=data["hold_minutes"], currency=data["currency"],
                actor=request.user, now=clock.now())
        except DomainError as exc:
            add_domain_errors(form, exc)
        else:
            messages.success(request, _("Draft created. Now add performances and price zones."))
            return redirect("organizer:event", event_id=event.pk)
    return render(request, "events/organizer/event_form.html",
                  {"form": form, "event": None, "has_venues": venues.exists()})


@organizer_required
@require_http_methods(["GET", "POST"])
def event_edit(request, event_id: int):
    event = access.access_event_by_user(request.user, event_id)
    venues = selectors.organizer_venues(request.user).filter(organizer=event.organizer)
    initial = {f: getattr(event, f) for f in services.EVENT_FIELDS}
    initial["organizer"] = str(event.organizer_id)
    form = EventForm(request.POST or None, initial=initial, organizers=[event.organizer],
                     venues=venues, editing=True)
    if event.state != Event.State.DRAFT:
        form.fields["venue"].disabled = True
        form.fields["currency"].disabled = True
    if request.method == "POST" and form.is_valid():
        changes = {k: form.cleaned_data[k] for k in services.EVENT_FIELDS
                   if k in form.cleaned_data and not form.fields[k].disabled}
        try:
            services.update_event(event=event, changes=changes, actor=request.user,
                                  now=clock.now())
        except DomainError as exc:
            add_domain_errors(form, exc)
        else:
            messages.success(request, _("Event saved."))
            return redirect("organizer:event", event_id=event.pk)
    return render(request, "events/organizer/event_form.html",
                  {"form": form, "event": event, "has_venues": True})


@organizer_required
def event_summary(request, event_id: int):
    event = access.access_event_by_user(request.user, event_id)
    now = clock.now()
    context = selectors.event_summary(event, now=now)
    context.update({"event": event, "now": now,
                    "problems": services.publish_problems(event, now=now)
                    if event.state == Event.State.DRAFT else []})
    return render(request, "events/organizer/event_summary.html", context)


@organizer_required
@require_http_methods(["GET", "POST"])
def performance_create(request, event_id: int):
    event = access.access_event_by_user(request.user, event_id)
    return _performance_form(request, event, None)


@organizer_required
@require_http_methods(["GET", "POST"])
def performance_edit(request, performance_id: int):
    performance = access.access_performance_by_user(request.user, performance_id)
    return _performance_form(request, performance.event, performance)


def _performance_form(request, event, performance):
    # Times are typed in the venue's local time (Asia/Hong_Kong) whatever the browser's zone.
    with timezone.override(_venue_tz(event)):
        initial = {}
        if performance is not None:
            initial = {f: getattr(performance, f) for f in services.PERFORMANCE_FIELDS}
            for key, value in initial.items():
                if hasattr(value, "tzinfo"):
                    initial[key] = timezone.localtime(value)
        form = PerformanceForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            values = dict(form.cleaned_data)
            try:
                if performance is None:
                    services.add_performance(event=event, actor=request.user, now=clock.now(),
                                             **values)
                else:
                    services.update_performance(performance=performance, changes=values,
                                                actor=request.user, now=clock.now())
            except DomainError as exc:
                add_domain_errors(form, exc)
            else:
                messages.success(request, _("Performance saved."))
                return redirect("organizer:event", event_id=event.pk)
        return render(request, "events/organizer/performance_form.html",
                      {"form": form, "event": event, "performance": performance,
                       "tz_name": event.venue.timezone})


@organizer_required
@require_http_methods(["GET", "POST"])
def zone_create(request, event_id: int):
    event = access.access_event_by_user(request.user, event_id)
    return _zone_form(request, event, None)


@organizer_required
@require_http_methods(["GET", "POST"])
def zone_edit(request, zone_id: int):
    zone = access.access_price_zone_by_user(request.user, zone_id)
    return _zone_form(request, zone.event, zone)


def _zone_form(request, event, zone):
    initial = {}
    if zone is not None:
        initial = {"name": zone.name, "price": zone.price, "color": zone.color,
                   "sections": [str(pk) for pk in zone.sections.values_list("pk", flat=True)],
                   "ga_areas": [str(pk) for pk in zone.ga_areas.values_list("pk", flat=True)]}
    form = PriceZoneForm(request.POST or None, initial=initial, venue=event.venue)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        values = {"name": data["name"], "price": data["price"], "color": data["color"],
                  "section_ids": [int(pk) for pk in data["sections"]],
                  "ga_area_ids": [int(pk) for pk in data["ga_areas"]]}
        try:
            if zone is None:
                services.create_price_zone(event=event, actor=request.user, now=clock.now(),
                                           **values)
            else:
                services.update_price_zone(zone=zone, changes=values, actor=request.user,
                                           now=clock.now())
        except DomainError as exc:
            add_domain_errors(form, exc)
        else:
            messages.success(request, _("Price zone saved."))
            return redirect("organizer:event", event_id=event.pk)
    taken = {}
    for other in event.price_zones.exclude(pk=getattr(zone, "pk", None)).prefetch_related(
            "sections", "ga_areas"):
        for section in other.sections.all():
            taken[f"s{section.pk}"] = other.name
        for area in other.ga_areas.all():
            taken[f"g{area.pk}"] = other.name
    venue = event.venue
    seat_counts = dict(Seat.objects.filter(section__venue=venue).values_list("section_id")
                       .annotate(n=Count("pk"))
                       .values_list("section_id", "n"))
    sections = [{"pk": str(s.pk), "name": s.name, "code": s.code,
                 "seats": seat_counts.get(s.pk, 0), "taken_by": taken.get(f"s{s.pk}")}
                for s in venue.sections.all()]
    # Numbered arenas (101, 102, 201…) read best grouped by level; anything else is one group.
    groups: dict[str, list[dict]] = {}
    for section in sections:
        code = section["code"]
        level = code[0] if len(code) >= 3 and code.isdigit() else ""
        groups.setdefault(level, []).append(section)
    section_groups = [(_("Level %(level)s") % {"level": level} if level else _("Sections"), items)
                      for level, items in groups.items()]
    areas = [{"pk": str(a.pk), "name": a.name, "code": a.code, "capacity": a.capacity,
              "taken_by": taken.get(f"g{a.pk}")} for a in venue.ga_areas.all()]
    return render(request, "events/organizer/zone_form.html", {
        "form": form, "event": event, "zone": zone, "section_groups": section_groups,
        "has_sections": bool(sections), "areas": areas,
        "chosen_sections": set(form["sections"].value() or ()),
        "chosen_areas": set(form["ga_areas"].value() or ()),
        "editable": event.state == Event.State.DRAFT})


@organizer_required
@require_POST
def zone_delete(request, zone_id: int):
    zone = access.access_price_zone_by_user(request.user, zone_id)
    event_id = zone.event_id
    try:
        services.delete_price_zone(zone=zone, actor=request.user, now=clock.now())
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Price zone deleted."))
    return redirect("organizer:event", event_id=event_id)


@organizer_required
@require_http_methods(["GET", "POST"])
def event_publish(request, event_id: int):
    event = access.access_event_by_user(request.user, event_id)
    now = clock.now()
    if request.method == "POST":
        try:
            services.publish_event(event=event, actor=request.user, now=now)
        except NotPublishable as exc:
            messages.error(request, str(exc.message))
        except DomainError as exc:
            messages.error(request, str(exc.message))
            return redirect("organizer:event", event_id=event.pk)
        else:
            messages.success(request, _("“%(title)s” is published and visible to everyone.")
                             % {"title": event.title})
            return redirect("organizer:event", event_id=event.pk)
    summary = selectors.event_summary(event, now=now)
    return render(request, "events/organizer/publish.html", {
        "event": event, "problems": services.publish_problems(event, now=now)
        if event.state == Event.State.DRAFT else [], **summary})


@organizer_required
@require_http_methods(["GET", "POST"])
def event_cancel(request, event_id: int):
    event = access.access_event_by_user(request.user, event_id)
    form = CancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.cancel_event(event=event, reason=form.cleaned_data["reason"],
                                  actor=request.user, now=clock.now())
        except DomainError as exc:
            add_domain_errors(form, exc)
        else:
            messages.success(request, _("The event is cancelled."))
            return redirect("organizer:event", event_id=event.pk)
    return render(request, "events/organizer/cancel.html", {"event": event, "form": form})


@organizer_required
def venue_list(request):
    return render(request, "events/organizer/venues.html",
                  {"venues": selectors.organizer_venues(request.user)})


def _problems_context(exc: InvalidSeatMap) -> dict:
    return {"problems": exc.problems, "truncated": exc.truncated}


@organizer_required
@require_http_methods(["GET", "POST"])
def venue_create(request):
    organizers = list(access.organizers_for_user(request.user))
    form = VenueForm(request.POST or None, request.FILES or None, organizers=organizers)
    extra = {}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        upload = data["seatmap"]
        try:
            venue = services.create_venue(
                organizer=data["organizer"], name=data["name"], address=data["address"],
                city=data["city"], data=upload.read(), filename=upload.name,
                actor=request.user, now=clock.now())
        except InvalidSeatMap as exc:
            form.add_error("seatmap", str(exc.message))
            extra = _problems_context(exc)
        except DomainError as exc:
            add_domain_errors(form, exc)
        else:
            messages.success(request, _("Venue created with its seat map."))
            return redirect("organizer:venue", venue_id=venue.pk)
    return render(request, "events/organizer/venue_form.html", {"form": form, **extra})


@organizer_required
@require_http_methods(["GET", "POST"])
def venue_detail(request, venue_id: int):
    venue = access.access_venue_by_user(request.user, venue_id)
    form = SeatMapReplaceForm(request.POST or None, request.FILES or None)
    extra = {}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["seatmap"]
        try:
            services.replace_seatmap(venue=venue, data=upload.read(), filename=upload.name,
                                     actor=request.user, now=clock.now())
        except InvalidSeatMap as exc:
            form.add_error("seatmap", str(exc.message))
            extra = _problems_context(exc)
        except DomainError as exc:
            form.add_error("seatmap", str(exc.message))
        else:
            messages.success(request, _("Seat map replaced."))
            return redirect("organizer:venue", venue_id=venue.pk)
    venue.refresh_from_db()
    return render(request, "events/organizer/venue_detail.html", {
        "venue": venue, "form": form, "stats": selectors.venue_stats(venue),
        "locked": venue.events.exclude(state=Event.State.DRAFT).exists(),
        "events": venue.events.order_by("-created_at")[:20], **extra})


@organizer_required
def venue_export(request, venue_id: int):
    venue: Venue = access.access_venue_by_user(request.user, venue_id)
    sections = []
    for section in venue.sections.prefetch_related("seats"):
        spec = SectionSpec(section.code, section.name, 0)
        spec.seats.extend(SeatSpec(section.code, s.row, s.number, s.x, s.y, s.accessible, 0)
                          for s in section.seats.all())
        sections.append(spec)
    areas = [GASpec(a.code, a.name, a.capacity, a.x, a.y, a.width, a.height, 0)
             for a in venue.ga_areas.all()]
    stage = StageSpec(venue.stage_label, venue.stage_x, venue.stage_y, venue.stage_width,
                      venue.stage_height)
    body = to_csv(SeatMap(sections, areas, stage, venue.map_width, venue.map_height))
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{venue.slug}-seatmap.csv"'
    return response
