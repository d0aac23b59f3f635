"""Booking use cases: holds, orders, payment outcomes, refunds, entitlements, housekeeping.

Every function here is the only writer of its state, runs in one short transaction, writes an
audit entry for each state change, and never does network I/O while a row is locked.
Lock order everywhere: hold → order → card lock → buckets (pk order) → seat claims.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction
from django.db.models import Count
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from smarttickets.accounts.models import User
from smarttickets.accounts.services import lock_legal_name
from smarttickets.booking import groupcommit, inventory
from smarttickets.booking.exceptions import (
    BookingLimitReached,
    HoldNotLive,
    IdentityRequired,
    InvalidSelection,
    PaidAfterExpiry,
    PaymentMismatch,
    SaleNotOpen,
    SeatsUnavailable,
    SoldOut,
)
from smarttickets.booking.models import (
    CardUsage,
    Entitlement,
    Hold,
    HoldItem,
    InventoryBucket,
    LimitHit,
    Order,
    SeatClaim,
)
from smarttickets.booking.seating import Spot, Stage, best_seats
from smarttickets.core import bulk
from smarttickets.core.audit import build_entry, log_action
from smarttickets.core.exceptions import DomainError, InvalidInput, NotFound
from smarttickets.core.locking import retry_on_contention
from smarttickets.core.models import AuditEntry
from smarttickets.core.money import to_minor
from smarttickets.events.models import Event, Performance, PriceZone, Seat

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a counter
MAX_HOLDER_NAME = 200


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def new_code(length: int = 10) -> str:
    """An unguessable public code: 10 symbols of 32 = 50 random bits."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


# --- checks --------------------------------------------------------------------------------

def check_identity(*, user: User) -> None:
    if not user.identity_verified:
        raise IdentityRequired(_("Buying tickets needs a verified identity: confirm your email "
                                 "address and mobile number and enter your legal name in "
                                 "your profile."))


def sale_state(*, performance: Performance, now: datetime) -> tuple[bool, str]:
    """Whether first-come sales are open now, and if not, why (a message for people)."""
    event = performance.event
    if event.state != Event.State.PUBLISHED or performance.cancelled:
        return False, _("This performance is not on sale.")
    if performance.sale_mode == Performance.SaleMode.LOTTERY:
        return False, _("Tickets for this performance are sold by lottery. Winners can buy "
                        "here with their entitlement.")
    if performance.onsale_starts_at is None or now < performance.onsale_starts_at:
        if performance.onsale_starts_at is None:
            return False, _("Sales for this performance have not been scheduled yet.")
        return False, _("Sales open on %(when)s.") % {
            "when": date_format(localtime(performance.onsale_starts_at), "DATETIME_FORMAT")}
    end = performance.onsale_ends_at or performance.starts_at
    if now >= end:
        return False, _("Sales for this performance have ended.")
    return True, ""


def check_sale_open(*, performance: Performance, now: datetime) -> None:
    is_open, why = sale_state(performance=performance, now=now)
    if not is_open:
        raise SaleNotOpen(why)


VELOCITY_WINDOW_S = 600


def redis_client():
    """The default cache's Redis client, or None when the cache is not Redis.

    Made once per cache instance: Django's backend builds a new client (with ~170 response
    callbacks) for every call, ~0.3 ms of CPU each. ``cache`` is a proxy, so the type check
    looks at the backend behind it."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    client = getattr(backend, "_booking_client", None)
    if client is None:
        with contextlib.suppress(AttributeError):  # Django's client internals moved
            client = backend._booking_client = backend._cache.get_client(write=True)
    return client


# INCR each key, giving a new one its lifetime; one command for all keys (EVALSHA).
_COUNT_LUA = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if counts[i] == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return counts
"""


def _count_script(client):
    """The counting script registered on ``client`` (once per client)."""
    script = getattr(client, "_booking_count_script", None)
    if script is None:
        script = client._booking_count_script = client.register_script(_COUNT_LUA)
    return script


def _count_runner(client):
    """``_run_count`` bound to ``client``, one object per client (the batching thread sends
    keys counted with the same runner together)."""
    runner = getattr(client, "_booking_count_runner", None)
    if runner is None:
        runner = client._booking_count_runner = functools.partial(_run_count, client)
    return runner


def _run_count(client, keys: list[str]) -> list[int]:
    """INCR each of ``keys`` (full cache keys; a key may repeat: each occurrence counts)."""
    return [int(n) for n in _count_script(client)(keys=keys, args=[VELOCITY_WINDOW_S + 100])]


def _count_attempts(keys: list[str]) -> list[int]:
    """Add one attempt under each key and return the new counts. On Redis, one command for
    all keys (a script: INCR, and EXPIRE on a new key) instead of two round trips per key; a
    pipeline of SET NX + INCR per key cost twice the CPU in the client."""
    client = redis_client()
    if client is not None:
        keys = [cache.make_and_validate_key(key) for key in keys]
        if groupcommit.enabled():  # a server's request threads: one call for all of them
            return groupcommit.count(keys, _count_runner(client))
        return _run_count(client, keys)
    counts = []
    for key in keys:
        cache.add(key, 0, timeout=VELOCITY_WINDOW_S + 100)
        try:
            counts.append(cache.incr(key))
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout=VELOCITY_WINDOW_S + 100)
            counts.append(1)
    return counts


