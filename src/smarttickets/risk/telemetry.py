"""Telemetry from requests: who is asking (IP, device, session, UA) and the hooks that record it.

Every hook runs after the caller's service has returned and swallows its own failures: a lost
telemetry event is logged, never a broken purchase.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from queue import SimpleQueue
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import close_old_connections, connection, transaction
from django.http import HttpRequest

from smarttickets.core import clock, net
from smarttickets.core.batching import Reply, batching_enabled, take_batch
from smarttickets.risk.services import prepare_event, record_event_safely, record_events

logger = logging.getLogger(__name__)

DEVICE_COOKIE = "st_device"
DEVICE_SALT = "smarttickets.risk.device"
DEVICE_MAX_AGE = 2 * 365 * 24 * 3600
# Telemetry fields the browser script writes into instrumented forms.
FORM_FIELD = "risk_form"
TIMINGS_FIELD = "risk_timings"
FORMS = ("signup", "login", "checkout", "lottery_entry")
TIMING_KEYS = ("fill_ms", "keystrokes", "pastes", "pointer_moves", "focus_changes")
MAX_TIMING = 10**9

# The request being served, for signal receivers (login, signup) that are not handed one.
current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "risk_current_request", default=None)


def new_device_id() -> str:
    # 16 characters: signed, the cookie stays under the 64 characters booking's limits keep.
    return secrets.token_urlsafe(12)


def signed_device_cookie(device: str) -> str:
    return signing.get_cookie_signer(salt=DEVICE_COOKIE + DEVICE_SALT).sign(device)


def device_from_cookie(request: HttpRequest) -> str | None:
    """The browser's device id: the whole signed cookie value, when its signature holds.

    The signed value itself is the id, so booking's velocity limits (which read the raw
    cookie) and risk's graph see the same string. A forged or unsigned cookie counts as none.
    """
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        request.get_signed_cookie(DEVICE_COOKIE, salt=DEVICE_SALT)
    except (signing.BadSignature, KeyError):
        return None
    return raw


def client_ip(request: HttpRequest) -> str:
    """The client's address behind the deployment's trusted proxies (core/net.py)."""
    return net.client_ip(request) or "0.0.0.0"  # noqa: S104 - an address, not a bind


def device_of(request: HttpRequest) -> str | None:
    """Apps and API clients send X-Device-Id; browsers carry the signed cookie."""
    header = request.headers.get("X-Device-Id", "").strip()
    if header:
        return header[:64]
    return getattr(request, "risk_device", None) or device_from_cookie(request)


def session_of(request: HttpRequest) -> str:
    session = getattr(request, "session", None)
    key = session.session_key if session is not None else None
    if key:
        return key[:128]
    # Anonymous visitors have no session row: their device stands in for one.
    device = device_of(request) or client_ip(request)
    return "anon-" + hashlib.sha256(device.encode()).hexdigest()[:24]


def context_of(request: HttpRequest) -> dict[str, Any]:
    return {"session": session_of(request), "ip": client_ip(request),
            "device": device_of(request), "ua": request.headers.get("User-Agent", "")[:512]}


def enabled() -> bool:
    """``RISK_TELEMETRY_ENABLED``; off by default only in other apps' test runs."""
    return bool(getattr(settings, "RISK_TELEMETRY_ENABLED",
                        not getattr(settings, "TESTING", False)))


def record(request: HttpRequest, account, type: str, fields: dict[str, Any],
           source_key: str = ""):
    """Record one event from a request; never raises. Through the process's batch writer
    where it is on (see ``Writer``), else in this thread."""
    if not enabled() or account is None or not getattr(account, "pk", None):
        return None
    kwargs = {"account": account, "type": type, "now": clock.now(), "fields": fields,
              "source_key": source_key, **context_of(request)}
    if batching() and not connection.in_atomic_block:
        return record_batched(**kwargs)
    return record_event_safely(**kwargs)


