"""Reads for the wallet: a user's tickets with everything the page shows, in two queries."""

from __future__ import annotations

from django.db.models import QuerySet

from smarttickets.tickets.models import Ticket


def tickets_of_user(*, user, include_cancelled: bool = False) -> QuerySet[Ticket]:
    tickets = (Ticket.objects.filter(order__buyer_id=user.pk)
               .select_related("performance__event__venue", "zone", "seat__section", "order")
               .order_by("performance__starts_at", "performance_id", "pk"))
    if not include_cancelled:
        tickets = tickets.filter(state=Ticket.State.VALID)
    return tickets