def _check_velocity(*, ip: str | None, device_id: str, now: datetime) -> None:
    """Fixed 10-minute window counters in the cache (Redis in production, shared by servers)
    per network address and per device."""
    window = int(now.timestamp()) // VELOCITY_WINDOW_S
    checks = [(kind, subject, limit) for kind, subject, limit in (
        (LimitHit.Limit.IP, ip or "", _setting("BOOKING_IP_HOLDS_PER_10MIN", 300)),
        (LimitHit.Limit.DEVICE, device_id, _setting("BOOKING_DEVICE_HOLDS_PER_10MIN", 20)),
    ) if subject]
    if not checks:
        return
    counts = _count_attempts([f"booking:velocity:{kind}:{subject}:{window}"
                              for kind, subject, _limit in checks])
    for (kind, _subject, limit), count in zip(checks, counts, strict=True):
        if count <= limit:
            continue
        if kind == LimitHit.Limit.IP:
            message = _("Too many booking attempts from your network. Please wait a few "
                        "minutes and try again.")
        else:
            message = _("Too many booking attempts from this device. Please wait a few "
                        "minutes and try again.")
        raise BookingLimitReached(message, limit=kind, status=429)


def units_counted_for(*, user_id: int, performance_id: int, now: datetime,
                      except_entitlement_id: int | None = None) -> int:
    """Units a buyer has for a performance: live unexpired holds + valid tickets bought or
    received by transfer + open entitlements. One round trip."""
    return units_counted_for_many(
        user_ids=[user_id], performance_id=performance_id, now=now,
        except_entitlement_ids=[except_entitlement_id] if except_entitlement_id else [],
    )[user_id]


def audit_entry(*, action: str, obj, actor: User | None, now: datetime,
                data: dict | None = None) -> AuditEntry:
    """An unsaved audit entry, exactly as ``log_action`` writes it, for one bulk INSERT."""
    return build_entry(action=action, obj=obj, actor=actor, now=now, data=data)


def record_limit_hit(*, exc: BookingLimitReached, user: User | None, performance_id: int | None,
                     subject: str, now: datetime, data: dict | None = None) -> LimitHit:
    """Kept outside the refused transaction, which was rolled back."""
    return LimitHit.objects.create(created_at=now, limit=exc.limit, user=user,
                                   performance_id=performance_id, subject=subject[:128],
                                   data=data or {})


# --- holds ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Selection:
    """What a buyer asks for: ``seat_ids``, or ``quantity`` in ``zone_id`` (best available
    seats in a seated zone, places in a general-admission zone)."""

    zone_id: int | None = None
    quantity: int = 0
    seat_ids: tuple[int, ...] = ()


def _seat_zone_map(*, performance: Performance, seat_ids: list[int]) -> dict[int, PriceZone]:
    """Price zone of each seat, refusing seats that are not in this performance's venue."""
    seats = list(Seat.objects.filter(pk__in=seat_ids, section__venue_id=performance.event.venue_id)
                 .values_list("pk", "section_id"))
    found = {pk for pk, _s in seats}
    unknown = sorted(set(seat_ids) - found)
    if unknown:
        raise InvalidSelection(_("Some of the chosen seats do not exist at this venue: "
                                 "%(ids)s.") % {"ids": ", ".join(map(str, unknown))})
    zones = {z.pk: z for z in PriceZone.objects.filter(event_id=performance.event_id)}
    section_zone: dict[int, PriceZone] = {}
    through = PriceZone.sections.through
    for zone_id, section_id in (through.objects.filter(pricezone_id__in=zones)
                                .order_by("pricezone__sort_order", "pricezone_id")
                                .values_list("pricezone_id", "section_id")):
        section_zone.setdefault(section_id, zones[zone_id])
    result = {}
    for pk, section_id in seats:
        if section_id not in section_zone:
            raise InvalidSelection(_("Seat %(id)s is not on sale for this performance.")
                                   % {"id": pk})
        result[pk] = section_zone[section_id]
    return result


def _stage(performance: Performance) -> Stage:
    venue = performance.event.venue
    return Stage(x=getattr(venue, "stage_x", venue.map_width / 2 - 150),
                 y=getattr(venue, "stage_y", 0.0),
                 width=getattr(venue, "stage_width", 300.0),
                 height=getattr(venue, "stage_height", 60.0))


def choose_best_seats(*, performance: Performance, zone: PriceZone, quantity: int,
                      now: datetime, exclude: frozenset[int] = frozenset()) -> list[int]:
    """The best ``quantity`` free seats of a seated zone (see seating.best_seats)."""
    blocked = set(SeatClaim.objects.filter(performance=performance)
                  .exclude(hold__state=Hold.State.LIVE, hold__expires_at__lte=now)
                  .values_list("seat_id", flat=True))
    rows: dict[tuple[int, str], list[Spot]] = {}
    for pk, section_id, row, x, y in (Seat.objects.filter(section__in=zone.sections.all())
                                      .order_by("section_id", "row", "x", "pk")
                                      .values_list("pk", "section_id", "row", "x", "y")):
        rows.setdefault((section_id, row), []).append(Spot(pk, x, y, pk not in blocked))
    return best_seats(rows.values(), quantity, _stage(performance), exclude)


def sweep_expired(*, performance_id: int, now: datetime, zone_id: int | None = None,
                  seat_ids: list[int] | None = None, limit: int = 200) -> int:
    """Expire the live holds of a performance whose time is up (optionally only those of a
    zone or holding given seats), so their units count as free at once."""
    holds = Hold.objects.filter(performance_id=performance_id, state=Hold.State.LIVE,
                                expires_at__lte=now)
    if zone_id is not None:
        holds = holds.filter(items__zone_id=zone_id)
    if seat_ids:
        holds = holds.filter(seat_claims__seat_id__in=seat_ids)
    done = 0
    for hold_id in list(holds.values_list("pk", flat=True).distinct()[:limit]):
        if _close_hold(hold_id=hold_id, state=Hold.State.EXPIRED, reason="expired", actor=None,
                       now=now):
            done += 1
    return done


