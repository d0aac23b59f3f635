"""Reads for lottery pages and the API, and the ``access_*`` helpers (missing = not yours)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from smarttickets.core.exceptions import NotFound
from smarttickets.events.access import organizers_for_user
from smarttickets.events.models import Event, Performance
from smarttickets.lottery import draw, services, signing
from smarttickets.lottery.models import Entry, Lottery

RUN = "can_run_lotteries"
RECEIPT_CACHE_SECONDS = 3600


def access_lottery_performance(*, performance_id: Any, now: datetime) -> Performance:
    """A lottery performance of a published event, with its lotteries made on first look."""
    try:
        performance = (Performance.objects.select_related("event__venue", "event__organizer")
                       .get(pk=int(performance_id), event__state=Event.State.PUBLISHED,
                            sale_mode=Performance.SaleMode.LOTTERY))
    except (Performance.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("That lottery does not exist.")) from None
    services.ensure_lotteries(performance=performance, now=now)
    return performance


def lotteries_of(*, performance: Performance) -> list[Lottery]:
    return list(Lottery.objects.filter(performance=performance).select_related("zone")
                .annotate(n_active=Count("entries", filter=Q(entries__state=Entry.State.ACTIVE)),
                          seats_asked=Sum("entries__quantity",
                                          filter=Q(entries__state=Entry.State.ACTIVE)))
                .order_by("zone__sort_order", "-zone__price", "zone_id"))


def access_lottery(*, public_id: str) -> Lottery:
    """Any lottery of a published event: its record is public."""
    lottery = (Lottery.objects.select_related("performance__event__venue", "zone")
               .filter(public_id=str(public_id)[:40],
                       performance__event__state=Event.State.PUBLISHED).first())
    if lottery is None:
        raise NotFound(_("That lottery does not exist."))
    return lottery


def access_entry_by_user(*, entry_id: str, user: Any) -> Entry:
    entry = None
    if getattr(user, "is_authenticated", False):
        entry = (Entry.objects.select_related("lottery__performance__event__venue",
                                              "lottery__zone", "entitlement")
                 .filter(entry_id=str(entry_id)[:32], user=user).first())
    if entry is None:
        raise NotFound(_("That entry does not exist."))
    return entry


def entries_of_user(*, user: Any) -> QuerySet[Entry]:
    return (Entry.objects.filter(user=user)
            .select_related("lottery__performance__event__venue", "lottery__zone", "entitlement")
            .order_by("-created_at", "-pk"))


def live_entry_for(*, user: Any, performance: Performance) -> Entry | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return (Entry.objects.filter(user=user, performance=performance)
            .exclude(state=Entry.State.WITHDRAWN).select_related("lottery__zone", "entitlement")
            .first())


# --- what an entrant sees ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EntryStatus:
    code: str
    label: str
    tone: str  # badge/alert suffix: success, warning, danger, primary, ""
    detail: str
    position: int | None = None
    can_buy: bool = False


def waitlist_position(*, entry: Entry) -> int | None:
    allocation = entry.lottery.allocation or {}
    try:
        return allocation.get("waitlist", []).index(entry.entry_id) + 1
    except ValueError:
        return None


def entry_status(*, entry: Entry, now: datetime) -> EntryStatus:
    lottery = entry.lottery
    if entry.state == Entry.State.WITHDRAWN:
        return EntryStatus("withdrawn", _("Withdrawn"), "", _("You withdrew this entry."))
    if entry.state == Entry.State.DUPLICATE:
        return EntryStatus("duplicate", _("Removed as a duplicate"), "danger",
                           _("Another entry for this performance used the same mobile number."))
    if entry.state == Entry.State.EXCLUDED:
        return EntryStatus("excluded", _("Not included in the draw"), "danger",
                           _("This entry did not pass our checks against automated and resale "
                             "entries. Contact support if you think this is wrong."))
    if lottery.state in (Lottery.State.SCHEDULED, Lottery.State.OPEN):
        return EntryStatus("entered", _("Entered"), "primary",
                           _("You can change your mind and withdraw until entries close."))
    if lottery.state == Lottery.State.CLOSED:
        return EntryStatus("committed", _("In the draw"), "primary",
                           _("Entries are closed and committed. Your receipt proves your entry "
                             "is in the draw."))
    outcome = entry.outcome
    if outcome == Entry.Outcome.PURCHASED:
        return EntryStatus("purchased", _("Bought"), "success", _("You bought your tickets."))
    if outcome == Entry.Outcome.WON:
        ent = entry.entitlement
        if lottery.state == Lottery.State.DRAWN or ent is None:
            return EntryStatus("won", _("Won"), "success",
                               _("Your seats will be reserved for you when the purchase window "
                                 "opens."))
        if ent.state == ent.State.OPEN and ent.expires_at > now:
            return EntryStatus("won", _("Won"), "success",
                               _("Your seats are reserved. Buy them before the deadline."),
                               can_buy=True)
        return EntryStatus("won", _("Won"), "success", _("Complete your purchase."))
    if outcome == Entry.Outcome.LAPSED:
        return EntryStatus("lapsed", _("Not bought in time"), "warning",
                           _("The purchase time ended and the seats passed down the waiting "
                             "list."))
    if outcome == Entry.Outcome.WAITLISTED:
        position = waitlist_position(entry=entry)
        return EntryStatus("waitlisted", _("Waiting list"), "warning",
                           _("If a winner does not buy in time, their seats pass down the "
                             "waiting list in order."), position=position)
    if outcome == Entry.Outcome.NOT_SELECTED:
        return EntryStatus("not_selected", _("Not selected"), "",
                           _("Sorry, this time your entry was not selected."))
    return EntryStatus("committed", _("In the draw"), "primary", "")


def receipt_for(*, entry: Entry) -> dict[str, Any] | None:
    """The entrant's receipt (leaf bytes and Merkle inclusion proof), once entries are
    committed and only for committed entries. Cached: it never changes."""
    lottery = entry.lottery
    if not lottery.entries_document or entry.state != Entry.State.ACTIVE:
        return None
    key = f"lottery:receipt:v1:{lottery.public_id}:{entry.entry_id}"
    receipt = cache.get(key)
    if receipt is None:
        entries = draw.load_entries(lottery.entries_document.encode())
        try:
            receipt = draw.receipt(lottery.public_id, entries, entry.entry_id)
        except KeyError:
            return None
        cache.set(key, receipt, RECEIPT_CACHE_SECONDS)
    return receipt


# --- the public record ---------------------------------------------------------------------

def public_key_info() -> dict[str, str]:
    key = signing.platform_key().public
    return {"fingerprint": key.fingerprint, "kid": key.kid, "pem": key.pem()}


def counts(*, lottery: Lottery) -> dict[str, int]:
    rows = dict(Entry.objects.filter(lottery=lottery).values_list("state")
                .annotate(n=Count("pk")).values_list("state", "n"))
    flagged = Entry.objects.filter(lottery=lottery, flagged=True).exclude(
        state=Entry.State.WITHDRAWN)
    return {
        "entries": rows.get(Entry.State.ACTIVE, 0),
        "withdrawn": rows.get(Entry.State.WITHDRAWN, 0),
        "duplicates_removed": rows.get(Entry.State.DUPLICATE, 0),
        "duplicate_attempts": lottery.duplicate_attempts,
        "excluded": rows.get(Entry.State.EXCLUDED, 0),
        "flagged": flagged.count(),
        "pending_review": flagged.filter(state=Entry.State.ACTIVE,
                                         review=Entry.Review.PENDING).count(),
        "included_after_review": flagged.filter(review=Entry.Review.INCLUDED).count(),
    }


@dataclass(frozen=True, slots=True)
class AllocationSummary:
    capacity: int
    seats_won: int
    seats_passed_down: int
    seats_lapsed: int
    seats_unallocated: int
    winners: int
    waitlist: int
    lapsed: int
    promoted: int
    purchased: int


def allocation_summary(*, lottery: Lottery) -> AllocationSummary | None:
    if not lottery.allocation or not lottery.commitment:
        return None
    alloc = lottery.allocation
    seats = dict(Entry.objects.filter(lottery=lottery).values_list("entry_id", "quantity"))
    promoted = set(alloc.get("promoted", []))
    winners = alloc["winners"]
    won = sum(seats.get(e, 0) for e in winners if e not in promoted)
    passed = sum(seats.get(e, 0) for e in winners if e in promoted)
    lapsed = sum(seats.get(e, 0) for e in alloc.get("lapsed", []))
    capacity = lottery.commitment["capacity"]
    return AllocationSummary(
        capacity=capacity, seats_won=won, seats_passed_down=passed, seats_lapsed=lapsed,
        seats_unallocated=max(0, capacity - won - passed), winners=len(winners),
        waitlist=len(alloc["waitlist"]), lapsed=len(alloc.get("lapsed", [])),
        promoted=len(promoted),
        purchased=Entry.objects.filter(lottery=lottery,
                                       outcome=Entry.Outcome.PURCHASED).count())


def allocation_chart(summary: AllocationSummary) -> list[dict[str, Any]]:
    """Bar segments (share of capacity, in percent) for the inline SVG chart."""
    parts = [("won", _("Won in the draw"), summary.seats_won, "#15803d"),
             ("passed", _("Passed down the waiting list"), summary.seats_passed_down, "#4f46e5"),
             ("free", _("Not allocated"), summary.seats_unallocated, "#cbd5e1")]
    total = max(1, summary.capacity)
    x = 0.0
    segments = []
    for key, label, seats, colour in parts:
        width = 100.0 * seats / total
        segments.append({"key": key, "label": label, "seats": seats, "colour": colour,
                         "x": round(x, 3), "width": round(width, 3)})
        x += width
    return segments


def draw_source() -> bytes:
    """lottery/draw.py's source, served as the standalone verify_draw.py."""
    return Path(draw.__file__).read_bytes()


