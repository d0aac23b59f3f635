"""Group commit for holds: one thread per server process records queued holds together.

Why: at an on-sale every hold is a short write transaction on the same few counter rows, and
what limits PostgreSQL is the per-transaction cost (round trips, row-lock hand-over on the hot
counter, the commit's WAL flush), not the work. Request threads validate their request and
queue it here; the thread takes whatever has queued up while the previous batch was committing
(nothing waits on a timer, so one lone request goes straight through) and records it with
``services.record_holds``: one transaction, one counter UPDATE per zone, bulk INSERTs, one
commit. Under load batches grow by themselves; idle, a batch is one request.

PostgreSQL stays the record: a request is answered only after its batch has committed, so a
hold that was answered survives a restart, and a process that dies loses only requests that
were never answered. On by default on PostgreSQL outside tests (``BOOKING_GROUP_COMMIT``);
SQLite has one writer at a time anyway and records in the request's own thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import TimeoutError as FutureTimeout
from queue import SimpleQueue

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import translation
from django.utils.translation import gettext as _

from smarttickets.core.batching import Reply, batching_enabled, take_batch
from smarttickets.core.exceptions import Busy, DomainError
from smarttickets.core.locking import retry_on_contention

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_committer: GroupCommitter | None = None
_counter: Counting | None = None


def enabled() -> bool:
    return batching_enabled("BOOKING_GROUP_COMMIT")


def submit(request):
    """Queue ``request`` (a services.HoldRequest) and wait for its Hold or DomainError."""
    future = _get().submit(request)
    try:
        return future.result(timeout=float(getattr(settings, "BOOKING_GROUP_COMMIT_WAIT", 20)))
    except FutureTimeout:
        # The batch may still commit; the hold then simply expires unclaimed.
        return Busy(_("The system is busy. Please try again in a moment."))


def stop(timeout: float = 10.0) -> None:
    """Record what is queued, close the thread's database connection and end the thread."""
    global _committer, _counter
    with _lock:
        committer, _committer = _committer, None
        counter, _counter = _counter, None
    if committer is not None and committer.alive and committer.pid == os.getpid():
        committer.queue.put(None)
        committer.thread.join(timeout)
    if counter is not None and counter.thread.is_alive() and counter.pid == os.getpid():
        counter.queue.put(None)
        counter.thread.join(timeout)


def count(keys: list[str], run) -> list[int]:
    """``run(keys)`` (a counting call to Redis) for ``keys``, together with the keys other
    request threads are counting with the same ``run`` at the same moment: one call for all.
    ``run`` gets the concatenated keys and returns one count per key, in order."""
    global _counter
    with _lock:
        if _counter is None or _counter.pid != os.getpid() or not _counter.thread.is_alive():
            _counter = Counting()
        counter = _counter
    future: Reply = Reply()
    counter.queue.put((keys, run, future))
    return future.result(timeout=float(getattr(settings, "BOOKING_GROUP_COMMIT_WAIT", 20)))


class Counting:
    """One thread per process that sends the velocity counters of every request waiting at
    that moment in one Redis call. Why: a call costs a request thread ~0.2 ms of the
    process's one interpreter (connection pool, command packing, reply parsing), as much as
    the rest of its hold; shared by a storm's concurrent requests, it costs a few µs each."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: SimpleQueue = SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="booking-velocity", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = take_batch(self.queue)
            by_run: dict[int, list] = defaultdict(list)
            for item in batch:
                by_run[id(item[1])].append(item)
            for items in by_run.values():
                self._send(items)

    @staticmethod
    def _send(items: list) -> None:
        run = items[0][1]
        try:
            counts = run([key for keys, _run, _future in items for key in keys])
        except BaseException as exc:
            for _keys, _run, future in items:
                future.set_exception(exc)
            return
        start = 0
        for keys, _run, future in items:
            future.set_result(counts[start:start + len(keys)])
            start += len(keys)


def _get() -> GroupCommitter:
    global _committer
    with _lock:
        # A forked child inherits the object but not the thread: start its own.
        if _committer is None or _committer.pid != os.getpid() or not _committer.alive:
            _committer = GroupCommitter(
                max_batch=int(getattr(settings, "BOOKING_GROUP_COMMIT_MAX", 128)))
        return _committer


class GroupCommitter:
    def __init__(self, *, max_batch: int) -> None:
        self.max_batch = max(1, max_batch)
        self.queue: SimpleQueue[tuple[object, Reply, str | None] | None] = SimpleQueue()
        self.pid = os.getpid()
        self.batches = 0
        self.requests = 0
        self._housekeeping_due = 0.0
        self.thread = threading.Thread(target=self._run, name="booking-group-commit",
                                       daemon=True)
        self.thread.start()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def submit(self, request) -> Reply:
        future: Reply = Reply()
        # Refusals are worded in the requester's language, not this thread's.
        self.queue.put((request, future, translation.get_language()))
        return future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = take_batch(self.queue, self.max_batch)
            try:
                self._housekeeping()
                if batch:
                    self.commit(batch)
            except BaseException as exc:  # never leave a request waiting for nothing
                logger.exception("group commit failed")
                for _request, future, _language in batch:
                    if not future.done():
                        future.set_exception(exc)
                self._housekeeping(now=True)
        connection.close()

    def _housekeeping(self, *, now: bool = False) -> None:
        """CONN_MAX_AGE and the health check, as Django does around each request, but at most
        once a second: per batch, the health check alone was a round trip per commit."""
        if now or time.monotonic() >= self._housekeeping_due:
            close_old_connections()
            self._housekeeping_due = time.monotonic() + 1.0

    def commit(self, batch: list[tuple[object, Reply]]) -> None:
        from smarttickets.booking.services import record_holds

        self.batches += 1
        self.requests += len(batch)
        groups: dict[tuple[int, str | None], list[tuple[object, Reply]]] = defaultdict(list)
        for request, future, language in batch:
            groups[request.performance.pk, language].append((request, future))
        for (_performance, language), group in groups.items():
            requests = [request for request, _future in group]
            with translation.override(language):
                try:
                    results = record_holds(requests)
                except Exception:
                    # The shared transaction failed as a whole (a deadlock near a sell-out,
                    # a lost connection): each request gets its own, so one cannot sink all.
                    logger.warning("group commit of %d holds failed; recording them one by "
                                   "one", len(group), exc_info=True)
                    close_old_connections()
                    results = [_alone(request) for request in requests]
            for (_request, future), result in zip(group, results, strict=True):
                future.set_result(result)


def _alone(request):
    from smarttickets.booking.services import record_holds

    try:
        return retry_on_contention()(record_holds)([request])[0]
    except DomainError as exc:
        return exc
    except Exception as exc:
        logger.exception("recording a hold failed")
        return exc