def _check_quantity(quantity: int, per_person: int) -> None:
    if quantity < 1:
        raise InvalidSelection(_("Choose at least one ticket."))
    if quantity > per_person:
        raise InvalidSelection(_("You can buy at most %(n)d tickets for this performance.")
                               % {"n": per_person})


def _open_entitlement(*, entitlement_id: int, user: User, performance: Performance,
                      now: datetime) -> Entitlement:
    ent = Entitlement.objects.filter(pk=entitlement_id, user=user, performance=performance,
                                     state=Entitlement.State.OPEN, expires_at__gt=now).first()
    if ent is None:
        raise NotFound(_("That purchase entitlement does not exist or is no longer valid."))
    return ent


@retry_on_contention()
def create_hold(*, user: User, performance: Performance, selection: Selection, now: datetime,
                ip: str | None = None, device_id: str = "",
                entitlement_id: int | None = None,
                known_zones: Mapping[int, PriceZone] | None = None) -> Hold:
    """Take units for ``user`` until now + event.hold_minutes.

    ``known_zones``: the event's price zones annotated with ``n_sections``, when the caller has them
    at most a second old (the lean API entry caches them); saves a query per request.

    Raises IdentityRequired, SaleNotOpen, InvalidSelection, SoldOut, SeatsUnavailable or
    BookingLimitReached (recorded as a LimitHit); on any refusal nothing is taken.
    """
    event = performance.event
    check_identity(user=user)
    try:
        _check_velocity(ip=ip, device_id=device_id, now=now)
        return _create_hold(user=user, performance=performance, event=event,
                            selection=selection, now=now, ip=ip, device_id=device_id,
                            entitlement_id=entitlement_id, known_zones=known_zones)
    except BookingLimitReached as exc:
        if getattr(exc, "recorded", False):  # the per-person limit, kept by record_holds
            raise
        subject = {LimitHit.Limit.IP: ip or "", LimitHit.Limit.DEVICE: device_id}.get(
            exc.limit, str(user.pk))
        record_limit_hit(exc=exc, user=user, performance_id=performance.pk, subject=subject,
                         now=now, data={"selection": {"zone_id": selection.zone_id,
                                                      "quantity": selection.quantity,
                                                      "seat_ids": list(selection.seat_ids)}})
        raise


def _create_hold(*, user: User, performance: Performance, event: Event, selection: Selection,
                 now: datetime, ip: str | None, device_id: str,
                 entitlement_id: int | None,
                 known_zones: Mapping[int, PriceZone] | None = None) -> Hold:
    entitlement = None
    if entitlement_id is not None:
        entitlement = _open_entitlement(entitlement_id=entitlement_id, user=user,
                                        performance=performance, now=now)
    else:
        check_sale_open(performance=performance, now=now)

    seat_ids = sorted(set(selection.seat_ids))
    if seat_ids:
        if len(seat_ids) != len(selection.seat_ids):
            raise InvalidSelection(_("The same seat was chosen twice."))
        quantity = len(seat_ids)
        _check_quantity(quantity, event.per_person_limit)
        seat_zone = _seat_zone_map(performance=performance, seat_ids=seat_ids)
        zone_units = Counter(z.pk for z in seat_zone.values())
        zones = {z.pk: z for z in seat_zone.values()}
        if selection.zone_id is not None and set(zones) != {selection.zone_id}:
            raise InvalidSelection(_("The chosen seats are not in the chosen price zone."))
    else:
        quantity = selection.quantity
        _check_quantity(quantity, event.per_person_limit)
        if known_zones is not None:
            zone = known_zones.get(selection.zone_id)
        else:
            zone = (PriceZone.objects.filter(pk=selection.zone_id, event_id=event.pk)
                    .annotate(n_sections=Count("sections")).first())
        if zone is None:
            raise InvalidSelection(_("That price zone does not exist for this performance."))
        zones = {zone.pk: zone}
        zone_units = Counter({zone.pk: quantity})
        if zone.n_sections:
            seat_ids = choose_best_seats(performance=performance, zone=zone, quantity=quantity,
                                         now=now)
            if not seat_ids:
                sweep_expired(performance_id=performance.pk, zone_id=zone.pk, now=now)
                seat_ids = choose_best_seats(performance=performance, zone=zone,
                                             quantity=quantity, now=now)
            if not seat_ids:
                raise SoldOut(_("There are not %(n)d seats left in %(zone)s.")
                              % {"n": quantity, "zone": zone.name})
            seat_zone = dict.fromkeys(seat_ids, zone)
    if entitlement is not None and (set(zones) != {entitlement.zone_id}
                                    or quantity > entitlement.quantity):
        raise InvalidSelection(_("Your entitlement is for up to %(n)d tickets in another "
                                 "price zone.") % {"n": entitlement.quantity})

    for attempt in range(4):
        try:
            return _record_hold(HoldRequest(
                user=user, performance=performance, event=event, zones=zones,
                zone_units=zone_units, seat_ids=seat_ids,
                seat_zone=seat_zone if seat_ids else {}, quantity=quantity, now=now, ip=ip,
                device_id=device_id, entitlement=entitlement))
        except SoldOut:
            # Expired holds stop counting at once: free them, then try once more.
            if attempt == 0 and any(sweep_expired(performance_id=performance.pk, zone_id=z,
                                                  now=now) for z in zone_units):
                continue
            raise
        except SeatsUnavailable as exc:
            if attempt < 3 and sweep_expired(performance_id=performance.pk,
                                             seat_ids=exc.seat_ids, now=now):
                continue
            if selection.seat_ids or attempt >= 3:
                raise
            # Best-available lost a race for some seats: choose again without them.
            (zone,) = zones.values()
            seat_ids = choose_best_seats(performance=performance, zone=zone,
                                         quantity=quantity, now=now,
                                         exclude=frozenset(exc.seat_ids))
            if not seat_ids:
                raise SoldOut(_("There are not %(n)d seats left in %(zone)s.")
                              % {"n": quantity, "zone": zone.name}) from exc
            seat_zone = dict.fromkeys(seat_ids, zone)
    raise AssertionError("unreachable")


