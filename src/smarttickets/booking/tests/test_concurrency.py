"""Races on PostgreSQL with real threads: first show a naive take oversells, then that the real
services never do (invariants 1 and 2)."""

import threading
from collections import Counter

import pytest
from django.db import close_old_connections, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from smarttickets.booking import services
from smarttickets.booking.exceptions import SeatsUnavailable, SoldOut
from smarttickets.booking.inventory import ensure_inventory
from smarttickets.booking.models import Hold, HoldItem, InventoryBucket, SeatClaim
from smarttickets.booking.tests.factories import buyer, ga_performance, seated_performance
from smarttickets.core.exceptions import Busy

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BUYERS = 200


THREADS = 32  # PostgreSQL's connection limit is shared with the other test runs


def race(n: int, work) -> list:
    """Run ``work(i)`` for i < n on THREADS threads released at once; results or exceptions."""
    barrier = threading.Barrier(min(n, THREADS))
    results: list = [None] * n

    def run(worker):
        try:
            barrier.wait()
            for i in range(worker, n, THREADS):
                try:
                    results[i] = work(i)
                except Exception as exc:
                    results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(min(n, THREADS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    return results


def naive_take(bucket_id: int, n: int) -> bool:
    """Read-check-write: the pattern the real take_units avoids."""
    with transaction.atomic():
        bucket = InventoryBucket.objects.get(pk=bucket_id)
        if bucket.capacity - bucket.taken < n:
            return False
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.005)")  # widen the window, as real work would
        InventoryBucket.objects.filter(pk=bucket_id).update(taken=bucket.taken + n)
        return True


def naive_claim(claims: dict, seat_id: int, lock: threading.Lock) -> bool:
    """Check-then-act on seat availability without the unique constraint."""
    free = seat_id not in claims
    threading.Event().wait(0.002)
    if free:
        with lock:
            claims.setdefault(seat_id, []).append(threading.get_ident())
        return True
    return False


def test_naive_read_check_write_does_oversell():
    performance, zone = ga_performance(capacity=50)
    ensure_inventory(performance=performance)
    bucket = InventoryBucket.objects.filter(performance=performance, zone=zone).first()
    # Compare against the shard's own capacity; the naive take loses updates.
    results = race(BUYERS, lambda i: naive_take(bucket.pk, 1))

    successes = sum(1 for r in results if r is True)
    assert successes > bucket.capacity  # oversold: more buyers told "yes" than units


def test_naive_seat_check_then_act_double_sells():
    claims: dict = {}
    lock = threading.Lock()
    results = race(50, lambda i: naive_claim(claims, i % 5, lock))

    assert sum(1 for r in results if r is True) > 5
    assert any(len(owners) > 1 for owners in claims.values())


def test_200_buyers_racing_for_50_ga_places_get_exactly_50():
    performance, zone = ga_performance(capacity=50)
    users = [buyer() for _ in range(BUYERS)]
    ensure_inventory(performance=performance)
    now = timezone.now()

    results = race(BUYERS, lambda i: services.create_hold(
        user=users[i], performance=performance, now=now,
        selection=services.Selection(zone_id=zone.pk, quantity=1)))

    won = [r for r in results if isinstance(r, Hold)]
    lost = [r for r in results if not isinstance(r, Hold)]
    assert len(won) == 50
    assert all(isinstance(r, SoldOut | Busy) for r in lost), {type(r) for r in lost}
    assert InventoryBucket.objects.filter(performance=performance).aggregate(
        n=Sum("taken"))["n"] == 50
    assert HoldItem.objects.filter(hold__performance=performance).count() == 50


def test_200_buyers_racing_for_50_seats_never_share_a_seat():
    performance, zone, seats = seated_performance(rows=5, per_row=10)
    users = [buyer() for _ in range(BUYERS)]
    ensure_inventory(performance=performance)
    now = timezone.now()

    def work(i):
        if i % 2:  # half pick a seat on the map, half ask for the best available
            return services.create_hold(user=users[i], performance=performance, now=now,
                                        selection=services.Selection(
                                            seat_ids=(seats[i % 50].pk,)))
        return services.create_hold(user=users[i], performance=performance, now=now,
                                    selection=services.Selection(zone_id=zone.pk, quantity=1))

    results = race(BUYERS, work)

    won = [r for r in results if isinstance(r, Hold)]
    lost = [r for r in results if not isinstance(r, Hold)]
    assert all(isinstance(r, SoldOut | SeatsUnavailable | Busy) for r in lost), {
        type(r) for r in lost}
    held_seats = list(HoldItem.objects.filter(hold__performance=performance)
                      .values_list("seat_id", flat=True))
    assert len(held_seats) == len(won) <= 50
    assert max(Counter(held_seats).values()) == 1
    assert SeatClaim.objects.filter(performance=performance).count() == len(won)
    assert InventoryBucket.objects.filter(performance=performance).aggregate(
        n=Sum("taken"))["n"] == len(won)
    assert len(won) >= 45  # contention is a retry, not a lost sale
