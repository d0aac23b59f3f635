"""Helpers for the per-process batching threads (booking's group commit and velocity counts,
the fast path's reader, risk's telemetry writer): a one-shot reply a request thread waits
for, and the queue-draining step each thread's loop starts with."""

from __future__ import annotations

import threading
from concurrent.futures import TimeoutError as FutureTimeout
from queue import Empty, SimpleQueue

from django.conf import settings
from django.db import connection


def batching_enabled(setting: str) -> bool:
    """A batching thread's on/off setting; unset, on with PostgreSQL outside tests (SQLite
    has one writer anyway, and tests want each write in the test's own transaction)."""
    value = getattr(settings, setting, None)
    if value is None:
        return connection.vendor == "postgresql" and not getattr(settings, "TESTING", False)
    return bool(value)


class Reply:
    """A one-shot answer from a batching thread to the request thread waiting for it: the
    part of ``concurrent.futures.Future`` used here, on one lock. A Future's Condition (a new
    lock per wait, a waiter list, notify_all) was a tenth of a worker's interpreter time in
    an on-sale storm, where every request waits for two or three of them."""

    __slots__ = ("_error", "_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()  # held until the answer is set
        self._value = self._error = None

    def done(self) -> bool:
        return not self._lock.locked()

    def set_result(self, value) -> None:
        self._value = value
        self._lock.release()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._lock.release()

    def result(self, timeout: float | None = None):
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise FutureTimeout
        self._lock.release()  # stays answered: a second result() returns at once
        if self._error is not None:
            raise self._error
        return self._value


def take_batch(queue: SimpleQueue, limit: int | None = None) -> tuple[list, bool]:
    """For a batching thread: wait for one item, then take whatever else is queued (up to
    ``limit``). Returns (items, stopping); a ``None`` item asks the thread to stop after
    these items."""
    batch = [queue.get()]
    while batch[-1] is not None and (limit is None or len(batch) < limit):
        try:
            batch.append(queue.get_nowait())
        except Empty:
            break
    if batch[-1] is None:
        return batch[:-1], True
    return batch, False