@dataclass(slots=True)
class HoldRequest:
    """A validated hold request, ready to be recorded (alone or in a group commit)."""

    user: User
    performance: Performance
    event: Event
    zones: dict[int, PriceZone]
    zone_units: Counter
    seat_ids: list[int]
    seat_zone: dict[int, PriceZone]
    quantity: int
    now: datetime
    ip: str | None
    device_id: str
    entitlement: Entitlement | None


def _record_hold(request: HoldRequest) -> Hold:
    """Record one hold: through the process's group commit when it is on (PostgreSQL, see
    groupcommit.py), else in this thread. Either way it is ``record_holds`` that writes."""
    if groupcommit.enabled() and not connection.in_atomic_block:
        result = groupcommit.submit(request)
    else:
        result = record_holds([request])[0]
    if isinstance(result, Exception):
        raise result
    return result


def units_counted_for_many(*, user_ids: list[int], performance_id: int, now: datetime,
                           except_entitlement_ids: list[int]) -> dict[int, int]:
    """``units_counted_for`` for many buyers of one performance, in one round trip."""
    from smarttickets.tickets.models import Ticket

    users = ", ".join(["%s"] * len(user_ids))
    ents = ", ".join(["%s"] * len(except_entitlement_ids)) or "0"
    # Table names come from model metadata, placeholders are generated; values are parameters.
    sql = (
        f"SELECT user_id, SUM(n) FROM ("  # noqa: S608
        f" SELECT user_id, quantity AS n FROM {Hold._meta.db_table}"
        f"  WHERE performance_id = %s AND user_id IN ({users}) AND state = %s"
        f"  AND expires_at > %s"
        f" UNION ALL SELECT o.buyer_id, 1 FROM {Ticket._meta.db_table} t"
        f"  JOIN {Order._meta.db_table} o ON o.id = t.order_id"
        f"  WHERE t.performance_id = %s AND o.buyer_id IN ({users}) AND t.state = %s"
        # Tickets received by transfer count for the holder too (bought-and-given-away ones
        # still count for the buyer, so transfers can't launder a bulk purchase).
        f" UNION ALL SELECT t.holder_user_id, 1 FROM {Ticket._meta.db_table} t"
        f"  JOIN {Order._meta.db_table} o ON o.id = t.order_id"
        f"  WHERE t.performance_id = %s AND t.holder_user_id IN ({users})"
        f"  AND t.holder_user_id <> o.buyer_id AND t.state = %s"
        f" UNION ALL SELECT user_id, quantity FROM {Entitlement._meta.db_table}"
        f"  WHERE performance_id = %s AND user_id IN ({users}) AND state = %s"
        f"  AND expires_at > %s AND id NOT IN ({ents})"
        f") AS counted GROUP BY user_id"
    )
    params = [performance_id, *user_ids, Hold.State.LIVE, now,
              performance_id, *user_ids, Ticket.State.VALID,
              performance_id, *user_ids, Ticket.State.VALID,
              performance_id, *user_ids, Entitlement.State.OPEN, now, *except_entitlement_ids]
    counts = dict.fromkeys(user_ids, 0)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for user_id, n in cursor.fetchall():
            counts[user_id] = int(n)
    return counts


def _take_zone(performance: Performance, zone_id: int, n: int) -> bool:
    if inventory.take_units(performance_id=performance.pk, zone_id=zone_id, n=n):
        return True
    if InventoryBucket.objects.filter(performance=performance, zone_id=zone_id).exists():
        return False
    inventory.ensure_inventory(performance=performance)
    return inventory.take_units(performance_id=performance.pk, zone_id=zone_id, n=n)