# --- the batch writer ----------------------------------------------------------------------
#
# At an on-sale every hold request records a "hold" event, and writing one through the ORM
# (a savepoint, the event, a link look-up, the links, the state row) cost more of a worker's
# interpreter than the rest of the hold. One thread per server process writes the events that
# request threads queue, a whole batch with one statement per table (services.record_events,
# the same function ``record_event`` runs for one event: one implementation of what an event
# changes). Like the hold group commit, a batch is whatever queued while the previous one was
# being written (no timer), and the request waits until its batch has committed: nothing is
# postponed past the answer, so a stopped server loses no event of an answered request, and a
# writer that cannot keep up slows the requests rather than falling behind.

_writer_lock = threading.Lock()
_writer: Writer | None = None


def batching() -> bool:
    """``RISK_TELEMETRY_BATCH``; by default on with PostgreSQL outside tests."""
    return batching_enabled("RISK_TELEMETRY_BATCH")


def record_batched(**kwargs: Any):
    """``record_event_safely`` through the process's writer: checked here, written there,
    answered once its batch has committed. Never raises; returns the event or None."""
    try:
        event = prepare_event(**kwargs)
        result = _get_writer().submit(event).result(
            timeout=float(getattr(settings, "RISK_TELEMETRY_BATCH_WAIT", 20)))
    except FutureTimeout:
        logger.warning("risk telemetry: no answer from the writer for %s of account %s (it may "
                       "still be written)", kwargs.get("type"),
                       getattr(kwargs.get("account"), "pk", None))
        return None
    except Exception:
        logger.warning("risk telemetry dropped: %s for account %s", kwargs.get("type"),
                       getattr(kwargs.get("account"), "pk", None), exc_info=True)
        return None
    if isinstance(result, Exception):
        logger.warning("risk telemetry dropped: %s for account %s", kwargs.get("type"),
                       getattr(kwargs.get("account"), "pk", None), exc_info=result)
        return None
    return result


def stop_writer(timeout: float = 10.0) -> None:
    """Write what is queued, close the thread's database connection and end the thread."""
    global _writer
    with _writer_lock:
        writer, _writer = _writer, None
    if writer is not None and writer.thread.is_alive() and writer.pid == os.getpid():
        writer.queue.put(None)
        writer.thread.join(timeout)


def _get_writer() -> Writer:
    global _writer
    with _writer_lock:
        # A forked child inherits the object but not the thread: start its own.
        if _writer is None or _writer.pid != os.getpid() or not _writer.thread.is_alive():
            _writer = Writer(max_batch=int(getattr(settings, "RISK_TELEMETRY_BATCH_MAX", 256)))
        return _writer


class Writer:
    """One thread per process writing queued telemetry events in batches."""

    def __init__(self, *, max_batch: int) -> None:
        self.max_batch = max(1, max_batch)
        self.queue: SimpleQueue = SimpleQueue()
        self.pid = os.getpid()
        self.batches = 0
        self.events = 0
        self._housekeeping_due = 0.0
        self.thread = threading.Thread(target=self._run, name="risk-telemetry", daemon=True)
        self.thread.start()

    def submit(self, event) -> Reply:
        reply = Reply()
        self.queue.put((event, reply))
        return reply

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = take_batch(self.queue, self.max_batch)
            if not batch:
                continue
            try:
                self.write(batch)
            except BaseException as exc:  # never leave a request waiting for nothing
                logger.exception("risk telemetry writer failed")
                for _event, reply in batch:
                    if not reply.done():
                        reply.set_exception(exc)
                self._housekeeping(now=True)
        connection.close()

    def _housekeeping(self, *, now: bool = False) -> None:
        # CONN_MAX_AGE and the health check, as around a request, at most once a second.
        if now or time.monotonic() >= self._housekeeping_due:
            close_old_connections()
            self._housekeeping_due = time.monotonic() + 1.0

    def write(self, batch: list[tuple[Any, Reply]]) -> None:
        self._housekeeping()
        self.batches += 1
        self.events += len(batch)
        events = [event for event, _reply in batch]
        refresh: list[list[int]] = []
        try:
            with transaction.atomic():
                results = record_events(events, enqueue=refresh.append)
        except Exception:
            # The batch's transaction failed as a whole (a deadlock, a lost connection):
            # each event gets its own, so one cannot sink the others.
            logger.warning("risk telemetry batch of %d events failed; writing them one by "
                           "one", len(events), exc_info=True)
            self._housekeeping(now=True)
            refresh.clear()
            results = [self._alone(event, refresh) for event in events]
        # Answered once committed; the refresh tasks are after-commit work, as on_commit is.
        for (_event, reply), result in zip(batch, results, strict=True):
            reply.set_result(result)
        _enqueue_refreshes(refresh)

    @staticmethod
    def _alone(event, refresh: list[list[int]]):
        _unsaved(event)
        mine: list[list[int]] = []
        try:
            with transaction.atomic():
                result = record_events([event], enqueue=mine.append)[0]
        except Exception as exc:
            logger.warning("risk telemetry event failed", exc_info=True)
            return exc
        refresh.extend(mine)
        return result


