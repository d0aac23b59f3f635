"""``log_action``: every service that changes state writes one audit entry in its transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models

from smarttickets.core import clock
from smarttickets.core.models import AuditEntry

SENSITIVE_KEYS = {"password", "token", "secret", "card", "card_number", "cvc", "code", "otp",
                  "seed_secret", "api_key", "signature"}


def mask(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: ("***" if str(k).lower() in SENSITIVE_KEYS else mask(v)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [mask(v) for v in data]
    return data


def build_entry(*, action: str, obj: models.Model | None = None, actor: Any = None,
                data: dict[str, Any] | None = None, now: datetime | None = None,
                object_type: str | None = None,
                object_id: str | int | None = None) -> AuditEntry:
    """An unsaved audit entry, masked; for callers that write many with one bulk INSERT."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = obj.pk if object_id is None else object_id
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry(
        created_at=now or clock.now(),
        actor=user,
        action=action,
        object_type=object_type or "",
        object_id=str(object_id if object_id is not None else ""),
        data=mask(data or {}),
    )


def log_action(*, action: str, obj: models.Model | None = None, actor: Any = None,
               data: dict[str, Any] | None = None, now: datetime | None = None,
               object_type: str | None = None, object_id: str | int | None = None) -> AuditEntry:
    entry = build_entry(action=action, obj=obj, actor=actor, data=data, now=now,
                        object_type=object_type, object_id=object_id)
    entry.save(force_insert=True)
    return entry