def record_holds(requests: list[HoldRequest]) -> list[Hold | DomainError]:
    """Record the holds of one performance in ONE transaction: the group commit.

    Per request the result is its Hold or the DomainError that refused it (nothing of a refused
    request is kept). The batch pays once for what one hold used to pay each time: the buyers'
    row locks and per-person counts are one query each, every zone's counter is bumped by one
    conditional UPDATE for the whole batch, holds, items and audit entries are bulk INSERTs, and
    there is one commit. Another error (lost connection, deadlock) rolls back the whole batch.
    Lock order as everywhere: buyers (pk order) → buckets (zone order) → seat claims.
    """
    performance = requests[0].performance
    if any(r.performance.pk != performance.pk for r in requests):
        raise ValueError("record_holds takes the requests of one performance")
    now = min(r.now for r in requests)
    results: list[Hold | DomainError | None] = [None] * len(requests)
    with transaction.atomic():
        # The buyers' rows serialise only those buyers' concurrent requests (the per-person
        # limit spans orders); other buyers never wait. NO KEY: inserts that merely reference
        # a user (audit entries, other holds) are not blocked by it.
        user_ids = sorted({r.user.pk for r in requests})
        list(User.objects.select_for_update(no_key=True).filter(pk__in=user_ids)
             .order_by("pk").values_list("pk"))
        have = units_counted_for_many(
            user_ids=user_ids, performance_id=performance.pk, now=now,
            except_entitlement_ids=[r.entitlement.pk for r in requests if r.entitlement])
        hits = []
        active: list[int] = []
        for i, r in enumerate(requests):
            limit = r.event.per_person_limit
            if have[r.user.pk] + r.quantity > limit:
                exc = BookingLimitReached(
                    _("You can have at most %(limit)d tickets for this performance; you "
                      "already have %(have)d.") % {"limit": limit, "have": have[r.user.pk]},
                    limit=LimitHit.Limit.PER_PERSON, status=409)
                exc.recorded = True
                results[i] = exc
                hits.append(LimitHit(created_at=r.now, limit=exc.limit, user=r.user,
                                     performance_id=performance.pk, subject=str(r.user.pk),
                                     data={"selection": {"zone_id": min(r.zone_units),
                                                         "quantity": r.quantity,
                                                         "seat_ids": r.seat_ids}}))
                continue
            have[r.user.pk] += r.quantity
            active.append(i)
        audit: list[AuditEntry] = []
        for i in [i for i in active if requests[i].entitlement is not None]:
            r = requests[i]
            ent = r.entitlement
            # Its units are already in the counters: they move to the hold, the rest go back.
            if not Entitlement.objects.filter(pk=ent.pk, state=Entitlement.State.OPEN).update(
                    state=Entitlement.State.USED, closed_at=r.now):
                results[i] = NotFound(_("That purchase entitlement does not exist or is no "
                                        "longer valid."))
                active.remove(i)
                have[r.user.pk] -= r.quantity
                continue
            inventory.give_back_units(performance_id=performance.pk, zone_id=ent.zone_id,
                                      n=ent.quantity - r.quantity)
            audit.append(audit_entry(action="entitlement.used", obj=ent, actor=r.user,
                                     now=r.now, data={"quantity": r.quantity}))
        taken = _take_units_for(requests, active, results, have)
        holds = _insert_holds(requests, active, results, taken)
        items = []
        for i in active:
            r, hold = requests[i], holds[i]
            if r.seat_ids:
                hold_items = [HoldItem(hold=hold, zone=r.seat_zone[s], seat_id=s,
                                       price=r.seat_zone[s].price) for s in r.seat_ids]
            else:
                (zone,) = r.zones.values()
                hold_items = [HoldItem(hold=hold, zone=zone, price=zone.price)
                              for _ in range(r.quantity)]
            items.extend(hold_items)
            # The API answers from these; reading them back would cost a query per hold.
            hold._prefetched_objects_cache = {"items": hold_items}
            audit.append(audit_entry(action="hold.created", obj=hold, actor=r.user, now=r.now,
                                     data={"quantity": r.quantity,
                                           "zones": dict(r.zone_units), "seats": r.seat_ids}))
            results[i] = hold
        bulk.insert(items)
        bulk.insert(audit)
        if hits:
            bulk.insert(hits)
    return results


def _take_units_for(requests: list[HoldRequest], active: list[int], results: list,
                    have: dict[int, int]) -> dict[int, dict[int, int]]:
    """Take the units of the ``active`` requests (those with an entitlement already have
    theirs): one UPDATE per zone for all of them; near a sell-out, request by request, and the
    ones that do not fit are refused with SoldOut (and leave ``active``)."""
    performance = requests[0].performance
    taken: dict[int, dict[int, int]] = {}
    zone_ids = sorted({z for i in active if requests[i].entitlement is None
                       for z in requests[i].zone_units})
    for zone_id in zone_ids:
        wanting = [i for i in active
                   if requests[i].entitlement is None and zone_id in requests[i].zone_units]
        total = sum(requests[i].zone_units[zone_id] for i in wanting)
        if total and _take_zone(performance, zone_id, total):
            for i in wanting:
                taken.setdefault(i, {})[zone_id] = requests[i].zone_units[zone_id]
            continue
        for i in wanting:
            r = requests[i]
            n = r.zone_units[zone_id]
            if _take_zone(performance, zone_id, n):
                taken.setdefault(i, {})[zone_id] = n
                continue
            results[i] = SoldOut(_("Sorry, %(zone)s does not have %(n)d tickets left.")
                                 % {"zone": r.zones[zone_id].name, "n": n})
            active.remove(i)
            have[r.user.pk] -= r.quantity
            for other_zone, k in sorted(taken.pop(i, {}).items()):
                inventory.give_back_units(performance_id=performance.pk, zone_id=other_zone,
                                          n=k)
    return taken


def _insert_holds(requests: list[HoldRequest], active: list[int], results: list,
                  taken: dict[int, dict[int, int]]) -> dict[int, Hold]:
    """Insert the holds; general admission in one INSERT, seats one savepoint per hold (a seat
    someone else claimed first refuses only that hold, whose units go back)."""
    def new_hold(r: HoldRequest) -> Hold:
        return Hold(user=r.user, performance=r.performance, quantity=r.quantity,
                    created_at=r.now, expires_at=r.now + timedelta(minutes=r.event.hold_minutes),
                    entitlement=r.entitlement, ip=r.ip, device_id=r.device_id[:64])

    performance = requests[0].performance
    holds: dict[int, Hold] = {}
    general = [i for i in active if not requests[i].seat_ids]
    for i, hold in zip(general, bulk.insert([new_hold(requests[i]) for i in general]),
                       strict=True):
        holds[i] = hold
    for i in [i for i in active if requests[i].seat_ids]:
        r = requests[i]
        try:
            with transaction.atomic():
                hold = new_hold(r)
                hold.save(force_insert=True)
                conflicts = inventory.claim_seats(performance_id=performance.pk,
                                                  hold_id=hold.pk, seat_ids=r.seat_ids)
                if conflicts:
                    raise SeatsUnavailable(_("Someone else has just taken some of these "
                                             "seats. Please choose again."), seat_ids=conflicts)
        except SeatsUnavailable as exc:
            results[i] = exc
            active.remove(i)
            for zone_id, k in sorted(taken.pop(i, {}).items()):
                inventory.give_back_units(performance_id=performance.pk, zone_id=zone_id, n=k)
            continue
        holds[i] = hold
    return holds


