"""Risk writes: record telemetry, prune it, and store decisions (each with its audit entry)."""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from smarttickets.accounts.models import User
from smarttickets.core import bulk
from smarttickets.core.audit import log_action, mask
from smarttickets.core.exceptions import (
    Conflict,
    DomainError,
    InvalidInput,
    LimitReached,
    NotFound,
)
from smarttickets.core.models import AuditEntry
from smarttickets.core.tasks import enqueue_on_commit
from smarttickets.risk import features, logio
from smarttickets.risk.models import (
    AccountRiskState,
    Appeal,
    Decision,
    ReviewCase,
    RiskEvent,
    RiskLink,
    RiskPolicy,
    StepUpChallenge,
)

logger = logging.getLogger(__name__)
DEFAULT_RETENTION_DAYS = 400
PURCHASE_TYPES = frozenset({"hold", "order", "payment", "lottery_entry"})


def retention_days() -> int:
    return int(getattr(settings, "RISK_EVENT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))


def _links_for(event: RiskEvent, accounts: set[int] | None = None) -> list[tuple[int, str, str]]:
    """The identifiers an event ties to accounts (mirrors features.FeatureBuilder.links).

    ``accounts``: which transfer recipients are accounts, when the caller already looked."""
    if event.account_id is None:
        return []
    data = event.data
    out = [(event.account_id, "ip", event.ip)]
    if event.device:
        out.append((event.account_id, "device", event.device))
    if event.type in PURCHASE_TYPES:
        out.append((event.account_id, "ipo", event.ip))
    if event.type == "payment" and data.get("card_fp"):
        out.append((event.account_id, "card", data["card_fp"]))
    if event.type == "signup":
        if data.get("address_hash"):
            out.append((event.account_id, "addr", data["address_hash"]))
        if data.get("name_hash"):
            out.append((event.account_id, "name", data["name_hash"]))
    if event.type == "ticket_transfer":
        to = data["to_account"]
        out.append((event.account_id, "xfer", to))
        if _is_account(to, accounts):
            out.append((int(to), "xfer", to))
    return out


def _is_account(to: str, accounts: set[int] | None) -> bool:
    if not to.isdigit():
        return False
    if accounts is None:
        return User.objects.filter(pk=int(to)).exists()
    return int(to) in accounts


def _upsert_state(account_id: int, now: datetime, **changes: Any) -> None:
    """Apply ``F()`` changes to an account's risk state, creating the row on first use."""
    if AccountRiskState.objects.filter(pk=account_id).update(**changes):
        return
    try:
        with transaction.atomic():
            AccountRiskState.objects.create(account_id=account_id)
    except IntegrityError:  # created by a concurrent event: apply the change to that row
        pass
    AccountRiskState.objects.filter(pk=account_id).update(**changes)


# Graph rows recomputed right after a new tie (as a task); more neighbours than this are only
# marked stale and recomputed by their next decision or ``risk refresh-graphs``.
EAGER_GRAPH_REFRESH = 25
# An identifier already held by more accounts than this (an address at order time: more than
# features.IP_LINK_MAX_ACCOUNTS) is a crowd — a carrier or campus address, a common name: it
# is not a tie in the graph and a newcomer changes the others' rows only in counts that are
# already large. So its holders are not marked stale one by one — at an
# on-sale behind a carrier address that was an UPDATE of hundreds of rows, and as many graph
# walks, for every hold — and their rows catch up at their own next tie, at a decision that
# finds them stale, or with ``risk refresh-graphs``. The newcomer's own row is refreshed.
CROWD_ACCOUNTS = 50


def _crowd_size(kind: str) -> int:
    # An address at order time stops being a tie past a handful of accounts.
    return features.IP_LINK_MAX_ACCOUNTS if kind == "ipo" else CROWD_ACCOUNTS


def prepare_event(*, account: User | None, type: str, session: str, ip: str,
                  device: str | None, ua: str, now: datetime,
                  fields: dict[str, Any] | None = None, source_key: str = "") -> RiskEvent:
    """Check an event against the behaviour-log spec; returns it unsaved (``record_events``
    stores it). Raises InvalidInput."""
    errors: dict[str, str] = {}
    clean, field_errors = logio.check_fields(type, fields or {})
    errors.update(field_errors)
    if account is None and type != "page_view":
        errors["account"] = _("An account is required for this event type.")
    if not isinstance(session, str) or not 0 < len(session) <= 128:
        errors["session"] = _("A session id of 1 to 128 characters is required.")
    try:
        ip = str(ipaddress.ip_address(str(ip).strip()))
    except ValueError:
        errors["ip"] = _("Not an IPv4 or IPv6 address.")
    if device is not None and (not isinstance(device, str) or len(device) > 128):
        errors["device"] = _("A device id is at most 128 characters.")
    if len(source_key) > 100:
        errors["source_key"] = _("A source key is at most 100 characters.")
    if errors:
        raise InvalidInput(_("The risk event is not valid."), fields=errors)
    return RiskEvent(
        ts=now, type=type, account=account, session=session, ip=ip, device=device or "",
        ua=(ua or "")[:512], data=clean,
        quantity=clean.get("quantity") if type == "order" else None, source_key=source_key,
    )


@transaction.atomic
def record_event(*, account: User | None, type: str, session: str, ip: str,
                 device: str | None, ua: str, now: datetime,
                 fields: dict[str, Any] | None = None, source_key: str = "") -> RiskEvent:
    """Store one telemetry event after checking it against the behaviour-log spec.

    Also keeps the account's live aggregates (``AccountRiskState``) and identifier links up to
    date. With a ``source_key`` the call is idempotent: the event already recorded from that
    source is returned. Telemetry is itself an append-only log, so it writes no audit entry.
    It is ``record_events`` for one event.
    """
    event = prepare_event(account=account, type=type, session=session, ip=ip, device=device,
                          ua=ua, now=now, fields=fields, source_key=source_key)
    result = record_events([event])[0]
    if isinstance(result, Exception):
        raise result
    return result


class _Delta:
    """What a batch adds to one account's risk state."""

    __slots__ = ("events", "last_event_at", "tickets", "transfers_in", "version")

    def __init__(self) -> None:
        self.events = self.tickets = self.transfers_in = self.version = 0
        self.last_event_at: datetime | None = None


def record_events(events: list[RiskEvent], *,
                  enqueue: Callable[[list[int]], None] | None = None,
                  ) -> list[RiskEvent | Exception]:
    """Store prepared events (``prepare_event``) with exactly the effects of recording them
    one by one in list order — the same rows, links, counters, stale marks and graph-refresh
    tasks — but with a few statements for the whole batch. Returns, per event, the stored
    event (for a source key already recorded, in the table or earlier in the list: that
    event) or the error that kept it out. Run inside a transaction (the caller's).

    ``enqueue(account_ids)`` queues a graph refresh; by default on commit of that transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_events runs inside a transaction")
    results: list[RiskEvent | Exception | None] = [None] * len(events)
    first_of: dict[str, int] = {}
    writes = []
    for i, event in enumerate(events):
        if not event.source_key or first_of.setdefault(event.source_key, i) == i:
            writes.append(i)
    # 1. The events: the unique source key decides (ON CONFLICT DO NOTHING), no look-up first.
    inserted = bulk.insert_new([events[i] for i in writes], key=("source_key",))
    taken = [events[i].source_key for i, ok in zip(writes, inserted, strict=True) if not ok]
    stored = ({e.source_key: e for e in RiskEvent.objects.filter(source_key__in=taken)}
              if taken else {})
    fresh = []
    for i, ok in zip(writes, inserted, strict=True):
        if ok:
            results[i] = events[i]
            fresh.append(events[i])
        else:
            results[i] = stored.get(events[i].source_key) or IntegrityError(
                f"risk event {events[i].source_key!r} conflicts but was not found")
    for i, event in enumerate(events):
        if results[i] is None:  # the same source earlier in the batch
            results[i] = results[first_of[event.source_key]]
    _apply_effects([e for e in fresh if e.account_id is not None], enqueue)
    return results  # type: ignore[return-value]


def _apply_effects(events: list[RiskEvent],
                   enqueue: Callable[[list[int]], None] | None) -> None:
    """Links, stale marks, state counters and refresh tasks of stored events, as if each had
    been recorded alone, in order: an event sees the links and state rows the earlier ones
    made (a tie to an account first seen earlier in the batch marks it; a crowd is counted
    with the batch's newcomers up to that event)."""
    if not events:
        return
    targets = {int(e.data["to_account"]) for e in events
               if e.type == "ticket_transfer" and e.data["to_account"].isdigit()}
    accounts = (set(User.objects.filter(pk__in=targets).values_list("pk", flat=True))
                if targets else set())
    candidates = [{(a, k, v[:128]) for a, k, v in _links_for(e, accounts)} for e in events]
    first_seen: dict[tuple[int, str, str], datetime] = {}
    for event, links in zip(events, candidates, strict=True):
        for link in links:
            first_seen.setdefault(link, event.ts)
    created = _insert_links(first_seen)
    # Each link the batch created is new to the first event that names it.
    owner: dict[tuple[int, str, str], int] = {}
    ties_of: list[list[tuple[str, str]]] = []
    added: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for i, links in enumerate(candidates):
        new = {link for link in links if link in created and owner.setdefault(link, i) == i}
        for a, k, v in new:
            added[k, v].append((i, a))
        ties_of.append(sorted({(k, v) for _a, k, v in new if k != "ip"}))
    before = _holders_before(sorted({t for ties in ties_of for t in ties}), added)

    upserted: set[int] = set()  # state rows the batch has created or changed by now
    marks_if_stored: Counter[int] = Counter()  # marks on rows that exist only if stored before
    deltas: dict[int, _Delta] = defaultdict(_Delta)
    refresh: list[list[int]] = []
    for i, event in enumerate(events):
        marked: set[int] = set()
        for tie in ties_of[i]:
            holders = before[tie]
            if holders is None:
                continue  # a crowd before the batch: a crowd for all of it
            holders = holders | {a for j, a in added[tie] if j <= i}
            if len(holders) <= _crowd_size(tie[0]):
                marked |= holders
        for account_id in marked:
            if account_id in upserted:
                deltas[account_id].version += 1
            else:
                marks_if_stored[account_id] += 1
        affected: set[int] = set()
        own = deltas[event.account_id]
        own.events += 1
        own.last_event_at = event.ts
        if event.type == "order":
            own.tickets += event.data.get("quantity") or 0
        if ties_of[i]:
            affected.update(sorted(marked)[:EAGER_GRAPH_REFRESH])
            own.version += 1
            affected.add(event.account_id)
        upserted.add(event.account_id)
        if event.type == "ticket_transfer" and _is_account(event.data["to_account"], accounts):
            to = int(event.data["to_account"])
            deltas[to].transfers_in += 1
            deltas[to].version += 1
            upserted.add(to)
            affected.add(to)
        if affected:
            refresh.append(sorted(affected)[:EAGER_GRAPH_REFRESH])
    _store_state(marks_if_stored, deltas)
    for ids in refresh:
        if enqueue is not None:
            enqueue(ids)
        else:
            from smarttickets.risk.tasks import refresh_graph_rows

            enqueue_on_commit(refresh_graph_rows, account_ids=ids)


def _insert_links(first_seen: dict[tuple[int, str, str], datetime]) -> set[tuple[int, str, str]]:
    """Insert the links no row holds yet; returns those this call inserted."""
    links = [RiskLink(account_id=a, kind=k, value=v, first_seen=first_seen[a, k, v])
             for a, k, v in sorted(first_seen)]
    if connection.vendor != "postgresql":
        # One writer at a time: a look-up, then the rows it did not find.
        match = Q()
        for a, k, v in first_seen:
            match |= Q(account_id=a, kind=k, value=v)
        known = set(RiskLink.objects.filter(match).values_list("account_id", "kind", "value"))
        links = [link for link in links if (link.account_id, link.kind, link.value) not in known]
        RiskLink.objects.bulk_create(links, ignore_conflicts=True)
        return {(link.account_id, link.kind, link.value) for link in links}
    inserted = bulk.insert_new(links, key=("account", "kind", "value"))
    return {(link.account_id, link.kind, link.value)
            for link, ok in zip(links, inserted, strict=True) if ok}


def _holders_before(ties: list[tuple[str, str]],
                    added: dict[tuple[str, str], list[tuple[int, int]]],
                    ) -> dict[tuple[str, str], set[int] | None]:
    """Per tie, the accounts that held it before the batch, or None when they were already a
    crowd (then only how many matters, and at most crowd size + newcomers + 1 rows are read)."""
    if not ties:
        return {}
    limits = {t: _crowd_size(t[0]) + len(added[t]) for t in ties}
    if connection.vendor == "postgresql":
        table, (account, kind, value) = quoted(RiskLink, "account", "kind", "value")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT t.kind, t.value, h.ids "  # noqa: S608 - names from metadata
                f"FROM jsonb_to_recordset(%s::jsonb) AS t(kind text, value text, lim int) "
                f"CROSS JOIN LATERAL (SELECT array_agg(s.a) AS ids FROM (SELECT l.{account} "
                f"AS a FROM {table} l WHERE l.{kind} = t.kind AND l.{value} = t.value "
                f"LIMIT t.lim + 1) s) h",
                [json.dumps([{"kind": k, "value": v, "lim": limits[k, v]} for k, v in ties])])
            found = {(k, v): ids or [] for k, v, ids in cursor.fetchall()}
    else:
        found = {(k, v): list(RiskLink.objects.filter(kind=k, value=v)
                              .values_list("account_id", flat=True)[:limits[k, v] + 1])
                 for k, v in ties}
    out: dict[tuple[str, str], set[int] | None] = {}
    for tie in ties:
        ids = found.get(tie, [])
        out[tie] = (None if len(ids) > limits[tie]
                    else set(ids) - {a for _i, a in added[tie]})
    return out


def _store_state(marks_if_stored: Counter[int], deltas: dict[int, _Delta]) -> None:
    """Apply a batch's changes to the accounts' risk state: the stale marks on rows that
    existed before it (an UPDATE: a row that did not exist is not created by a mark), then
    the counters, creating rows on first use (one upsert)."""
    if connection.vendor != "postgresql":
        for account_id, n in sorted(marks_if_stored.items()):
            AccountRiskState.objects.filter(account_id=account_id).update(
                graph_stale=True, graph_version=F("graph_version") + n)
        for account_id, d in sorted(deltas.items()):
            changes: dict[str, Any] = {}
            if d.events:
                changes.update(events=F("events") + d.events, last_event_at=d.last_event_at)
            if d.tickets:
                changes["tickets"] = F("tickets") + d.tickets
            if d.transfers_in:
                changes["transfers_in"] = F("transfers_in") + d.transfers_in
            if d.version:
                changes.update(graph_stale=True, graph_version=F("graph_version") + d.version)
            _upsert_state(account_id, d.last_event_at, **changes)
        return
    table, (pk, stale, version, events, tickets, transfers, last) = quoted(
        AccountRiskState, "account", "graph_stale", "graph_version", "events", "tickets",
        "transfers_in", "last_event_at")
    if marks_if_stored:
        with connection.cursor() as cursor:
            # Rows locked in key order, as the upsert below takes them: two processes'
            # batches wait for each other rather than deadlock.
            cursor.execute(
                f"WITH d AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS d(a bigint, n int)), "  # noqa: S608
                f"locked AS (SELECT s.{pk} FROM {table} s JOIN d ON s.{pk} = d.a "
                f"ORDER BY s.{pk} FOR UPDATE OF s) "
                f"UPDATE {table} SET {stale} = true, {version} = {table}.{version} + d.n "
                f"FROM d WHERE {table}.{pk} = d.a AND {table}.{pk} IN (SELECT * FROM locked)",
                [json.dumps([{"a": a, "n": n} for a, n in sorted(marks_if_stored.items())])])
    rows = [AccountRiskState(account_id=a, events=d.events, tickets=d.tickets,
                             transfers_in=d.transfers_in, last_event_at=d.last_event_at,
                             graph_version=d.version)
            for a, d in sorted(deltas.items())]
    # A new row is the model's defaults plus the batch's counts (graph_stale's default is
    # true); a stored one adds them, and a batch that bumped the version marks it stale.
    done = bulk.upsert(rows, update=(
        f"{events} = {table}.{events} + EXCLUDED.{events}, "
        f"{tickets} = {table}.{tickets} + EXCLUDED.{tickets}, "
        f"{transfers} = {table}.{transfers} + EXCLUDED.{transfers}, "
        f"{last} = COALESCE(EXCLUDED.{last}, {table}.{last}), "
        f"{stale} = {table}.{stale} OR EXCLUDED.{version} > 0, "
        f"{version} = {table}.{version} + EXCLUDED.{version}"))
    if not done:
        raise RuntimeError("the risk state rows could not be sent in one statement")


def record_event_safely(**kwargs: Any) -> RiskEvent | None:
    """``record_event`` for the platform's hooks: telemetry never breaks the caller.

    Call it after the caller's service has returned, outside its transaction; a bad field or a
    database hiccup is logged and dropped.
    """
    try:
        return record_event(**kwargs)
    except Exception:
        logger.warning("risk telemetry dropped: %s for account %s", kwargs.get("type"),
                       getattr(kwargs.get("account"), "pk", None), exc_info=True)
        return None


@transaction.atomic
def prune_events(*, now: datetime, days: int | None = None) -> int:
    """Delete telemetry older than the retention period; returns how many events went."""
    days = retention_days() if days is None else days
    if days < 1:
        raise InvalidInput(_("Retention must be at least one day."))
    cutoff = now - timedelta(days=days)
    deleted, _detail = RiskEvent.objects.filter(ts__lt=cutoff).delete()
    log_action(action="risk.events_pruned", now=now, object_type="risk.riskevent",
               object_id="", data={"before": cutoff.isoformat(), "deleted": deleted})
    return deleted


def event_to_spec(event: RiskEvent) -> dict[str, Any]:
    """A stored event as a behaviour-log line (account ids are the user's primary key)."""
    return {"ts": round(event.ts.timestamp(), 3), "type": event.type,
            "account": None if event.account_id is None else str(event.account_id),
            "session": event.session, "ip": event.ip, "device": event.device or None,
            "ua": event.ua, **event.data}


def iter_spec_events(*, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    qs = RiskEvent.objects.order_by("ts", "id")
    if since is not None:
        qs = qs.filter(ts__gte=since)
    for event in qs.iterator(chunk_size=5000):
        yield event_to_spec(event)


# Decisions are a log, written by one plain statement rather than through the ORM. On PostgreSQL
# the statement inserts the decision and its audit entry together (one round trip) — for a
# review or block with its event, also the account's open case and, for a new case, its audit
# entry — and, when it is its own transaction, commits without waiting for the WAL flush, which
# was most of a decision's time. A database crash can lose the last fraction of a second of
# such rows (never half of one, and nothing else: PostgreSQL keeps the order of commits). What
# is lost is re-derived at the fan's next attempt: every checkpoint decides again, and a review
# or block opens the case again. Staff decisions on cases, and any decision made inside a
# caller's transaction, commit as durably as everything else. RISK_DECISIONS_ASYNC_COMMIT=False
# turns it off.
CASELESS_DECISIONS = ("allow", "challenge")  # decisions that open no review case
_DECISION_COLUMNS = ("created_at", "account", "checkpoint", "object_type", "object_id",
                     "event_id", "score", "decision", "model_version", "reasons", "thresholds",
                     "failsafe", "elapsed_ms", "model_decision", "override")
_AUDIT_COLUMNS = ("created_at", "actor", "action", "object_type", "object_id", "data")
_JSON_COLUMNS = frozenset({"reasons", "thresholds", "data"})


def store_decision(*, account_id: int, checkpoint: str, score: float, decision: str,
                   model_version: str, reasons: list[dict[str, Any]],
                   thresholds: dict[str, float], failsafe: bool, now: datetime,
                   object_type: str = "", object_id: str = "", event_id: str = "",
                   elapsed_ms: float = 0.0, model_decision: str = "",
                   override: str = "") -> Decision:
    """Store a decision with its audit entry; a review or block opens (or joins) a case."""
    record = Decision(
        created_at=now, account_id=account_id, checkpoint=checkpoint, score=score,
        decision=decision, model_version=model_version, reasons=reasons, thresholds=thresholds,
        failsafe=failsafe, object_type=object_type, object_id=object_id, event_id=event_id,
        elapsed_ms=elapsed_ms, model_decision=model_decision or decision, override=override)
    if decision in CASELESS_DECISIONS or override == "banned":
        record.pk = _insert_decision(record, now, quick=True)
    elif connection.vendor == "postgresql" and (event_pk := _event_pk(event_id)) is not None:
        record.pk = _insert_decision(record, now, quick=True, event_pk=event_pk)
    else:
        with transaction.atomic():
            record.pk = _insert_decision(record, now, quick=False)
            _open_case(decision=record, now=now)
    return record


def quoted(model: type, *fields: str) -> tuple[str, list[str]]:
    """The model's table and the named fields' columns, quoted for this database: for the few
    fixed statements the decision path runs on a plain cursor."""
    quote = connection.ops.quote_name
    return (quote(model._meta.db_table),
            [quote(model._meta.get_field(name).column) for name in fields])


def _decision_values(record: Decision, now: datetime) -> tuple[list[Any], list[Any]]:
    """Parameters of the decision's row and of its audit entry (created_at, action,
    object_type, data), adapted for a cursor."""
    at = connection.ops.adapt_datetimefield_value(now)
    values = [json.dumps(getattr(record, name)) if name in _JSON_COLUMNS
              else at if name == "created_at"
              else getattr(record, "account_id" if name == "account" else name)
              for name in _DECISION_COLUMNS]
    return values, [at, f"risk.decision.{record.decision}", Decision._meta.label_lower,
                    json.dumps(mask(_decision_audit(record)))]


@functools.cache
def _decision_sql(vendor: str, quick: bool, with_case: bool) -> tuple[str, ...]:
    """The fixed statements that store a decision (built once per database and variant).

    PostgreSQL: one statement whose CTEs insert the decision and its audit entry; with
    ``with_case`` also the upsert of the account's open case for the event (``ON CONFLICT`` on
    the one-open-case index) and, for a new case, its audit entry; with ``quick`` it commits
    without waiting for the WAL flush (``set_config(..., true)`` applies to exactly the
    statement's own transaction). Elsewhere: the decision's INSERT, then its audit entry's.
    Only quoted names from the models are formatted in; every value is a parameter.
    """
    decisions, decision_cols = quoted(Decision, *_DECISION_COLUMNS)
    audits, audit_cols = quoted(AuditEntry, *_AUDIT_COLUMNS)
    (pk,) = quoted(Decision, "id")[1]
    insert_decision = f"INSERT INTO {decisions} ({', '.join(decision_cols)}) "
    insert_audit = f"INSERT INTO {audits} ({', '.join(audit_cols)}) "
    if vendor != "postgresql":
        return (insert_decision + f"VALUES ({', '.join(['%s'] * len(decision_cols))})",
                insert_audit + "VALUES (%s, NULL, %s, %s, %s, %s)")
    slots = ", ".join("%s::jsonb" if n in _JSON_COLUMNS else "%s" for n in _DECISION_COLUMNS)
    ctes = ["s AS (SELECT set_config('synchronous_commit', 'off', true))"] if quick else []
    ctes += [f"d AS ({insert_decision}VALUES ({slots}) RETURNING {pk})",
             f"a AS ({insert_audit}SELECT %s, NULL, %s, %s, d.{pk}::text, "  # noqa: S608
             "%s::jsonb FROM d)"]
    if with_case:
        cases, (account, event, decision, state, opened, updated, note) = quoted(
            ReviewCase, "account", "event", "decision", "state", "opened_at", "updated_at",
            "note")
        (case_pk,) = quoted(ReviewCase, "id")[1]
        ctes += [f"c AS (INSERT INTO {cases} "  # noqa: S608
                 f"({account}, {event}, {decision}, {state}, {opened}, {updated}, {note}) "
                 f"SELECT %s, %s, d.{pk}, %s, %s, %s, '' FROM d "
                 f"ON CONFLICT ({account}, {event}) WHERE {state} = %s "
                 f"DO UPDATE SET {decision} = EXCLUDED.{decision}, "
                 f"{updated} = EXCLUDED.{updated} "
                 f"RETURNING {case_pk}, {decision}, (xmax = 0) AS inserted)",
                 f"o AS ({insert_audit}SELECT %s, NULL, %s, %s, c.{case_pk}::text, "  # noqa: S608
                 f"jsonb_build_object('decision', c.{decision}, 'outcome', %s) "
                 "FROM c WHERE c.inserted)"]
    return (f"WITH {', '.join(ctes)} SELECT {pk} FROM d{', s' if quick else ''}",)  # noqa: S608


def _insert_decision(record: Decision, now: datetime, *, quick: bool,
                     event_pk: int | None = None) -> int:
    """Store the decision and its audit entry; returns the decision's id. On PostgreSQL with
    ``event_pk``, the account's open case for that event too, in the same statement.
    ``quick``: skip the WAL flush when the statement is its own transaction (PostgreSQL)."""
    values, audit = _decision_values(record, now)
    postgres = connection.vendor == "postgresql"
    quick = quick and postgres and not connection.in_atomic_block \
        and getattr(settings, "RISK_DECISIONS_ASYNC_COMMIT", True)
    statements = _decision_sql(connection.vendor, quick, event_pk is not None)
    if not postgres:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statements[0], values)
            decision_id = cursor.lastrowid
            cursor.execute(statements[1], [*audit[:3], str(decision_id), audit[3]])
        return decision_id
    params = [*values, *audit]
    if event_pk is not None:
        at, open_state = audit[0], ReviewCase.State.OPEN.value
        params += [record.account_id, event_pk, open_state, at, at, open_state,
                   at, "risk.case.opened", ReviewCase._meta.label_lower, record.decision]
    with connection.cursor() as cursor:
        cursor.execute(statements[0], params)
        return int(cursor.fetchone()[0])


def _decision_audit(record: Decision) -> dict[str, Any]:
    return {"checkpoint": record.checkpoint, "score": round(record.score, 4),
            "model_version": record.model_version, "failsafe": record.failsafe,
            "reasons": [r.get("code") for r in record.reasons], "override": record.override}


_known_events: set[int] = set()


def forget_known_events() -> None:
    _known_events.clear()


def _event_pk(event_id: str) -> int | None:
    """The event's pk when it exists (events are never renumbered: remembered per process)."""
    from smarttickets.events.models import Event

    if not str(event_id).isdigit():
        return None
    pk = int(event_id)
    if pk not in _known_events:
        if not Event.objects.filter(pk=pk).exists():
            return None
        _known_events.add(pk)
    return pk


def _open_case(*, decision: Decision, now: datetime) -> None:
    """Make ``decision`` the latest of the account's open case for its event, opening one.

    The common case — the account already has an open case and tries again — is one UPDATE,
    which also locks the row against a reviewer closing it at the same moment."""
    event_pk = _event_pk(decision.event_id)
    open_case = ReviewCase.objects.filter(account_id=decision.account_id, event_id=event_pk,
                                          state=ReviewCase.State.OPEN)
    if open_case.update(decision=decision, updated_at=now):
        return
    try:
        with transaction.atomic():
            case = ReviewCase.objects.create(account_id=decision.account_id, event_id=event_pk,
                                             decision=decision, opened_at=now, updated_at=now)
    except IntegrityError:  # a concurrent decision opened it a moment ago
        open_case.update(decision=decision, updated_at=now)
        return
    log_action(action="risk.case.opened", obj=case, now=now,
               data={"decision": decision.pk, "outcome": decision.decision})


# --- per-event policy ------------------------------------------------------------------------

@transaction.atomic
def set_policy(*, event_id: int, enabled: bool, challenge_at: float | None,
               review_at: float | None, block_at: float | None, actor: User | None,
               now: datetime) -> RiskPolicy:
    """Thresholds for one event; ``None`` keeps the model file's value for that level."""
    values = [v for v in (challenge_at, review_at, block_at) if v is not None]
    if any(not 0.0 <= v <= 1.0 for v in values) or values != sorted(values):
        message = _("Thresholds are scores from 0 to 1, with challenge ≤ review ≤ block.")
        raise InvalidInput(message, fields={"thresholds": [message]})
    policy, _created = RiskPolicy.objects.update_or_create(
        event_id=event_id, defaults={"enabled": enabled, "challenge_at": challenge_at,
                                     "review_at": review_at, "block_at": block_at})
    log_action(action="risk.policy.set", obj=policy, actor=actor, now=now,
               data={"enabled": enabled, "challenge_at": challenge_at,
                     "review_at": review_at, "block_at": block_at})
    cache.delete(policy_cache_key(event_id))
    return policy


def policy_cache_key(event_id: int | str) -> str:
    return f"risk:policy:v1:{event_id}"


# --- review queue ----------------------------------------------------------------------------

REVIEW_ACTIONS = ("release", "cancel", "ban")


@transaction.atomic
def resolve_case(*, case: ReviewCase, action: str, reviewer: User, note: str,
                 now: datetime) -> ReviewCase:
    """A reviewer's verdict on an open case.

    ``release``: the account is cleared for the case's event (checkout of a live hold goes on,
    later checkpoints there allow). ``cancel``: the case closes and the account stays refused
    at checkout for that event; its hold is not sold and goes back to sale when it expires or
    the buyer lets go. ``ban``: the account is refused at every checkpoint of every event.
    """
    if action not in REVIEW_ACTIONS:
        raise InvalidInput(_("Choose release, cancel or ban."), fields={"action": [action]})
    note = (note or "").strip()
    if len(note) > 2000:
        message = _("A note is at most 2,000 characters.")
        raise InvalidInput(message, fields={"note": [message]})
    locked = ReviewCase.objects.select_for_update().get(pk=case.pk)
    if locked.state != ReviewCase.State.OPEN:
        raise Conflict(_("This case was already decided (%(state)s).")
                       % {"state": locked.get_state_display()}, code="case_closed")
    state = {"release": ReviewCase.State.RELEASED, "cancel": ReviewCase.State.CANCELLED,
             "ban": ReviewCase.State.BANNED}[action]
    locked.state, locked.resolved_at, locked.resolved_by = state, now, reviewer
    locked.note, locked.updated_at = note, now
    locked.save(update_fields=["state", "resolved_at", "resolved_by", "note", "updated_at"])
    _upsert_state(locked.account_id, now)
    risk_state = AccountRiskState.objects.select_for_update().get(pk=locked.account_id)
    if action == "release" and locked.event_id is not None:
        cleared = [e for e in risk_state.cleared_events if e != str(locked.event_id)]
        risk_state.cleared_events = [*cleared, str(locked.event_id)]
        risk_state.save(update_fields=["cleared_events"])
    elif action == "ban":
        risk_state.banned_at = now
        risk_state.ban_reason = note[:500]
        risk_state.save(update_fields=["banned_at", "ban_reason"])
        # Every other open case of the account is settled by the ban.
        others = ReviewCase.objects.filter(account_id=locked.account_id,
                                           state=ReviewCase.State.OPEN)
        for other in others:
            log_action(action="risk.case.banned", obj=other, actor=reviewer, now=now,
                       data={"by_case": locked.pk})
        others.update(state=ReviewCase.State.BANNED, resolved_at=now, resolved_by=reviewer,
                      updated_at=now)
    log_action(action=f"risk.case.{state}", obj=locked, actor=reviewer, now=now,
               data={"account": locked.account_id, "event": locked.event_id, "note": note})
    forget_gate_cache(locked.account_id)
    return locked


@transaction.atomic
def lift_ban(*, account: User, reviewer: User, now: datetime) -> AccountRiskState:
    locked = AccountRiskState.objects.select_for_update().filter(pk=account.pk).first()
    if locked is None or locked.banned_at is None:
        raise Conflict(_("This account is not banned."), code="not_banned")
    locked.banned_at, locked.ban_reason = None, ""
    locked.save(update_fields=["banned_at", "ban_reason"])
    log_action(action="risk.account.unbanned", obj=locked, actor=reviewer, now=now,
               data={"account": account.pk})
    forget_gate_cache(account.pk)
    return locked


MAX_APPEAL_CHARS = 2000
MAX_APPEALS_PER_CASE = 3


@transaction.atomic
def submit_appeal(*, account: User, case: ReviewCase, text: str, now: datetime) -> Appeal:
    """A fan explains themselves; the appeal joins the case (a closed ban case reopens)."""
    text = (text or "").strip()
    if not 10 <= len(text) <= MAX_APPEAL_CHARS:
        message = _("Tell us in 10 to %(n)d characters.") % {"n": MAX_APPEAL_CHARS}
        raise InvalidInput(message, fields={"text": [message]})
    locked = ReviewCase.objects.select_for_update().get(pk=case.pk)
    if locked.account_id != account.pk:
        raise NotFound(_("Case not found."))
    if locked.appeals.count() >= MAX_APPEALS_PER_CASE:
        raise LimitReached(_("You have already sent %(n)d messages about this case; a reviewer "
                             "will answer them.") % {"n": MAX_APPEALS_PER_CASE},
                           code="appeal_limit")
    appeal = Appeal.objects.create(account=account, case=locked, text=text, created_at=now)
    fields = ["updated_at"]
    if locked.state != ReviewCase.State.OPEN:
        if ReviewCase.objects.filter(account_id=locked.account_id, event_id=locked.event_id,
                                     state=ReviewCase.State.OPEN).exists():
            raise Conflict(_("A newer case for this event is already waiting for review."),
                           code="case_open")
        locked.state, locked.resolved_at, locked.resolved_by = ReviewCase.State.OPEN, None, None
        fields += ["state", "resolved_at", "resolved_by"]
    locked.updated_at = now
    locked.save(update_fields=fields)
    log_action(action="risk.appeal.submitted", obj=appeal, actor=account, now=now,
               data={"case": locked.pk, "chars": len(text)})
    return appeal


# --- step-up: a code by SMS to the verified phone -------------------------------------------

STEPUP_CODE_TTL = timedelta(minutes=10)
STEPUP_MAX_ATTEMPTS = 5
STEPUP_COOLDOWN = timedelta(seconds=60)
STEPUP_PER_HOUR = 5
STEPUP_PASS = timedelta(minutes=30)


def _stepup_hash(*, account_id: int, code: str) -> str:
    return salted_hmac("smarttickets.risk.stepup", f"{account_id}:{code}",
                       algorithm="sha256").hexdigest()


@transaction.atomic
def start_stepup(*, account: User, now: datetime) -> StepUpChallenge:
    """Text a 6-digit code to the account's verified phone (at most once a minute)."""
    if not account.phone_verified:
        raise Conflict(_("Verify a mobile number on your profile first."), code="no_phone")
    recent = list(StepUpChallenge.objects.select_for_update()
                  .filter(account=account, created_at__gt=now - timedelta(hours=1))
                  .order_by("-created_at").values_list("created_at", flat=True))
    if recent and now - recent[0] < STEPUP_COOLDOWN:
        wait = int((STEPUP_COOLDOWN - (now - recent[0])).total_seconds()) + 1
        raise LimitReached(_("Please wait %(s)d seconds before asking for another code.")
                           % {"s": wait}, code="throttled")
    if len(recent) >= STEPUP_PER_HOUR:
        raise LimitReached(_("Too many codes this hour. Please try again later."),
                           code="throttled")
    code = f"{secrets.randbelow(10**6):06d}"
    challenge = StepUpChallenge.objects.create(
        account=account, phone=account.phone, code_hash=_stepup_hash(account_id=account.pk,
                                                                     code=code),
        created_at=now, expires_at=now + STEPUP_CODE_TTL)
    log_action(action="risk.stepup.sent", obj=challenge, actor=account, now=now,
               data={"phone": account.phone})
    body = _("%(code)s is your SmartTickets code to continue your purchase. It expires in "
             "%(minutes)d minutes. Never share it.") % {
        "code": code, "minutes": int(STEPUP_CODE_TTL.total_seconds() // 60)}
    phone = account.phone
    transaction.on_commit(lambda: _send_sms(to=phone, body=body))
    return challenge


def _send_sms(*, to: str, body: str) -> None:
    from smarttickets.accounts import sms

    try:
        sms.send_sms(to=to, body=body)
    except Exception:
        # The code is stored; the fan can ask for a new one after the cooldown.
        logger.exception("could not send the step-up SMS to %s", to)


def check_stepup(*, account: User, code: str, now: datetime) -> AccountRiskState:
    """Check the newest code; passing it lets challenged checkpoints go on for a while.

    Each attempt is committed even when wrong, so guessing is bounded.
    """
    code = "".join((code or "").split())
    error: DomainError | None = None
    with transaction.atomic():
        challenge = (StepUpChallenge.objects.select_for_update()
                     .filter(account=account, passed_at__isnull=True)
                     .order_by("-created_at", "-id").first())
        if challenge is None:
            error = Conflict(_("There is no code waiting. Ask for a new code."), code="no_code")
        elif challenge.attempts >= STEPUP_MAX_ATTEMPTS:
            error = LimitReached(_("Too many wrong codes. Ask for a new code."),
                                 code="too_many_attempts")
        elif now >= challenge.expires_at:
            error = Conflict(_("This code has expired. Ask for a new code."), code="expired")
        else:
            challenge.attempts += 1
            good = len(code) == 6 and code.isdigit() and constant_time_compare(
                challenge.code_hash, _stepup_hash(account_id=account.pk, code=code))
            if not good:
                challenge.save(update_fields=["attempts"])
                log_action(action="risk.stepup.failed", obj=challenge, actor=account, now=now,
                           data={"attempts": challenge.attempts})
                error = InvalidInput(_("That code is not right."), code="wrong_code",
                                     fields={"code": [_("That code is not right.")]})
            else:
                challenge.passed_at = now
                challenge.save(update_fields=["attempts", "passed_at"])
                _upsert_state(account.pk, now, stepup_until=now + STEPUP_PASS)
                log_action(action="risk.stepup.passed", obj=challenge, actor=account, now=now,
                           data={"until": (now + STEPUP_PASS).isoformat()})
    if error is not None:
        raise error
    forget_gate_cache(account.pk)
    return AccountRiskState.objects.get(pk=account.pk)


def forget_gate_cache(account_id: int) -> None:
    """Drop cached hold decisions of the account (a verdict or a passed step-up changes them)."""
    cache.delete(f"risk:gate:v1:{account_id}")
