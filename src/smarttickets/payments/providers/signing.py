"""Webhook signatures: ``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, checked in constant time.

The same scheme as Stripe's, so one mental model covers both providers. Pure standard library.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "SmartTickets-Sandbox-Signature"
SCHEME = "v1"


class SignatureError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def compute(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    return f"t={timestamp},{SCHEME}={compute(payload, secret, timestamp)}"


def verify(payload: bytes, header: str | None, secret: str, *, now: int,
           tolerance: int) -> int:
    """Return the signed timestamp, or raise SignatureError with a stable code."""
    if not header:
        raise SignatureError("missing_signature", f"the {HEADER} header is missing")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("invalid_signature", "the signature header is malformed")
    expected = compute(payload, secret, timestamp)
    # Several v1 values are allowed so a secret can be rotated without dropping events.
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("invalid_signature", "no signature matches the payload")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("stale_timestamp", "the signature timestamp is outside the tolerance")
    return timestamp
