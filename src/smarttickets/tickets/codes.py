"""Rotating QR codes: the credential, its issuer signature, a 15-second time step and the fan
device's ECDSA P-256 signature over both, as ``ST1:`` + base45 (RFC 9285).

Pure kernel (no Django). The wallet page computes the same thing with WebCrypto; the format is
specified in docs/ticket-codes.md.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import base45
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from smarttickets.tickets.credential import (
    FLAG_PRINTED,
    ISSUER_SIGNATURE_SIZE,
    Credential,
    CredentialFormatError,
    decode_credential_prefix,
)

STEP_SECONDS = 15
PREFIX = "ST1:"
PREFIX_FAMILY = "ST"  # "ST<n>:" with another n is a later format, not garbage
DEVICE_SIGNATURE_SIZE = 64  # raw r || s, WebCrypto's ECDSA output
MAX_CODE_CHARS = 1200  # far above any real code; bounds the work a hostile input can cause

_STEP = struct.Struct(">I")
_ECDSA = ec.ECDSA(hashes.SHA256())
_P256_ORDER_BYTES = 32


class CodeFormatError(ValueError):
    """Text that is not a code; ``reason`` is a scan reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParsedCode:
    credential: Credential
    credential_bytes: bytes
    issuer_signature: bytes
    step: int | None  # None for a printed credential
    device_signature: bytes | None


def step_at(unix_seconds: float) -> int:
    return int(unix_seconds // STEP_SECONDS)


def device_message(credential_bytes: bytes, step: int) -> bytes:
    """What the device signs: SHA-256(credential) || step as unsigned 32-bit big-endian."""
    return hashlib.sha256(credential_bytes).digest() + _STEP.pack(step)


def new_device_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A fresh P-256 device key pair and its compressed public point (for test wallets)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key, compressed_public_key(key.public_key())


def compressed_public_key(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.X962,
                                   serialization.PublicFormat.CompressedPoint)


def sign_device(device_private_key: ec.EllipticCurvePrivateKey, credential_bytes: bytes,
                step: int) -> bytes:
    der = device_private_key.sign(device_message(credential_bytes, step), _ECDSA)
    r, s = decode_dss_signature(der)
    return r.to_bytes(_P256_ORDER_BYTES, "big") + s.to_bytes(_P256_ORDER_BYTES, "big")


def check_device_signature(device_public_key: bytes, credential_bytes: bytes, step: int,
                           signature: bytes) -> bool:
    if len(signature) != DEVICE_SIGNATURE_SIZE:
        return False
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), device_public_key)
    except ValueError:  # not a point on the curve
        return False
    r = int.from_bytes(signature[:_P256_ORDER_BYTES], "big")
    s = int.from_bytes(signature[_P256_ORDER_BYTES:], "big")
    if r == 0 or s == 0:
        return False
    try:
        key.verify(encode_dss_signature(r, s), device_message(credential_bytes, step), _ECDSA)
    except InvalidSignature:
        return False
    return True


def make_code(credential_bytes: bytes, issuer_sig: bytes,
              device_private_key: ec.EllipticCurvePrivateKey, step: int) -> str:
    """The rotating code the wallet shows during ``step``."""
    _check_sizes(credential_bytes, issuer_sig, printed=False)
    if not 0 <= step <= 0xFFFF_FFFF:
        raise ValueError("step must fit in 32 bits")
    device_sig = sign_device(device_private_key, credential_bytes, step)
    return _encode(credential_bytes + issuer_sig + _STEP.pack(step) + device_sig)


def make_printed_code(credential_bytes: bytes, issuer_sig: bytes) -> str:
    """The static code for a printed credential (flag PRINTED set, no device key)."""
    _check_sizes(credential_bytes, issuer_sig, printed=True)
    return _encode(credential_bytes + issuer_sig)


def parse_code(text: str) -> ParsedCode:
    """Split a scanned code into its parts; raise CodeFormatError with a reason code.

    Checks structure only: no signature is verified here.
    """
    if not isinstance(text, str) or len(text) > MAX_CODE_CHARS:
        raise CodeFormatError("malformed", "not a code of a sensible length")
    # Keyboard-wedge scanners append CR/LF; spaces are base45 digits and must stay.
    text = text.rstrip("\r\n")
    if not text.startswith(PREFIX):
        head, sep, _ = text.partition(":")
        if sep and head.startswith(PREFIX_FAMILY) and head[len(PREFIX_FAMILY):].isdigit():
            raise CodeFormatError("unsupported_version", f"code format {head}")
        raise CodeFormatError("malformed", "the code does not start with ST1:")
    try:
        body = base45.b45decode(text[len(PREFIX):])
    except ValueError:
        raise CodeFormatError("malformed", "the code is not valid base45") from None
    try:
        cred, used = decode_credential_prefix(body)
    except CredentialFormatError as exc:
        raise CodeFormatError(exc.reason, str(exc)) from None
    rest = body[used:]
    expected = ISSUER_SIGNATURE_SIZE + (0 if cred.printed else _STEP.size + DEVICE_SIGNATURE_SIZE)
    if len(rest) < expected:
        raise CodeFormatError("truncated", f"{expected - len(rest)} bytes missing")
    if len(rest) > expected:
        raise CodeFormatError("malformed", f"{len(rest) - expected} bytes too many")
    issuer_sig = rest[:ISSUER_SIGNATURE_SIZE]
    if cred.printed:
        return ParsedCode(cred, body[:used], issuer_sig, None, None)
    (step,) = _STEP.unpack_from(rest, ISSUER_SIGNATURE_SIZE)
    device_sig = rest[ISSUER_SIGNATURE_SIZE + _STEP.size:]
    return ParsedCode(cred, body[:used], issuer_sig, step, device_sig)


def _check_sizes(credential_bytes: bytes, issuer_sig: bytes, *, printed: bool) -> None:
    if len(issuer_sig) != ISSUER_SIGNATURE_SIZE:
        raise ValueError("issuer signature must be 64 bytes")
    if len(credential_bytes) < 2:
        raise ValueError("credential is too short")
    if bool(credential_bytes[1] & FLAG_PRINTED) != printed:
        raise ValueError("a printed credential has no device binding, and only it")


def _encode(body: bytes) -> str:
    return PREFIX + base45.b45encode(body).decode("ascii")
