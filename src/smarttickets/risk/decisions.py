"""In-process risk decisions for booking: ``decide(activity=..., checkpoint=..., now=...)``.

Booking builds a plain ``AccountActivity`` (account id, event, IP, device, quantity) and gets a
stored ``Decision`` back. Features come from the account's recent telemetry plus its cached graph
neighbourhood; the model is loaded once per process. Whatever goes wrong with the model, the
caller gets the configured fail-safe decision, never an exception.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.utils.translation import gettext as _

from smarttickets.core import clock
from smarttickets.core.exceptions import InvalidInput
from smarttickets.risk import features as F
from smarttickets.risk import model as M
from smarttickets.risk.models import Decision, RiskEvent, RiskLink
from smarttickets.risk.services import event_to_spec, store_decision

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
        _loaded.update(model=model, failed_at=0.0, error="")
        return model


def reset_model_cache() -> None:
    with _lock:
        _loaded.update(model=None, path=None, failed_at=0.0, error="")


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


def local_events(activity: AccountActivity, checkpoint: str, now: datetime) -> list[dict]:
    since = now - timedelta(days=int(getattr(settings, "RISK_LIVE_WINDOW_DAYS", WINDOW_DAYS)))
    # One query: the recent window, plus the signup however old it is (account age).
    recent = list(RiskEvent.objects.filter(Q(ts__gte=since) | Q(type="signup"),
                                           account_id=activity.account_id)
                  .order_by("-ts")[:MAX_EVENTS])
    events = [event_to_spec(e) for e in recent]
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
    own = set(RiskLink.objects.filter(account_id=account_id).exclude(kind="ip")
              .values_list("kind", "value"))
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
    tickets = {str(row["account_id"]): int(row["n"] or 0) for row in
               RiskEvent.objects.filter(account_id__in=ids, type="order")
               .values("account_id").annotate(n=Sum("quantity"))}
    ips = {v for k, v in own if k == "ipo"}
    ip_accounts = {row["value"]: row["n"] for row in
                   RiskLink.objects.filter(kind="ip", value__in=ips).values("value")
                   .annotate(n=Count("account_id"))} if ips else {}
    return links, tickets, ip_accounts, counts


def graph_row(account_id: int) -> list[float]:
    key = f"risk:graph:v1:{account_id}"
    row = cache.get(key)
    if row is None:
        links, tickets, ip_accounts, counts = neighbourhood(account_id)
        row = F.graph_features(links, tickets, ip_accounts, [str(account_id)],
                               counts=counts)[0].tolist()
        cache.set(key, row, GRAPH_CACHE_SECONDS)
    return row


def live_features(activity: AccountActivity, checkpoint: str, now: datetime) -> np.ndarray:
    builder = F.FeatureBuilder()
    builder.add_many(local_events(activity, checkpoint, now))
    me = str(activity.account_id)
    # Tickets handed to this account by others (their events are not in its window).
    for sender in (RiskLink.objects.filter(kind="xfer", value=me).exclude(account_id=activity
                                                                          .account_id)
                   .values_list("account_id", flat=True)[:MAX_NEIGHBOURS]):
        builder.add({"ts": now.timestamp(), "type": "ticket_transfer", "account": str(sender),
                     "to_account": me})
    local = F._local_features(builder.accounts[me])
    return np.array([local + graph_row(activity.account_id)], dtype=np.float64)


# -- the decision ----------------------------------------------------------------------------


def failsafe_decision() -> str:
    value = getattr(settings, "RISK_FAILSAFE_DECISION", "challenge")
    return value if value in M.DECISIONS else "challenge"


def decide(*, activity: AccountActivity, checkpoint: str, thresholds: M.Thresholds | None = None,
           now: datetime | None = None) -> Decision:
    """Score the account at a checkpoint and store the decision with its reasons.

    Never raises because of the model: on any failure the decision is the fail-safe
    (``RISK_FAILSAFE_DECISION``, challenge by default) with the reason "model unavailable".
    """
    if checkpoint not in CHECKPOINTS:
        raise InvalidInput(_("Unknown risk checkpoint."), fields={"checkpoint": checkpoint})
    started = time.perf_counter()
    now = now or clock.now()
    model_version = "unavailable"
    try:
        model = get_model()
        model_version = model.model_version
        th = thresholds or model.thresholds
        X = live_features(activity, checkpoint, now)
        score = float(model.score_matrix(X)[0])
        reasons = model.reasons(X)
        outcome = model.decide(X, np.array([score]), reasons, th)[0]
        reason_dicts = [r.as_dict() for r in reasons[0]]
        failsafe = False
    except Exception:
        logger.exception("risk model unavailable; using the fail-safe decision for account %s",
                         activity.account_id)
        th = thresholds
        score = FAILSAFE_SCORE
        outcome = failsafe_decision()
        reason_dicts = [M.MODEL_UNAVAILABLE.as_dict()]
        failsafe = True
    fields = {
        "account_id": activity.account_id, "checkpoint": checkpoint, "score": score,
        "decision": outcome, "model_version": model_version, "reasons": reason_dicts,
        "thresholds": th.as_dict() if th else {}, "failsafe": failsafe,
        "object_type": activity.object_type, "object_id": str(activity.object_id or ""),
        "event_id": str(activity.event_id or ""),
    }
    try:
        return store_decision(now=now, elapsed_ms=(time.perf_counter() - started) * 1000,
                              **fields)
    except Exception:
        # The decision still stands; storing it failed (database down): say so loudly.
        logger.exception("could not store the risk decision for account %s",
                         activity.account_id)
        return Decision(created_at=now, **fields)
