"""The ticket credential: a compact binary record the platform signs with Ed25519.

Pure kernel (no Django). The byte layout is specified in docs/ticket-codes.md; a change to it is
a new ``VERSION``, never an edit in place, because scanners in the field parse these bytes.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

VERSION = 1
FLAG_PRINTED = 0x01  # no device key: the printable static fallback, admits only with an ID check
FLAG_REENTRY = 0x02
KNOWN_FLAGS = FLAG_PRINTED | FLAG_REENTRY

DEVICE_KEY_SIZE = 33  # P-256 public key as a compressed SEC1 point
ISSUER_SIGNATURE_SIZE = 64  # Ed25519
MAX_GATE_GROUP = 16
MAX_HOLDER_HINT = 24
U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF

# Everything before the gate group: version, flags, kid, ticket, event, performance, serial,
# validity window.
_HEAD = struct.Struct(">BBHIIIHII")


class EntryPolicy(IntEnum):
    SINGLE = 0
    REENTRY = 1


class CredentialFormatError(ValueError):
    """Bytes that are not a credential; ``reason`` is a scan reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Credential:
    kid: int  # the issuer key's id, 16 bits; a JWK Set names it in decimal
    ticket_id: int
    event_id: int
    performance_id: int
    serial: int
    not_before: int
    not_after: int
    gate_group: str = ""
    holder_hint: str = ""
    entry_policy: EntryPolicy = EntryPolicy.SINGLE
    # None marks the printed fallback: nothing binds it to a phone.
    device_public_key: bytes | None = None

    @property
    def printed(self) -> bool:
        return self.device_public_key is None


@dataclass(frozen=True, slots=True)
class SignedCredential:
    data: bytes
    signature: bytes


def holder_hint(full_name: str) -> str:
    """A short prompt for an ID check that does not spell out the holder's name.

    Initials of the first three words, then "/" and the last one or two letters of the name:
    "Chan Tai Man" → "CTM/AN", "陳大文" → "陳/文". Short names give fewer letters away.
    """
    name = " ".join(unicodedata.normalize("NFKC", full_name).upper().split())
    if not name:
        return ""
    initials = "".join(word[0] for word in name.split(" ")[:3])
    letters = name.replace(" ", "")
    tail = 2 if len(letters) >= 6 else 1 if len(letters) >= 3 else 0
    hint = f"{initials}/{letters[-tail:]}" if tail else initials
    while len(hint.encode()) > MAX_HOLDER_HINT:
        hint = hint[:-1]
    return hint


def _text(value: str, limit: int, field: str) -> bytes:
    data = unicodedata.normalize("NFC", value).encode()
    if len(data) > limit:
        raise ValueError(f"{field} is {len(data)} bytes; at most {limit}")
    return data


def encode_credential(cred: Credential) -> bytes:
    """The exact bytes the issuer signs. Raises ValueError for anything a v1 credential cannot
    carry, so a bad ticket fails at issue time rather than at the gate."""
    if not 0 <= cred.kid <= U16_MAX:
        raise ValueError(f"kid must fit in 16 bits, got {cred.kid}")
    for field in ("ticket_id", "event_id", "performance_id", "not_before", "not_after"):
        value = getattr(cred, field)
        if not 0 <= value <= U32_MAX:
            raise ValueError(f"{field} must fit in 32 bits, got {value}")
    if not 1 <= cred.serial <= U16_MAX:
        raise ValueError(f"serial must be 1-{U16_MAX}, got {cred.serial}")
    if cred.not_after <= cred.not_before:
        raise ValueError("not_after must be later than not_before")
    flags = FLAG_REENTRY if cred.entry_policy == EntryPolicy.REENTRY else 0
    if cred.device_public_key is None:
        flags |= FLAG_PRINTED
        device = b""
    else:
        device = bytes(cred.device_public_key)
        if len(device) != DEVICE_KEY_SIZE or device[0] not in (2, 3):
            raise ValueError("device_public_key must be a 33-byte compressed P-256 point")
    gate = _text(cred.gate_group, MAX_GATE_GROUP, "gate_group")
    hint = _text(cred.holder_hint, MAX_HOLDER_HINT, "holder_hint")
    return b"".join((
        _HEAD.pack(VERSION, flags, cred.kid, cred.ticket_id, cred.event_id,
                   cred.performance_id, cred.serial, cred.not_before, cred.not_after),
        bytes((len(gate),)), gate,
        bytes((len(hint),)), hint,
        device,
    ))


def decode_credential_prefix(data: bytes) -> tuple[Credential, int]:
    """Parse a credential at the start of ``data``; return it and the number of bytes it took.

    The layout is self-delimiting, so a code can append signatures without a length field.
    """
    if data[:1] and data[0] != VERSION:
        # Checked before the length: a later version may well be shorter or longer.
        raise CredentialFormatError("unsupported_version", f"credential version {data[0]}")
    reader = _Reader(data)
    (_, flags, kid, ticket_id, event_id, performance_id, serial, not_before,
     not_after) = _HEAD.unpack(reader.take(_HEAD.size))
    if flags & ~KNOWN_FLAGS:
        raise CredentialFormatError("malformed", f"unknown flags {flags:#04x}")
    if serial == 0 or not_after <= not_before:
        raise CredentialFormatError("malformed", "serial is 0 or the validity window is empty")
    gate = reader.text(MAX_GATE_GROUP, "gate group")
    hint = reader.text(MAX_HOLDER_HINT, "holder hint")
    device: bytes | None = None
    if not flags & FLAG_PRINTED:
        device = reader.take(DEVICE_KEY_SIZE)
        if device[0] not in (2, 3):
            raise CredentialFormatError("malformed", "device key is not a compressed point")
    policy = EntryPolicy.REENTRY if flags & FLAG_REENTRY else EntryPolicy.SINGLE
    cred = Credential(kid=kid, ticket_id=ticket_id, event_id=event_id,
                      performance_id=performance_id, serial=serial, not_before=not_before,
                      not_after=not_after, gate_group=gate, holder_hint=hint,
                      entry_policy=policy, device_public_key=device)
    return cred, reader.pos


def decode_credential(data: bytes) -> Credential:
    cred, used = decode_credential_prefix(data)
    if used != len(data):
        raise CredentialFormatError("malformed", f"{len(data) - used} bytes after the credential")
    return cred


def sign_credential(cred: Credential, issuer_key: Ed25519PrivateKey) -> SignedCredential:
    data = encode_credential(cred)
    return SignedCredential(data=data, signature=issuer_key.sign(data))


def check_issuer_signature(data: bytes, signature: bytes, public_key: Ed25519PublicKey) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise CredentialFormatError("truncated", "the credential ends early")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def text(self, limit: int, field: str) -> str:
        length = self.take(1)[0]
        if length > limit:
            raise CredentialFormatError("malformed", f"{field} longer than {limit} bytes")
        raw = self.take(length)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CredentialFormatError("malformed", f"{field} is not UTF-8") from None
        if unicodedata.normalize("NFC", value) != value:
            # One text, one encoding: otherwise two byte strings would mean the same credential.
            raise CredentialFormatError("malformed", f"{field} is not NFC")
        return value
