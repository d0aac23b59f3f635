"""Lean WSGI entry for the on-sale hot path: POST /api/booking/performances/<id>/holds by token.

Why: at an on-sale nearly every request is this one, and the full stack costs more than the
hold itself: URL resolving through every router, ten middleware (sessions, CSRF, messages,
axes …), ninja's auth trying a token query and then the session, and three ORM queries
(token, performance, zone) before the group commit even starts. Here the same endpoint body
runs (``booking.api.place_hold`` → ``services.create_hold`` → group commit), with the same
validation models, idempotency, risk checkpoint, telemetry and error handlers, behind:

- Django's own WSGI handler with a short middleware chain (``KEPT_MIDDLEWARE``): HTTPS
  redirect and security headers, language, allowed hosts, frame options. Every other
  middleware must be listed in ``SKIPPED_MIDDLEWARE`` with the reason it does nothing for a
  bearer-token API request; an unknown one sends all traffic to Django (``enabled()``).
- Tokens from a cache in this process, each entry valid for ``TOKEN_TTL_S`` after it was read
  from the database (token rows asked for at the same moment are read with one query). A
  revoked token, a deactivated user or a changed identity therefore takes effect within that
  time on every server. (A shared Redis layer was dropped: a GET, and a SET for each token
  seen for the first time, cost more than the batched database read they saved.) A token the
  cache does not vouch for goes to Django, which answers exactly as the API always did (401).
- Performance and price zones from an in-process cache of ``CATALOGUE_TTL_S`` (one second):
  the sale window is still checked exactly against now; what can change (cancelled, unpublished,
  prices) takes effect within a second.

So on the hot path the request thread reads nothing from the database: token, performance and
zone come from memory, velocity limits are one Redis round trip, and the hold's writes are in the
group commit's batch. The OpenAPI schema keeps documenting the ninja endpoint, which stays the
answer for session users, oversized bodies and everything unusual.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
from queue import SimpleQueue
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse, parse_cookie
from django.utils import translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from ninja import Status

from smarttickets.accounts.models import ApiToken, User
from smarttickets.booking import groupcommit, selectors
from smarttickets.booking.api import MAX_SEATS as HOLD_MAX_SEATS
from smarttickets.booking.api import HoldIn
from smarttickets.core import clock
from smarttickets.core.idempotency import idempotent
from smarttickets.events.models import Performance, PriceZone

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("django.request")

# PATH_INFO of the hold endpoint. 18 digits stay inside a bigint; longer ids go to Django.
HOLD_PATH = re.compile(r"/api/booking/performances/([0-9]{1,18})/holds")
# A hold request is ~60 bytes (20 seat ids ~200); anything larger is not a fan's request and
# gets Django's general limits.
MAX_BODY_BYTES = 4096
TOKEN_TTL_S = 60
CATALOGUE_TTL_S = 1.0
TOUCH_EVERY_S = 5.0
READER_WAIT_S = 10.0
_LOCAL_MAX_ENTRIES = 200_000
ENVIRON_KEY = "smarttickets.fastpath.token"

KEPT_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
SKIPPED_MIDDLEWARE = {
    "whitenoise.middleware.WhiteNoiseMiddleware": "serves static files only",
    "django.contrib.sessions.middleware.SessionMiddleware":
        "requests with a session cookie are not taken; without one there is no session",
    "django.middleware.csrf.CsrfViewMiddleware":
        "a bearer token is not an ambient credential; ninja exempts token-only requests",
    "django.contrib.auth.middleware.AuthenticationMiddleware":
        "the bearer token is the user (request.user and request.auth are set here)",
    "django.contrib.messages.middleware.MessageMiddleware": "the API sends no flash messages",
    "axes.middleware.AxesMiddleware": "guards password logins only",
    "smarttickets.risk.middleware.RiskTelemetryMiddleware": "skips /api/ by itself",
}

# The user fields a hold needs (identity_verified is computed from them), in model order as
# Model.from_db wants them.
_USER_FIELDS = tuple(f.attname for f in User._meta.concrete_fields if f.attname in {
    "id", "is_active", "legal_name", "email", "email_verified_at", "phone",
    "phone_verified_at"})


def enabled() -> bool:
    """On unless turned off (``BOOKING_FASTPATH = False``) or a middleware nobody has judged
    for this route is installed: then Django serves everything, as before."""
    if not getattr(settings, "BOOKING_FASTPATH", True):
        return False
    unknown = [m for m in settings.MIDDLEWARE
               if m not in KEPT_MIDDLEWARE and m not in SKIPPED_MIDDLEWARE]
    if unknown:
        logger.warning("booking fast path off: middleware %s not reviewed for it", unknown)
        return False
    return True


def bearer_token(environ: dict[str, Any]) -> str | None:
    """The token exactly as ninja's HttpBearer reads it, or None."""
    parts = environ.get("HTTP_AUTHORIZATION", "").split(" ")
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return None
    return " ".join(parts[1:])


