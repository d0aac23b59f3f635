"""Offline scan verification, the scanner's admission log, and the merge of uploaded logs.

Pure kernel (no Django): a gate scanner with no network runs this with a downloaded key set and
revocation list; the server runs the same checks and merges what the scanners upload.
Checks run in a fixed order and the first failure is the answer (docs/ticket-codes.md).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smarttickets.tickets.codes import CodeFormatError, check_device_signature, parse_code, step_at
from smarttickets.tickets.credential import Credential, EntryPolicy, check_issuer_signature


def gettext_noop(message: str) -> str:
    """Marks a message for makemessages; the UI translates it when it shows a result."""
    return message


REASONS: dict[str, str] = {
    "ok": gettext_noop("Admit."),
    "ok_check_id": gettext_noop("Admit only after checking photo ID against the holder hint."),
    "ok_exit": gettext_noop("Exit recorded; this ticket may re-enter."),
    "malformed": gettext_noop("This is not a SmartTickets code."),
    "truncated": gettext_noop("The code is incomplete. Ask the holder to show it again."),
    "unsupported_version": gettext_noop(
        "This code uses a newer format. Update the scanner app."),
    "unknown_key": gettext_noop(
        "The code was signed with a key this scanner does not know. Refresh the key set."),
    "bad_issuer_signature": gettext_noop("Forged or altered ticket: the signature is invalid."),
    "wrong_event": gettext_noop("This ticket is for another event."),
    "wrong_performance": gettext_noop("This ticket is for another performance."),
    "wrong_gate": gettext_noop("This ticket is for another gate."),
    "not_yet_valid": gettext_noop("This ticket is not valid yet."),
    "expired": gettext_noop("This ticket is no longer valid."),
    "revoked": gettext_noop("This ticket has been cancelled."),
    "superseded": gettext_noop(
        "This copy was replaced by a re-issue or transfer. Ask the holder to refresh the "
        "ticket."),
    "bad_device_signature": gettext_noop(
        "The code was not made by the phone the ticket belongs to."),
    "code_too_old": gettext_noop(
        "The code is too old (a screenshot?). Ask the holder to open the live ticket."),
    "code_from_future": gettext_noop(
        "The code is from the future. Check the clock of the phone and of this scanner."),
    "already_admitted": gettext_noop("Already admitted: this ticket admits once."),
    "already_inside": gettext_noop("Already inside: no exit was recorded for this ticket."),
    "not_inside": gettext_noop("Cannot record an exit: this ticket is not inside."),
    "unknown_ticket": gettext_noop("This scanner has no record of that ticket."),
    "bad_totp": gettext_noop("The wallet-pass code is wrong or too old."),
}
OK_REASONS = frozenset({"ok", "ok_check_id", "ok_exit"})


class Direction(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


class Presence(StrEnum):
    NEVER = "never"  # never admitted
    INSIDE = "inside"
    OUTSIDE = "outside"  # admitted before, exit recorded since


class Tier(StrEnum):
    DEVICE = "device"  # rotating code signed by the fan's phone: the strong tier
    PRINTED = "printed"  # static, copyable: admits only with an ID check
    TOTP = "totp"  # wallet-pass export: rotates, but the pass itself can be shared


@dataclass(frozen=True, slots=True)
class ScanResult:
    ok: bool
    reason_code: str
    message: str
    direction: Direction = Direction.ENTRY
    tier: Tier | None = None
    id_check_required: bool = False
    ticket_id: int | None = None
    event_id: int | None = None
    performance_id: int | None = None
    gate_group: str | None = None
    holder_hint: str | None = None
    serial: int | None = None
    entry_policy: EntryPolicy | None = None
    kid: int | None = None
    step: int | None = None


AdmittedLookup = Callable[[int], Presence]


# --- key set and revocation list -------------------------------------------------------------

class KeySetFormatError(ValueError):
    pass


class KeySet:
    """The issuer public keys a scanner trusts, by kid. Exchanged as a JWK Set (RFC 7517/8037)."""

    def __init__(self, keys: Mapping[int, Ed25519PublicKey],
                 statuses: Mapping[int, str] | None = None) -> None:
        self._keys = dict(keys)
        self._statuses = dict(statuses or {})

    def get(self, kid: int) -> Ed25519PublicKey | None:
        return self._keys.get(kid)

    @property
    def kids(self) -> tuple[int, ...]:
        return tuple(self._keys)

    def to_jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self._keys.items():
            raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": str(kid),
                   "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")}
            if kid in self._statuses:
                jwk["status"] = self._statuses[kid]
            keys.append(jwk)
        return {"keys": keys}

    @classmethod
    def from_jwks(cls, data: Any) -> KeySet:
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise KeySetFormatError("a key set is an object with a 'keys' list")
        keys: dict[int, Ed25519PublicKey] = {}
        statuses: dict[int, str] = {}
        for index, jwk in enumerate(data["keys"]):
            where = f"keys[{index}]"
            if not isinstance(jwk, Mapping):
                raise KeySetFormatError(f"{where}: not an object")
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                raise KeySetFormatError(f"{where}: only kty OKP with crv Ed25519 is supported")
            kid_text = jwk.get("kid")
            if (not isinstance(kid_text, str) or not re.fullmatch(r"0|[1-9][0-9]{0,4}", kid_text)
                    or int(kid_text) > 0xFFFF):
                raise KeySetFormatError(f"{where}: kid must be a decimal number 0-65535")
            kid = int(kid_text)
            if kid in keys:
                raise KeySetFormatError(f"{where}: kid {kid} repeated")
            try:
                raw = _b64url_decode(jwk.get("x"))
                keys[kid] = Ed25519PublicKey.from_public_bytes(raw)
            except (ValueError, TypeError):
                raise KeySetFormatError(f"{where}: x is not a base64url Ed25519 key") from None
            if isinstance(jwk.get("status"), str):
                statuses[kid] = jwk["status"]
        return cls(keys, statuses)


def _b64url_decode(value: Any) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", value):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


class RevocationFormatError(ValueError):
    pass


@dataclass(frozen=True)
class RevocationList:
    """Cancelled tickets, and for re-issued ones the lowest serial still valid."""

    min_serial: Mapping[int, int] = field(default_factory=dict)
    revoked: frozenset[int] = frozenset()

    def check(self, ticket_id: int, serial: int) -> str | None:
        if ticket_id in self.revoked:
            return "revoked"
        if serial < self.min_serial.get(ticket_id, 0):
            return "superseded"
        return None

    def to_json(self, *, event_id: int | None = None,
                generated_at: int | None = None) -> dict[str, Any]:
        return {
            "format": "smarttickets.revocations/1",
            "event_id": event_id,
            "generated_at": generated_at,
            "revoked": sorted(self.revoked),
            "superseded": sorted([t, s] for t, s in self.min_serial.items()),
        }

    @classmethod
    def from_json(cls, data: Any) -> RevocationList:
        if not isinstance(data, Mapping) or data.get("format") != "smarttickets.revocations/1":
            raise RevocationFormatError("not a smarttickets.revocations/1 document")
        revoked = data.get("revoked", [])
        if not isinstance(revoked, list) or not all(_is_uint(t) for t in revoked):
            raise RevocationFormatError("revoked must be a list of ticket ids")
        superseded = data.get("superseded", [])
        if not isinstance(superseded, list):
            raise RevocationFormatError("superseded must be a list of pairs")
        min_serial: dict[int, int] = {}
        for index, pair in enumerate(superseded):
            if (not isinstance(pair, list) or len(pair) != 2
                    or not all(_is_uint(v) for v in pair)):
                raise RevocationFormatError(
                    f"superseded[{index}] must be [ticket_id, lowest_valid_serial]")
            min_serial[pair[0]] = max(pair[1], min_serial.get(pair[0], 0))
        return cls(min_serial=min_serial, revoked=frozenset(revoked))


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- verification ----------------------------------------------------------------------------

def refusal(reason: str, *, direction: Direction = Direction.ENTRY, **info: Any) -> ScanResult:
    return ScanResult(ok=False, reason_code=reason, message=REASONS[reason], direction=direction,
                      **info)


def credential_info(cred: Credential, tier: Tier, step: int | None = None) -> dict[str, Any]:
    return {"tier": tier, "ticket_id": cred.ticket_id, "event_id": cred.event_id,
            "performance_id": cred.performance_id, "gate_group": cred.gate_group,
            "holder_hint": cred.holder_hint, "serial": cred.serial,
            "entry_policy": cred.entry_policy, "kid": cred.kid, "step": step}


def check_scope(cred: Credential, *, event_id: int, performance_id: int | None,
                gate_group: str | None, scanner_clock_unix: float,
                revocations: RevocationList) -> str | None:
    """Event, gate group, validity window and revocation: the checks every tier shares."""
    if cred.event_id != event_id:
        return "wrong_event"
    if performance_id is not None and cred.performance_id != performance_id:
        return "wrong_performance"
    # An empty gate group on the ticket admits at any gate; a scanner without one takes all.
    if gate_group is not None and cred.gate_group not in ("", gate_group):
        return "wrong_gate"
    if scanner_clock_unix < cred.not_before:
        return "not_yet_valid"
    if scanner_clock_unix >= cred.not_after:
        return "expired"
    return revocations.check(cred.ticket_id, cred.serial)


def check_admission(cred: Credential, direction: Direction,
                    admitted_lookup: AdmittedLookup | None) -> str | None:
    if admitted_lookup is None:
        return None
    presence = admitted_lookup(cred.ticket_id)
    if direction == Direction.EXIT:
        return None if presence == Presence.INSIDE else "not_inside"
    if cred.entry_policy == EntryPolicy.REENTRY:
        return "already_inside" if presence == Presence.INSIDE else None
    return None if presence == Presence.NEVER else "already_admitted"


def accepted(info: dict[str, Any], direction: Direction, *, id_check: bool) -> ScanResult:
    reason = "ok_exit" if direction == Direction.EXIT else "ok_check_id" if id_check else "ok"
    return ScanResult(ok=True, reason_code=reason, message=REASONS[reason], direction=direction,
                      id_check_required=id_check, **info)


def verify_scan(code_text: str, *, keyset: KeySet, revocations: RevocationList,
                scanner_clock_unix: float, event_id: int, gate_group: str | None,
                admitted_lookup: AdmittedLookup | None = None,
                performance_id: int | None = None,
                direction: Direction = Direction.ENTRY) -> ScanResult:
    """Check a scanned ``ST1:`` code; the first failing check gives the reason.

    ``gate_group`` None means this scanner serves every gate; ``admitted_lookup`` (usually
    ``AdmissionLog.presence``) None skips the admission check, for a look-up-only scan.
    """
    direction = Direction(direction)
    try:
        code = parse_code(code_text)
    except CodeFormatError as exc:
        return refusal(exc.reason, direction=direction)
    cred = code.credential
    tier = Tier.PRINTED if cred.printed else Tier.DEVICE
    info = credential_info(cred, tier, code.step)

    public_key = keyset.get(cred.kid)
    if public_key is None:
        return refusal("unknown_key", direction=direction, kid=cred.kid)
    if not check_issuer_signature(code.credential_bytes, code.issuer_signature, public_key):
        return refusal("bad_issuer_signature", direction=direction, kid=cred.kid)
    # From here on the credential's fields are the issuer's word and safe to show.

    reason = check_scope(cred, event_id=event_id, performance_id=performance_id,
                         gate_group=gate_group, scanner_clock_unix=scanner_clock_unix,
                         revocations=revocations)
    if reason:
        return refusal(reason, direction=direction, **info)

    if not cred.printed:
        assert code.step is not None and code.device_signature is not None
        assert cred.device_public_key is not None
        if not check_device_signature(cred.device_public_key, code.credential_bytes,
                                      code.step, code.device_signature):
            return refusal("bad_device_signature", direction=direction, **info)
        scanner_step = step_at(scanner_clock_unix)
        if code.step < scanner_step - 1:
            return refusal("code_too_old", direction=direction, **info)
        if code.step > scanner_step + 1:
            return refusal("code_from_future", direction=direction, **info)

    reason = check_admission(cred, direction, admitted_lookup)
    if reason:
        return refusal(reason, direction=direction, **info)
    return accepted(info, direction, id_check=cred.printed)


# --- admission log and merge -----------------------------------------------------------------

UPLOAD_FORMAT = "smarttickets.admissions/1"
_NONCE_RE = re.compile(r"[0-9a-f]{32}")
_SCANNER_RE = re.compile(r"[0-9A-Za-z._:-]{1,64}")


class UploadFormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AdmissionEntry:
    """One accepted scan. The nonce makes a re-uploaded entry recognisable as the same scan."""

    nonce: str
    scanner_id: str
    ticket_id: int
    serial: int
    direction: Direction
    at_ms: int  # the scanner's clock, unix milliseconds
    entry_policy: EntryPolicy
    tier: Tier

    @property
    def order_key(self) -> tuple[int, str, str]:
        return (self.at_ms, self.scanner_id, self.nonce)

    def to_json(self) -> dict[str, Any]:
        return {"nonce": self.nonce, "scanner": self.scanner_id, "ticket": self.ticket_id,
                "serial": self.serial, "direction": self.direction.value, "at_ms": self.at_ms,
                "policy": "reentry" if self.entry_policy == EntryPolicy.REENTRY else "single",
                "tier": self.tier.value}

    @classmethod
    def from_json(cls, data: Any, *, where: str = "entry") -> AdmissionEntry:
        if not isinstance(data, Mapping):
            raise UploadFormatError(f"{where}: not an object")

        def need(name: str, ok: Callable[[Any], bool], what: str) -> Any:
            value = data.get(name)
            if not ok(value):
                raise UploadFormatError(f"{where}.{name}: {what}")
            return value

        is_str = lambda v: isinstance(v, str)  # noqa: E731
        nonce = need("nonce", lambda v: is_str(v) and _NONCE_RE.fullmatch(v),
                     "must be 32 lowercase hexadecimal characters")
        scanner = need("scanner", lambda v: is_str(v) and _SCANNER_RE.fullmatch(v),
                       "must be 1-64 characters of [0-9A-Za-z._:-]")
        ticket = need("ticket", _is_uint, "must be a ticket id")
        serial = need("serial", lambda v: _is_uint(v) and v >= 1, "must be a serial ≥ 1")
        direction = need("direction", lambda v: v in ("entry", "exit"), "must be entry or exit")
        at_ms = need("at_ms", _is_uint, "must be unix milliseconds")
        policy = need("policy", lambda v: v in ("single", "reentry"),
                      "must be single or reentry")
        tier = need("tier", lambda v: v in {t.value for t in Tier},
                    "must be device, printed or totp")
        return cls(nonce=nonce, scanner_id=scanner, ticket_id=ticket, serial=serial,
                   direction=Direction(direction), at_ms=at_ms,
                   entry_policy=EntryPolicy.REENTRY if policy == "reentry" else EntryPolicy.SINGLE,
                   tier=Tier(tier))


def new_nonce() -> str:
    return secrets.token_hex(16)


class AdmissionLog:
    """What one offline scanner admitted, in the order it scanned; uploaded when online.

    Pass ``log.presence`` as ``admitted_lookup`` to ``verify_scan`` and ``log.record`` the
    accepted results.
    """

    def __init__(self, *, scanner_id: str, event_id: int,
                 entries: Iterable[AdmissionEntry] = ()) -> None:
        if not _SCANNER_RE.fullmatch(scanner_id):
            raise ValueError("scanner_id must be 1-64 characters of [0-9A-Za-z._:-]")
        self.scanner_id = scanner_id
        self.event_id = event_id
        self._entries: list[AdmissionEntry] = []
        self._nonces: set[str] = set()
        self._presence: dict[int, Presence] = {}
        self.absorb(entries)

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> tuple[AdmissionEntry, ...]:
        return tuple(self._entries)

    def presence(self, ticket_id: int) -> Presence:
        return self._presence.get(ticket_id, Presence.NEVER)

    def record(self, result: ScanResult, *, at_unix: float,
               nonce: str | None = None) -> AdmissionEntry:
        """Log an accepted scan. Refused scans are not admissions and are not logged here."""
        if not result.ok or result.ticket_id is None:
            raise ValueError("only an accepted scan can be recorded")
        assert result.serial is not None and result.entry_policy is not None
        assert result.tier is not None
        entry = AdmissionEntry(
            nonce=nonce or new_nonce(), scanner_id=self.scanner_id, ticket_id=result.ticket_id,
            serial=result.serial, direction=result.direction, at_ms=round(at_unix * 1000),
            entry_policy=result.entry_policy, tier=result.tier)
        if entry.nonce in self._nonces:
            raise ValueError("nonce already used in this log")
        self._entries.append(entry)
        self._nonces.add(entry.nonce)
        self._presence[entry.ticket_id] = (
            Presence.INSIDE if entry.direction == Direction.ENTRY else Presence.OUTSIDE)
        return entry

    def absorb(self, entries: Iterable[AdmissionEntry]) -> int:
        """Take in admissions another scanner made (synced through the server); returns how
        many were new. Presence is then recomputed by the merge rule."""
        new = [e for e in entries if e.nonce not in self._nonces]
        if not new:
            return 0
        self._entries.extend(new)
        self._nonces.update(e.nonce for e in new)
        self._presence = dict(merge_admission_logs([self._entries]).presence)
        return len(new)

    def to_upload(self) -> dict[str, Any]:
        return {"format": UPLOAD_FORMAT, "scanner_id": self.scanner_id,
                "event_id": self.event_id, "entries": [e.to_json() for e in self._entries]}

    @classmethod
    def from_upload(cls, data: Any) -> AdmissionLog:
        """Parse an upload; UploadFormatError names the first bad field."""
        if not isinstance(data, Mapping) or data.get("format") != UPLOAD_FORMAT:
            raise UploadFormatError(f"format: must be {UPLOAD_FORMAT}")
        scanner_id = data.get("scanner_id")
        if not isinstance(scanner_id, str) or not _SCANNER_RE.fullmatch(scanner_id):
            raise UploadFormatError("scanner_id: must be 1-64 characters of [0-9A-Za-z._:-]")
        if not _is_uint(data.get("event_id")):
            raise UploadFormatError("event_id: must be an event id")
        raw = data.get("entries")
        if not isinstance(raw, list):
            raise UploadFormatError("entries: must be a list")
        entries = [AdmissionEntry.from_json(item, where=f"entries[{i}]")
                   for i, item in enumerate(raw)]
        return cls(scanner_id=scanner_id, event_id=data["event_id"], entries=entries)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A ticket that more than one admission was attempted for: the one kept, the rest."""

    ticket_id: int
    kept: AdmissionEntry
    refused: tuple[AdmissionEntry, ...]

    @property
    def scanners(self) -> tuple[str, ...]:
        return tuple(e.scanner_id for e in (self.kept, *self.refused))

    @property
    def times_ms(self) -> tuple[int, ...]:
        return tuple(e.at_ms for e in (self.kept, *self.refused))


