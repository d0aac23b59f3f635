"""In-process risk decisions for booking: ``decide(activity=..., checkpoint=..., now=...)``.

Booking builds a plain ``AccountActivity`` (account id, event, IP, device, quantity) and gets a
stored ``Decision`` back. Features come from the account's recent telemetry plus the graph row
kept in its ``AccountRiskState`` (recomputed only when its ties changed); the model is loaded
once per process. The event's ``RiskPolicy`` sets the thresholds; a ban, a passed step-up or a
reviewer's release then overrides the model's outcome. Whatever goes wrong with the model, the
caller gets the configured fail-safe decision, never an exception.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from smarttickets.core import clock
from smarttickets.core.exceptions import InvalidInput
from smarttickets.core.tasks import enqueue_on_commit
from smarttickets.risk import features as F
from smarttickets.risk import model as M
from smarttickets.risk.models import AccountRiskState, Decision, RiskEvent, RiskLink, RiskPolicy
from smarttickets.risk.services import forget_known_events, policy_cache_key, quoted, store_decision

logger = logging.getLogger(__name__)

CHECKPOINTS = ("hold", "checkout", "lottery_entry")
WINDOW_DAYS = 30
MAX_EVENTS = 500
GRAPH_CACHE_SECONDS = 120
MAX_NEIGHBOURS = 300
# A model that failed to load is retried after this long, not on every request.
RETRY_LOAD_SECONDS = 30.0
FAILSAFE_SCORE = 0.5


@dataclass(frozen=True)
class AccountActivity:
    """What booking knows at a checkpoint. Plain data: risk never imports booking."""

    account_id: int
    event_id: str = ""
    performance_id: str = ""
    ip: str | None = None
    device: str | None = None
    quantity: int = 0
    object_type: str = ""
    object_id: str = ""


# -- the model, once per process ---------------------------------------------------------------

_lock = threading.Lock()
_loaded: dict[str, Any] = {"model": None, "path": None, "failed_at": 0.0, "error": ""}


def model_path() -> Path:
    return Path(getattr(settings, "RISK_MODEL_PATH", "") or M.DEFAULT_MODEL_PATH)


def get_model() -> M.RiskModel:
    """The process's model; raises ``ModelError`` (cached for a while) when it cannot load."""
    path = model_path()
    model = _loaded["model"]
    if model is not None and _loaded["path"] == path:
        return model
    with _lock:
        if _loaded["model"] is not None and _loaded["path"] == path:
            return _loaded["model"]
        if _loaded["path"] == path and time.monotonic() - _loaded["failed_at"] < RETRY_LOAD_SECONDS:
            raise M.ModelError(_loaded["error"])
        _loaded["path"] = path
        try:
            model = M.load(path)
        except M.ModelError as exc:
            _loaded.update(model=None, failed_at=time.monotonic(), error=str(exc))
            raise
        # Build the compiled tree walk now (~0.4 s the first time in a process), not inside the
        # first decision that happens to need it.
        model.warm_up()
        _loaded.update(model=model, failed_at=0.0, error="")
        return model


def reset_model_cache() -> None:
    """Forget what this process loaded or remembered: the model, per-event policies and the
    events known to exist."""
    with _lock:
        _loaded.update(model=None, path=None, failed_at=0.0, error="")
    _local_policies.clear()
    _lone_row.cache_clear()
    forget_known_events()


# -- live features ---------------------------------------------------------------------------


def _synthetic_event(activity: AccountActivity, checkpoint: str, now: datetime) -> dict[str, Any]:
    """The attempt being decided, as the event it will become (not stored here)."""
    base = {"ts": now.timestamp(), "account": str(activity.account_id), "session": "",
            "ip": activity.ip or "", "device": activity.device, "ua": "",
            "event_id": activity.event_id, "performance_id": activity.performance_id,
            "quantity": activity.quantity}
    if checkpoint == "lottery_entry":
        return {**base, "type": "lottery_entry"}
    if checkpoint == "checkout":
        return {**base, "type": "order", "order_id": activity.object_id}
    return {**base, "type": "hold", "success": True}