def draw_source_sha256() -> str:
    return hashlib.sha256(draw_source()).hexdigest()


# --- organizer -----------------------------------------------------------------------------

def staff_lotteries(*, user: Any) -> QuerySet[Lottery]:
    return (Lottery.objects.filter(performance__event__organizer__in=organizers_for_user(
        user, RUN)).select_related("performance__event", "zone")
        .order_by("performance__starts_at", "zone__sort_order", "zone_id"))


def staff_lottery_performances(*, user: Any) -> QuerySet[Performance]:
    return (Performance.objects.filter(
        sale_mode=Performance.SaleMode.LOTTERY,
        event__organizer__in=organizers_for_user(user, RUN))
        .select_related("event").order_by("starts_at"))


def access_performance_by_staff(*, performance_id: Any, user: Any, now: datetime
                                ) -> Performance:
    try:
        performance = (Performance.objects.select_related("event__organizer", "event__venue")
                       .get(pk=int(performance_id), sale_mode=Performance.SaleMode.LOTTERY,
                            event__organizer__in=organizers_for_user(user, RUN)))
    except (Performance.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("That lottery does not exist.")) from None
    services.ensure_lotteries(performance=performance, now=now)
    return performance


def access_lottery_by_staff(*, lottery_id: Any, user: Any) -> Lottery:
    try:
        return (Lottery.objects.select_related("performance__event__organizer", "zone")
                .get(pk=int(lottery_id),
                     performance__event__organizer__in=organizers_for_user(user, RUN)))
    except (Lottery.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("That lottery does not exist.")) from None


