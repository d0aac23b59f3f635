"""Fallback tiers, WEAKER than the device-bound rotating code: use them only when a fan cannot
show the live ticket.

- TOTP (RFC 6238 through pyotp) for a wallet-pass export: the code rotates, so a screenshot
  expires, but the secret sits in the pass and the pass can be shared; the scanner needs the
  ticket's secret, so a lost scanner leaks those secrets. Accepted with an ID check.
- Printed static credential: the issuer-signed credential with the PRINTED flag and no device
  key. Anyone with a photocopy holds the same code, so it is accepted only with an ID check and,
  like every tier, once per entry policy.

Pure kernel (no Django).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

import pyotp

from smarttickets.tickets.codes import make_printed_code
from smarttickets.tickets.credential import Credential, SignedCredential
from smarttickets.tickets.offline import (
    AdmittedLookup,
    Direction,
    RevocationList,
    ScanResult,
    Tier,
    accepted,
    check_admission,
    check_scope,
    credential_info,
    refusal,
)

TOTP_PREFIX = "STT1:"
TOTP_PERIOD = 15  # the same rhythm as the rotating code
TOTP_DIGITS = 8
TOTP_WINDOW = 1  # steps either side of the scanner's, as for the rotating code
_TOTP_RE = re.compile(r"STT1:(\d{1,10}):(\d{1,5}):(\d{8})")
_SECRET_CONTEXT = b"smarttickets/totp/1"


@dataclass(frozen=True, slots=True)
class TotpTicket:
    """What a scanner must know about a ticket to check its wallet-pass code."""

    credential: Credential  # the ticket's facts; the device key is not used by this tier
    secret: str  # base32, as in the pass


def derive_totp_secret(master_key: bytes, *, ticket_id: int, serial: int) -> str:
    """A per-ticket secret derived from a server key, so none has to be stored; a re-issue
    (new serial) gives a new secret and the old pass stops working."""
    if len(master_key) < 32:
        raise ValueError("the TOTP master key must be at least 32 bytes")
    mac = hmac.new(master_key, _SECRET_CONTEXT + struct.pack(">QI", ticket_id, serial),
                   hashlib.sha256).digest()
    return base64.b32encode(mac[:20]).decode("ascii")  # 160 bits, RFC 4226's recommendation


def totp_value(secret: str, at_unix: float, *, period: int = TOTP_PERIOD,
               digits: int = TOTP_DIGITS) -> str:
    return pyotp.TOTP(secret, digits=digits, interval=period).at(int(at_unix))


def hotp_value(secret: str, counter: int, *, digits: int = 6) -> str:
    return pyotp.HOTP(secret, digits=digits).at(counter)


def totp_pattern(ticket_id: int, serial: int) -> str:
    """The barcode value pattern for a wallet pass; the pass fills in the rotating digits."""
    return f"{TOTP_PREFIX}{ticket_id}:{serial}:{{totp}}"


def make_totp_code(*, ticket_id: int, serial: int, secret: str, at_unix: float) -> str:
    return totp_pattern(ticket_id, serial).format(totp=totp_value(secret, at_unix))


def verify_totp_code(code_text: str, *, ticket_lookup: Callable[[int], TotpTicket | None],
                     revocations: RevocationList, scanner_clock_unix: float, event_id: int,
                     gate_group: str | None, admitted_lookup: AdmittedLookup | None = None,
                     performance_id: int | None = None,
                     direction: Direction = Direction.ENTRY) -> ScanResult:
    """Check a ``STT1:`` wallet-pass code in the same order as verify_scan, with the ticket's
    facts from ``ticket_lookup`` in place of the signed credential."""
    direction = Direction(direction)
    match = _TOTP_RE.fullmatch(code_text.rstrip("\r\n")) if isinstance(code_text, str) else None
    if match is None:
        return refusal("malformed", direction=direction)
    ticket_id, serial, digits = int(match[1]), int(match[2]), match[3]
    ticket = ticket_lookup(ticket_id)
    if ticket is None:
        return refusal("unknown_ticket", direction=direction)
    cred = ticket.credential
    info = credential_info(cred, Tier.TOTP)
    if serial != cred.serial:
        # An older pass: the secret changed with the serial, so say why rather than "wrong".
        info["serial"] = serial
        reason = "superseded" if serial < cred.serial else "unknown_ticket"
        return refusal(reason, direction=direction, **info)
    reason = check_scope(cred, event_id=event_id, performance_id=performance_id,
                         gate_group=gate_group, scanner_clock_unix=scanner_clock_unix,
                         revocations=revocations)
    if reason:
        return refusal(reason, direction=direction, **info)
    totp = pyotp.TOTP(ticket.secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD)
    if not totp.verify(digits, for_time=int(scanner_clock_unix), valid_window=TOTP_WINDOW):
        return refusal("bad_totp", direction=direction, **info)
    reason = check_admission(cred, direction, admitted_lookup)
    if reason:
        return refusal(reason, direction=direction, **info)
    return accepted(info, direction, id_check=True)


def printed_code(signed: SignedCredential) -> str:
    """The static code to print on paper (the credential must have no device key)."""
    return make_printed_code(signed.data, signed.signature)
