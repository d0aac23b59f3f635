"""Booking pages: performance (seat map, zones), hold and checkout, my orders, organizer views.

Thin: parse, authorize, call one service, render or redirect.
"""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from smarttickets.booking import selectors, services
from smarttickets.booking.client import DEVICE_COOKIE, client_ip, device_id
from smarttickets.booking.exceptions import IdentityRequired
from smarttickets.booking.forms import (
    HolderNamesForm,
    OrderSearchForm,
    SeatPickForm,
    ZoneQuantityForm,
)
from smarttickets.booking.models import Entitlement, Order
from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError, NotFound
from smarttickets.core.money import to_minor
from smarttickets.risk import gates as risk_gates
from smarttickets.risk import telemetry as risk_telemetry


def url_or_none(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _not_found(func):
    """Domain NotFound → 404 page (same for missing and not yours)."""

    def wrapper(request, *args, **kwargs):
        try:
            return func(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(str(exc)) from exc

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@_not_found
def performance_page(request: HttpRequest, performance_id: int) -> HttpResponse:
    now = clock.now()
    performance = selectors.access_performance(performance_id=performance_id)
    is_open, why = services.sale_state(performance=performance, now=now)
    entitlements = []
    if request.user.is_authenticated:
        entitlements = list(Entitlement.objects.filter(
            user=request.user, performance=performance, state=Entitlement.State.OPEN,
            expires_at__gt=now).select_related("zone"))
    zones = selectors.availability(performance=performance, now=now)
    context = {
        "performance": performance, "event": performance.event, "venue": performance.event.venue,
        "zones": zones, "sale_open": is_open, "closed_reason": why,
        "entitlements": entitlements, "bookable": is_open or bool(entitlements),
        "unavailable_seat_ids": selectors.unavailable_seat_ids(performance=performance, now=now),
        "has_seats": any(z.seated for z in zones),
        "identity_ok": request.user.is_authenticated and request.user.identity_verified,
        "profile_url": url_or_none("accounts:profile"),
        "live_holds": (selectors.live_holds_of_buyer(user=request.user, now=now)
                       .filter(performance=performance)
                       if request.user.is_authenticated else []),
    }
    response = render(request, "booking/performance.html", context)
    if DEVICE_COOKIE not in request.COOKIES:
        response.set_cookie(DEVICE_COOKIE, secrets.token_urlsafe(16), max_age=365 * 24 * 3600,
                            httponly=True, samesite="Lax",
                            secure=request.is_secure())
    return response


@login_required
@require_POST
@_not_found
def hold_create(request: HttpRequest, performance_id: int) -> HttpResponse:
    now = clock.now()
    performance = selectors.access_performance(performance_id=performance_id)
    back = reverse("booking:performance", args=[performance.pk])
    if "seat_ids" in request.POST:
        form = SeatPickForm(request.POST)
        if not form.is_valid():
            messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
            return redirect(back)
        selection = services.Selection(seat_ids=tuple(form.cleaned_data["seat_ids"]))
    else:
        form = ZoneQuantityForm(request.POST)
        if not form.is_valid():
            messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
            return redirect(back)
        selection = services.Selection(zone_id=form.cleaned_data["zone"],
                                       quantity=form.cleaned_data["quantity"])
    quantity = selection.quantity or len(selection.seat_ids)
    risk_fields = {"event_id": performance.event_id, "performance_id": performance.pk,
                   "quantity": quantity}
    refused = risk_gates.web_check(request, checkpoint="hold", back=back,
                                   object_type="events.performance", object_id=performance.pk,
                                   **risk_fields)
    if refused is not None:
        return refused
    try:
        hold = services.create_hold(user=request.user, performance=performance,
                                    selection=selection, now=now, ip=client_ip(request),
                                    device_id=device_id(request),
                                    entitlement_id=form.cleaned_data.get("entitlement"))
    except DomainError as exc:
        risk_telemetry.record_hold(request, request.user, success=False, **risk_fields)
        messages.error(request, str(exc.message))
        return redirect(back)
    risk_telemetry.record_hold(request, request.user, success=True, hold_id=hold.pk,
                               **risk_fields)
    return redirect("booking:hold", hold_id=hold.pk)


@login_required
@_not_found
def hold_page(request: HttpRequest, hold_id: int) -> HttpResponse:
    now = clock.now()
    hold = selectors.access_hold_by_user(hold_id=hold_id, user=request.user)
    order = Order.objects.filter(hold=hold).first()
    if hold.state != hold.State.LIVE or hold.expires_at <= now:
        if order is not None:
            return redirect("booking:order", code=order.code)
        messages.warning(request, _ended_message())
        return redirect("booking:performance", performance_id=hold.performance_id)
    items = selectors.hold_items(hold=hold)
    event = hold.performance.event
    form = HolderNamesForm(request.POST or None, count=len(items), personalised=event.personalised,
                           initial_names=[i.holder_name for i in items])
    if request.method == "POST" and form.is_valid():
        try:
            order = services.place_order(hold=hold, buyer=request.user,
                                         holder_names=form.names(), now=now)
        except DomainError as exc:
            for field, errors in exc.fields.items():
                if field in form.fields:
                    for error in errors if isinstance(errors, list) else [errors]:
                        form.add_error(field, error)
            if not exc.fields:
                messages.error(request, str(exc.message))
                if isinstance(exc, IdentityRequired):
                    return redirect("booking:performance", performance_id=hold.performance_id)
        else:
            risk_telemetry.record_order(
                request, request.user, order_id=order.pk, event_id=event.pk,
                performance_id=hold.performance_id, quantity=len(items),
                amount_minor=to_minor(order.total, order.currency), currency=order.currency)
            return redirect("booking:order", code=order.code)
    total = sum(i.price for i in items)
    return render(request, "booking/hold.html", {
        "hold": hold, "items": items, "event": event, "performance": hold.performance,
        "form": form, "total": total, "currency": items[0].zone.currency if items else "",
        "buyer_name": request.user.legal_name, "order": order,
    })


def _ended_message() -> str:
    from django.utils.translation import gettext as _

    return _("Your hold has ended and the tickets went back on sale.")


@login_required
@require_POST
@_not_found
def hold_release(request: HttpRequest, hold_id: int) -> HttpResponse:
    from django.utils.translation import gettext as _

    hold = selectors.access_hold_by_user(hold_id=hold_id, user=request.user)
    services.release_hold(hold=hold, actor=request.user, now=clock.now())
    messages.success(request, _("Your tickets were released."))
    return redirect("booking:performance", performance_id=hold.performance_id)


@login_required
def my_orders(request: HttpRequest) -> HttpResponse:
    now = clock.now()
    page = Paginator(selectors.orders_of_buyer(user=request.user), 20).get_page(
        request.GET.get("page"))
    return render(request, "booking/my_orders.html", {
        "page": page, "holds": selectors.live_holds_of_buyer(user=request.user, now=now),
        "wallet_url": url_or_none("tickets:wallet")})


@login_required
@_not_found
def order_page(request: HttpRequest, code: str) -> HttpResponse:
    order = selectors.access_order_by_buyer(code=code, user=request.user)
    now = clock.now()
    pay_open = (order.state == Order.State.PENDING and order.hold.state == order.hold.State.LIVE
                and order.expires_at > now)
    return render(request, "booking/order.html", {
        "order": order, "items": selectors.hold_items(hold=order.hold),
        "tickets": list(order.tickets.select_related("zone", "seat__section").order_by("pk")),
        "pay_open": pay_open, "wallet_url": url_or_none("tickets:wallet"),
    })


# --- organizer -----------------------------------------------------------------------------

def _staff_only(request: HttpRequest) -> None:
    if not selectors.staff_organizer_ids(user=request.user):
        raise Http404


@login_required
def organizer_orders(request: HttpRequest) -> HttpResponse:
    _staff_only(request)
    form = OrderSearchForm(request.GET or None)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    orders = selectors.organizer_orders(user=request.user, query=query)
    page = Paginator(orders, 25).get_page(request.GET.get("page"))
    return render(request, "booking/organizer/orders.html", {
        "form": form, "page": page, "query": query,
        "performances": selectors.staff_performances(user=request.user)[:50]})


@login_required
@_not_found
def organizer_order(request: HttpRequest, code: str) -> HttpResponse:
    from smarttickets.core.models import AuditEntry

    order = selectors.access_order_by_staff(code=code, user=request.user)
    tickets = list(order.tickets.select_related("zone", "seat__section").order_by("pk"))
    audit = AuditEntry.objects.filter(object_type="booking.order", object_id=str(order.pk)
                                      ).select_related("actor").order_by("created_at", "id")
    return render(request, "booking/organizer/order.html", {
        "order": order, "tickets": tickets, "audit": audit,
        "items": selectors.hold_items(hold=order.hold),
        "refund_url": url_or_none("payments:refund", order.code),
    })


@login_required
@_not_found
def organizer_sales(request: HttpRequest, performance_id: int) -> HttpResponse:
    performance = selectors.access_performance_by_staff(performance_id=performance_id,
                                                        user=request.user)
    rows = selectors.sales_report(performance=performance, now=clock.now())
    totals = {key: sum(getattr(r, key) for r in rows)
              for key in ("capacity", "sold", "held", "reserved", "available", "revenue")}
    return render(request, "booking/organizer/sales.html", {
        "performance": performance, "rows": rows, "totals": totals,
        "currency": performance.event.currency})
