"""Inventory counters: take and give back units with conditional UPDATEs, never read-modify-write.

Must be called inside the caller's transaction; nothing here opens one except the savepoint
around seat claims (a failed INSERT must not poison the caller's transaction on PostgreSQL).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum

from smarttickets.booking.models import InventoryBucket, SeatClaim
from smarttickets.events.models import GAArea, Performance, PriceZone, Seat


def shard_count() -> int:
    return max(1, int(getattr(settings, "BOOKING_BUCKET_SHARDS", 4)))


def zone_capacity(zone: PriceZone) -> int:
    seats = Seat.objects.filter(section__in=zone.sections.all()).count()
    ga = GAArea.objects.filter(price_zones=zone).aggregate(n=Sum("capacity"))["n"] or 0
    return seats + ga


def split_capacity(capacity: int, shards: int) -> list[int]:
    shards = max(1, min(shards, capacity)) if capacity else 1
    base, extra = divmod(capacity, shards)
    return [base + (1 if i < extra else 0) for i in range(shards)]


def ensure_inventory(*, performance: Performance) -> None:
    """Create the missing bucket shards of a performance (idempotent, safe to race)."""
    existing = set(InventoryBucket.objects.filter(performance=performance)
                   .values_list("zone_id", flat=True).distinct())
    for zone in PriceZone.objects.filter(event_id=performance.event_id).exclude(pk__in=existing):
        rows = [InventoryBucket(performance=performance, zone=zone, shard=i, capacity=cap)
                for i, cap in enumerate(split_capacity(zone_capacity(zone), shard_count()))]
        try:
            with transaction.atomic():
                InventoryBucket.objects.bulk_create(rows)
        except IntegrityError:
            pass  # another request created them first


def _take_from_one_shard(performance_id: int, zone_id: int, n: int) -> bool:
    """One UPDATE: a random shard with room takes all ``n``. The subquery picks the shard, the
    outer WHERE re-checks the room under the row lock, so a lost race updates nothing. A fixed
    statement: it runs once per group-commit batch, where compiling the ORM's version cost
    more than running it."""
    with connection.cursor() as cursor:
        cursor.execute(_take_sql(), [n, performance_id, zone_id, n, n])
        return cursor.rowcount > 0


@functools.cache
def _take_sql() -> str:
    q = connection.ops.quote_name
    meta = InventoryBucket._meta
    table, pk = q(meta.db_table), q(meta.pk.column)
    performance, zone = (q(meta.get_field(f).column) for f in ("performance", "zone"))
    taken, capacity = q("taken"), q("capacity")
    return (f"UPDATE {table} SET {taken} = {taken} + %s WHERE {pk} = ("  # noqa: S608
            f"SELECT {pk} FROM {table} WHERE {performance} = %s AND {zone} = %s "
            f"AND {taken} <= {capacity} - %s ORDER BY RANDOM() LIMIT 1) "
            f"AND {taken} <= {capacity} - %s")


def take_units(*, performance_id: int, zone_id: int, n: int) -> bool:
    """Take ``n`` units of a zone; False (and nothing taken) when they are not there.

    Usually one query. When no single shard has room for all ``n`` but the zone as a whole has,
    the units are spread over shards in primary-key order (no deadlocks between spreaders);
    the caller's transaction undoes a partial spread when it raises.
    """
    if n <= 0:
        return True
    for _attempt in range(3):
        if _take_from_one_shard(performance_id, zone_id, n):
            return True
        shards = list(InventoryBucket.objects
                      .filter(performance_id=performance_id, zone_id=zone_id)
                      .order_by("pk").values_list("pk", "capacity", "taken"))
        free = sum(cap - taken for _, cap, taken in shards)
        if free < n:
            return False
        if any(cap - taken >= n for _, cap, taken in shards):
            continue  # lost a race for a shard that still has room elsewhere; pick again
        remaining = n
        for pk, cap, taken in shards:
            k = min(remaining, cap - taken)
            if k > 0 and InventoryBucket.objects.filter(
                    pk=pk, taken__lte=F("capacity") - k).update(taken=F("taken") + k):
                remaining -= k
            if remaining == 0:
                return True
        # Lost part of the spread to a concurrent buyer: put back what we took, try again.
        give_back_units(performance_id=performance_id, zone_id=zone_id, n=n - remaining)
    return False


def give_back_units(*, performance_id: int, zone_id: int, n: int) -> int:
    """Return ``n`` units of a zone. Shards are interchangeable, so any shard holding units
    can take them back. Returns how many could not be returned (0 unless counters drifted)."""
    remaining = n
    for _attempt in range(5):
        if remaining <= 0:
            break
        shards = list(InventoryBucket.objects
                      .filter(performance_id=performance_id, zone_id=zone_id, taken__gt=0)
                      .order_by("pk").values_list("pk", "taken"))
        if not shards:
            break
        for pk, taken in shards:
            k = min(remaining, taken)
            if k > 0 and InventoryBucket.objects.filter(pk=pk, taken__gte=k).update(
                    taken=F("taken") - k):
                remaining -= k
            if remaining == 0:
                break
    return remaining


def claim_seats(*, performance_id: int, hold_id: int, seat_ids: Iterable[int]) -> list[int]:
    """Insert the seat claims; returns the seat ids that someone else holds ([] on success).

    The unique (performance, seat) constraint is the arbiter; on a conflict nothing is
    inserted.
    """
    ids = sorted(set(seat_ids))
    try:
        with transaction.atomic():
            SeatClaim.objects.bulk_create(
                [SeatClaim(performance_id=performance_id, seat_id=s, hold_id=hold_id)
                 for s in ids])
        return []
    except IntegrityError:
        taken = set(SeatClaim.objects.filter(performance_id=performance_id, seat_id__in=ids)
                    .values_list("seat_id", flat=True))
        return sorted(taken) or ids
