"""Prove the counters equal the facts; optionally repair drift in one audited transaction.

Facts per bucket (performance × zone): units of live holds + valid tickets + open
entitlements. Seat claims must belong to exactly the live holds' seats and valid tickets' seats.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Count, Sum

from smarttickets.booking.models import Entitlement, Hold, HoldItem, InventoryBucket, SeatClaim
from smarttickets.core.audit import log_action


@dataclass(slots=True)
class BucketRow:
    performance_id: int
    zone_id: int
    capacity: int
    counter: int
    held: int
    sold: int
    reserved: int

    @property
    def facts(self) -> int:
        return self.held + self.sold + self.reserved

    @property
    def drift(self) -> int:
        return self.counter - self.facts


@dataclass(slots=True)
class Report:
    buckets: list[BucketRow] = field(default_factory=list)
    stale_claims: list[int] = field(default_factory=list)  # SeatClaim ids
    missing_claims: list[tuple[int, int, int]] = field(default_factory=list)  # perf, seat, hold

    @property
    def drifted(self) -> list[BucketRow]:
        return [b for b in self.buckets if b.drift]

    @property
    def clean(self) -> bool:
        return not self.drifted and not self.stale_claims and not self.missing_claims


def _tally(qs, key: str = "n") -> dict[tuple[int, int], int]:
    return {(r["performance_id"], r["zone_id"]): r[key] or 0 for r in qs}


def check(*, performance_id: int | None = None) -> Report:
    from smarttickets.tickets.models import Ticket

    def scope(qs, prefix: str = ""):
        return qs.filter(**{f"{prefix}performance_id": performance_id}) if performance_id else qs

    counters = scope(InventoryBucket.objects).values("performance_id", "zone_id").annotate(
        capacity=Sum("capacity"), taken=Sum("taken")).order_by("performance_id", "zone_id")
    held = _held(performance_id)
    sold = _tally(scope(Ticket.objects.filter(state=Ticket.State.VALID))
                  .values("performance_id", "zone_id").annotate(n=Count("id")))
    reserved = _tally(scope(Entitlement.objects.filter(state=Entitlement.State.OPEN))
                      .values("performance_id", "zone_id").annotate(n=Sum("quantity")))
    report = Report()
    seen = set()
    for row in counters:
        key = (row["performance_id"], row["zone_id"])
        seen.add(key)
        report.buckets.append(BucketRow(*key, capacity=row["capacity"], counter=row["taken"],
                                        held=held.get(key, 0), sold=sold.get(key, 0),
                                        reserved=reserved.get(key, 0)))
    for key in sorted((set(held) | set(sold) | set(reserved)) - seen):
        report.buckets.append(BucketRow(*key, capacity=0, counter=0, held=held.get(key, 0),
                                        sold=sold.get(key, 0), reserved=reserved.get(key, 0)))

    claims = scope(SeatClaim.objects).values_list("pk", "performance_id", "seat_id", "hold_id",
                                                  "hold__state")
    valid_seats = set(scope(Ticket.objects.filter(state=Ticket.State.VALID, seat__isnull=False))
                      .values_list("performance_id", "seat_id"))
    live_seats = {(p, s): h for p, s, h in scope(
        HoldItem.objects.filter(hold__state=Hold.State.LIVE, seat__isnull=False), "hold__")
        .values_list("hold__performance_id", "seat_id", "hold_id")}
    claimed = set()
    for pk, perf, seat, hold_id, state in claims:
        key = (perf, seat)
        ok = ((state == Hold.State.LIVE and live_seats.get(key) == hold_id)
              or (state == Hold.State.PURCHASED and key in valid_seats))
        if ok:
            claimed.add(key)
        else:
            report.stale_claims.append(pk)
    for key, hold_id in sorted(live_seats.items()):
        if key not in claimed:
            report.missing_claims.append((*key, hold_id))
    unclaimed = sorted(valid_seats - claimed - set(live_seats))
    if unclaimed:
        ticket_holds = {(p, s): h for p, s, h in scope(Ticket.objects.filter(
            state=Ticket.State.VALID, seat__isnull=False))
            .values_list("performance_id", "seat_id", "order__hold_id")}
        report.missing_claims.extend((p, s, ticket_holds[(p, s)]) for p, s in unclaimed)
    return report


def _held(performance_id: int | None) -> dict[tuple[int, int], int]:
    qs = HoldItem.objects.filter(hold__state=Hold.State.LIVE)
    if performance_id:
        qs = qs.filter(hold__performance_id=performance_id)
    return {(r["hold__performance_id"], r["zone_id"]): r["n"]
            for r in qs.values("hold__performance_id", "zone_id").annotate(n=Count("id"))}


def repair(*, now: datetime, performance_id: int | None = None) -> Report:
    """Set each drifted bucket's counter to the facts, drop stale seat claims and add missing
    ones, all in one transaction with one audit entry per fix. Returns the report it fixed."""
    with transaction.atomic():
        report = check(performance_id=performance_id)
        for row in report.drifted:
            shards = list(InventoryBucket.objects.select_for_update()
                          .filter(performance_id=row.performance_id, zone_id=row.zone_id)
                          .order_by("pk"))
            remaining = row.facts
            for shard in shards:
                shard.taken = min(shard.capacity, remaining)
                remaining -= shard.taken
                shard.save(update_fields=["taken"])
            log_action(action="inventory.repaired", object_type="booking.inventorybucket",
                       object_id=f"{row.performance_id}:{row.zone_id}", now=now,
                       data={"counter_was": row.counter, "facts": row.facts,
                             "held": row.held, "sold": row.sold, "reserved": row.reserved,
                             "over_capacity": remaining})
        if report.stale_claims:
            SeatClaim.objects.filter(pk__in=report.stale_claims).delete()
            log_action(action="seatclaims.removed_stale", object_type="booking.seatclaim",
                       object_id="", now=now, data={"ids": report.stale_claims})
        added = []
        for perf, seat, hold_id in report.missing_claims:
            if hold_id is not None and not SeatClaim.objects.filter(
                    performance_id=perf, seat_id=seat).exists():
                SeatClaim.objects.create(performance_id=perf, seat_id=seat, hold_id=hold_id)
                added.append([perf, seat])
        if added:
            log_action(action="seatclaims.restored", object_type="booking.seatclaim",
                       object_id="", now=now, data={"seats": added})
    return report


def render_table(report: Report) -> list[str]:
    header = (f"{'performance':>11} {'zone':>6} {'capacity':>8} {'counter':>8} {'held':>6} "
              f"{'sold':>6} {'reserved':>8} {'drift':>6}")
    lines = [header, "-" * len(header)]
    for b in report.buckets:
        lines.append(f"{b.performance_id:>11} {b.zone_id:>6} {b.capacity:>8} {b.counter:>8} "
                     f"{b.held:>6} {b.sold:>6} {b.reserved:>8} {b.drift:>+6}")
    by_kind = defaultdict(int)
    by_kind["stale seat claims"] = len(report.stale_claims)
    by_kind["missing seat claims"] = len(report.missing_claims)
    lines.extend(f"{k}: {v}" for k, v in by_kind.items())
    return lines
