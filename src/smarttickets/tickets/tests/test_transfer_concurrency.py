"""PostgreSQL: two offers accepted at the same moment by one recipient cannot both slip under
the per-person limit (the recipient's row lock serialises the checks)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from smarttickets.booking.tests.factories import buyer
from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError
from smarttickets.events.models import Event
from smarttickets.tickets import services as tickets
from smarttickets.tickets.models import Ticket, Transfer
from smarttickets.tickets.tests.conftest import make_show


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_accepts_respect_the_recipients_limit():
    show = make_show(n_tickets=2)
    friend = buyer(email="friend@example.com")
    offers = [tickets.start_transfer(ticket=t, sender=show.fan, to_email=friend.email,
                                     now=clock.now()) for t in show.tickets]
    Event.objects.filter(pk=show.event.pk).update(per_person_limit=1)
    barrier = threading.Barrier(len(offers))
    outcomes: list[str] = []

    def accept(transfer):
        try:
            barrier.wait()
            tickets.accept_transfer(transfer=transfer, recipient=friend, now=clock.now())
            outcomes.append("accepted")
        except DomainError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(t,)) for t in offers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["accepted", "limit_reached"]
    assert Ticket.objects.filter(holder_user=friend).count() == 1
    assert sorted(Transfer.objects.values_list("state", flat=True)) == ["accepted", "pending"]
