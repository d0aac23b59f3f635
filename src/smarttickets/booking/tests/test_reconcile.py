"""`smarttickets booking reconcile [--repair]` finds and repairs injected drift."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F, Sum
from django.utils import timezone

from smarttickets.booking import services
from smarttickets.booking.models import InventoryBucket, SeatClaim
from smarttickets.booking.tests.factories import buyer, ga_performance, seated_performance
from smarttickets.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_clean_inventory_reconciles(capsys):
    performance, zone = ga_performance(capacity=10)
    services.create_hold(user=buyer(), performance=performance, now=timezone.now(),
                         selection=services.Selection(zone_id=zone.pk, quantity=3))

    call_command("booking", "reconcile")

    out = capsys.readouterr().out
    assert "OK: counters equal the facts" in out
    assert f"{performance.pk:>11} {zone.pk:>6}       10        3      3" in out


def test_drift_is_found_exits_1_and_is_repaired_with_an_audit(capsys):
    performance, _zone, seats = seated_performance()
    services.create_hold(user=buyer(), performance=performance, now=timezone.now(),
                         selection=services.Selection(seat_ids=(seats[0].pk, seats[1].pk)))
    InventoryBucket.objects.filter(performance=performance, taken=0).update(
        taken=F("taken") + 1)  # a lost decrement somewhere
    orphan = services.create_hold(user=buyer(), performance=performance, now=timezone.now(),
                                  selection=services.Selection(seat_ids=(seats[5].pk,)))
    from smarttickets.booking.models import Hold
    Hold.objects.filter(pk=orphan.pk).update(state=Hold.State.RELEASED)  # claim left behind

    with pytest.raises(CommandError) as exc:
        call_command("booking", "reconcile")
    assert exc.value.returncode == 1
    assert "DRIFT" in capsys.readouterr().out

    call_command("booking", "reconcile", "--repair")

    assert InventoryBucket.objects.filter(performance=performance).aggregate(
        n=Sum("taken"))["n"] == 2
    assert list(SeatClaim.objects.order_by("seat_id").values_list("seat_id", flat=True)) == [
        seats[0].pk, seats[1].pk]
    assert AuditEntry.objects.filter(action="inventory.repaired").count() == 1
    assert AuditEntry.objects.filter(action="seatclaims.removed_stale").count() == 1
    capsys.readouterr()
    call_command("booking", "reconcile")
    assert "OK" in capsys.readouterr().out


def test_expire_holds_command(capsys):
    performance, zone = ga_performance()
    from datetime import timedelta
    services.create_hold(user=buyer(), performance=performance,
                         now=timezone.now() - timedelta(minutes=30),
                         selection=services.Selection(zone_id=zone.pk, quantity=1))

    call_command("booking", "expire-holds")

    assert "expired 1" in capsys.readouterr().out
    assert InventoryBucket.objects.aggregate(n=Sum("taken"))["n"] == 0
