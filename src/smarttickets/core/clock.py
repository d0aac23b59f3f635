"""The one clock. Services take ``now`` as an argument; callers that have none read it here.

Tests move time with ``frozen(dt)`` instead of patching datetime.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.utils import timezone

_frozen: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("frozen_now", default=None)
_offset = timedelta(0)


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    fixed = _frozen.get()
    if fixed is not None:
        return fixed
    return timezone.now() + _offset


@contextlib.contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Within the block, ``now()`` returns ``at`` (which must be timezone-aware)."""
    if timezone.is_naive(at):
        raise ValueError("frozen() needs a timezone-aware datetime")
    token = _frozen.set(at)
    try:
        yield
    finally:
        _frozen.reset(token)


def shift(delta: timedelta) -> None:
    """Move the process clock (used by the demo and browser tests to skip ahead)."""
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)
