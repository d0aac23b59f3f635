"""Reads for booking pages and the API, and the ``access_*`` helpers (missing = not yours)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from smarttickets.booking.models import Hold, HoldItem, InventoryBucket, Order, SeatClaim
from smarttickets.core.exceptions import NotFound
from smarttickets.core.money import quantize
from smarttickets.events.models import Event, Membership, Performance, PriceZone


@dataclass(frozen=True, slots=True)
class ZoneAvailability:
    zone: PriceZone
    capacity: int
    available: int
    seated: bool


def access_performance(*, performance_id: int) -> Performance:
    """A performance of a published event (anyone may look)."""
    performance = (Performance.objects.select_related("event__venue", "event__organizer")
                   .filter(pk=performance_id, event__state=Event.State.PUBLISHED).first())
    if performance is None:
        raise NotFound(_("That performance does not exist."))
    return performance


def _expired_live_units(performance: Performance, now: datetime) -> dict[int, int]:
    """Units of holds whose time is up but which the sweep has not closed yet: they no longer
    count, whatever the counters still say."""
    rows = (HoldItem.objects.filter(hold__performance=performance, hold__state=Hold.State.LIVE,
                                    hold__expires_at__lte=now)
            .values("zone_id").annotate(n=Count("id")))
    return {r["zone_id"]: r["n"] for r in rows}


def availability(*, performance: Performance, now: datetime) -> list[ZoneAvailability]:
    from smarttickets.booking.inventory import ensure_inventory

    zones = list(PriceZone.objects.filter(event_id=performance.event_id)
                 .annotate(n_sections=Count("sections", distinct=True)))
    counters = {r["zone_id"]: r for r in InventoryBucket.objects.filter(performance=performance)
                .values("zone_id").annotate(capacity=Sum("capacity"), taken=Sum("taken"))}
    if any(z.pk not in counters for z in zones):
        ensure_inventory(performance=performance)
        counters = {r["zone_id"]: r for r in InventoryBucket.objects
                    .filter(performance=performance).values("zone_id")
                    .annotate(capacity=Sum("capacity"), taken=Sum("taken"))}
    stale = _expired_live_units(performance, now)
    result = []
    for zone in zones:
        row = counters.get(zone.pk, {"capacity": 0, "taken": 0})
        available = row["capacity"] - row["taken"] + stale.get(zone.pk, 0)
        result.append(ZoneAvailability(zone=zone, capacity=row["capacity"],
                                       available=max(0, min(available, row["capacity"])),
                                       seated=zone.n_sections > 0))
    return result


def unavailable_seat_ids(*, performance: Performance, now: datetime) -> list[int]:
    return sorted(SeatClaim.objects.filter(performance=performance)
                  .exclude(hold__state=Hold.State.LIVE, hold__expires_at__lte=now)
                  .values_list("seat_id", flat=True))


def access_hold_by_user(*, hold_id: int, user) -> Hold:
    hold = (Hold.objects.select_related("performance__event__venue")
            .filter(pk=hold_id, user_id=user.pk).first())
    if hold is None:
        raise NotFound(_("That hold does not exist."))
    return hold


def access_live_hold_by_user(*, hold_id: int, user, now: datetime) -> Hold:
    """Someone else's, expired and missing holds all answer 404 alike."""
    hold = access_hold_by_user(hold_id=hold_id, user=user)
    if hold.state != Hold.State.LIVE or hold.expires_at <= now:
        raise NotFound(_("That hold does not exist."))
    return hold


def hold_items(*, hold: Hold) -> list[HoldItem]:
    fresh = getattr(hold, "_prefetched_objects_cache", {}).get("items")
    if fresh is not None and not any(i.seat_id for i in fresh):
        return list(fresh)  # just recorded, zones attached: no need to read them back
    return list(HoldItem.objects.filter(hold=hold).select_related("zone", "seat__section")
                .order_by("pk"))


def access_order_by_buyer(*, code: str, user) -> Order:
    order = (Order.objects.select_related("performance__event__venue", "hold")
             .filter(code=code.upper(), buyer_id=user.pk).first())
    if order is None:
        raise NotFound(_("That order does not exist."))
    return order


