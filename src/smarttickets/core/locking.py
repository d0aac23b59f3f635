"""Locking helpers: rows are locked in primary-key order, contention is a bounded retry.

After the retries a ``Busy`` error reaches the client (HTTP 503 with Retry-After), never a 500.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import OperationalError, connection
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from smarttickets.core.exceptions import Busy

P = ParamSpec("P")
T = TypeVar("T")

_CONTENTION_MARKERS = ("database is locked", "deadlock detected", "lock timeout",
                       "could not serialize", "canceling statement due to lock timeout",
                       "could not obtain lock")


def is_contention(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _CONTENTION_MARKERS)


def lock_in_order(queryset: QuerySet) -> list:
    """Lock the rows of ``queryset`` in primary-key order (no deadlocks between services)."""
    return list(queryset.select_for_update().order_by("pk"))


def retry_on_contention(attempts: int = 4, base_delay: float = 0.02) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Retry a transactional function when the database reports lock contention."""

    def decorator(func: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            for attempt in range(attempts):
                try:
                    return func(*args, **kwargs)
                except OperationalError as exc:
                    if not is_contention(exc) or connection.in_atomic_block:
                        raise
                    if attempt == attempts - 1:
                        raise Busy(_("The system is busy. Please try again in a moment.")) from exc
                    time.sleep(base_delay * (2**attempt) * (1 + random.random()))
            raise AssertionError("unreachable")

        return wrapper

    return decorator
