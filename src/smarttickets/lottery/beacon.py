"""Beacons: public randomness named in a lottery commitment before it exists, and its checks.

Three kinds, chosen by the commitment's ``beacon`` object:

* ``null`` — no beacon; the draw rests on the organizer's committed seed alone.
* a public value named in advance, e.g. ``{"source": "hk-mark-six", "draw": "24/123"}``: the
  organizer types the published outcome; its value is the UTF-8 bytes of the normalised text
  (see ``normalise_public_value``), so anyone typing the same outcome gets the same bytes.
* ``{"source": "drand-quicknet", "round": R}``: the League of Entropy's quicknet chain. The round
  is checked with its BLS signature (unchained, G1 signatures on BLS12-381, RFC 9380
  hash-to-curve) against the chain's public key; the value is ``SHA-256(signature)``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils.translation import gettext_lazy as _

from smarttickets.core.exceptions import InvalidInput
from smarttickets.lottery.draw import DRAND_QUICKNET


class BeaconError(InvalidInput):
    code = "beacon_invalid"


class BeaconWrongRound(BeaconError):
    code = "beacon_wrong_round"


class BeaconNotInFuture(BeaconError):
    """The named value already existed when the commitment was published."""

    code = "beacon_not_in_future"


class BeaconSignatureInvalid(BeaconError):
    code = "beacon_signature_invalid"


@dataclass(frozen=True)
class DrandChain:
    source: str
    chain_hash: str
    public_key: str  # hex, compressed G2 point
    genesis_time: int
    period: int
    dst: bytes

    def round_time(self, round_number: int) -> datetime:
        """When ``round_number`` is emitted (rounds start at 1, at genesis)."""
        return datetime.fromtimestamp(self.genesis_time + (round_number - 1) * self.period, UTC)

    def round_at(self, moment: datetime) -> int:
        """The latest round already emitted at ``moment`` (0 before genesis)."""
        elapsed = int(moment.timestamp()) - self.genesis_time
        return 0 if elapsed < 0 else elapsed // self.period + 1

    def first_round_after(self, moment: datetime, margin: timedelta = timedelta(0)) -> int:
        """A round that does not exist yet at ``moment`` and comes at least ``margin`` later."""
        return self.round_at(moment + margin) + 1


# League of Entropy quicknet, from its /info document.
QUICKNET = DrandChain(
    source=DRAND_QUICKNET,
    chain_hash="52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
    public_key=(
        "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c"
        "8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb"
        "5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a"
    ),
    genesis_time=1692803367,
    period=3,
    dst=b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_",
)


@dataclass(frozen=True)
class DrandRound:
    round: int
    signature: bytes
    randomness: bytes


def parse_drand_round(doc: Any) -> DrandRound:
    """A round as drand serves it: ``{"round": R, "signature": hex, "randomness": hex}``."""
    if not isinstance(doc, Mapping):
        raise BeaconError(_("A drand round is a JSON object with round and signature."))
    number, signature = doc.get("round"), doc.get("signature")
    if type(number) is not int or number < 1:
        raise BeaconError(_("The drand round number must be a positive integer."))
    try:
        sig = bytes.fromhex(signature) if isinstance(signature, str) else b""
    except ValueError:
        sig = b""
    if len(sig) != 48:
        raise BeaconError(_("A quicknet signature is 48 bytes of hex."))
    randomness = hashlib.sha256(sig).digest()
    claimed = doc.get("randomness")
    if claimed is not None and claimed != randomness.hex():
        raise BeaconSignatureInvalid(_("The round's randomness is not SHA-256 of its signature."))
    return DrandRound(round=number, signature=sig, randomness=randomness)


def _bls_verify(chain: DrandChain, round_number: int, signature: bytes) -> bool:
    # py_ecc is pure Python (about half a second per check) and slow to import: load it only here.
    from py_ecc.bls.hash_to_curve import hash_to_G1
    from py_ecc.bls.point_compression import decompress_G1, decompress_G2
    from py_ecc.optimized_bls12_381 import (
        FQ12,
        G2,
        curve_order,
        final_exponentiate,
        is_inf,
        multiply,
        neg,
    )
    from py_ecc.optimized_bls12_381.optimized_pairing import miller_loop

    pk = bytes.fromhex(chain.public_key)
    try:
        sig_point = decompress_G1(int.from_bytes(signature, "big"))
        pk_point = decompress_G2((int.from_bytes(pk[:48], "big"), int.from_bytes(pk[48:], "big")))
    except (ValueError, AssertionError):
        return False
    if is_inf(sig_point) or not is_inf(multiply(sig_point, curve_order)):
        return False  # not in the prime-order subgroup: refuse before pairing
    message = hashlib.sha256(round_number.to_bytes(8, "big")).digest()
    hashed = hash_to_G1(message, chain.dst, hashlib.sha256)
    # e(sig, g2) == e(H(m), pk)  <=>  e(sig, g2) · e(H(m), -pk) == 1, one final exponentiation.
    product = (miller_loop(G2, sig_point, final_exponentiate=False)
               * miller_loop(neg(pk_point), hashed, final_exponentiate=False))
    return final_exponentiate(product) == FQ12.one()


def verify_drand_round(doc: Any, *, expected_round: int, chain: DrandChain = QUICKNET) -> bytes:
    """Check a drand round document for the round a commitment named; returns its randomness."""
    rnd = parse_drand_round(doc)
    if rnd.round != expected_round:
        raise BeaconWrongRound(
            _("This is drand round %(got)s, but the commitment named round %(want)s.")
            % {"got": rnd.round, "want": expected_round})
    if not _bls_verify(chain, rnd.round, rnd.signature):
        raise BeaconSignatureInvalid(
            _("The signature of drand round %(round)s does not verify against the %(chain)s key.")
            % {"round": rnd.round, "chain": chain.source})
    return rnd.randomness


_WHITESPACE = re.compile(r"\s+")
_SOURCE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def normalise_public_value(text: str) -> str:
    """The canonical form of a typed public outcome: Unicode NFKC, lower case, each run of
    whitespace one space, no leading or trailing space. Punctuation is kept as typed."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return _WHITESPACE.sub(" ", folded).strip()


