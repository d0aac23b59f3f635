"""Booking API at /api/booking/: availability, holds (create, read, release), order status."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from smarttickets.accounts.api_auth import API_AUTH
from smarttickets.booking import selectors, services
from smarttickets.booking.client import client_ip, device_id
from smarttickets.booking.exceptions import InvalidSelection
from smarttickets.booking.models import Hold, Order
from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError
from smarttickets.core.idempotency import idempotent
from smarttickets.risk import gates as risk_gates
from smarttickets.risk import telemetry as risk_telemetry

router = Router(tags=["booking"])


AUTH = API_AUTH
MAX_SEATS = 20


class Error(Schema):
    code: str
    message: str


class ZoneOut(Schema):
    zone_id: int
    name: str
    price: Decimal
    currency: str
    capacity: int
    available: int
    seated: bool


class AvailabilityOut(Schema):
    performance_id: int
    sale_open: bool
    message: str
    zones: list[ZoneOut]
    unavailable_seat_ids: list[int]


class HoldIn(Schema):
    zone_id: int | None = Field(None, description="Price zone, with quantity.")
    quantity: int = Field(0, ge=0, le=MAX_SEATS, description="Tickets in the zone (best "
                                                              "available seats, or GA places).")
    seat_ids: list[int] = Field(default_factory=list, max_length=MAX_SEATS,
                                description="Seats picked on the map, instead of a quantity.")
    entitlement_id: int | None = Field(None, description="Buy with a lottery/queue "
                                                         "entitlement.")


class HoldItemOut(Schema):
    zone_id: int
    seat_id: int | None
    seat_label: str | None
    price: Decimal


class HoldOut(Schema):
    id: int
    performance_id: int
    state: str
    quantity: int
    expires_at: datetime
    total: Decimal
    currency: str
    items: list[HoldItemOut]
    order_code: str | None


class OrderOut(Schema):
    code: str
    performance_id: int
    state: str
    total: Decimal
    currency: str
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    ticket_ids: list[int]


def hold_out(hold: Hold, *, new: bool = False) -> dict:
    items = selectors.hold_items(hold=hold)
    # A hold made by this very request has no order yet.
    order = None if new else Order.objects.filter(hold=hold).values_list("code",
                                                                          flat=True).first()
    return {
        "id": hold.pk, "performance_id": hold.performance_id, "state": hold.state,
        "quantity": hold.quantity, "expires_at": hold.expires_at,
        "total": sum((i.price for i in items), Decimal("0")),
        "currency": items[0].zone.currency if items else "",
        "items": [{"zone_id": i.zone_id, "seat_id": i.seat_id,
                   "seat_label": i.seat.label if i.seat else None, "price": i.price}
                  for i in items],
        "order_code": order,
    }


@router.get("/performances/{performance_id}/availability", response=AvailabilityOut,
            summary="Availability per price zone, and the seats that are taken")
def availability(request: HttpRequest, performance_id: int):
    now = clock.now()
    performance = selectors.access_performance(performance_id=performance_id)
    is_open, why = services.sale_state(performance=performance, now=now)
    return {
        "performance_id": performance.pk, "sale_open": is_open, "message": why,
        "zones": [{"zone_id": z.zone.pk, "name": z.zone.name, "price": z.zone.price,
                   "currency": z.zone.currency, "capacity": z.capacity,
                   "available": z.available, "seated": z.seated}
                  for z in selectors.availability(performance=performance, now=now)],
        "unavailable_seat_ids": selectors.unavailable_seat_ids(performance=performance, now=now),
    }


@router.post("/performances/{performance_id}/holds", auth=AUTH,
             response={201: HoldOut, 400: Error, 403: Error, 404: Error, 409: Error,
                       422: Error, 429: Error},
             summary="Hold tickets: a zone and quantity, or seat ids (Idempotency-Key "
                     "supported)")
@idempotent
def create_hold(request: HttpRequest, performance_id: int, payload: HoldIn):
    performance = selectors.access_performance(performance_id=performance_id)
    return place_hold(request, performance=performance, payload=payload)


def place_hold(request: HttpRequest, *, performance, payload: HoldIn,
               known_zones: dict | None = None) -> Status:
    """The hold endpoint's body, shared with the lean WSGI entry (booking/fastpath.py), which
    brings its own cached ``performance`` and ``known_zones`` (see services.create_hold)."""
    if payload.seat_ids and payload.quantity:
        raise InvalidSelection(_("Send either seat_ids or zone_id with quantity, not both."))
    if not payload.seat_ids and payload.zone_id is None:
        raise InvalidSelection(_("Send seat_ids, or zone_id with quantity."))
    selection = services.Selection(zone_id=payload.zone_id, quantity=payload.quantity,
                                   seat_ids=tuple(payload.seat_ids))
    risk_fields = {"event_id": performance.event_id, "performance_id": performance.pk,
                   "quantity": payload.quantity or len(payload.seat_ids)}
    if risk_gates.enabled():
        risk_gates.check(attempt=risk_gates.attempt_from_request(
            request, object_type="events.performance", object_id=performance.pk,
            **risk_fields), checkpoint="hold")
    try:
        hold = services.create_hold(user=request.auth, performance=performance,
                                    selection=selection, now=clock.now(), ip=client_ip(request),
                                    device_id=device_id(request),
                                    entitlement_id=payload.entitlement_id,
                                    known_zones=known_zones)
    except DomainError:
        risk_telemetry.record_hold(request, request.auth, success=False, **risk_fields)
        raise
    risk_telemetry.record_hold(request, request.auth, success=True, hold_id=hold.pk,
                               **risk_fields)
    return Status(201, hold_out(hold, new=True))


@router.get("/holds/{hold_id}", auth=AUTH, response={200: HoldOut, 404: Error},
            summary="One of my holds")
def get_hold(request: HttpRequest, hold_id: int):
    return hold_out(selectors.access_hold_by_user(hold_id=hold_id, user=request.auth))


def _release(request: HttpRequest, hold_id: int) -> dict:
    hold = selectors.access_hold_by_user(hold_id=hold_id, user=request.auth)
    if hold.state != Hold.State.LIVE:
        # Released, expired or bought: "not found" for a live hold, whatever the reason.
        selectors.access_live_hold_by_user(hold_id=hold_id, user=request.auth, now=clock.now())
    return hold_out(services.release_hold(hold=hold, actor=request.auth, now=clock.now()))


@router.delete("/holds/{hold_id}", auth=AUTH, response={200: HoldOut, 404: Error},
               summary="Release a live hold")
def delete_hold(request: HttpRequest, hold_id: int):
    return _release(request, hold_id)


@router.post("/holds/{hold_id}/release", auth=AUTH, response={200: HoldOut, 404: Error},
             summary="Release a live hold (for clients that cannot send DELETE)")
@idempotent
def release_hold(request: HttpRequest, hold_id: int):
    return Status(200, _release(request, hold_id))


@router.get("/orders/{code}", auth=AUTH, response={200: OrderOut, 404: Error},
            summary="Status of one of my orders")
def order_status(request: HttpRequest, code: str):
    order = selectors.access_order_by_buyer(code=code, user=request.auth)
    return {"code": order.code, "performance_id": order.performance_id, "state": order.state,
            "total": order.total, "currency": order.currency, "created_at": order.created_at,
            "expires_at": order.expires_at, "paid_at": order.paid_at,
            "ticket_ids": list(order.tickets.order_by("pk").values_list("pk", flat=True))}