def wants(environ: dict[str, Any]) -> bool:
    """Whether this request is the hot path: the hold POST with a bearer token, no session
    cookie and a small declared body. Everything else goes to Django unchanged."""
    if environ.get("REQUEST_METHOD") != "POST" or not HOLD_PATH.fullmatch(
            environ.get("PATH_INFO", "")):
        return False
    if bearer_token(environ) is None:
        return False
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    if not 0 <= length <= MAX_BODY_BYTES or environ.get("HTTP_TRANSFER_ENCODING"):
        return False
    cookies = environ.get("HTTP_COOKIE")
    return not (cookies and settings.SESSION_COOKIE_NAME in parse_cookie(cookies))


# --- tokens --------------------------------------------------------------------------------

class TokenCache:
    """API token → the fields of its user a hold needs, valid ``ttl`` seconds after they were
    read from the database."""

    def __init__(self, ttl: float = TOKEN_TTL_S) -> None:
        self.ttl = ttl
        self.local: dict[str, tuple] = {}
        self._touch_lock = threading.Lock()
        self._touched: set[int] = set()
        self._touched_at = time.monotonic()

    def clear(self) -> None:
        self.local.clear()
        self._touched.clear()

    def lookup(self, token: str) -> tuple | None:
        """(valid_until, token id, user field values…) or None for an unknown, revoked or
        inactive token. On a miss, reads the database (through the reader thread, which reads
        the tokens asked for at the same moment in one query)."""
        key_hash = ApiToken.hash_key(token)
        now = clock.now().timestamp()
        entry = self.local.get(key_hash)
        if entry is not None and entry[0] > now:
            return entry
        entry = self._load(key_hash, now)
        if entry is None:
            self.local.pop(key_hash, None)
            return None
        self._note_use(entry[1])
        if len(self.local) >= _LOCAL_MAX_ENTRIES:
            self.local.clear()  # rare: a cheap bound instead of an LRU on every hit
        self.local[key_hash] = entry
        return entry

    def _load(self, key_hash: str, now: float) -> tuple | None:
        row = reader.token_row(key_hash)
        if row is None:
            return None
        return (now + self.ttl, *row)

    def _note_use(self, token_id: int) -> None:
        """``last_used_at`` (for people, not security) is written for many tokens in one UPDATE
        every few seconds, not once per token: a commit per token was a WAL flush each."""
        with self._touch_lock:
            self._touched.add(token_id)
            if time.monotonic() - self._touched_at < TOUCH_EVERY_S:
                return
            ids, self._touched = self._touched, set()
            self._touched_at = time.monotonic()
        reader.run(functools.partial(_touch_tokens, sorted(ids)), wait=False)

    @staticmethod
    def user(entry: tuple) -> User:
        """A User with the cached fields loaded; any other field is read on first access."""
        return User.from_db("default", _USER_FIELDS, entry[2:])