@dataclass(frozen=True, slots=True)
class NonceConflict:
    """One nonce carried by entries that differ: a broken or tampered scanner."""

    nonce: str
    kept: AdmissionEntry
    dropped: tuple[AdmissionEntry, ...]


@dataclass(frozen=True)
class MergeResult:
    entries: tuple[AdmissionEntry, ...]  # every distinct scan, in merge order
    admissions: tuple[AdmissionEntry, ...]  # entries that let someone in (incl. re-entries)
    first_admissions: Mapping[int, AdmissionEntry]
    duplicates: tuple[Duplicate, ...]
    stray_exits: tuple[AdmissionEntry, ...]  # exits of tickets that were not inside
    conflicts: tuple[NonceConflict, ...]
    presence: Mapping[int, Presence]


def merge_admission_logs(logs: Iterable[Iterable[AdmissionEntry]]) -> MergeResult:
    """Merge scanner logs into one history; pure, and the same for any order of input.

    Entries are one scan per nonce, so re-uploading a log changes nothing. Scans are replayed
    by (scanner time, scanner id, nonce): the first admission of a ticket stands, a later entry
    while the ticket is inside (or at all, for single entry) is a duplicate.
    """
    by_nonce: dict[str, list[AdmissionEntry]] = {}
    for log in logs:
        for entry in log:
            variants = by_nonce.setdefault(entry.nonce, [])
            if entry not in variants:
                variants.append(entry)
    conflicts = []
    unique = []
    for nonce, variants in by_nonce.items():
        variants.sort(key=_full_key)
        unique.append(variants[0])
        if len(variants) > 1:
            conflicts.append(NonceConflict(nonce, variants[0], tuple(variants[1:])))
    unique.sort(key=lambda e: e.order_key)

    presence: dict[int, Presence] = {}
    first: dict[int, AdmissionEntry] = {}
    refused: dict[int, list[AdmissionEntry]] = {}
    admissions = []
    stray_exits = []
    for entry in unique:
        state = presence.get(entry.ticket_id, Presence.NEVER)
        if entry.direction == Direction.EXIT:
            if state == Presence.INSIDE:
                presence[entry.ticket_id] = Presence.OUTSIDE
            else:
                stray_exits.append(entry)
            continue
        # The policy of the first admission governs: all credentials of a ticket share it.
        policy = first[entry.ticket_id].entry_policy if entry.ticket_id in first \
            else entry.entry_policy
        admits = state == Presence.NEVER or (
            state == Presence.OUTSIDE and policy == EntryPolicy.REENTRY)
        if admits:
            first.setdefault(entry.ticket_id, entry)
            admissions.append(entry)
            presence[entry.ticket_id] = Presence.INSIDE
        else:
            refused.setdefault(entry.ticket_id, []).append(entry)
    duplicates = tuple(Duplicate(t, first[t], tuple(r)) for t, r in sorted(refused.items()))
    return MergeResult(entries=tuple(unique), admissions=tuple(admissions),
                       first_admissions=first, duplicates=duplicates,
                       stray_exits=tuple(stray_exits),
                       conflicts=tuple(sorted(conflicts, key=lambda c: c.nonce)),
                       presence=presence)


def _full_key(entry: AdmissionEntry) -> tuple:
    return (entry.at_ms, entry.scanner_id, entry.ticket_id, entry.serial, entry.direction.value,
            int(entry.entry_policy), entry.tier.value)
