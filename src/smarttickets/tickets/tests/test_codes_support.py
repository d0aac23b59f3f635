"""Shared builders for the ticket-code tests: fixed keys, a test wallet and a scan helper."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smarttickets.tickets.codes import compressed_public_key, make_code, step_at
from smarttickets.tickets.credential import Credential, EntryPolicy, SignedCredential
from smarttickets.tickets.keys import CURRENT, IssuerKey, Keyring
from smarttickets.tickets.offline import (
    AdmissionLog,
    Direction,
    RevocationList,
    ScanResult,
    verify_scan,
)

NOW = 1_767_225_600  # 2026-01-01 00:00:00 UTC, the start of a 15-second step
EVENT_ID = 42
PERFORMANCE_ID = 7
GATE = "NORTH"
KID = 0x1234


def ed25519_key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


def device_key(label: str = "phone-1") -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(label.encode()).digest(), "big")
    return ec.derive_private_key(scalar, ec.SECP256R1())


def keyring(kid: int = KID, label: str = "issuer-1") -> Keyring:
    return Keyring([IssuerKey(kid, ed25519_key(label), CURRENT)])


@dataclass
class Wallet:
    """A fan's phone: the issued credential and the device key that signs each step."""

    signed: SignedCredential
    device: ec.EllipticCurvePrivateKey | None
    credential: Credential = field(repr=False)

    def code(self, at_unix: float = NOW) -> str:
        assert self.device is not None
        return make_code(self.signed.data, self.signed.signature, self.device, step_at(at_unix))


def credential(**overrides) -> Credential:
    values = dict(kid=0, ticket_id=1001, event_id=EVENT_ID, performance_id=PERFORMANCE_ID,
                  serial=1, not_before=NOW - 3 * 3600, not_after=NOW + 6 * 3600,
                  gate_group=GATE, holder_hint="CTM/AN", entry_policy=EntryPolicy.SINGLE)
    values.update(overrides)
    return Credential(**values)


def wallet(ring: Keyring | None = None, *, device: str = "phone-1", **overrides) -> Wallet:
    ring = ring or keyring()
    key = device_key(device)
    cred = credential(device_public_key=compressed_public_key(key.public_key()), **overrides)
    signed = ring.issue(cred)
    return Wallet(signed=signed, device=key, credential=cred)


def scan(code: str, ring: Keyring | None = None, *, clock: float = NOW,
         revocations: RevocationList | None = None, event_id: int = EVENT_ID,
         gate_group: str | None = GATE, log: AdmissionLog | None = None,
         direction: Direction = Direction.ENTRY, **kwargs) -> ScanResult:
    return verify_scan(code, keyset=(ring or keyring()).keyset(),
                       revocations=revocations or RevocationList(), scanner_clock_unix=clock,
                       event_id=event_id, gate_group=gate_group,
                       admitted_lookup=log.presence if log is not None else None,
                       direction=direction, **kwargs)