class Reader:
    """The fast path's few database reads (token rows, catalogue refreshes, token use) run on
    one thread per process, so request threads hold no database connection at all: with 32+
    threads per worker they would each keep one (CONN_MAX_AGE) and exhaust the server's
    connection limit, and each would pay a health-check round trip per request. Token rows
    asked for at the same time are read with one query. Off (inline) where the group commit
    is off: SQLite and tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: SimpleQueue = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._housekeeping_due = 0.0

    def token_row(self, key_hash: str) -> tuple | None:
        if not groupcommit.enabled():
            return _token_rows([key_hash]).get(key_hash)
        return self._submit(("token", key_hash), wait=True)

    def run(self, fn, *, wait: bool = True):
        if not groupcommit.enabled():
            try:
                return fn()
            except Exception:
                if wait:
                    raise
                logger.warning("fast path background read failed", exc_info=True)
                return None
        return self._submit(("call", fn), wait=wait)

    def _submit(self, job: tuple, *, wait: bool):
        future = groupcommit.Reply()
        self._ensure_thread()
        self._queue.put((job, future, translation.get_language()))
        return future.result(timeout=READER_WAIT_S) if wait else None

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, close the thread's database connection, end the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            self._queue.put(None)
            thread.join(timeout)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="booking-fastpath-reader")
                self._thread.start()

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = groupcommit.take_batch(self._queue)
            if time.monotonic() >= self._housekeeping_due:
                close_old_connections()  # CONN_MAX_AGE and health checks, once a second
                self._housekeeping_due = time.monotonic() + 1.0
            self._serve(batch)
        connection.close()

    def _serve(self, batch: list) -> None:
        asked = [(job[1], future) for job, future, _lang in batch if job[0] == "token"]
        if asked:
            try:
                rows = _token_rows(sorted({key for key, _f in asked}))
                for key, future in asked:
                    future.set_result(rows.get(key))
            except Exception as exc:
                close_old_connections()
                for _key, future in asked:
                    future.set_exception(exc)
        for job, future, language in batch:
            if job[0] != "call":
                continue
            try:
                with translation.override(language):
                    future.set_result(job[1]())
            except Exception as exc:
                close_old_connections()
                future.set_exception(exc)


def _token_rows(key_hashes: list[str]) -> dict[str, tuple]:
    """key hash → (token id, user fields…) of live tokens of active users."""
    if connection.vendor == "postgresql":
        # One fixed statement with an array parameter: the ORM spent most of the reader's
        # time compiling this query, once per batch of tokens.
        with connection.cursor() as cursor:
            cursor.execute(_token_sql(), [key_hashes])
            return {row[0]: row[1:] for row in cursor.fetchall()}
    rows = (ApiToken.objects.filter(key_hash__in=key_hashes, revoked_at__isnull=True,
                                    user__is_active=True)
            .values_list("key_hash", "pk", *(f"user__{f}" for f in _USER_FIELDS)))
    return {row[0]: row[1:] for row in rows}


def _touch_tokens(ids: list[int]) -> None:
    if connection.vendor != "postgresql":
        ApiToken.objects.filter(pk__in=ids).update(last_used_at=clock.now())
        return
    # Thousands of ids at an on-sale: one array parameter, not a placeholder per id.
    q = connection.ops.quote_name
    meta = ApiToken._meta
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {q(meta.db_table)} SET "  # noqa: S608 - names from metadata
                       f"{q(meta.get_field('last_used_at').column)} = %s "
                       f"WHERE {q(meta.pk.column)} = ANY(%s)", [clock.now(), ids])


@functools.cache
def _token_sql() -> str:
    """``_token_rows``'s query on PostgreSQL, its names quoted from model metadata."""
    q = connection.ops.quote_name
    token, user = ApiToken._meta, User._meta
    columns = ", ".join(f"u.{q(user.get_field(f).column)}" for f in _USER_FIELDS)
    return (f"SELECT t.{q(token.get_field('key_hash').column)}, t.{q(token.pk.column)}, "  # noqa: S608
            f"{columns} FROM {q(token.db_table)} t JOIN {q(user.db_table)} u "
            f"ON u.{q(user.pk.column)} = t.{q(token.get_field('user').column)} "
            f"WHERE t.{q(token.get_field('key_hash').column)} = ANY(%s) "
            f"AND t.{q(token.get_field('revoked_at').column)} IS NULL "
            f"AND u.{q(user.get_field('is_active').column)}")


reader = Reader()
tokens = TokenCache()


# --- performances and zones ----------------------------------------------------------------

class CatalogueCache:
    """Performance (with event, venue, organizer) and the event's price zones, kept ``ttl``
    seconds per process. The objects are shared between threads: treat them as read-only."""

    def __init__(self, ttl: float = CATALOGUE_TTL_S, monotonic=time.monotonic) -> None:
        self.ttl = ttl
        self.monotonic = monotonic
        self.entries: dict[int, tuple[float, Performance, dict[int, PriceZone]]] = {}
        # One thread reads an expired entry again; the others wait for it rather than all
        # running the same two queries at the same moment.
        self._lock = threading.Lock()

    def clear(self) -> None:
        self.entries.clear()

    def get(self, performance_id: int) -> tuple[Performance, dict[int, PriceZone]]:
        entry = self.entries.get(performance_id)
        if entry is None or entry[0] <= self.monotonic():
            with self._lock:
                entry = self.entries.get(performance_id)
                now = self.monotonic()
                if entry is None or entry[0] <= now:
                    entry = self._load(performance_id, now)
        return entry[1], entry[2]

    def _load(self, performance_id: int, now: float) -> tuple:
        def read() -> tuple[Performance, dict[int, PriceZone]]:
            # NotFound is not cached: it is raised by the same selector as the API's.
            performance = selectors.access_performance(performance_id=performance_id)
            return performance, {z.pk: z for z in PriceZone.objects.filter(
                event_id=performance.event_id).annotate(n_sections=Count("sections"))}

        performance, zones = reader.run(read)
        if len(self.entries) > 1000:
            self.entries = {k: v for k, v in self.entries.items() if v[0] > now}
        entry = (now + self.ttl, performance, zones)
        self.entries[performance_id] = entry
        return entry


