"""Risk writes: record telemetry, prune it, and store decisions (each with its audit entry)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from smarttickets.accounts.models import User
from smarttickets.core.audit import log_action
from smarttickets.core.exceptions import InvalidInput
from smarttickets.risk import logio
from smarttickets.risk.models import Decision, RiskEvent, RiskLink

DEFAULT_RETENTION_DAYS = 400
PURCHASE_TYPES = frozenset({"hold", "order", "payment", "lottery_entry"})


def retention_days() -> int:
    return int(getattr(settings, "RISK_EVENT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))


def _links_for(event: RiskEvent) -> list[tuple[int, str, str]]:
    """The identifiers an event ties to accounts (mirrors features.FeatureBuilder.links)."""
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
        if to.isdigit() and User.objects.filter(pk=int(to)).exists():
            out.append((int(to), "xfer", to))
    return out


@transaction.atomic
def record_event(*, account: User | None, type: str, session: str, ip: str,
                 device: str | None, ua: str, now: datetime,
                 fields: dict[str, Any] | None = None) -> RiskEvent:
    """Store one telemetry event after checking it against the behaviour-log spec.

    Telemetry is itself an append-only log, so it writes no audit entry of its own.
    """
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
    if errors:
        raise InvalidInput(_("The risk event is not valid."), fields=errors)
    event = RiskEvent.objects.create(
        ts=now, type=type, account=account, session=session, ip=ip, device=device or "",
        ua=(ua or "")[:512], data=clean,
        quantity=clean.get("quantity") if type == "order" else None,
    )
    links = [RiskLink(account_id=a, kind=k, value=v[:128], first_seen=now)
             for a, k, v in _links_for(event)]
    if links:
        RiskLink.objects.bulk_create(links, ignore_conflicts=True)
    return event


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


@transaction.atomic
def store_decision(*, account_id: int, checkpoint: str, score: float, decision: str,
                   model_version: str, reasons: list[dict[str, Any]],
                   thresholds: dict[str, float], failsafe: bool, now: datetime,
                   object_type: str = "", object_id: str = "", event_id: str = "",
                   elapsed_ms: float = 0.0) -> Decision:
    record = Decision.objects.create(
        created_at=now, account_id=account_id, checkpoint=checkpoint, score=score,
        decision=decision, model_version=model_version, reasons=reasons, thresholds=thresholds,
        failsafe=failsafe, object_type=object_type, object_id=object_id, event_id=event_id,
        elapsed_ms=elapsed_ms,
    )
    log_action(action=f"risk.decision.{decision}", obj=record, now=now,
               data={"checkpoint": checkpoint, "score": round(score, 4),
                     "model_version": model_version, "failsafe": failsafe,
                     "reasons": [r.get("code") for r in reasons]})
    return record