def orders_of_buyer(*, user) -> QuerySet[Order]:
    return (Order.objects.filter(buyer=user)
            .select_related("performance__event__venue").order_by("-created_at", "-id"))


def live_holds_of_buyer(*, user, now: datetime) -> QuerySet[Hold]:
    return (Hold.objects.filter(user=user, state=Hold.State.LIVE, expires_at__gt=now,
                                order__isnull=True)
            .select_related("performance__event").order_by("-created_at"))


# --- organizer -----------------------------------------------------------------------------

REPORT_PERMISSIONS = ("can_view_reports", "can_manage_events")


def staff_organizer_ids(*, user) -> list[int]:
    if not getattr(user, "is_authenticated", False):
        return []
    q = Q()
    for perm in REPORT_PERMISSIONS:
        q |= Q(**{perm: True})
    return list(Membership.objects.filter(q, user=user).values_list("organizer_id", flat=True))


def organizer_orders(*, user, query: str = "", performance_id: int | None = None
                     ) -> QuerySet[Order]:
    orders = (Order.objects.filter(performance__event__organizer_id__in=staff_organizer_ids(
        user=user)).select_related("buyer", "performance__event").order_by("-created_at", "-id"))
    query = query.strip()
    if query:
        orders = orders.filter(Q(code__iexact=query) | Q(buyer__email__icontains=query)
                               | Q(buyer__legal_name__icontains=query))
    if performance_id:
        orders = orders.filter(performance_id=performance_id)
    return orders


def access_order_by_staff(*, code: str, user) -> Order:
    order = organizer_orders(user=user).filter(code=code.upper()).first()
    if order is None:
        raise NotFound(_("That order does not exist."))
    return order


def access_performance_by_staff(*, performance_id: int, user) -> Performance:
    performance = (Performance.objects.select_related("event__venue")
                   .filter(pk=performance_id,
                           event__organizer_id__in=staff_organizer_ids(user=user)).first())
    if performance is None:
        raise NotFound(_("That performance does not exist."))
    return performance


def staff_performances(*, user) -> QuerySet[Performance]:
    return (Performance.objects.filter(event__organizer_id__in=staff_organizer_ids(user=user))
            .select_related("event").order_by("-starts_at"))


@dataclass(frozen=True, slots=True)
class ZoneSales:
    zone: PriceZone
    capacity: int
    sold: int
    held: int
    reserved: int
    available: int
    revenue: Decimal


def sales_report(*, performance: Performance, now: datetime) -> list[ZoneSales]:
    """Sold, held, reserved (entitlements), available and revenue per price zone."""
    from smarttickets.booking.models import Entitlement
    from smarttickets.tickets.models import Ticket

    sold: dict[int, tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal("0")))
    for r in (Ticket.objects.filter(performance=performance, state=Ticket.State.VALID)
              .values("zone_id").annotate(n=Count("id"), revenue=Sum("price"))):
        sold[r["zone_id"]] = (r["n"], r["revenue"] or Decimal("0"))
    held = {r["zone_id"]: r["n"] for r in HoldItem.objects.filter(
        hold__performance=performance, hold__state=Hold.State.LIVE, hold__expires_at__gt=now)
        .values("zone_id").annotate(n=Count("id"))}
    reserved = {r["zone_id"]: r["n"] for r in Entitlement.objects.filter(
        performance=performance, state=Entitlement.State.OPEN, expires_at__gt=now)
        .values("zone_id").annotate(n=Sum("quantity"))}
    rows = []
    for zone_av in availability(performance=performance, now=now):
        zid = zone_av.zone.pk
        rows.append(ZoneSales(zone=zone_av.zone, capacity=zone_av.capacity, sold=sold[zid][0],
                              held=held.get(zid, 0), reserved=reserved.get(zid, 0),
                              available=zone_av.available,
                              revenue=quantize(sold[zid][1], zone_av.zone.currency)))
    return rows
