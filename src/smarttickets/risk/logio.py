"""Behaviour log (spec: behaviour-log v1) reader and writer: JSON Lines, tolerant of bad lines.

Pure module (standard library only) so the detector, the simulator and tools share it.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

COMMON_FIELDS = ("ts", "type", "account", "session", "ip", "device", "ua")
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "signup": ("email_domain", "phone_country", "name_hash", "address_hash"),
    "login": ("success",),
    "page_view": ("path", "event_id"),
    "queue_join": ("event_id",),
    "form_submit": ("form", "fill_ms", "keystrokes", "pastes", "pointer_moves", "focus_changes"),
    "hold": ("event_id", "performance_id", "quantity", "success"),
    "order": ("order_id", "event_id", "performance_id", "quantity", "amount_minor", "currency"),
    "payment": ("order_id", "amount_minor", "currency", "card_fp", "success", "decline_code"),
    "lottery_entry": ("event_id", "performance_id", "quantity"),
    "ticket_transfer": ("ticket_id", "to_account"),
}
# Value types per field for writers that validate (the platform's recorder): (types, nullable).
# Ids are opaque strings; numbers are accepted there and written as strings.
_ID = ("id", False)
FIELD_TYPES: dict[str, dict[str, tuple[str, bool]]] = {
    "signup": {"email_domain": ("str", False), "phone_country": ("str", True),
               "name_hash": ("str", True), "address_hash": ("str", True)},
    "login": {"success": ("bool", False)},
    "page_view": {"path": ("str", False), "event_id": ("id", True)},
    "queue_join": {"event_id": _ID},
    "form_submit": {"form": ("str", False), "fill_ms": ("int", True), "keystrokes": ("int", True),
                    "pastes": ("int", True), "pointer_moves": ("int", True),
                    "focus_changes": ("int", True)},
    "hold": {"event_id": _ID, "performance_id": _ID, "quantity": ("int", False),
             "success": ("bool", False)},
    "order": {"order_id": _ID, "event_id": _ID, "performance_id": _ID, "quantity": ("int", False),
              "amount_minor": ("int", False), "currency": ("str", False)},
    "payment": {"order_id": _ID, "amount_minor": ("int", False), "currency": ("str", False),
                "card_fp": ("str", False), "success": ("bool", False),
                "decline_code": ("str", True)},
    "lottery_entry": {"event_id": _ID, "performance_id": _ID, "quantity": ("int", False)},
    "ticket_transfer": {"ticket_id": _ID, "to_account": _ID},
}
FORMS = ("signup", "login", "checkout", "lottery_entry")


def check_fields(kind: str, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate and normalise a type's own fields: (clean values, errors by field)."""
    spec = FIELD_TYPES.get(kind)
    if spec is None:
        return {}, {"type": f"unknown event type {kind!r}"}
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, (kind_of, nullable) in spec.items():
        value = fields.get(name)
        if value is None:
            if not nullable:
                errors[name] = "required"
            clean[name] = None
            continue
        if kind_of == "bool":
            ok = isinstance(value, bool)
        elif kind_of == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif kind_of == "id":
            ok = (isinstance(value, str) and 0 < len(value) <= 128) or (
                isinstance(value, int) and not isinstance(value, bool))
            value = str(value)
        else:
            ok = isinstance(value, str) and len(value) <= 512
        if not ok:
            errors[name] = f"must be {'a non-negative integer' if kind_of == 'int' else 'a ' + kind_of}"
            continue
        clean[name] = value
    if kind == "form_submit" and clean.get("form") not in FORMS and "form" not in errors:
        errors["form"] = f"must be one of {', '.join(FORMS)}"
    unknown = set(fields) - set(spec)
    if unknown:
        errors.update({name: "not a field of this event type" for name in sorted(unknown)})
    return clean, errors


# Types the detector understands; anything else is counted and skipped.
KNOWN_TYPES = frozenset(TYPE_FIELDS)
MAX_REPORTED_ERRORS = 1000


@dataclass
class ReadStats:
    """What a read saw: counts, skipped unknown types and malformed lines with line numbers."""

    lines: int = 0
    events: int = 0
    malformed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    unknown_types: Counter = field(default_factory=Counter)

    def add_error(self, lineno: int, message: str) -> None:
        self.malformed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append((lineno, message))

    def summary(self) -> str:
        unknown = sum(self.unknown_types.values())
        text = (f"{self.lines} lines, {self.events} events, {self.malformed} malformed, "
                f"{unknown} of unknown type")
        if self.unknown_types:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in self.unknown_types.most_common(5)) + ")"
        return text


def _check(obj: Any) -> str | None:
    """Why an object is not a usable event, or None when it is."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    ts = obj.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        return "`ts` must be a number"
    kind = obj.get("type")
    if not isinstance(kind, str):
        return "`type` must be a string"
    account = obj.get("account")
    if account is not None and not isinstance(account, str):
        return "`account` must be a string or null"
    if account is None and kind != "page_view" and kind in KNOWN_TYPES:
        return f"`account` is null on a {kind} event"
    return None


def iter_events(source: str | Path | IO[str] | Iterable[str],
                stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Yield the valid events of a log; bad lines and unknown types are recorded in ``stats``."""
    stats = stats if stats is not None else ReadStats()
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8", errors="replace") as fh:
            yield from iter_events(fh, stats)
        return
    loads = json.loads
    known = KNOWN_TYPES
    for lineno, line in enumerate(source, start=1):
        stats.lines = lineno
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except ValueError as exc:
            stats.add_error(lineno, f"invalid JSON: {exc}")
            continue
        problem = _check(obj)
        if problem:
            stats.add_error(lineno, problem)
            continue
        if obj["type"] not in known:
            stats.unknown_types[obj["type"]] += 1
            continue
        stats.events += 1
        yield obj


def read_events(source: str | Path | IO[str] | Iterable[str]) -> tuple[list[dict[str, Any]],
                                                                      ReadStats]:
    stats = ReadStats()
    return list(iter_events(source, stats)), stats


def dumps_event(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def write_events(events: Iterable[dict[str, Any]], target: str | Path | IO[str]) -> int:
    """Write events as JSON Lines; returns how many were written."""
    if isinstance(target, str | Path):
        with open(target, "w", encoding="utf-8") as fh:
            return write_events(events, fh)
    count = 0
    buffer = io.StringIO()
    for event in events:
        buffer.write(dumps_event(event))
        buffer.write("\n")
        count += 1
        if count % 10000 == 0:
            target.write(buffer.getvalue())
            buffer = io.StringIO()
    target.write(buffer.getvalue())
    return count


def read_labels(path: str | Path) -> tuple[dict[str, int], dict[str, str], list[tuple[int, str]]]:
    """``labels.csv`` → (label by account, kind by account, errors as (line number, message))."""
    import csv

    labels: dict[str, int] = {}
    kinds: dict[str, str] = {}
    errors: list[tuple[int, str]] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"account", "label"} <= set(reader.fieldnames):
            return labels, kinds, [(1, "header must be account,label,kind")]
        for row in reader:
            lineno = reader.line_num
            account = (row.get("account") or "").strip()
            label = (row.get("label") or "").strip()
            if not account or label not in {"0", "1"}:
                errors.append((lineno, "needs an account and a label of 0 or 1"))
                continue
            labels[account] = int(label)
            kinds[account] = (row.get("kind") or "").strip()
    return labels, kinds, errors
