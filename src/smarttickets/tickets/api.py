"""Tickets API at /api/tickets/: the signed-in user's tickets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.security import django_auth

from smarttickets.accounts.api_auth import token_auth
from smarttickets.tickets import selectors

router = Router(tags=["tickets"])


class TicketOut(Schema):
    id: int
    serial: str
    state: str
    order_code: str
    performance_id: int
    event_title: str
    starts_at: datetime
    venue: str
    zone: str
    seat_id: int | None
    seat_label: str | None
    holder_name: str
    price: Decimal
    currency: str


@router.get("/mine", auth=[token_auth, django_auth], response=list[TicketOut],
            summary="My tickets (valid ones; ?include_cancelled=true for all)")
def my_tickets(request: HttpRequest, include_cancelled: bool = False):
    return [{"id": t.pk, "serial": t.serial, "state": t.state, "order_code": t.order.code,
             "performance_id": t.performance_id, "event_title": t.performance.event.title,
             "starts_at": t.performance.starts_at, "venue": t.performance.event.venue.name,
             "zone": t.zone.name, "seat_id": t.seat_id,
             "seat_label": t.seat.label if t.seat else None, "holder_name": t.holder_name,
             "price": t.price, "currency": t.currency}
            for t in selectors.tickets_of_user(user=request.auth,
                                               include_cancelled=include_cancelled)]