def _close_hold(*, hold_id: int, state: str, reason: str, actor: User | None,
                now: datetime) -> bool:
    """Move a live hold to ``state`` and give its units back — exactly once: the conditional
    UPDATE on the hold's state decides which of several racing callers does it."""
    with transaction.atomic():
        if not Hold.objects.filter(pk=hold_id, state=Hold.State.LIVE).update(
                state=state, closed_at=now, close_reason=reason[:100]):
            return False
        hold = Hold.objects.get(pk=hold_id)
        # A hold made from an entitlement (a lottery win) that ends while the entitlement still
        # runs gives the winner their turn back, not the units to everyone: the entitlement
        # reopens for the units held, which stay reserved for it in the counters. A winner
        # whose payment failed or whose hold ran out can try again until the entitlement ends.
        reopened = hold.entitlement_id is not None and bool(
            Entitlement.objects.filter(pk=hold.entitlement_id, state=Entitlement.State.USED,
                                       expires_at__gt=now)
            .update(state=Entitlement.State.OPEN, closed_at=None, quantity=hold.quantity))
        if reopened:
            log_action(action="entitlement.reopened", actor=actor, now=now,
                       object_type=Entitlement._meta.label_lower, object_id=hold.entitlement_id,
                       data={"hold": hold.pk, "quantity": hold.quantity, "reason": reason})
        else:
            units = (HoldItem.objects.filter(hold_id=hold_id).values("zone_id")
                     .annotate(n=Count("id")).order_by("zone_id"))
            for row in units:
                missing = inventory.give_back_units(performance_id=hold.performance_id,
                                                    zone_id=row["zone_id"], n=row["n"])
                if missing:
                    log_action(action="inventory.drift", obj=hold, now=now,
                               data={"zone_id": row["zone_id"], "not_returned": missing})
        SeatClaim.objects.filter(hold_id=hold_id).delete()
        order_state = Order.State.EXPIRED if state == Hold.State.EXPIRED else Order.State.CANCELLED
        order = Order.objects.filter(hold_id=hold_id, state=Order.State.PENDING).first()
        if order is not None:
            Order.objects.filter(pk=order.pk, state=Order.State.PENDING).update(
                state=order_state, closed_at=now)
            log_action(action=f"order.{order_state}", obj=order, actor=actor, now=now,
                       data={"reason": reason})
        log_action(action=f"hold.{state}", obj=hold, actor=actor, now=now,
                   data={"reason": reason})
    return True


def release_hold(*, hold: Hold, actor: User, now: datetime, reason: str = "released") -> Hold:
    """The buyer lets go of a hold (and its pending order). Idempotent."""
    if hold.state == Hold.State.LIVE and hold.expires_at <= now:
        _close_hold(hold_id=hold.pk, state=Hold.State.EXPIRED, reason="expired", actor=None,
                    now=now)
    else:
        _close_hold(hold_id=hold.pk, state=Hold.State.RELEASED, reason=reason, actor=actor,
                    now=now)
    hold.refresh_from_db()
    return hold


def expire_holds(*, now: datetime, batch: int = 500) -> int:
    """Housekeeping: expire every live hold and open entitlement whose time is up."""
    done = 0
    for hold_id in list(Hold.objects.filter(state=Hold.State.LIVE, expires_at__lte=now)
                        .order_by("expires_at").values_list("pk", flat=True)[:batch]):
        done += _close_hold(hold_id=hold_id, state=Hold.State.EXPIRED, reason="expired",
                            actor=None, now=now)
    for ent_id in list(Entitlement.objects.filter(state=Entitlement.State.OPEN,
                                                  expires_at__lte=now)
                       .values_list("pk", flat=True)[:batch]):
        done += _close_entitlement(entitlement_id=ent_id, state=Entitlement.State.EXPIRED,
                                   actor=None, now=now)
    return done


# --- orders --------------------------------------------------------------------------------

def clean_holder_names(*, hold: Hold, buyer: User, personalised: bool,
                       names: list[str]) -> list[str]:
    """One name per unit; the buyer's verified legal name is always the first holder."""
    count = hold.quantity
    names = [" ".join((n or "").split()) for n in names][:count]
    names += [""] * (count - len(names))
    names[0] = buyer.legal_name.strip()
    errors: dict[str, list[str]] = {}
    for i, name in enumerate(names[1:], start=1):
        if not name:
            if personalised:
                errors[f"holder_{i}"] = [_("Enter the legal name of this ticket's holder.")]
            else:
                names[i] = names[0]
        elif len(name) > MAX_HOLDER_NAME:
            errors[f"holder_{i}"] = [_("A name can be at most %(n)d characters.")
                                     % {"n": MAX_HOLDER_NAME}]
        elif len(name) < 2 or not any(ch.isalpha() for ch in name):
            errors[f"holder_{i}"] = [_("Enter a real name as it appears on an identity "
                                       "document.")]
    if errors:
        raise InvalidInput(_("Check the ticket holders' names."), code="invalid_holder_names",
                           fields=errors)
    return names