def access_entry_by_staff(*, entry_id: str, user: Any) -> Entry:
    entry = (Entry.objects.select_related("lottery__performance__event", "lottery__zone", "user")
             .filter(entry_id=str(entry_id)[:32],
                     lottery__performance__event__organizer__in=organizers_for_user(user, RUN))
             .first())
    if entry is None:
        raise NotFound(_("That entry does not exist."))
    return entry


def flagged_entries(*, lottery: Lottery) -> QuerySet[Entry]:
    return (Entry.objects.filter(lottery=lottery, flagged=True)
            .exclude(state=Entry.State.WITHDRAWN).select_related("user", "reviewed_by")
            .order_by("created_at", "pk"))


def offers(*, lottery: Lottery, now: datetime) -> list[dict[str, Any]]:
    """The current winners with their purchase state, for the organizer's pass-down table."""
    alloc = lottery.allocation or {}
    order = {e: i for i, e in enumerate(alloc.get("winners", []))}
    rows = (Entry.objects.filter(lottery=lottery, entry_id__in=list(order) + alloc.get(
        "lapsed", [])).select_related("user", "entitlement"))
    result = []
    for entry in rows:
        result.append({"entry": entry, "status": entry_status(entry=entry, now=now),
                       "rank": order.get(entry.entry_id)})
    result.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["entry"].pk))
    return result