catalogue = CatalogueCache()


# --- the view ------------------------------------------------------------------------------

@idempotent
def _create_hold(request: HttpRequest, performance_id: int, payload: HoldIn):
    from smarttickets.booking.api import place_hold

    performance, zones = catalogue.get(performance_id)
    return place_hold(request, performance=performance, payload=payload, known_zones=zones)


@functools.cache
def _operation():
    """The ninja operation of the hold endpoint: its parameter models parse and validate the
    request, and its response models serialise the answer, byte for byte as ninja does."""
    from smarttickets.api import api
    from smarttickets.booking import api as booking_api

    # The operation as mounted on the API (ninja binds a copy of each router's operations).
    for bound in api._get_bound_routers():
        if bound.template is booking_api.router:
            for path_view in bound.path_operations.values():
                for operation in path_view.operations:
                    if operation.view_func is booking_api.create_hold:
                        return operation
    raise LookupError("the API has no booking create_hold operation")


_COMMON_KEYS = frozenset({"zone_id", "quantity"})


def _common_values(request: HttpRequest, performance_id: int) -> dict | None:
    """The view's arguments for the request nearly every fan sends, ``{"zone_id": <int>,
    "quantity": <int>}`` as JSON, checked exactly as ``HoldIn`` accepts it; None for anything
    else, which ninja's parameter models then parse (with their error messages). Pydantic's
    validation was a tenth of the request's CPU."""
    if request.content_type != "application/json":
        return None
    try:
        data = json.loads(request.body)
    except ValueError:
        return None
    if type(data) is not dict or data.keys() != _COMMON_KEYS:
        return None
    zone_id, quantity = data["zone_id"], data["quantity"]
    if type(zone_id) is not int or type(quantity) is not int \
            or not 0 <= quantity <= HOLD_MAX_SEATS:
        return None
    return {"performance_id": performance_id,
            "payload": HoldIn.model_construct(zone_id=zone_id, quantity=quantity, seat_ids=[],
                                              entitlement_id=None)}


def hold_view(request: HttpRequest) -> HttpResponse:
    from smarttickets.api import api

    performance_id = int(HOLD_PATH.fullmatch(request.path_info)[1])
    user = tokens.user(request.environ[ENVIRON_KEY])
    request.user = request.auth = user
    operation = _operation()
    try:
        try:
            temporal = api.create_temporal_response(request)
            values = _common_values(request, performance_id) or operation._get_values(
                request, {"performance_id": performance_id}, temporal)
            result = _create_hold(request, **values)
            if isinstance(result, Status) and result.status_code == 201:
                # hold_out's dict has HoldOut's fields, order and types (the parity tests
                # compare the bytes with ninja's): render it without validating it again.
                temporal.status_code = 201
                return api.create_response(request, result.value, temporal_response=temporal)
            return operation._result_to_response(request, result, temporal)
        except Exception as exc:
            return api.on_exception(request, exc)  # ninja's handlers; unknown ones re-raise
    except Exception:
        signals.got_request_exception.send(sender=None, request=request)
        request_logger.error("Internal Server Error: %s", request.path, exc_info=True,
                             extra={"status_code": 500, "request": request})
        return JsonResponse({"code": "server_error",
                             "message": _("Something went wrong on our side. Please try "
                                          "again in a moment.")}, status=500)


class HoldHandler(WSGIHandler):
    """Django's WSGI handler (request signals, WSGIRequest, 4xx/5xx logging, response
    closing) with ``KEPT_MIDDLEWARE`` in front of ``hold_view`` instead of URL resolving."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(hold_view)
        for path in reversed([m for m in settings.MIDDLEWARE if m in KEPT_MIDDLEWARE]):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler


class FastPathApp:
    """The hot-path WSGI app: tokens the cache vouches for go through ``HoldHandler``; any
    other token goes to ``fallback`` (Django), which answers as the API always has."""

    def __init__(self, fallback) -> None:
        self.fallback = fallback
        self.handler = HoldHandler()

    def __call__(self, environ: dict[str, Any], start_response):
        try:
            # Connection hygiene (close_old_connections) before a possible token query; the
            # handler that serves the request sends the signal again, which is harmless.
            signals.request_started.send(sender=self.__class__, environ=environ)
            entry = tokens.lookup(bearer_token(environ) or "")
        except Exception:
            logger.warning("token lookup failed; passing the request to Django", exc_info=True)
            entry = None
        if entry is None:
            return self.fallback(environ, start_response)
        environ[ENVIRON_KEY] = entry
        return self.handler(environ, start_response)

