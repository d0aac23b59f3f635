"""The credential's byte layout, its limits, the holder hint and the conformance vectors."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smarttickets.tickets.codes import compressed_public_key, parse_code
from smarttickets.tickets.credential import (
    Credential,
    CredentialFormatError,
    EntryPolicy,
    decode_credential,
    encode_credential,
    holder_hint,
    sign_credential,
)
from smarttickets.tickets.offline import KeySet, RevocationList, verify_scan
from smarttickets.tickets.tests.test_codes_support import NOW, credential, device_key

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "ticket-codes-v1.json").read_text(encoding="utf-8"))


def test_layout_matches_the_documented_bytes():
    # given a device-bound re-entry credential
    pub = compressed_public_key(device_key().public_key())
    cred = credential(kid=0x0102, ticket_id=1001, event_id=42, performance_id=7, serial=3,
                      not_before=1_700_000_000, not_after=1_700_003_600, gate_group="N",
                      holder_hint="陳/文", entry_policy=EntryPolicy.REENTRY,
                      device_public_key=pub)

    # when it is encoded
    data = encode_credential(cred)

    # then the bytes are exactly docs/ticket-codes.md's table, written out by hand
    expected = (bytes([1, 0x02]) + b"\x01\x02" + struct.pack(">I", 1001)
                + struct.pack(">I", 42) + struct.pack(">I", 7) + b"\x00\x03"
                + struct.pack(">I", 1_700_000_000) + struct.pack(">I", 1_700_003_600)
                + b"\x01N" + bytes([7]) + "陳/文".encode() + pub)
    assert data == expected
    assert len(data) == 2 + 2 + 12 + 2 + 8 + 2 + 1 + 7 + 33 == 69


def test_printed_credential_sets_the_flag_and_has_no_device_key():
    cred = credential(device_public_key=None, gate_group="", holder_hint="")

    data = encode_credential(cred)

    assert data[1] == 0x01
    assert len(data) == 2 + 2 + 12 + 2 + 8 + 1 + 1 == 28
    assert decode_credential(data) == cred
    assert decode_credential(data).printed is True


def test_decode_is_the_inverse_of_encode():
    cred = credential(kid=65535, ticket_id=2**32 - 1, serial=65535, gate_group="VIP-2",
                      holder_hint="WKY/NA", entry_policy=EntryPolicy.REENTRY,
                      device_public_key=compressed_public_key(device_key().public_key()))

    assert decode_credential(encode_credential(cred)) == cred


@pytest.mark.parametrize(("overrides", "message"), [
    ({"ticket_id": 2**32}, "ticket_id must fit in 32 bits"),
    ({"event_id": -1}, "event_id must fit in 32 bits"),
    ({"kid": 65536}, "kid must fit in 16 bits"),
    ({"serial": 0}, "serial must be 1-65535"),
    ({"serial": 65536}, "serial must be 1-65535"),
    ({"not_after": NOW - 3 * 3600}, "not_after must be later than not_before"),
    ({"gate_group": "G" * 17}, "gate_group is 17 bytes; at most 16"),
    ({"holder_hint": "陳" * 9}, "holder_hint is 27 bytes; at most 24"),
    ({"device_public_key": b"\x04" + b"\x00" * 32}, "33-byte compressed P-256 point"),
    ({"device_public_key": b"\x02" * 32}, "33-byte compressed P-256 point"),
])
def test_encode_refuses_what_v1_cannot_carry(overrides, message):
    with pytest.raises(ValueError, match=message):
        encode_credential(credential(**overrides))


def test_every_shorter_prefix_is_reported_truncated():
    # given a valid credential
    data = encode_credential(credential(
        device_public_key=compressed_public_key(device_key().public_key())))

    # when any tail is missing, then decoding says truncated and never crashes
    for length in range(1, len(data)):
        with pytest.raises(CredentialFormatError) as caught:
            decode_credential(data[:length])
        assert caught.value.reason == "truncated", length


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda d: bytes([2]) + d[1:], "unsupported_version"),
    (lambda d: d[:1] + bytes([0x04]) + d[2:], "malformed"),  # unknown flag bit
    (lambda d: d + b"\x00", "malformed"),  # trailing byte
    (lambda d: b"", "truncated"),
])
def test_decode_refuses_bad_structure(mutate, reason):
    data = encode_credential(credential(
        device_public_key=compressed_public_key(device_key().public_key())))

    with pytest.raises(CredentialFormatError) as caught:
        decode_credential(mutate(data))

    assert caught.value.reason == reason


def test_decode_refuses_non_nfc_and_invalid_utf8_text():
    base = encode_credential(credential(device_public_key=None, gate_group="", holder_hint="A"))
    hint_at = 2 + 2 + 12 + 2 + 8 + 1  # after the empty gate group

    decomposed = "E\u0301".encode()  # "É" as E + combining accent
    non_nfc = base[:hint_at] + bytes([len(decomposed)]) + decomposed
    bad_utf8 = base[:hint_at] + b"\x01\xff"

    for data in (non_nfc, bad_utf8):
        with pytest.raises(CredentialFormatError) as caught:
            decode_credential(data)
        assert caught.value.reason == "malformed"


@pytest.mark.parametrize(("name", "hint"), [
    ("Chan Tai Man", "CTM/AN"),
    ("  chan   tai  man ", "CTM/AN"),
    ("陳大文", "陳/文"),
    ("Li Na", "LN/A"),
    ("Wong Ka Yan Christina", "WKY/NA"),
    ("Ｃｈａｎ Ｔａｉ", "CT/AI"),  # full-width letters fold to ASCII
    ("Al", "A"),
    ("", ""),
])
def test_holder_hint_gives_initials_and_a_short_tail(name, hint):
    assert holder_hint(name) == hint


def test_vector_credential_bytes_and_issuer_signature_are_reproduced():
    # given the vector's issuer seed and fields
    issuer = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTORS["issuer"]["seed_hex"]))
    for name in ("rotating", "printed"):
        vector = VECTORS[name]
        fields = dict(vector["credential_fields"])
        device_hex = fields.pop("device_public_key_hex")
        fields["entry_policy"] = EntryPolicy[fields["entry_policy"].upper()]
        cred = Credential(**fields,
                          device_public_key=bytes.fromhex(device_hex) if device_hex else None)

        # when it is signed
        signed = sign_credential(cred, issuer)

        # then bytes and the deterministic Ed25519 signature are exactly the vector's
        assert signed.data.hex() == vector["credential_hex"], name
        assert signed.signature.hex() == vector["issuer_signature_hex"], name


def test_vector_device_key_and_message():
    vector = VECTORS["rotating"]
    scalar = int(VECTORS["device"]["private_scalar_hex"], 16)
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    assert compressed_public_key(key.public_key()).hex() == \
        VECTORS["device"]["public_compressed_hex"]

    parsed = parse_code(vector["code"])

    assert parsed.step == vector["step"]
    assert parsed.credential_bytes.hex() == vector["credential_hex"]
    assert parsed.device_signature.hex() == vector["device_signature_hex"]
    assert (hashlib.sha256(parsed.credential_bytes).digest() + struct.pack(">I", parsed.step)
            ).hex() == vector["device_message_hex"]


def test_vector_codes_verify_with_the_published_key_set():
    keyset = KeySet.from_jwks(VECTORS["issuer"]["jwks"])
    scanner = VECTORS["scanner"]
    cases = [(VECTORS["rotating"]["code"], scanner["clock_unix"], "ok"),
             (VECTORS["printed"]["code"], scanner["clock_unix"], "ok_check_id")]
    cases += [(r["code"], r["clock_unix"], r["reason_code"]) for r in VECTORS["refusals"]]

    for code, clock, reason in cases:
        result = verify_scan(code, keyset=keyset, revocations=RevocationList(),
                             scanner_clock_unix=clock, event_id=scanner["event_id"],
                             performance_id=scanner["performance_id"],
                             gate_group=scanner["gate_group"])
        assert result.reason_code == reason, (code[:12], clock)
        assert result.ok is (reason.startswith("ok"))
