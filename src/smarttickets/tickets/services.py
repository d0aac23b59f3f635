"""Issuing and cancelling tickets. Called by booking's payment and refund services, inside
their transaction."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet

from smarttickets.booking.models import HoldItem, Order
from smarttickets.core.audit import log_action
from smarttickets.tickets.models import Ticket

SERIAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_serial() -> str:
    """T + 11 random symbols (55 bits): unguessable, unique by constraint."""
    return "T" + "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(11))


def issue_tickets(*, order: Order, items: Iterable[HoldItem], now: datetime) -> list[Ticket]:
    """One ticket per held unit, carrying its holder's name. Must be called inside the
    transaction that marks ``order`` paid."""
    tickets = [Ticket(serial=new_serial(), order=order, performance_id=order.performance_id,
                      zone_id=item.zone_id, seat_id=item.seat_id,
                      holder_name=item.holder_name or order.buyer.legal_name,
                      price=item.price, currency=order.currency, issued_at=now)
               for item in items]
    Ticket.objects.bulk_create(tickets)
    if not all(t.pk for t in tickets):  # backends without RETURNING ids
        tickets = list(Ticket.objects.filter(order=order, issued_at=now).order_by("pk"))
    for ticket in tickets:
        log_action(action="ticket.issued", obj=ticket, now=now,
                   data={"order": order.code, "seat_id": ticket.seat_id})
    return tickets


def cancel_tickets(*, tickets: QuerySet[Ticket], now: datetime) -> list[Ticket]:
    """Cancel the valid ones among ``tickets``; returns those this call cancelled (each ticket
    is cancelled exactly once, whoever else is trying)."""
    cancelled = []
    for ticket in tickets.filter(state=Ticket.State.VALID).order_by("pk"):
        if Ticket.objects.filter(pk=ticket.pk, state=Ticket.State.VALID).update(
                state=Ticket.State.CANCELLED, cancelled_at=now):
            ticket.state = Ticket.State.CANCELLED
            ticket.cancelled_at = now
            log_action(action="ticket.cancelled", obj=ticket, now=now)
            cancelled.append(ticket)
    return cancelled