def _unsaved(event) -> None:
    """An event whose transaction rolled back is new again."""
    event.pk = None
    event._state.adding = True


def _enqueue_refreshes(refresh: list[list[int]]) -> None:
    """The batch's graph-refresh tasks (one per tying event, as ``record_event`` queues them),
    after its commit, in one transaction of their own."""
    if not refresh:
        return
    from smarttickets.risk.tasks import refresh_graph_rows

    try:
        with transaction.atomic():
            for ids in refresh:
                refresh_graph_rows.enqueue(account_ids=ids)
    except Exception:
        logger.warning("risk telemetry: %d graph refresh tasks not queued", len(refresh),
                       exc_info=True)


def parse_timings(raw: str | None) -> dict[str, int | None]:
    """The browser's form timings, or nulls when the client sent none or nonsense."""
    out: dict[str, int | None] = dict.fromkeys(TIMING_KEYS)
    if not raw or len(raw) > 1000:
        return out
    try:
        data = json.loads(raw)
    except ValueError:
        return out
    if not isinstance(data, dict):
        return out
    for key in TIMING_KEYS:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and 0 <= value <= MAX_TIMING:
            out[key] = int(value)
    return out


# --- hooks called by the apps' views and API endpoints -------------------------------------

def record_hold(request: HttpRequest, account, *, event_id: Any, performance_id: Any,
                quantity: int, success: bool, hold_id: Any = None) -> None:
    record(request, account, "hold",
           {"event_id": str(event_id), "performance_id": str(performance_id),
            "quantity": max(int(quantity or 0), 0), "success": success},
           source_key=f"hold:{hold_id}" if hold_id else "")


def record_order(request: HttpRequest, account, *, order_id: Any, event_id: Any,
                 performance_id: Any, quantity: int, amount_minor: int, currency: str) -> None:
    record(request, account, "order",
           {"order_id": str(order_id), "event_id": str(event_id),
            "performance_id": str(performance_id), "quantity": int(quantity),
            "amount_minor": int(amount_minor), "currency": currency},
           source_key=f"order:{order_id}")


def record_payment(request: HttpRequest, account, *, payment_id: Any, order_id: Any,
                   amount_minor: int, currency: str, card_fp: str | None, success: bool,
                   decline_code: str | None) -> None:
    if not card_fp:
        return  # no card was tried (an abandoned or expired checkout): not a payment attempt
    record(request, account, "payment",
           {"order_id": str(order_id), "amount_minor": int(amount_minor), "currency": currency,
            "card_fp": card_fp, "success": success,
            "decline_code": None if success else (decline_code or "declined")},
           source_key=f"payment:{payment_id}:{'ok' if success else 'failed'}")


def record_lottery_entry(request: HttpRequest, account, *, entry_id: Any, event_id: Any,
                         performance_id: Any, quantity: int) -> None:
    record(request, account, "lottery_entry",
           {"event_id": str(event_id), "performance_id": str(performance_id),
            "quantity": int(quantity)}, source_key=f"entry:{entry_id}")


def record_ticket_transfer(request: HttpRequest, account, *, ticket_id: Any,
                           to_account: Any, transfer_id: Any = None) -> None:
    record(request, account, "ticket_transfer",
           {"ticket_id": str(ticket_id), "to_account": str(to_account)},
           source_key=f"transfer:{transfer_id}" if transfer_id else "")