_EVENT_COLUMNS = ("ts", "type", "session", "ip", "device", "ua", "data")


# The two reads of every decision are fixed statements run on a plain cursor: building them
# through the ORM cost more than running them (about 0.4 ms a query against PostgreSQL's
# 0.2 ms round trip). Values come back as the database gives them and are decoded here.
@functools.cache
def _read_sql(vendor: str) -> tuple[str, str]:
    """(events window, risk state) statements, built once per database. Only quoted names
    from the models' metadata are formatted in; values are parameters."""
    table, cols = quoted(RiskEvent, *_EVENT_COLUMNS)
    _, (account, kind, ts) = quoted(RiskEvent, "account", "type", "ts")
    events = (f"SELECT {', '.join(cols)} FROM {table} "  # noqa: S608
              f"WHERE {account} = %s AND ({ts} >= %s OR {kind} = %s) "
              f"ORDER BY {ts} DESC LIMIT {MAX_EVENTS}")
    table, cols = quoted(AccountRiskState, *_STATE_COLUMNS)
    _, (state_account,) = quoted(AccountRiskState, "account")
    state = f"SELECT {', '.join(cols)} FROM {table} WHERE {state_account} = %s"  # noqa: S608
    return events, state


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _moment(value: Any) -> datetime | None:
    """A DateTimeField value from a plain cursor: aware (PostgreSQL), or naive or text in UTC
    (SQLite, which stores UTC without an offset)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"not a stored date and time: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _events_params(account_id: int, now: datetime) -> list[Any]:
    since = now - timedelta(days=int(getattr(settings, "RISK_LIVE_WINDOW_DAYS", WINDOW_DAYS)))
    return [account_id, connection.ops.adapt_datetimefield_value(since), "signup"]


def read_account(activity: AccountActivity, now: datetime) -> tuple[dict[str, Any] | None,
                                                                      list[tuple]]:
    """The account's risk state and its event rows (``local_events``), the two reads of a
    decision. On PostgreSQL both go in one round trip (psycopg's pipeline mode: ~0.3 ms of a
    decision's ~3.5 ms here), straight on the connection Django holds, in its transaction."""
    if connection.vendor != "postgresql":
        return account_state(activity.account_id), _event_rows(activity.account_id, now)
    import psycopg

    events_sql, state_sql = _read_sql(connection.vendor)
    connection.ensure_connection()
    raw = connection.connection
    with raw.pipeline():
        state_cursor = psycopg.Cursor(raw)
        state_cursor.execute(state_sql, [activity.account_id])
        events_cursor = psycopg.Cursor(raw)
        events_cursor.execute(events_sql, _events_params(activity.account_id, now))
    with state_cursor, events_cursor:
        return _state_of(state_cursor.fetchone()), events_cursor.fetchall()


def _event_rows(account_id: int, now: datetime) -> list[tuple]:
    # One indexed query: the recent window, plus the signup however old it is.
    # Plain tuples, not model instances: this runs on every hold.
    return _fetch(_read_sql(connection.vendor)[0], _events_params(account_id, now))


def local_events(activity: AccountActivity, checkpoint: str, now: datetime,
                 rows: list[tuple] | None = None) -> list[dict]:
    """The account's recent events (``rows`` as ``read_account`` read them, or read here) and
    the attempt being decided, as behaviour-log events."""
    me = str(activity.account_id)
    if rows is None:
        rows = _event_rows(activity.account_id, now)
    events = [{"ts": _moment(at).timestamp(), "type": kind_, "account": me,
               "session": session_, "ip": ip_, "device": device_ or None, "ua": ua_,
               **(_json(data_) or {})}
              for at, kind_, session_, ip_, device_, ua_, data_ in rows]
    events.append(_synthetic_event(activity, checkpoint, now))
    return events


def _is_edge(kind: str, accounts: int) -> bool:
    if accounts > F.LINK_MAX_ACCOUNTS:
        return False
    if kind == "ipo":
        return accounts <= F.IP_LINK_MAX_ACCOUNTS
    return kind in F.STRONG_LINK_KINDS


def neighbourhood(account_id: int) -> tuple[dict[str, set[tuple[str, str]]], dict[str, int],
                                            dict[str, int], dict[tuple[str, str], int]]:
    """Links of the account and of accounts up to two ties away, walking only real ties.

    Identifiers that are not ties (a carrier IP with hundreds of fans, a common name) are
    counted, not fetched, so the walk stays small.
    """
    me = str(account_id)
    own = set(_fetch(_link_sql(connection.vendor)[0], [account_id, "ip"]))
    links: dict[str, set[tuple[str, str]]] = {me: set(own)}
    counts: dict[tuple[str, str], int] = {}
    if own:
        for row in (RiskLink.objects.filter(value__in={v for _k, v in own})
                    .exclude(kind="ip").values("kind", "value").annotate(n=Count("account_id"))):
            ident = (row["kind"], row["value"])
            if ident in own:
                counts[ident] = row["n"]
    frontier = {ident for ident in own if counts.get(ident, 1) > 1
                and _is_edge(ident[0], counts.get(ident, 1))}
    seen = set(frontier)
    for _hop in range(2):
        if not frontier or len(links) > MAX_NEIGHBOURS:
            break
        new_accounts = set()
        for account, kind, value in (RiskLink.objects.filter(value__in={v for _k, v in frontier})
                                     .exclude(kind="ip")
                                     .values_list("account_id", "kind", "value")
                                     [: MAX_NEIGHBOURS * 4]):
            if (kind, value) in frontier:
                key = str(account)
                if key not in links:
                    new_accounts.add(account)
                    links[key] = set()
                links[key].add((kind, value))
        if not new_accounts or _hop == 1:
            break
        frontier = set()
        for account, kind, value in (RiskLink.objects.filter(account_id__in=new_accounts)
                                     .exclude(kind__in=("ip", "name", "ipo"))
                                     .values_list("account_id", "kind", "value")):
            links[str(account)].add((kind, value))
            if (kind, value) not in seen:
                frontier.add((kind, value))
        seen |= frontier
    ids = [int(a) for a in links]
    # Kept per account as orders are recorded (AccountRiskState.tickets), not summed here.
    if ids == [account_id]:  # on no tie (a first hold at an on-sale): one fixed statement
        count = _fetch(_link_sql(connection.vendor)[1], [account_id])
        tickets = {me: count[0][0]} if count and count[0][0] else {}
    else:
        tickets = {str(a): n for a, n in AccountRiskState.objects.filter(account_id__in=ids)
                   .values_list("account_id", "tickets") if n}
    ips = {v for k, v in own if k == "ipo"}
    ip_accounts = {row["value"]: row["n"] for row in
                   RiskLink.objects.filter(kind="ip", value__in=ips).values("value")
                   .annotate(n=Count("account_id"))} if ips else {}
    return links, tickets, ip_accounts, counts


def compute_graph_row(account_id: int) -> list[float]:
    links, tickets, ip_accounts, counts = neighbourhood(account_id)
    if links == {str(account_id): set()} and not (tickets or ip_accounts or counts):
        # On no identifier at all (every fan's first hold at an on-sale): the row of a lone
        # account, the same for everyone — computed once per process, not per decision.
        return list(_lone_row())
    return F.graph_features(links, tickets, ip_accounts, [str(account_id)],
                            counts=counts)[0].tolist()


@functools.cache
def _lone_row() -> tuple[float, ...]:
    return tuple(F.graph_features({"0": set()}, {}, {}, ["0"], counts={})[0].tolist())


# The walk's most frequent reads — an account's own identifiers, its ticket count, who sent it
# tickets — as fixed statements on a plain cursor, like the decision's two reads (_read_sql).
@functools.cache
def _link_sql(vendor: str) -> tuple[str, str, str]:
    """(own identifiers, ticket count, transfer senders) statements, built once per database."""
    table, (account, kind, value) = quoted(RiskLink, "account", "kind", "value")
    own = f"SELECT {kind}, {value} FROM {table} WHERE {account} = %s AND {kind} <> %s"  # noqa: S608
    senders = (f"SELECT {account} FROM {table} "  # noqa: S608
               f"WHERE {kind} = %s AND {value} = %s AND {account} <> %s LIMIT %s")
    state, (state_account, tickets) = quoted(AccountRiskState, "account", "tickets")
    count = f"SELECT {tickets} FROM {state} WHERE {state_account} = %s"  # noqa: S608
    return own, count, senders


def _fetch(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def graph_row(account_id: int, state: dict[str, Any] | None = None,
              now: datetime | None = None) -> list[float]:
    """The account's graph features, from the row stored on its risk state.

    The walk over shared identifiers takes milliseconds, so it stays off the decision path:
    a new tie on the account (or on a neighbour) recomputes the row in a task right away
    (``services.record_event``). A decision that meets a row marked stale — one of the many
    holders of a busy identifier, refreshed in turn — uses it as it is and queues one refresh
    (``queue_graph_refresh``). Only an account that has no row yet is walked here, once.
    """
    if state is None:
        state = account_state(account_id)
    row = state.get("graph") if state else None
    if row is not None and len(row) == len(F.GRAPH_FEATURES):
        if state["graph_stale"]:
            queue_graph_refresh(account_id)
        return row
    if state is None:
        # No telemetry at all yet: nothing to store the row on, keep it for a while.
        key = f"risk:graph:v2:{account_id}"
        row = cache.get(key)
        if row is None:
            row = compute_graph_row(account_id)
            cache.set(key, row, GRAPH_CACHE_SECONDS)
        return row
    row = compute_graph_row(account_id)
    _store_graph_row(account_id, row, state["graph_version"], now or clock.now())
    return row


GRAPH_REFRESH_DEDUP_SECONDS = 30


def queue_graph_refresh(account_id: int) -> None:
    """Refresh a stale row after the current transaction, at most once per account per
    GRAPH_REFRESH_DEDUP_SECONDS however many decisions meet it (with a task worker the
    refresh runs there; with the inline task backend, once the caller's transaction ends)."""
    if not cache.add(f"risk:graph:refresh:{account_id}", 1, GRAPH_REFRESH_DEDUP_SECONDS):
        return
    from smarttickets.risk.tasks import refresh_graph_rows

    enqueue_on_commit(refresh_graph_rows, account_ids=[account_id])


def _store_graph_row(account_id: int, row: list[float], version: int, now: datetime) -> bool:
    # NaN is not JSON: stored as null and read back as NaN. Only stored as fresh when no tie
    # changed while it was being computed.
    stored = [None if v != v else v for v in row]
    return bool(AccountRiskState.objects.filter(pk=account_id, graph_version=version)
                .update(graph=stored, graph_at=now, graph_stale=False))


def refresh_graph_rows(*, account_ids: list[int], now: datetime) -> int:
    """Recompute the stale graph rows among ``account_ids``; returns how many were stored."""
    done = 0
    for account_id, version in (AccountRiskState.objects
                                .filter(pk__in=account_ids, graph_stale=True)
                                .values_list("account_id", "graph_version")):
        done += _store_graph_row(account_id, compute_graph_row(account_id), version, now)
    return done


def refresh_stale_graphs(*, now: datetime, limit: int = 1000) -> int:
    """Housekeeping (``smarttickets risk refresh-graphs``): recompute stale graph rows."""
    ids = list(AccountRiskState.objects.filter(graph_stale=True).order_by("last_event_at")
               .values_list("account_id", flat=True)[:limit])
    return refresh_graph_rows(account_ids=ids, now=now)


_STATE_COLUMNS = ("graph", "graph_stale", "graph_version", "banned_at", "stepup_until",
                  "cleared_events", "transfers_in")


def account_state(account_id: int) -> dict[str, Any] | None:
    rows = _fetch(_read_sql(connection.vendor)[1], [account_id])
    return _state_of(rows[0] if rows else None)


def _state_of(row: tuple | None) -> dict[str, Any] | None:
    if row is None:
        return None
    state = dict(zip(_STATE_COLUMNS, row, strict=True))
    state["graph_stale"] = bool(state["graph_stale"])
    state["banned_at"] = _moment(state["banned_at"])
    state["stepup_until"] = _moment(state["stepup_until"])
    state["cleared_events"] = _json(state["cleared_events"])
    graph = _json(state["graph"])
    state["graph"] = None if graph is None else [NAN if v is None else float(v) for v in graph]
    return state


NAN = float("nan")


def live_features(activity: AccountActivity, checkpoint: str, now: datetime,
                  state: dict[str, Any] | None = None,
                  rows: list[tuple] | None = None) -> np.ndarray:
    if state is None and rows is None:
        state, rows = read_account(activity, now)
    builder = F.FeatureBuilder()
    builder.add_many(local_events(activity, checkpoint, now, rows))
    me = str(activity.account_id)
    # Tickets handed to this account by others (their events are not in its window).
    if state is None or state["transfers_in"]:
        for (sender,) in _fetch(_link_sql(connection.vendor)[2],
                                ["xfer", me, activity.account_id, MAX_NEIGHBOURS]):
            builder.add({"ts": now.timestamp(), "type": "ticket_transfer",
                         "account": str(sender), "to_account": me})
    local = F._local_features(builder.accounts[me])
    return np.array([local + graph_row(activity.account_id, state, now)], dtype=np.float64)


# -- per-event policy --------------------------------------------------------------------------

POLICY_CACHE_SECONDS = 30


@dataclass(frozen=True)
class Policy:
    enabled: bool = True
    challenge_at: float | None = None
    review_at: float | None = None
    block_at: float | None = None

    def thresholds(self, default: M.Thresholds) -> M.Thresholds:
        challenge = default.challenge if self.challenge_at is None else self.challenge_at
        review = default.review if self.review_at is None else self.review_at
        block = default.block if self.block_at is None else self.block_at
        # A partial policy may cross the model's other levels: raise those to keep the order.
        review = max(review, challenge)
        block = max(block, review)
        return M.Thresholds(challenge=challenge, review=review, block=block)


# In front of the shared cache, each process keeps what it read for a few seconds: a policy is
# read on every decision of an on-sale, and a dictionary lookup costs nothing next to a cache
# round trip. A changed policy applies within POLICY_LOCAL_SECONDS everywhere (set_policy
# clears the shared entry and this process's own).
POLICY_LOCAL_SECONDS = 5.0
_local_policies: dict[str, tuple[float, Policy]] = {}


def policy_for(event_id: str) -> Policy:
    if not str(event_id or "").isdigit():
        return Policy()
    key = str(int(event_id))
    hit = _local_policies.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    shared_key = policy_cache_key(event_id)
    policy = cache.get(shared_key)
    if policy is None:
        row = (RiskPolicy.objects.filter(event_id=int(event_id))
               .values_list("enabled", "challenge_at", "review_at", "block_at").first())
        policy = Policy(*row) if row else Policy()
        cache.set(shared_key, policy, POLICY_CACHE_SECONDS)
    if len(_local_policies) > 10_000:
        _local_policies.clear()
    _local_policies[key] = (time.monotonic() + POLICY_LOCAL_SECONDS, policy)
    return policy


def forget_policy(event_id: int | str) -> None:
    _local_policies.pop(str(event_id), None)


# -- the decision ----------------------------------------------------------------------------


def failsafe_decision() -> str:
    value = getattr(settings, "RISK_FAILSAFE_DECISION", "challenge")
    return value if value in M.DECISIONS else "challenge"


def decide(*, activity: AccountActivity, checkpoint: str, thresholds: M.Thresholds | None = None,
           now: datetime | None = None) -> Decision:
    """Score the account at a checkpoint and store the decision with its reasons.

    Thresholds: ``thresholds`` if given, else the event's ``RiskPolicy`` over the model's.
    Then, in order: a banned account is blocked; an account a reviewer released for this
    event is allowed; a challenge is allowed while a passed step-up lasts. ``model_decision``
    keeps what the model said and ``override`` why it changed.

    Never raises because of the model: on any failure the decision is the fail-safe
    (``RISK_FAILSAFE_DECISION``, challenge by default) with the reason "model unavailable".
    """
    if checkpoint not in CHECKPOINTS:
        raise InvalidInput(_("Unknown risk checkpoint."), fields={"checkpoint": checkpoint})
    started = time.perf_counter()
    now = now or clock.now()
    model_version = "unavailable"
    th: M.Thresholds | None = thresholds
    state: dict[str, Any] | None = None
    policy = Policy()
    try:
        policy = policy_for(activity.event_id)
        if policy.enabled:
            state, rows = read_account(activity, now)
        else:
            state = account_state(activity.account_id)
        model = get_model()
        model_version = model.model_version
        th = thresholds or policy.thresholds(model.thresholds)
        if policy.enabled:
            X = live_features(activity, checkpoint, now, state, rows)
            score = float(model.score_matrix(X)[0])
            reasons = model.reasons(X)
            outcome = model.decide(X, np.array([score]), reasons, th)[0]
            reason_dicts = [r.as_dict() for r in reasons[0]]
        else:
            score, outcome, reason_dicts = 0.0, "allow", []
        failsafe = False
    except Exception:
        logger.exception("risk model unavailable; using the fail-safe decision for account %s",
                         activity.account_id)
        score = FAILSAFE_SCORE
        outcome = failsafe_decision()
        reason_dicts = [M.MODEL_UNAVAILABLE.as_dict()]
        failsafe = True
    final, override = apply_overrides(outcome, state=state, policy=policy,
                                      event_id=str(activity.event_id or ""), now=now)
    fields = {
        "account_id": activity.account_id, "checkpoint": checkpoint, "score": score,
        "decision": final, "model_version": model_version, "reasons": reason_dicts,
        "thresholds": th.as_dict() if th else {}, "failsafe": failsafe,
        "object_type": activity.object_type, "object_id": str(activity.object_id or ""),
        "event_id": str(activity.event_id or ""), "model_decision": outcome,
        "override": override,
    }
    try:
        return store_decision(now=now, elapsed_ms=(time.perf_counter() - started) * 1000,
                              **fields)
    except Exception:
        # The decision still stands; storing it failed (database down): say so loudly.
        logger.exception("could not store the risk decision for account %s",
                         activity.account_id)
        return Decision(created_at=now, **fields)


def apply_overrides(outcome: str, *, state: dict[str, Any] | None, policy: Policy,
                    event_id: str, now: datetime) -> tuple[str, str]:
    """What the account's standing makes of the model's outcome: (final outcome, why)."""
    if state and state["banned_at"] is not None:
        return "block", "banned"
    if not policy.enabled and outcome != "allow":
        return "allow", "policy_off"
    if outcome != "allow" and state and event_id and event_id in (state["cleared_events"] or []):
        return "allow", "cleared_by_review"
    if outcome == "challenge" and state and state["stepup_until"] is not None \
            and state["stepup_until"] > now:
        return "allow", "stepup_passed"
    return outcome, ""
