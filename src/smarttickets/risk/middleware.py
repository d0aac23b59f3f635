"""Risk middleware: the signed first-party device cookie, page views and form timings.

Cheap by design: static files, the API, health checks and non-HTML answers are never recorded;
a page view is one small insert after the response is built.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from smarttickets.risk import telemetry

SKIP_PREFIXES = ("/api/", "/healthz", "/i18n/", "/admin/jsi18n", "/favicon", "/robots.txt",
                 "/pay/webhooks/")
EVENT_CACHE_SECONDS = 3600


def _skip(path: str) -> bool:
    static = (settings.STATIC_URL or "/static/", settings.MEDIA_URL or "/media/")
    return path.startswith(static) or path.startswith(SKIP_PREFIXES)


def event_id_for(request: HttpRequest) -> str | None:
    """The event a page is about (event page, performance or lottery page), cached by key."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    kwargs = match.kwargs
    if match.view_name == "events:detail" and "slug" in kwargs:
        key, lookup = f"risk:event-of:slug:{kwargs['slug']}", ("slug", kwargs["slug"])
    elif "performance_id" in kwargs:
        key = f"risk:event-of:perf:{kwargs['performance_id']}"
        lookup = ("performance", kwargs["performance_id"])
    else:
        return None
    found = cache.get(key)
    if found is None:
        from smarttickets.events.models import Event, Performance

        if lookup[0] == "slug":
            pk = Event.objects.filter(slug=lookup[1]).values_list("pk", flat=True).first()
        else:
            pk = Performance.objects.filter(pk=lookup[1]).values_list("event_id",
                                                                      flat=True).first()
        found = str(pk) if pk is not None else ""
        cache.set(key, found, EVENT_CACHE_SECONDS)
    return found or None


class RiskTelemetryMiddleware:
    """Place after AuthenticationMiddleware (it reads ``request.user``)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        device = telemetry.device_from_cookie(request)
        fresh = device is None
        if fresh:
            device = telemetry.signed_device_cookie(telemetry.new_device_id())
        request.risk_device = device
        token = telemetry.current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            telemetry.current_request.reset(token)
        path = request.path_info
        if _skip(path) or not telemetry.enabled():
            return response
        if fresh:
            # The signed value is set as-is: the cookie's value is the device id.
            response.set_cookie(telemetry.DEVICE_COOKIE, device,
                                max_age=telemetry.DEVICE_MAX_AGE, httponly=True,
                                samesite="Lax", secure=request.is_secure())
        if request.method == "POST":
            self._form_submit(request)
        elif request.method == "GET" and response.status_code == 200 and \
                response.get("Content-Type", "").startswith("text/html"):
            self._page_view(request)
        return response

    def _page_view(self, request: HttpRequest) -> None:
        user = getattr(request, "user", None)
        account = user if user is not None and user.is_authenticated else None
        fields = {"path": request.path[:512], "event_id": event_id_for(request)}
        if account is None:
            # Anonymous page views are part of the spec (account null).
            from smarttickets.core import clock
            from smarttickets.risk.services import record_event_safely

            record_event_safely(account=None, type="page_view", now=clock.now(),
                                fields=fields, **telemetry.context_of(request))
            return
        telemetry.record(request, account, "page_view", fields)

    def _form_submit(self, request: HttpRequest) -> None:
        content_type = request.content_type or ""
        if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return
        form = request.POST.get(telemetry.FORM_FIELD)
        if form not in telemetry.FORMS:
            return
        account = getattr(request, "risk_signup_user", None)
        user = getattr(request, "user", None)
        if account is None and user is not None and user.is_authenticated:
            account = user
        if account is None:
            account = getattr(request, "risk_login_failed_user", None)
        telemetry.record(request, account, "form_submit",
                         {"form": form, **telemetry.parse_timings(
                             request.POST.get(telemetry.TIMINGS_FIELD))})