class Beacon(ABC):
    source: str

    @abstractmethod
    def describe(self) -> dict[str, Any] | None:
        """The commitment's ``beacon`` object."""

    @abstractmethod
    def value(self, evidence: Any) -> bytes:
        """The beacon value bytes from what the organizer supplies, after checking it."""

    def check_named_in_advance(self, published_at: datetime) -> None:
        """Refuse a beacon whose value already existed when the commitment was published."""
        return None


class NoBeacon(Beacon):
    source = ""

    def describe(self) -> None:
        return None

    def value(self, evidence: Any) -> bytes:
        if evidence not in (None, b"", ""):
            raise BeaconError(_("This lottery names no beacon, so it takes no beacon value."))
        return b""


@dataclass(frozen=True)
class PublicValueBeacon(Beacon):
    source: str
    draw: str

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not _SOURCE.fullmatch(self.source):
            raise BeaconError(_("A beacon source is a short lower-case name such as hk-mark-six."))
        if not isinstance(self.draw, str) or not self.draw.strip() or len(self.draw) > 100:
            raise BeaconError(_("Name the public draw the value will come from, e.g. 24/123."))

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "draw": self.draw}

    def value(self, evidence: Any) -> bytes:
        if isinstance(evidence, bytes):
            evidence = evidence.decode("utf-8", "strict")
        if not isinstance(evidence, str) or not normalise_public_value(evidence):
            raise BeaconError(_("Enter the published outcome of %(source)s draw %(draw)s.")
                              % {"source": self.source, "draw": self.draw})
        return normalise_public_value(evidence).encode()


@dataclass(frozen=True)
class DrandBeacon(Beacon):
    round: int
    chain: DrandChain = QUICKNET

    def __post_init__(self) -> None:
        if type(self.round) is not int or self.round < 1:
            raise BeaconError(_("A drand beacon names a positive round number."))

    @property
    def source(self) -> str:  # type: ignore[override]
        return self.chain.source

    def describe(self) -> dict[str, Any]:
        return {"source": self.chain.source, "round": self.round}

    def value(self, evidence: Any) -> bytes:
        return verify_drand_round(evidence, expected_round=self.round, chain=self.chain)

    def check_named_in_advance(self, published_at: datetime) -> None:
        if self.round <= self.chain.round_at(published_at):
            raise BeaconNotInFuture(
                _("drand round %(round)s was already public at %(at)s; name a later round "
                  "(at least %(next)s).")
                % {"round": self.round, "at": published_at.isoformat(),
                   "next": self.chain.round_at(published_at) + 1})


def beacon_for(description: Any) -> Beacon:
    """The beacon a commitment's ``beacon`` object names."""
    if description is None:
        return NoBeacon()
    if not isinstance(description, Mapping) or not isinstance(description.get("source"), str):
        raise BeaconError(_("A beacon is null or an object with a source."))
    if description["source"] == QUICKNET.source:
        if set(description) != {"source", "round"}:
            raise BeaconError(_("A drand-quicknet beacon is {\"source\", \"round\"} only."))
        return DrandBeacon(round=description["round"])
    if set(description) != {"source", "draw"}:
        raise BeaconError(_("A public-value beacon is {\"source\", \"draw\"} only."))
    return PublicValueBeacon(source=description["source"], draw=description["draw"])
