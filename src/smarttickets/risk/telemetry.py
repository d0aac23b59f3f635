"""Telemetry from requests: who is asking (IP, device, session, UA) and the hooks that record it.

Every hook runs after the caller's service has returned and swallows its own failures: a lost
telemetry event is logged, never a broken purchase.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import secrets
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest

from smarttickets.core import clock, net
from smarttickets.risk.services import record_event_safely

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
    """Record one event from a request; never raises."""
    if not enabled() or account is None or not getattr(account, "pk", None):
        return None
    return record_event_safely(account=account, type=type, now=clock.now(), fields=fields,
                               source_key=source_key, **context_of(request))


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