@retry_on_contention()
def place_order(*, hold: Hold, buyer: User, holder_names: list[str], now: datetime) -> Order:
    """Turn a live hold into a pending order (or update the names of its pending order)."""
    if hold.user_id != buyer.pk:
        raise NotFound(_("That hold does not exist."))
    check_identity(user=buyer)
    event = hold.performance.event
    names = clean_holder_names(hold=hold, buyer=buyer, personalised=event.personalised,
                               names=holder_names)
    with transaction.atomic():
        locked = Hold.objects.select_for_update().get(pk=hold.pk)
        if locked.state != Hold.State.LIVE or locked.expires_at <= now:
            raise HoldNotLive(_("This hold has ended. Please choose your tickets again."))
        items = list(HoldItem.objects.filter(hold=locked).order_by("pk"))
        for item, name in zip(items, names, strict=True):
            if item.holder_name != name:
                item.holder_name = name
                item.save(update_fields=["holder_name"])
        order = Order.objects.filter(hold=locked).first()
        if order is not None:
            log_action(action="order.holders_changed", obj=order, actor=buyer, now=now)
            return order
        total = sum((i.price for i in items), Decimal("0"))
        currency = items[0].zone.currency if items else event.currency
        for _attempt in range(5):
            code = new_code()
            if not Order.objects.filter(code=code).exists():
                break
        order = Order.objects.create(code=code, buyer=buyer, performance_id=locked.performance_id,
                                     hold=locked, total=total, currency=currency,
                                     expires_at=locked.expires_at, created_at=now)
        log_action(action="order.created", obj=order, actor=buyer, now=now,
                   data={"total": str(total), "currency": currency, "units": len(items)})
    return order


def _check_card_limit(*, order: Order, card_fingerprint: str, units: int, limit: int) -> None:
    """Must be called inside the payment transaction: the CardUsage row lock serialises payments
    made with one card for one performance."""
    from smarttickets.tickets.models import Ticket

    CardUsage.objects.get_or_create(performance_id=order.performance_id,
                                    card_fingerprint=card_fingerprint)
    list(CardUsage.objects.select_for_update().filter(
        performance_id=order.performance_id, card_fingerprint=card_fingerprint).values("pk"))
    used = Ticket.objects.filter(performance_id=order.performance_id,
                                 state=Ticket.State.VALID,
                                 order__card_fingerprint=card_fingerprint).count()
    if used + units > limit:
        raise BookingLimitReached(
            _("This payment card has already been used for %(used)d tickets to this "
              "performance; the limit is %(limit)d.") % {"used": used, "limit": limit},
            limit=LimitHit.Limit.CARD, status=409)


def _retake(*, hold: Hold, items: list[HoldItem]) -> bool:
    """Take a closed hold's units again (a payment arrived after they were given back)."""
    for zone_id, n in sorted(Counter(i.zone_id for i in items).items()):
        if not inventory.take_units(performance_id=hold.performance_id, zone_id=zone_id, n=n):
            return False
    seat_ids = [i.seat_id for i in items if i.seat_id]
    return not (seat_ids and inventory.claim_seats(performance_id=hold.performance_id,
                                                   hold_id=hold.pk, seat_ids=seat_ids))


def _get_order(order_id: int) -> Order:
    order = Order.objects.filter(pk=order_id).select_related("performance__event").first()
    if order is None:
        raise NotFound(_("That order does not exist."))
    return order


@retry_on_contention()
def mark_order_paid(*, order_id: int, provider: str, payment_reference: str, amount_minor: int,
                    currency: str, card_fingerprint: str, now: datetime) -> Order:
    """The provider has captured the payment: issue the tickets. Idempotent.

    Raises PaymentMismatch (wrong amount/currency), BookingLimitReached (card limit) or
    PaidAfterExpiry; in each case nothing changes and payments refunds.
    """
    from smarttickets.tickets.services import issue_tickets

    order = _get_order(order_id)
    try:
        with transaction.atomic():
            hold = Hold.objects.select_for_update().get(pk=order.hold_id)
            order = Order.objects.select_for_update().select_related(
                "performance__event", "buyer").get(pk=order.pk)
            if order.state in (Order.State.PAID, Order.State.REFUNDED):
                return order
            if currency.upper() != order.currency or amount_minor != to_minor(order.total,
                                                                              order.currency):
                raise PaymentMismatch(_("The payment does not match the order total."))
            items = list(HoldItem.objects.filter(hold=hold).select_related("zone")
                         .order_by("pk"))
            if card_fingerprint:
                _check_card_limit(order=order, card_fingerprint=card_fingerprint,
                                  units=len(items),
                                  limit=order.performance.event.per_person_limit)
            if hold.state == Hold.State.LIVE:
                Hold.objects.filter(pk=hold.pk, state=Hold.State.LIVE).update(
                    state=Hold.State.PURCHASED, closed_at=now, close_reason="paid")
            elif not _retake(hold=hold, items=items):
                raise PaidAfterExpiry(_("The payment arrived after the hold ended and the "
                                        "tickets are no longer available. It will be "
                                        "refunded in full."))
            else:
                Hold.objects.filter(pk=hold.pk).update(state=Hold.State.PURCHASED,
                                                       closed_at=now, close_reason="paid_late")
            previous = order.state
            order.state = Order.State.PAID
            order.paid_at = now
            order.closed_at = None
            order.payment_provider = provider[:30]
            order.payment_reference = payment_reference[:200]
            order.paid_amount_minor = amount_minor
            order.card_fingerprint = card_fingerprint[:128]
            order.save(update_fields=["state", "paid_at", "closed_at", "payment_provider",
                                      "payment_reference", "paid_amount_minor",
                                      "card_fingerprint"])
            tickets = issue_tickets(order=order, items=items, now=now)
            log_action(action="order.paid", obj=order, now=now,
                       data={"provider": provider, "reference": payment_reference,
                             "amount_minor": amount_minor, "currency": currency,
                             "previous_state": previous, "tickets": [t.pk for t in tickets]})
            if order.performance.event.personalised:
                # Tickets now carry this name; later changes go through support (audited).
                lock_legal_name(user=order.buyer, now=now, reason=f"order {order.code}")
            from smarttickets.booking.tasks import send_order_confirmation

            transaction.on_commit(lambda: send_order_confirmation.enqueue(order_id=order.pk))
    except BookingLimitReached as exc:
        record_limit_hit(exc=exc, user=order.buyer, performance_id=order.performance_id,
                         subject=card_fingerprint, now=now, data={"order": order.code})
        raise
    return order


