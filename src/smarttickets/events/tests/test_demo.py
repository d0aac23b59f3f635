"""``smarttickets demo`` loads a complete demo and changes nothing when run again."""

import pytest
from django.core.management import call_command

from smarttickets.accounts.models import User
from smarttickets.core.models import AuditEntry
from smarttickets.events.models import Event, Membership, Seat

pytestmark = pytest.mark.django_db


def snapshot():
    return (User.objects.count(), Membership.objects.count(), Seat.objects.count(),
            sorted(Event.objects.values_list("title", "state")), AuditEntry.objects.count())


def test_demo_runs_twice_and_the_second_run_changes_nothing(capsys):
    call_command("demo")
    first = snapshot()
    call_command("demo")

    assert snapshot() == first
    users, memberships, seats, events, _audit = first
    assert (users, memberships) == (3, 2)
    assert seats >= 2000
    assert len(events) == 4 and {state for _t, state in events} == {"published"}
    fan = User.objects.get(email="fan@example.com")
    assert fan.identity_verified
    organizer = Membership.objects.get(user__email="organizer@example.com")
    assert all(getattr(organizer, p) for p in Membership.PERMISSIONS)
    assert Membership.objects.get(user__email="gate@example.com").can_scan_tickets
    out = capsys.readouterr().out
    assert "organizer@example.com" in out and "password: organizer-demo-2026" in out
