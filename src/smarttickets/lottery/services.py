"""Lottery use cases: create, enter, withdraw, review, close and commit, beacon, draw, offers,
pass-down and the ``tick`` that advances every lottery whose time has come.

Each function is the only writer of its state, runs in short transactions with the lottery row
locked for state changes, writes an audit entry per change and queues email after commit.
The draw itself is lottery/draw.py; nothing here decides who wins.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from smarttickets.accounts.models import User
from smarttickets.booking import services as booking
from smarttickets.booking.models import Entitlement, Hold, InventoryBucket, Order
from smarttickets.core.audit import log_action
from smarttickets.core.exceptions import Conflict, DomainError, Forbidden, InvalidInput
from smarttickets.core.tasks import enqueue_on_commit
from smarttickets.events.models import Event, Performance, PriceZone
from smarttickets.lottery import beacon as beacons
from smarttickets.lottery import draw, signing
from smarttickets.lottery.models import Entry, Lottery

logger = logging.getLogger(__name__)

MAX_NAME = 200
# A promotion from the waiting list needs at least this long left to buy; later, lapsed seats
# stay unsold (a promoted fan must have a real chance to pay).
MIN_OFFER = timedelta(hours=1)
# A drand round named at commit is at least this far in the future.
BEACON_MARGIN = timedelta(minutes=5)
# Outcomes of the risk model that flag an entry (challenge is already met: the entrant has
# verified email and mobile).
FLAGGING_DECISIONS = frozenset({"review", "block"})


# --- errors --------------------------------------------------------------------------------

class EntryRefused(Conflict):
    code = "entry_refused"


class EntryWindowClosed(EntryRefused):
    code = "entry_window_closed"


class DuplicateEntry(EntryRefused):
    code = "duplicate_entry"


class IdentityRequired(Forbidden):
    code = "identity_required"


class WrongState(Conflict):
    code = "lottery_wrong_state"


class SeedMismatch(InvalidInput):
    code = "seed_mismatch"


class SeedUnavailable(Conflict):
    code = "seed_unavailable"


# --- the seed ------------------------------------------------------------------------------

def _fernet() -> Fernet:
    # A dedicated key lets SECRET_KEY rotate without losing sealed seeds.
    secret = getattr(settings, "LOTTERY_SEED_KEY", None) or settings.SECRET_KEY
    digest = hashlib.sha256(b"smarttickets-lottery-seed|" + str(secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal_seed(seed: bytes) -> str:
    return _fernet().encrypt(seed).decode()


def unseal_seed(token: str) -> bytes:
    try:
        return _fernet().decrypt(token.encode())
    except (InvalidToken, ValueError):
        raise SeedUnavailable(_("The platform cannot read this lottery's sealed seed (was "
                                "LOTTERY_SEED_KEY or SECRET_KEY changed?). Enter the seed "
                                "to reveal it.")) from None


# --- creation and settings -----------------------------------------------------------------

def _available_units(*, performance: Performance, zone: PriceZone) -> int:
    from smarttickets.booking import inventory

    inventory.ensure_inventory(performance=performance)
    rows = InventoryBucket.objects.filter(performance=performance, zone=zone)
    return sum(b.capacity - b.taken for b in rows)


def create_lottery(*, performance: Performance, zone: PriceZone, now: datetime) -> Lottery:
    """The lottery for a zone, with a fresh sealed seed. Idempotent (a racing creator wins)."""
    from smarttickets.booking import inventory

    existing = Lottery.objects.filter(performance=performance, zone=zone).first()
    if existing is not None:
        return existing
    seed = secrets.token_bytes(32)
    in_window = (performance.entry_opens_at is not None and performance.entry_closes_at
                 is not None and performance.entry_opens_at <= now < performance.entry_closes_at)
    try:
        with transaction.atomic():
            lottery = Lottery.objects.create(
                public_id=f"lt-{secrets.token_hex(8)}", performance=performance, zone=zone,
                state=Lottery.State.OPEN if in_window else Lottery.State.SCHEDULED,
                capacity=inventory.zone_capacity(zone),
                seed_commitment=draw.seed_commitment(seed), seed_ciphertext=seal_seed(seed),
                seed_committed_at=now, created_at=now)
            log_action(action="lottery.created", obj=lottery, now=now,
                       data={"zone": zone.pk, "seed_commitment": lottery.seed_commitment,
                             "capacity": lottery.capacity})
    except IntegrityError:
        return Lottery.objects.get(performance=performance, zone=zone)
    return lottery


def ensure_lotteries(*, performance: Performance, now: datetime) -> list[Lottery]:
    """One lottery per price zone of a lottery performance (made on first use)."""
    if performance.sale_mode != Performance.SaleMode.LOTTERY:
        return []
    have = {lot.zone_id: lot for lot in Lottery.objects.filter(performance=performance)}
    zones = list(PriceZone.objects.filter(event_id=performance.event_id))
    for zone in zones:
        if zone.pk not in have:
            have[zone.pk] = create_lottery(performance=performance, zone=zone, now=now)
    return [have[z.pk] for z in zones]


@dataclass(frozen=True, slots=True)
class LotterySettings:
    capacity: int
    flagged_policy: str
    beacon_kind: str
    beacon_source: str = ""
    beacon_draw: str = ""
    offer_hours: int = 24


def update_settings(*, lottery: Lottery, actor: User, values: LotterySettings,
                    now: datetime) -> Lottery:
    """Change capacity, flagged-entry policy, beacon and offer time while entries are not yet
    committed. Beacon and policy are fixed once entries open: they are part of the rules
    entrants read."""
    errors: dict[str, str] = {}
    if values.capacity < 1:
        errors["capacity"] = _("Give away at least one seat.")
    if values.flagged_policy not in Lottery.FlaggedPolicy.values:
        errors["flagged_policy"] = _("Choose a policy for flagged entries.")
    if values.beacon_kind not in Lottery.BeaconKind.values:
        errors["beacon_kind"] = _("Choose a beacon.")
    if not 1 <= values.offer_hours <= 24 * 14:
        errors["offer_hours"] = _("Give winners between 1 hour and 14 days to buy.")
    if values.beacon_kind == Lottery.BeaconKind.PUBLIC:
        try:
            beacons.PublicValueBeacon(source=values.beacon_source.strip(),
                                      draw=values.beacon_draw.strip())
        except beacons.BeaconError as exc:
            errors["beacon_source"] = str(exc.message)
    if errors:
        raise InvalidInput(_("Check the lottery settings."), fields=errors)
    with transaction.atomic():
        locked = Lottery.objects.select_for_update().get(pk=lottery.pk)
        rules_changed = (values.flagged_policy != locked.flagged_policy
                         or values.beacon_kind != locked.beacon_kind
                         or values.beacon_source.strip() != locked.beacon_source
                         or values.beacon_draw.strip() != locked.beacon_draw)
        if locked.state not in (Lottery.State.SCHEDULED, Lottery.State.OPEN):
            raise WrongState(_("The entries are committed; the settings can no longer change."))
        if rules_changed and locked.state != Lottery.State.SCHEDULED:
            raise WrongState(_("Entries are open: the beacon and the flagged-entry policy are "
                               "published rules and can no longer change."))
        locked.capacity = values.capacity
        locked.flagged_policy = values.flagged_policy
        locked.beacon_kind = values.beacon_kind
        is_public = values.beacon_kind == Lottery.BeaconKind.PUBLIC
        locked.beacon_source = values.beacon_source.strip() if is_public else ""
        locked.beacon_draw = values.beacon_draw.strip() if is_public else ""
        locked.offer_hours = values.offer_hours
        locked.save(update_fields=["capacity", "flagged_policy", "beacon_kind", "beacon_source",
                                   "beacon_draw", "offer_hours"])
        log_action(action="lottery.settings_changed", obj=locked, actor=actor, now=now,
                   data={"capacity": values.capacity, "flagged_policy": values.flagged_policy,
                         "beacon_kind": values.beacon_kind,
                         "beacon_source": locked.beacon_source,
                         "beacon_draw": locked.beacon_draw, "offer_hours": values.offer_hours})
    return locked


def _transition(*, lottery: Lottery, expect: tuple[str, ...], to: str) -> Lottery:
    """Lock the lottery row and check its state; must be called inside a transaction."""
    locked = Lottery.objects.select_for_update().select_related(
        "performance__event", "zone").get(pk=lottery.pk)
    if locked.state not in expect:
        raise WrongState(_("This lottery is %(state)s; that step is not possible now.")
                         % {"state": locked.get_state_display().lower()})
    locked.state = to
    return locked


def open_lottery(*, lottery: Lottery, actor: User | None, now: datetime) -> Lottery:
    performance = lottery.performance
    if performance.entry_opens_at is None or now < performance.entry_opens_at:
        raise WrongState(_("Entries open at the published time; it has not come yet."))
    with transaction.atomic():
        locked = _transition(lottery=lottery, expect=(Lottery.State.SCHEDULED,),
                             to=Lottery.State.OPEN)
        locked.save(update_fields=["state"])
        log_action(action="lottery.opened", obj=locked, actor=actor, now=now)
    return locked


# --- entries -------------------------------------------------------------------------------

def normalise_name(name: str) -> str:
    """Legal names as typed on documents: NFKC, single spaces, no surrounding space."""
    return " ".join(unicodedata.normalize("NFKC", name or "").split())


def clean_companions(*, names: list[str], quantity: int, personalised: bool) -> list[str]:
    """One legal name per companion ticket on real-name events; none otherwise."""
    if not personalised:
        return []
    wanted = quantity - 1
    names = [normalise_name(n) for n in names][:wanted]
    names += [""] * (wanted - len(names))
    errors: dict[str, list[str]] = {}
    for i, name in enumerate(names, start=1):
        if not name:
            errors[f"companion_{i}"] = [_("Enter the legal name of companion %(n)d.")
                                        % {"n": i}]
        elif len(name) > MAX_NAME:
            errors[f"companion_{i}"] = [_("A name can be at most %(n)d characters.")
                                        % {"n": MAX_NAME}]
        elif len(name) < 2 or not any(ch.isalpha() for ch in name):
            errors[f"companion_{i}"] = [_("Enter a real name as it appears on an identity "
                                          "document.")]
    if errors:
        raise InvalidInput(_("Check your companions' names."), code="invalid_companions",
                           fields=errors)
    return names


def entry_window_open(*, performance: Performance, now: datetime) -> bool:
    return (performance.event.state == Event.State.PUBLISHED and not performance.cancelled
            and performance.entry_opens_at is not None and performance.entry_closes_at is not None
            and performance.entry_opens_at <= now < performance.entry_closes_at)


def _check_can_enter(*, lottery: Lottery, user: User, quantity: int, now: datetime) -> None:
    performance = lottery.performance
    if not user.identity_verified:
        raise IdentityRequired(_("Entering a lottery needs a verified identity: confirm your "
                                 "email address and mobile number and enter your legal name "
                                 "in your profile."))
    if not entry_window_open(performance=performance, now=now) or lottery.state not in (
            Lottery.State.SCHEDULED, Lottery.State.OPEN):
        raise EntryWindowClosed(_("This lottery is not taking entries now."))
    limit = performance.event.per_person_limit
    if not 1 <= quantity <= limit:
        raise InvalidInput(_("Enter for 1 to %(n)d tickets.") % {"n": limit},
                           code="invalid_quantity", fields={"quantity": [
                               _("Enter for 1 to %(n)d tickets.") % {"n": limit}]})


def _duplicate_of(*, performance: Performance, user: User) -> DuplicateEntry | None:
    live = Entry.objects.filter(performance=performance).exclude(state=Entry.State.WITHDRAWN)
    if live.filter(user=user).exists():
        return DuplicateEntry(_("You have already entered the lottery for this performance. "
                                "Withdraw that entry first to enter for another zone or "
                                "number of tickets."))
    if live.filter(phone=user.phone).exists():
        return DuplicateEntry(_("This mobile number has already been used to enter the "
                                "lottery for this performance. One entry per person."))
    return None


def _risk_decision(*, user: User, lottery: Lottery, quantity: int, entry_id: str,
                   ip: str | None, device: str, now: datetime) -> tuple[str, float | None]:
    """The risk app's decision at entry, where the risk app is installed; 'allow' otherwise.

    Called before the entry transaction: scoring must never hold the lottery row.
    """
    try:
        from smarttickets.risk.decisions import AccountActivity, decide
    except ImportError:
        return "allow", None
    activity = AccountActivity(account_id=user.pk, event_id=str(lottery.performance.event_id),
                               performance_id=str(lottery.performance_id), ip=ip,
                               device=device or None, quantity=quantity,
                               object_type="lottery.entry", object_id=entry_id)
    try:
        decision = decide(activity=activity, checkpoint="lottery_entry", now=now)
    except DomainError:
        logger.exception("risk decision refused the lottery checkpoint; allowing the entry")
        return "allow", None
    return decision.decision, decision.score


def _record_telemetry(*, entry: Entry, ip: str | None, device: str, session: str,
                      user_agent: str, now: datetime) -> None:
    try:
        from smarttickets.risk.services import record_event
    except ImportError:
        return
    try:
        record_event(account=entry.user, type="lottery_entry", session=session or "lottery",
                     ip=ip or "0.0.0.0", device=device or None, ua=user_agent, now=now,  # noqa: S104
                     fields={"event_id": entry.performance.event_id,
                             "performance_id": entry.performance_id,
                             "quantity": entry.quantity})
    except DomainError:
        logger.warning("lottery entry %s: telemetry not recorded", entry.entry_id)


def enter(*, lottery: Lottery, user: User, quantity: int, companions: list[str], now: datetime,
          ip: str | None = None, device: str = "", session: str = "",
          user_agent: str = "") -> Entry:
    """Enter ``user`` for ``quantity`` seats of ``lottery``.

    Refused, with nothing stored, outside the entry window, for an unverified identity, over
    the per-person limit, without companions' names on real-name events, or when the same
    account or verified mobile number already has an entry for this performance.
    """
    lottery = Lottery.objects.select_related("performance__event", "zone").get(pk=lottery.pk)
    _check_can_enter(lottery=lottery, user=user, quantity=quantity, now=now)
    names = clean_companions(names=companions, quantity=quantity,
                             personalised=lottery.performance.event.personalised)
    duplicate = _duplicate_of(performance=lottery.performance, user=user)
    if duplicate is not None:
        _count_duplicate(lottery=lottery)
        raise duplicate
    entry_id = secrets.token_hex(16)
    decision, score = _risk_decision(user=user, lottery=lottery, quantity=quantity,
                                     entry_id=entry_id, ip=ip, device=device, now=now)
    flagged = decision in FLAGGING_DECISIONS
    try:
        with transaction.atomic():
            # Touching the lottery row orders this entry before or after a concurrent close:
            # an entry either is in the commitment or was refused.
            if not Lottery.objects.filter(
                    pk=lottery.pk, state__in=(Lottery.State.SCHEDULED, Lottery.State.OPEN)
            ).update(state=Lottery.State.OPEN):
                raise EntryWindowClosed(_("This lottery is not taking entries now."))
            entry = Entry.objects.create(
                entry_id=entry_id, lottery=lottery, performance=lottery.performance, user=user,
                quantity=quantity, companions=names, phone=user.phone,
                legal_name=normalise_name(user.legal_name), flagged=flagged,
                risk_decision=decision, risk_score=score,
                review=(Entry.Review.PENDING if flagged and lottery.flagged_policy
                        == Lottery.FlaggedPolicy.REVIEW else Entry.Review.NONE),
                created_at=now)
            log_action(action="lottery.entry_created", obj=entry, actor=user, now=now,
                       data={"lottery": lottery.public_id, "quantity": quantity,
                             "companions": len(names), "risk": decision, "flagged": flagged})
            from smarttickets.lottery.tasks import send_entry_email

            enqueue_on_commit(send_entry_email, entry_pk=entry.pk, kind="confirmed")
    except IntegrityError:
        # A concurrent request of the same person won the race for the unique constraint.
        _count_duplicate(lottery=lottery)
        raise DuplicateEntry(_("You have already entered the lottery for this performance."))\
            from None
    _record_telemetry(entry=entry, ip=ip, device=device, session=session,
                      user_agent=user_agent, now=now)
    return entry


def _count_duplicate(*, lottery: Lottery) -> None:
    # Outside the refused transaction: a published statistic, not part of the entry.
    Lottery.objects.filter(pk=lottery.pk).update(duplicate_attempts=F("duplicate_attempts") + 1)


def withdraw(*, entry: Entry, user: User, now: datetime) -> Entry:
    """The entrant takes their entry back while entries are open."""
    if entry.user_id != user.pk:
        raise DomainError(_("That entry does not exist."), code="not_found", status=404)
    with transaction.atomic():
        lottery = Lottery.objects.select_for_update().select_related(
            "performance__event").get(pk=entry.lottery_id)
        if lottery.state != Lottery.State.OPEN or not entry_window_open(
                performance=lottery.performance, now=now):
            raise EntryWindowClosed(_("Entries have closed; an entry can no longer be "
                                      "withdrawn."))
        if not Entry.objects.filter(pk=entry.pk, state=Entry.State.ACTIVE).update(
                state=Entry.State.WITHDRAWN, withdrawn_at=now):
            raise WrongState(_("This entry was already withdrawn."))
        entry.refresh_from_db()
        log_action(action="lottery.entry_withdrawn", obj=entry, actor=user, now=now)
    return entry


def review_entry(*, entry: Entry, actor: User, include: bool, now: datetime) -> Entry:
    """Staff decide on a flagged entry before the commitment is published."""
    with transaction.atomic():
        lottery = Lottery.objects.select_for_update().get(pk=entry.lottery_id)
        if lottery.state not in (Lottery.State.SCHEDULED, Lottery.State.OPEN):
            raise WrongState(_("The entries are committed; reviews are closed."))
        entry = Entry.objects.select_for_update().get(pk=entry.pk)
        if not entry.flagged or entry.state != Entry.State.ACTIVE:
            raise WrongState(_("Only flagged entries that are still entered can be reviewed."))
        entry.review = Entry.Review.INCLUDED if include else Entry.Review.EXCLUDED
        entry.reviewed_by = actor
        entry.reviewed_at = now
        entry.save(update_fields=["review", "reviewed_by", "reviewed_at"])
        log_action(action="lottery.entry_reviewed", obj=entry, actor=actor, now=now,
                   data={"include": include})
    return entry


# --- close and commit ----------------------------------------------------------------------

def _utc_iso(moment: datetime) -> str:
    return draw.parse_timestamp(moment.astimezone(UTC).isoformat())


def _beacon_description(*, lottery: Lottery, now: datetime) -> dict[str, Any] | None:
    if lottery.beacon_kind == Lottery.BeaconKind.PUBLIC:
        return {"source": lottery.beacon_source, "draw": lottery.beacon_draw}
    if lottery.beacon_kind == Lottery.BeaconKind.DRAND:
        # The round is named now, at the scheduled draw time (or a few minutes from now if
        # that has passed): it does not exist yet, so nobody knows it when committing.
        at = max(lottery.performance.draw_at or now, now + BEACON_MARGIN)
        return {"source": draw.DRAND_QUICKNET, "round": beacons.QUICKNET.round_at(at) + 1}
    return None


def _sweep_duplicates(*, lottery: Lottery, now: datetime) -> int:
    """Second part of the duplicate rule, at close: a mobile number that entered once cannot
    have entered again through another account after moving to it during the window."""
    live = list(Entry.objects.filter(performance=lottery.performance, state=Entry.State.ACTIVE)
                .select_related("user").order_by("created_at", "pk"))
    first_by_phone: dict[str, Entry] = {}
    for entry in live:
        first_by_phone.setdefault(entry.phone, entry)
    removed = 0
    for entry in live:
        if entry.lottery_id != lottery.pk:
            continue
        current = entry.user.phone if entry.user.phone_verified else ""
        other = first_by_phone.get(current)
        if current and other is not None and other.pk != entry.pk \
                and (other.created_at, other.pk) < (entry.created_at, entry.pk):
            Entry.objects.filter(pk=entry.pk).update(state=Entry.State.DUPLICATE)
            log_action(action="lottery.entry_duplicate", obj=entry, now=now,
                       data={"same_phone_as": other.entry_id})
            removed += 1
    return removed


def _apply_flagged_policy(*, lottery: Lottery, now: datetime) -> int:
    flagged = Entry.objects.filter(lottery=lottery, state=Entry.State.ACTIVE, flagged=True)
    if lottery.flagged_policy == Lottery.FlaggedPolicy.REVIEW:
        # Included by staff stay in; excluded, or never reviewed by the commitment, go.
        flagged = flagged.exclude(review=Entry.Review.INCLUDED)
    ids = list(flagged.values_list("pk", flat=True))
    if ids:
        Entry.objects.filter(pk__in=ids).update(state=Entry.State.EXCLUDED)
        log_action(action="lottery.entries_excluded", obj=lottery, now=now,
                   data={"count": len(ids), "policy": lottery.flagged_policy})
    return len(ids)


def pending_reviews(*, lottery: Lottery) -> int:
    return Entry.objects.filter(lottery=lottery, state=Entry.State.ACTIVE, flagged=True,
                                review=Entry.Review.PENDING).count()


def close_and_commit(*, lottery: Lottery, actor: User | None, now: datetime) -> Lottery:
    """Close entries and publish the signed commitment: Merkle root of the entries, the seed
    commitment made at creation, and the beacon named now for the future."""
    performance = lottery.performance
    if performance.entry_closes_at is None or now < performance.entry_closes_at:
        raise WrongState(_("Entries close at the published time; it has not come yet."))
    with transaction.atomic():
        locked = _transition(lottery=lottery, expect=(Lottery.State.SCHEDULED,
                                                      Lottery.State.OPEN),
                             to=Lottery.State.CLOSED)
        n_duplicates = _sweep_duplicates(lottery=locked, now=now)
        n_excluded = _apply_flagged_policy(lottery=locked, now=now)
        rows = list(Entry.objects.filter(lottery=locked, state=Entry.State.ACTIVE)
                    .values("entry_id", "weight", "quantity"))
        entries = draw.entries_from_objects(
            {"entry_id": r["entry_id"], "weight": r["weight"], "seats": r["quantity"]}
            for r in rows)
        capacity = min(locked.capacity, _available_units(performance=locked.performance,
                                                         zone=locked.zone))
        if capacity < 1:
            raise WrongState(_("No seats of this zone are left to give away."))
        description = _beacon_description(lottery=locked, now=now)
        beacons.beacon_for(description).check_named_in_advance(now)
        commitment = draw.make_commitment(
            lottery_id=locked.public_id, capacity=capacity, entries=entries,
            seed_commitment=locked.seed_commitment, beacon=description,
            published_at=_utc_iso(now))
        locked.commitment = commitment
        locked.commitment_hash = draw.commitment_hash(commitment)
        locked.signature = signing.sign_commitment(commitment)
        locked.entries_document = draw.dump_entries(entries).decode()
        locked.committed_at = now
        locked.n_duplicates = n_duplicates
        locked.n_excluded = n_excluded
        locked.save(update_fields=["state", "commitment", "commitment_hash", "signature",
                                   "entries_document", "committed_at", "n_duplicates",
                                   "n_excluded"])
        log_action(action="lottery.committed", obj=locked, actor=actor, now=now,
                   data={"commitment_hash": locked.commitment_hash, "n_entries": len(entries),
                         "capacity": capacity, "beacon": description,
                         "duplicates": n_duplicates, "excluded": n_excluded})
        from smarttickets.lottery.tasks import send_lottery_emails

        enqueue_on_commit(send_lottery_emails, lottery_pk=locked.pk, kind="committed")
    return locked


# --- beacon and draw -----------------------------------------------------------------------

def enter_beacon(*, lottery: Lottery, actor: User, evidence: str, now: datetime) -> Lottery:
    """The organizer supplies the beacon's output: a drand round's JSON (its BLS signature is
    checked, and it must be the round the commitment named) or the public value as published."""
    if lottery.state != Lottery.State.CLOSED or lottery.commitment is None:
        raise WrongState(_("The beacon is entered after the commitment and before the draw."))
    beacon = beacons.beacon_for(lottery.commitment["beacon"])
    if isinstance(beacon, beacons.NoBeacon):
        raise WrongState(_("This lottery names no beacon; draw it directly."))
    stored: Any
    if isinstance(beacon, beacons.DrandBeacon):
        try:
            stored = json.loads(evidence)
        except (TypeError, ValueError):
            raise beacons.BeaconError(_("Paste the drand round as JSON, e.g. from "
                                        "https://api.drand.sh/…/public/%(round)s.")
                                      % {"round": beacon.round}) from None
        value = beacon.value(stored)
    else:
        stored = evidence
        value = beacon.value(evidence)
    with transaction.atomic():
        locked = _transition(lottery=lottery, expect=(Lottery.State.CLOSED,),
                             to=Lottery.State.CLOSED)
        locked.beacon_value = value.hex()
        locked.beacon_evidence = stored
        locked.beacon_entered_at = now
        locked.save(update_fields=["beacon_value", "beacon_evidence", "beacon_entered_at"])
        log_action(action="lottery.beacon_entered", obj=locked, actor=actor, now=now,
                   data={"beacon": locked.commitment["beacon"], "value": value.hex()})
    return locked


def _seed_for_reveal(*, lottery: Lottery, seed_hex: str | None) -> bytes:
    if seed_hex:
        text = seed_hex.strip().lower()
        try:
            seed = bytes.fromhex(text)
        except ValueError:
            raise SeedMismatch(_("The seed is 64 hexadecimal characters.")) from None
    else:
        seed = unseal_seed(lottery.seed_ciphertext)
    if len(seed) != 32 or draw.seed_commitment(seed) != lottery.commitment["seed_commitment"]:
        raise SeedMismatch(_("This seed does not match the published seed commitment; the draw "
                             "was not run."))
    return seed


def run_draw(*, lottery: Lottery, actor: User | None, now: datetime,
             seed_hex: str | None = None) -> Lottery:
    """Reveal the seed and draw, once. The result is what draw.py computes from the published
    commitment, entries, seed and beacon value; anyone can recompute it."""
    if lottery.state != Lottery.State.CLOSED or lottery.commitment is None:
        raise WrongState(_("Only a lottery whose entries are committed and not yet drawn can "
                           "be drawn."))
    if lottery.commitment["beacon"] is not None and not lottery.beacon_value:
        raise WrongState(_("Enter the beacon value first."))
    seed = _seed_for_reveal(lottery=lottery, seed_hex=seed_hex)
    entries = draw.load_entries(lottery.entries_document.encode())
    try:
        result = draw.build_result(commitment=lottery.commitment, entries=entries,
                                   seed_secret=seed,
                                   beacon_value=bytes.fromhex(lottery.beacon_value))
    except draw.DrawError as exc:
        raise InvalidInput(str(exc), code="draw_failed") from None
    with transaction.atomic():
        # The state check under the row lock is what makes a second draw impossible.
        locked = _transition(lottery=lottery, expect=(Lottery.State.CLOSED,),
                             to=Lottery.State.DRAWN)
        locked.result = result
        locked.drawn_at = now
        locked.allocation = {"winners": result["winners"], "waitlist": result["waitlist"],
                             "lapsed": [], "promoted": []}
        locked.save(update_fields=["state", "result", "drawn_at", "allocation"])
        _set_outcome(locked, result["winners"], Entry.Outcome.WON)
        _set_outcome(locked, result["waitlist"], Entry.Outcome.WAITLISTED)
        log_action(action="lottery.drawn", obj=locked, actor=actor, now=now,
                   data={"winners": len(result["winners"]),
                         "waitlist": len(result["waitlist"]), "prk": result["prk"],
                         "commitment_hash": result["commitment_hash"]})
        from smarttickets.lottery.tasks import send_lottery_emails

        enqueue_on_commit(send_lottery_emails, lottery_pk=locked.pk, kind="drawn")
    return locked


def _set_outcome(lottery: Lottery, entry_ids: list[str], outcome: str, **extra: Any) -> None:
    for start in range(0, len(entry_ids), 500):
        Entry.objects.filter(lottery=lottery, entry_id__in=entry_ids[start:start + 500]).update(
            outcome=outcome, **extra)


# --- purchase window -----------------------------------------------------------------------

def start_purchase(*, lottery: Lottery, actor: User | None, now: datetime) -> Lottery:
    """Open the winners' purchase window and reserve each winner's seats (an entitlement)."""
    opens = lottery.performance.purchase_opens_at
    if opens is None or now < opens:
        raise WrongState(_("The purchase window opens at the published time; it has not come "
                           "yet."))
    with transaction.atomic():
        locked = _transition(lottery=lottery, expect=(Lottery.State.DRAWN,),
                             to=Lottery.State.PURCHASE)
        locked.purchase_started_at = now
        locked.save(update_fields=["state", "purchase_started_at"])
        log_action(action="lottery.purchase_opened", obj=locked, actor=actor, now=now)
    make_offers(lottery=locked, now=now)
    return locked


def _offer_expiry(*, lottery: Lottery, now: datetime) -> datetime:
    closes = lottery.performance.purchase_closes_at
    return min(closes, now + timedelta(hours=lottery.offer_hours)) if closes else \
        now + timedelta(hours=lottery.offer_hours)


def make_offers(*, lottery: Lottery, now: datetime) -> int:
    """Grant an entitlement to every current winner that has none yet. Idempotent; each grant is
    its own short transaction (booking's), so one failure does not undo the others."""
    lottery = Lottery.objects.select_related("performance__event", "zone").get(pk=lottery.pk)
    if lottery.state != Lottery.State.PURCHASE:
        return 0
    made = 0
    expires_at = _offer_expiry(lottery=lottery, now=now)
    pending = (Entry.objects.filter(lottery=lottery, outcome=Entry.Outcome.WON,
                                    entitlement__isnull=True, offered_at__isnull=True)
               .select_related("user").order_by("pk"))
    for entry in pending:
        try:
            ent = booking.grant_entitlement(
                user=entry.user, performance=lottery.performance, zone=lottery.zone,
                quantity=entry.quantity, expires_at=expires_at,
                source=f"lottery:{lottery.public_id}:{entry.entry_id}", now=now)
        except DomainError as exc:
            # Marked offered so it is not retried forever; pass-down treats it as lapsed.
            Entry.objects.filter(pk=entry.pk).update(offered_at=now)
            log_action(action="lottery.offer_failed", obj=entry, now=now,
                       data={"code": exc.code, "message": str(exc.message)})
            continue
        with transaction.atomic():
            Entry.objects.filter(pk=entry.pk).update(entitlement=ent, offered_at=now)
            log_action(action="lottery.offered", obj=entry, now=now,
                       data={"entitlement": ent.pk, "expires_at": expires_at.isoformat(),
                             "promoted": entry.promoted})
            from smarttickets.lottery.tasks import send_entry_email

            enqueue_on_commit(send_entry_email, entry_pk=entry.pk,
                              kind="promoted" if entry.promoted else "offer")
        made += 1
    return made


def _purchase_status(entry: Entry, now: datetime) -> str:
    """``purchased``, ``lapsed`` or ``pending`` for a current winner."""
    ent = entry.entitlement
    if ent is None:
        return "lapsed" if entry.offered_at is not None else "pending"
    if ent.state == Entitlement.State.OPEN:
        return "lapsed" if ent.expires_at <= now else "pending"
    if ent.state in (Entitlement.State.EXPIRED, Entitlement.State.REVOKED):
        return "lapsed"
    holds = list(Hold.objects.filter(entitlement=ent))
    if Order.objects.filter(hold__in=holds, state__in=(Order.State.PAID,
                                                       Order.State.REFUNDED)).exists():
        return "purchased"
    if any(h.state == Hold.State.LIVE and h.expires_at > now for h in holds):
        return "pending"
    return "lapsed"


def pass_down(*, lottery: Lottery, now: datetime) -> dict[str, int]:
    """Winners who did not buy in time lose their turn; their seats go down the waiting list in
    order by draw.py's rule. Never a second draw. Returns counts."""
    lottery = Lottery.objects.select_related("performance__event", "zone").get(pk=lottery.pk)
    if lottery.state != Lottery.State.PURCHASE:
        return {"lapsed": 0, "promoted": 0, "purchased": 0}
    winners = list(lottery.allocation["winners"])
    entries = {e.entry_id: e for e in Entry.objects.filter(
        lottery=lottery, entry_id__in=winners, outcome=Entry.Outcome.WON
    ).select_related("entitlement")}
    lapsed, purchased = [], []
    for entry_id, entry in entries.items():
        status = _purchase_status(entry, now)
        if status == "lapsed":
            lapsed.append(entry_id)
        elif status == "purchased":
            purchased.append(entry_id)
    for entry_id in lapsed:
        ent = entries[entry_id].entitlement
        if ent is not None and ent.state == Entitlement.State.OPEN:
            booking.revoke_entitlement(entitlement=ent, actor=None, now=now)
    closes = lottery.performance.purchase_closes_at
    can_promote = closes is None or closes - now >= MIN_OFFER
    seats = {r["entry_id"]: r["quantity"] for r in Entry.objects.filter(lottery=lottery)
             .values("entry_id", "quantity")}
    with transaction.atomic():
        locked = _transition(lottery=lottery, expect=(Lottery.State.PURCHASE,),
                             to=Lottery.State.PURCHASE)
        allocation = dict(locked.allocation)
        if allocation["winners"] != winners:
            raise WrongState(_("Another pass-down ran at the same time; try again."))
        promoted: list[str] = []
        if lapsed:
            if can_promote:
                new_winners, new_waitlist = draw.pass_down(
                    winners=winners, waitlist=allocation["waitlist"], seats=seats,
                    capacity=locked.commitment["capacity"], lapsed=lapsed)
            else:
                new_winners = [e for e in winners if e not in set(lapsed)]
                new_waitlist = allocation["waitlist"]
            kept = set(winners) - set(lapsed)
            promoted = [e for e in new_winners if e not in kept]
            allocation.update(winners=new_winners, waitlist=new_waitlist,
                              lapsed=[*allocation["lapsed"], *lapsed],
                              promoted=[*allocation["promoted"], *promoted])
            locked.allocation = allocation
            locked.save(update_fields=["allocation"])
            _set_outcome(locked, lapsed, Entry.Outcome.LAPSED)
            _set_outcome(locked, promoted, Entry.Outcome.WON, promoted=True)
            log_action(action="lottery.passed_down", obj=locked, now=now,
                       data={"lapsed": lapsed, "promoted": promoted})
        if purchased:
            _set_outcome(locked, purchased, Entry.Outcome.PURCHASED)
    if promoted:
        make_offers(lottery=locked, now=now)
    return {"lapsed": len(lapsed), "promoted": len(promoted), "purchased": len(purchased)}


def send_reminders(*, lottery: Lottery, now: datetime) -> int:
    """One reminder to each winner who has not bought when a third of their time is left."""
    sent = 0
    for entry in (Entry.objects.filter(lottery=lottery, outcome=Entry.Outcome.WON,
                                       reminded_at__isnull=True,
                                       entitlement__state=Entitlement.State.OPEN)
                  .select_related("entitlement")):
        ent = entry.entitlement
        left = ent.expires_at - now
        if timedelta(0) < left <= (ent.expires_at - ent.created_at) / 3:
            with transaction.atomic():
                if Entry.objects.filter(pk=entry.pk, reminded_at__isnull=True).update(
                        reminded_at=now):
                    log_action(action="lottery.reminded", obj=entry, now=now)
                    from smarttickets.lottery.tasks import send_entry_email

                    enqueue_on_commit(send_entry_email, entry_pk=entry.pk, kind="reminder")
                    sent += 1
    return sent


def finish(*, lottery: Lottery, now: datetime) -> Lottery:
    closes = lottery.performance.purchase_closes_at
    if closes is None or now < closes:
        raise WrongState(_("The purchase window is still open."))
    pass_down(lottery=lottery, now=now)
    with transaction.atomic():
        locked = _transition(lottery=lottery, expect=(Lottery.State.PURCHASE,),
                             to=Lottery.State.FINISHED)
        locked.finished_at = now
        locked.save(update_fields=["state", "finished_at"])
        Entry.objects.filter(lottery=locked, outcome=Entry.Outcome.WAITLISTED).update(
            outcome=Entry.Outcome.NOT_SELECTED)
        log_action(action="lottery.finished", obj=locked, now=now)
        from smarttickets.lottery.tasks import send_lottery_emails

        enqueue_on_commit(send_lottery_emails, lottery_pk=locked.pk, kind="finished")
    return locked


# --- the tick ------------------------------------------------------------------------------

def _advance(lottery: Lottery, now: datetime) -> str | None:
    """One due step for one lottery; returns what was done."""
    performance = lottery.performance
    state = lottery.state
    if state == Lottery.State.SCHEDULED and performance.entry_opens_at \
            and now >= performance.entry_opens_at:
        if performance.entry_closes_at and now >= performance.entry_closes_at:
            close_and_commit(lottery=lottery, actor=None, now=now)
            return "committed"
        open_lottery(lottery=lottery, actor=None, now=now)
        return "opened"
    if state == Lottery.State.OPEN and performance.entry_closes_at \
            and now >= performance.entry_closes_at:
        # Staff may finish reviewing flagged entries until the draw time; then unreviewed
        # ones are excluded by the commitment (the published rule).
        if pending_reviews(lottery=lottery) and performance.draw_at and now < performance.draw_at:
            return None
        close_and_commit(lottery=lottery, actor=None, now=now)
        return "committed"
    if state == Lottery.State.CLOSED and lottery.commitment["beacon"] is None \
            and performance.draw_at and now >= performance.draw_at:
        run_draw(lottery=lottery, actor=None, now=now)
        return "drawn"
    if state == Lottery.State.DRAWN and performance.purchase_opens_at \
            and now >= performance.purchase_opens_at:
        start_purchase(lottery=lottery, actor=None, now=now)
        return "purchase_opened"
    if state == Lottery.State.PURCHASE:
        if performance.purchase_closes_at and now >= performance.purchase_closes_at:
            finish(lottery=lottery, now=now)
            return "finished"
        counts = pass_down(lottery=lottery, now=now)
        send_reminders(lottery=lottery, now=now)
        make_offers(lottery=lottery, now=now)
        return "passed_down" if counts["lapsed"] else None
    return None


def tick(*, now: datetime) -> dict[str, int]:
    """Advance every lottery whose time has come (run by `smarttickets lottery tick` and the
    periodic task). One lottery's failure is logged and does not stop the others."""
    booking.expire_holds(now=now)
    performances = Performance.objects.filter(
        sale_mode=Performance.SaleMode.LOTTERY, event__state=Event.State.PUBLISHED,
        cancelled=False, entry_closes_at__gt=now).exclude(
        pk__in=Lottery.objects.values("performance_id"))
    for performance in performances.select_related("event"):
        ensure_lotteries(performance=performance, now=now)
    done: dict[str, int] = {}
    active = (Lottery.objects.exclude(state=Lottery.State.FINISHED)
              .filter(Q(performance__cancelled=False))
              .select_related("performance__event", "zone").order_by("pk"))
    for lottery in active:
        for _step in range(6):  # a lottery far behind catches up several steps at once
            try:
                step = _advance(lottery, now)
            except DomainError as exc:
                logger.warning("lottery %s: %s", lottery.public_id, exc.message)
                done["errors"] = done.get("errors", 0) + 1
                break
            if step is None:
                break
            done[step] = done.get(step, 0) + 1
            lottery = Lottery.objects.select_related("performance__event", "zone").get(
                pk=lottery.pk)
    return done