@retry_on_contention()
def mark_payment_failed(*, order_id: int, reason: str, now: datetime) -> Order:
    """The payment failed or was abandoned: release the hold exactly once. Idempotent."""
    order = _get_order(order_id)
    if order.state == Order.State.PENDING:
        _close_hold(hold_id=order.hold_id, state=Hold.State.RELEASED,
                    reason=f"payment_failed: {reason}"[:100], actor=None, now=now)
        order.refresh_from_db()
    return order


@retry_on_contention()
def record_refund(*, order_id: int, ticket_ids: list[int] | None, actor: User | None,
                  reason: str, now: datetime) -> Order:
    """After the provider refunded: cancel those tickets (all when None), give their units
    back exactly once, and mark the order refunded when no valid ticket is left."""
    from smarttickets.tickets.models import Ticket
    from smarttickets.tickets.services import cancel_tickets

    order = _get_order(order_id)
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        tickets = Ticket.objects.filter(order=order)
        if ticket_ids is not None:
            wanted = set(ticket_ids)
            known = set(tickets.filter(pk__in=wanted).values_list("pk", flat=True))
            if wanted - known:
                raise InvalidInput(_("Some tickets are not part of this order: %(ids)s.")
                                   % {"ids": ", ".join(map(str, sorted(wanted - known)))},
                                   code="unknown_tickets")
            tickets = tickets.filter(pk__in=wanted)
        cancelled = cancel_tickets(tickets=tickets, now=now)
        for zone_id, n in sorted(Counter(t.zone_id for t in cancelled).items()):
            inventory.give_back_units(performance_id=order.performance_id, zone_id=zone_id, n=n)
        seat_ids = [t.seat_id for t in cancelled if t.seat_id]
        if seat_ids:
            SeatClaim.objects.filter(performance_id=order.performance_id,
                                     seat_id__in=seat_ids).delete()
        if cancelled:
            log_action(action="order.tickets_refunded", obj=order, actor=actor, now=now,
                       data={"reason": reason, "tickets": [t.pk for t in cancelled]})
        if (order.state == Order.State.PAID
                and not Ticket.objects.filter(order=order, state=Ticket.State.VALID).exists()):
            order.state = Order.State.REFUNDED
            order.closed_at = now
            order.save(update_fields=["state", "closed_at"])
            log_action(action="order.refunded", obj=order, actor=actor, now=now,
                       data={"reason": reason})
    return order


# --- entitlements (the lottery and waiting room call these) ---------------------------------

@retry_on_contention()
def grant_entitlement(*, user: User, performance: Performance, zone: PriceZone, quantity: int,
                      expires_at: datetime, source: str, now: datetime) -> Entitlement:
    """Reserve ``quantity`` units of a zone for ``user`` until ``expires_at``.

    Raises SoldOut when the units are not there (nothing reserved).
    """
    if zone.event_id != performance.event_id:
        raise InvalidSelection(_("That price zone does not exist for this performance."))
    if quantity < 1 or quantity > performance.event.per_person_limit:
        raise InvalidSelection(_("An entitlement is for 1 to %(n)d tickets.")
                               % {"n": performance.event.per_person_limit})
    inventory.ensure_inventory(performance=performance)
    with transaction.atomic():
        if not inventory.take_units(performance_id=performance.pk, zone_id=zone.pk, n=quantity):
            raise SoldOut(_("Sorry, %(zone)s does not have %(n)d tickets left.")
                          % {"zone": zone.name, "n": quantity})
        ent = Entitlement.objects.create(user=user, performance=performance, zone=zone,
                                         quantity=quantity, expires_at=expires_at,
                                         source=source[:100], created_at=now)
        log_action(action="entitlement.granted", obj=ent, now=now,
                   data={"quantity": quantity, "zone_id": zone.pk, "source": source})
    return ent


def _close_entitlement(*, entitlement_id: int, state: str, actor: User | None,
                       now: datetime) -> bool:
    with transaction.atomic():
        if not Entitlement.objects.filter(pk=entitlement_id, state=Entitlement.State.OPEN
                                          ).update(state=state, closed_at=now):
            return False
        ent = Entitlement.objects.get(pk=entitlement_id)
        inventory.give_back_units(performance_id=ent.performance_id, zone_id=ent.zone_id,
                                  n=ent.quantity)
        log_action(action=f"entitlement.{state}", obj=ent, actor=actor, now=now)
    return True


def revoke_entitlement(*, entitlement: Entitlement, actor: User | None, now: datetime
                       ) -> Entitlement:
    _close_entitlement(entitlement_id=entitlement.pk, state=Entitlement.State.REVOKED,
                       actor=actor, now=now)
    entitlement.refresh_from_db()
    return entitlement


def consume_entitlement(*, entitlement: Entitlement, selection: Selection, now: datetime,
                        ip: str | None = None, device_id: str = "") -> Hold:
    """Turn an entitlement into a hold (the lottery's purchase window uses this)."""
    return create_hold(user=entitlement.user, performance=entitlement.performance,
                       selection=selection, now=now, ip=ip, device_id=device_id,
                       entitlement_id=entitlement.pk)
