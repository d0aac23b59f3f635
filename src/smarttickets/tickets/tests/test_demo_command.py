from io import StringIO

import pytest
from django.core.management import call_command

from smarttickets.tickets.models import Ticket


@pytest.mark.slow
@pytest.mark.django_db
def test_demo_fan_gets_two_paid_tickets_once(mailoutbox):
    call_command("demo", stdout=StringIO())
    out = StringIO()
    call_command("tickets", "demo", stdout=out)
    assert "paid, 2 tickets" in out.getvalue()
    call_command("tickets", "demo", stdout=out)
    assert "already has tickets" in out.getvalue()
    tickets = Ticket.objects.filter(holder_user__email="fan@example.com", state="valid")
    assert tickets.count() == 2
    assert {t.order.state for t in tickets} == {"paid"}
