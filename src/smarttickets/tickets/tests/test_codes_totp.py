"""Fallback tiers: RFC 6238/4226 vectors through our TOTP helpers, wallet-pass codes, printed
credentials."""

from __future__ import annotations

import base64

import pytest

from smarttickets.tickets.credential import EntryPolicy
from smarttickets.tickets.offline import AdmissionLog, RevocationList, Tier, verify_scan
from smarttickets.tickets.tests.test_codes_support import (
    EVENT_ID,
    GATE,
    NOW,
    credential,
    keyring,
    wallet,
)
from smarttickets.tickets.totp import (
    TotpTicket,
    derive_totp_secret,
    hotp_value,
    make_totp_code,
    printed_code,
    totp_pattern,
    totp_value,
    verify_totp_code,
)

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(("at", "expected"), [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
])
def test_rfc6238_appendix_b_sha1_vectors(at, expected):
    assert totp_value(RFC_SECRET, at, period=30, digits=8) == expected


def test_rfc4226_appendix_d_hotp_vectors():
    expected = ["755224", "287082", "359152", "969429", "338314",
                "254676", "287922", "162583", "399871", "520489"]

    assert [hotp_value(RFC_SECRET, counter) for counter in range(10)] == expected


def test_secrets_are_per_ticket_and_change_with_the_serial():
    master = b"m" * 32

    first = derive_totp_secret(master, ticket_id=1001, serial=1)

    assert first == derive_totp_secret(master, ticket_id=1001, serial=1)
    assert len(base64.b32decode(first)) == 20
    assert first != derive_totp_secret(master, ticket_id=1002, serial=1)
    assert first != derive_totp_secret(master, ticket_id=1001, serial=2)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        derive_totp_secret(b"short", ticket_id=1, serial=1)


def _lookup(secret: str, **overrides):
    ticket = TotpTicket(credential=credential(ticket_id=1001, serial=2, **overrides),
                        secret=secret)
    return lambda ticket_id: ticket if ticket_id == 1001 else None


def _verify(code, lookup, *, clock=NOW, log=None, **kwargs):
    return verify_totp_code(code, ticket_lookup=lookup,
                            revocations=kwargs.pop("revocations", RevocationList()),
                            scanner_clock_unix=clock, event_id=EVENT_ID, gate_group=GATE,
                            admitted_lookup=log.presence if log else None, **kwargs)


def test_a_wallet_pass_code_admits_with_an_id_check_once():
    # given a wallet pass for ticket 1001 serial 2
    secret = derive_totp_secret(b"k" * 32, ticket_id=1001, serial=2)
    lookup = _lookup(secret)
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID)
    code = make_totp_code(ticket_id=1001, serial=2, secret=secret, at_unix=NOW)
    assert code == totp_pattern(1001, 2).format(totp=totp_value(secret, NOW))
    assert code.startswith("STT1:1001:2:") and len(code) == len("STT1:1001:2:") + 8

    # when scanned, then it admits, marked as the weaker tier
    result = _verify(code, lookup, log=log)
    assert (result.ok, result.reason_code, result.tier, result.id_check_required) == (
        True, "ok_check_id", Tier.TOTP, True)
    log.record(result, at_unix=NOW)

    # and a second showing is refused
    again = make_totp_code(ticket_id=1001, serial=2, secret=secret, at_unix=NOW + 15)
    assert _verify(again, lookup, clock=NOW + 15, log=log).reason_code == "already_admitted"
    assert len(log) == 1


def test_wallet_pass_refusals():
    secret = derive_totp_secret(b"k" * 32, ticket_id=1001, serial=2)
    lookup = _lookup(secret)
    code = make_totp_code(ticket_id=1001, serial=2, secret=secret, at_unix=NOW)
    old_pass = make_totp_code(ticket_id=1001, serial=1,
                              secret=derive_totp_secret(b"k" * 32, ticket_id=1001, serial=1),
                              at_unix=NOW)

    assert _verify("STT1:1001:2:1234", lookup).reason_code == "malformed"
    assert _verify("STT1:9:1:12345678", lookup).reason_code == "unknown_ticket"
    assert _verify(old_pass, lookup).reason_code == "superseded"
    assert _verify(code, lookup, clock=NOW + 45).reason_code == "bad_totp"  # screenshot
    assert _verify(code, lookup, clock=NOW + 15).reason_code == "ok_check_id"  # one step
    wrong = code[:-8] + ("00000000" if code[-8:] != "00000000" else "11111111")
    assert _verify(wrong, lookup).reason_code == "bad_totp"
    revoked = RevocationList(revoked=frozenset({1001}))
    assert _verify(code, lookup, revocations=revoked).reason_code == "revoked"
    assert _verify(code, _lookup(secret, gate_group="SOUTH")).reason_code == "wrong_gate"


def test_printed_credential_is_static_and_flagged_for_an_id_check():
    # given a printed re-entry credential
    ring = keyring()
    signed = ring.issue(credential(ticket_id=3001, device_public_key=None,
                                   entry_policy=EntryPolicy.REENTRY))
    code = printed_code(signed)

    # then the same text verifies hours apart, always with an ID check
    for clock in (NOW, NOW + 4 * 3600):
        result = verify_scan(code, keyset=ring.keyset(), revocations=RevocationList(),
                             scanner_clock_unix=clock, event_id=EVENT_ID, gate_group=GATE)
        assert (result.ok, result.id_check_required, result.tier) == (True, True, Tier.PRINTED)


def test_a_device_bound_credential_cannot_be_printed():
    fan = wallet(keyring())

    with pytest.raises(ValueError, match="only it"):
        printed_code(fan.signed)
