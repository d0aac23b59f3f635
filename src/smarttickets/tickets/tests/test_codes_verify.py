"""verify_scan: every refusal with its reason, the order of the checks, rotation and re-entry."""

from __future__ import annotations

import struct

import base45
import pytest

from smarttickets.tickets.codes import (
    PREFIX,
    STEP_SECONDS,
    make_code,
    make_printed_code,
    parse_code,
    sign_device,
    step_at,
)
from smarttickets.tickets.credential import EntryPolicy
from smarttickets.tickets.keys import Keyring
from smarttickets.tickets.offline import (
    REASONS,
    AdmissionLog,
    Direction,
    KeySet,
    RevocationList,
    Tier,
    verify_scan,
)
from smarttickets.tickets.tests.test_codes_support import (
    EVENT_ID,
    GATE,
    NOW,
    PERFORMANCE_ID,
    credential,
    keyring,
    scan,
    wallet,
)


def test_a_live_code_is_admitted_with_the_ticket_facts():
    # given a fan's wallet and an empty scanner log
    fan = wallet(ticket_id=1001, serial=2, holder_hint="CTM/AN")
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID)

    # when the live code is scanned
    result = scan(fan.code(NOW), log=log)

    # then it is admitted and the result says who to expect
    assert result.ok is True
    assert result.reason_code == "ok"
    assert result.message == REASONS["ok"]
    assert (result.ticket_id, result.serial, result.holder_hint) == (1001, 2, "CTM/AN")
    assert (result.event_id, result.performance_id, result.gate_group) == (
        EVENT_ID, PERFORMANCE_ID, GATE)
    assert result.tier == Tier.DEVICE
    assert result.id_check_required is False
    assert result.step == step_at(NOW)


@pytest.mark.parametrize("text", [
    "", "hello", "st1:ABC", "ST1:????", "ST1:" + "A" * 1300, "ST1:AB$",
    "QR:ST1:00", "STX:0000",
])
def test_garbage_is_malformed(text):
    result = scan(text)

    assert (result.ok, result.reason_code) == (False, "malformed")
    assert result.ticket_id is None


def test_a_later_format_is_unsupported_not_garbage():
    code = wallet().code()

    assert scan("ST2:" + code[4:]).reason_code == "unsupported_version"
    assert scan("ST17:" + code[4:]).reason_code == "unsupported_version"


def test_cut_codes_are_truncated():
    # given a live code; when its end is cut off in whole base45 groups (2 bytes each)
    code = wallet().code()
    for groups in (1, 2, 22, 43, 44, 60, 100, (len(code) - len(PREFIX)) // 3):
        result = scan(code[:-3 * groups])
        # then the scanner says truncated, with nothing read from the credential
        assert (result.ok, result.reason_code) == (False, "truncated"), groups
        assert result.ticket_id is None


def test_extra_bytes_after_the_device_signature_are_malformed():
    fan = wallet()
    code = fan.code()

    assert scan(code + "000").reason_code == "malformed"


def test_trailing_newline_from_a_keyboard_wedge_scanner_is_ignored():
    code = wallet().code()

    assert scan(code + "\r\n").reason_code == "ok"


def test_an_unknown_issuer_key_is_refused():
    # given a ticket signed by a key the scanner never received
    fan = wallet(keyring(kid=7, label="rogue"))

    result = scan(fan.code(), keyring(kid=0x1234))

    assert (result.ok, result.reason_code, result.kid) == (False, "unknown_key", 7)
    assert result.ticket_id is None  # unsigned facts are not shown


def test_a_signature_by_another_key_under_a_known_kid_is_refused():
    # given a forger who knows the kid but not the key
    forged = wallet(keyring(kid=0x1234, label="forger"))

    result = scan(forged.code(), keyring(kid=0x1234, label="issuer-1"))

    assert (result.ok, result.reason_code) == (False, "bad_issuer_signature")
    assert result.ticket_id is None


@pytest.mark.parametrize(("scanner", "reason"), [
    ({"event_id": EVENT_ID + 1}, "wrong_event"),
    ({"performance_id": PERFORMANCE_ID + 1}, "wrong_performance"),
    ({"gate_group": "SOUTH"}, "wrong_gate"),
    ({"clock": NOW - 3 * 3600 - 1}, "not_yet_valid"),
    ({"clock": NOW + 6 * 3600}, "expired"),
])
def test_scope_and_validity_window_refusals(scanner, reason):
    fan = wallet()
    clock = scanner.get("clock", NOW)

    result = scan(fan.code(clock), **scanner)

    assert (result.ok, result.reason_code) == (False, reason)
    assert result.ticket_id == 1001  # signed facts are shown to help staff


def test_window_edges_are_inclusive_start_exclusive_end():
    fan = wallet()
    start, end = NOW - 3 * 3600, NOW + 6 * 3600

    assert scan(fan.code(start), clock=start).reason_code == "ok"
    assert scan(fan.code(end - 1), clock=end - 1).reason_code == "ok"
    assert scan(fan.code(end), clock=end).reason_code == "expired"


def test_gate_groups_any_gate_ticket_and_all_gates_scanner():
    any_gate = wallet(gate_group="")
    north = wallet(gate_group="NORTH")

    assert scan(any_gate.code(), gate_group="SOUTH").reason_code == "ok"
    assert scan(north.code(), gate_group=None).reason_code == "ok"
    assert scan(north.code(), gate_group="north").reason_code == "wrong_gate"


def test_a_cancelled_ticket_is_revoked():
    fan = wallet(ticket_id=1001)
    revocations = RevocationList(revoked=frozenset({1001}))

    result = scan(fan.code(), revocations=revocations)

    assert (result.ok, result.reason_code) == (False, "revoked")


def test_an_old_serial_after_transfer_is_superseded_and_the_new_one_admits():
    # given ticket 1001 transferred: serial 1 on the seller's phone, serial 2 on the buyer's
    seller = wallet(ticket_id=1001, serial=1, device="seller")
    buyer = wallet(ticket_id=1001, serial=2, device="buyer")
    revocations = RevocationList(min_serial={1001: 2})

    # then the seller's copy is refused, the buyer's admitted
    assert scan(seller.code(), revocations=revocations).reason_code == "superseded"
    assert scan(buyer.code(), revocations=revocations).reason_code == "ok"


def test_a_device_signature_for_another_ticket_is_refused():
    # given two tickets on two phones; a thief pairs A's credential with B's device signature
    a = wallet(ticket_id=1001, device="phone-a")
    b = wallet(ticket_id=1002, device="phone-b")
    step = step_at(NOW)
    spliced = make_code(a.signed.data, a.signed.signature, b.device, step)

    result = scan(spliced)

    assert (result.ok, result.reason_code) == (False, "bad_device_signature")


def test_a_device_signature_made_for_another_step_is_refused():
    # given a device signature from a minute ago, relabelled with the current step
    fan = wallet()
    old_sig = sign_device(fan.device, fan.signed.data, step_at(NOW - 60))
    body = fan.signed.data + fan.signed.signature + struct.pack(">I", step_at(NOW)) + old_sig
    forged = PREFIX + base45.b45encode(body).decode()

    result = scan(forged)

    assert (result.ok, result.reason_code) == (False, "bad_device_signature")


def test_a_45_second_old_screenshot_is_refused():
    fan = wallet()
    for taken_at in (NOW, NOW + 7, NOW + 14):  # anywhere within its step
        result = scan(fan.code(taken_at), clock=taken_at + 45)
        assert (result.ok, result.reason_code) == (False, "code_too_old"), taken_at


def test_any_code_30_seconds_old_is_refused_and_a_fresh_one_lives_at_least_15():
    fan = wallet()
    for drawn_at in (NOW, NOW + 1, NOW + 14):
        code = fan.code(drawn_at)
        assert scan(code, clock=drawn_at + 30).reason_code == "code_too_old", drawn_at
        assert scan(code, clock=drawn_at + 15).reason_code == "ok", drawn_at


def test_one_step_either_side_is_accepted_two_steps_are_not():
    fan = wallet()
    code = fan.code(NOW)

    assert scan(code, clock=NOW + STEP_SECONDS).reason_code == "ok"
    assert scan(code, clock=NOW - STEP_SECONDS).reason_code == "ok"
    assert scan(code, clock=NOW + 2 * STEP_SECONDS).reason_code == "code_too_old"
    assert scan(code, clock=NOW - 2 * STEP_SECONDS).reason_code == "code_from_future"


def test_a_scanner_clock_skewed_by_two_steps_refuses_live_codes():
    fan = wallet()
    live = fan.code(NOW)

    ahead = scan(live, clock=NOW + 30)
    behind = scan(live, clock=NOW - 30)

    assert (ahead.ok, ahead.reason_code) == (False, "code_too_old")
    assert (behind.ok, behind.reason_code) == (False, "code_from_future")


def test_a_code_replayed_after_admission_is_refused_and_not_logged_again():
    # given a code admitted and recorded
    fan = wallet()
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID)
    code = fan.code()
    first = scan(code, log=log)
    log.record(first, at_unix=NOW, nonce="0" * 32)

    # when the same code (or the next step's) is shown again
    replay = scan(code, clock=NOW + 5, log=log)
    next_step = scan(fan.code(NOW + 15), clock=NOW + 15, log=log)

    # then both are refused and the log still holds one admission
    assert (replay.ok, replay.reason_code) == (False, "already_admitted")
    assert next_step.reason_code == "already_admitted"
    assert len(log) == 1


def test_re_entry_policy_entry_exit_entry():
    # given a re-entry ticket
    fan = wallet(entry_policy=EntryPolicy.REENTRY)
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID)

    def step(at, direction):
        result = scan(fan.code(at), clock=at, log=log, direction=direction)
        if result.ok:
            log.record(result, at_unix=at)
        return result.reason_code

    # then it alternates, and a second entry while inside is refused
    assert step(NOW, Direction.EXIT) == "not_inside"
    assert step(NOW + 1, Direction.ENTRY) == "ok"
    assert step(NOW + 20, Direction.ENTRY) == "already_inside"
    assert step(NOW + 600, Direction.EXIT) == "ok_exit"
    assert step(NOW + 610, Direction.EXIT) == "not_inside"
    assert step(NOW + 1200, Direction.ENTRY) == "ok"
    assert [e.direction for e in log] == [Direction.ENTRY, Direction.EXIT, Direction.ENTRY]


def test_single_entry_ticket_cannot_come_back_after_an_exit():
    fan = wallet(entry_policy=EntryPolicy.SINGLE)
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID)
    log.record(scan(fan.code(NOW), log=log), at_unix=NOW)
    log.record(scan(fan.code(NOW + 60), clock=NOW + 60, log=log, direction=Direction.EXIT),
               at_unix=NOW + 60)

    result = scan(fan.code(NOW + 120), clock=NOW + 120, log=log)

    assert result.reason_code == "already_admitted"
    assert len(log) == 2


def test_a_printed_credential_admits_only_with_an_id_check_and_only_once():
    # given a printed credential (no device key) for ticket 2001
    ring = keyring()
    signed = ring.issue(credential(ticket_id=2001, device_public_key=None))
    code = make_printed_code(signed.data, signed.signature)
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID)

    # when scanned hours later (nothing rotates), then it admits with an ID check
    result = scan(code, ring, clock=NOW + 3600, log=log)
    assert (result.ok, result.reason_code, result.id_check_required) == (
        True, "ok_check_id", True)
    assert result.tier == Tier.PRINTED and result.step is None
    log.record(result, at_unix=NOW + 3600)

    # and a photocopy of it is refused
    assert scan(code, ring, clock=NOW + 3700, log=log).reason_code == "already_admitted"


def test_stripping_the_device_binding_does_not_make_a_printed_credential():
    # given a device-bound credential whose device part is cut off, posing as printed
    fan = wallet()
    parsed = parse_code(fan.code())
    body = parsed.credential_bytes[:1] + bytes([parsed.credential_bytes[1] | 1]) \
        + parsed.credential_bytes[2:-33] + parsed.issuer_signature
    forged = PREFIX + base45.b45encode(body).decode()

    result = scan(forged)

    assert (result.ok, result.reason_code) == (False, "bad_issuer_signature")


def test_checks_run_in_the_documented_order():
    # a code that is stale AND for another event AND revoked reports the earliest check
    fan = wallet(ticket_id=1001)
    stale = fan.code(NOW - 300)
    revoked = RevocationList(revoked=frozenset({1001}))

    assert scan(stale, event_id=1, revocations=revoked).reason_code == "wrong_event"
    assert scan(stale, revocations=revoked).reason_code == "revoked"
    assert scan(stale).reason_code == "code_too_old"
    # an unknown key comes before scope, a bad device signature before the time step
    assert scan(stale, keyring(kid=9), event_id=1).reason_code == "unknown_key"
    other = wallet(ticket_id=1001, device="other")
    spliced = make_code(fan.signed.data, fan.signed.signature, other.device, step_at(NOW - 300))
    assert scan(spliced).reason_code == "bad_device_signature"


def test_key_rotation_old_kid_valid_until_retired(tmp_path):
    # given a file-backed keyring and a ticket signed before rotation
    ring = Keyring.generate(path=tmp_path / "keys.json")
    old = wallet(ring, ticket_id=1001)
    old_kid = ring.current.kid

    # when the key is rotated, then old and new tickets both verify
    rotated = ring.rotate()
    new = wallet(rotated, ticket_id=1002)
    assert new.signed.data[2:4] == rotated.current.kid.to_bytes(2, "big")
    assert rotated.current.kid != old_kid
    assert scan(old.code(), rotated).reason_code == "ok"
    assert scan(new.code(), rotated).reason_code == "ok"

    # and once the old key is retired (scanners refresh their key set) the old one does not
    retired = rotated.retire(old_kid)
    assert scan(old.code(), retired).reason_code == "unknown_key"
    assert scan(new.code(), retired).reason_code == "ok"
    # the scanner gets the same answer from the exported JWK Set
    keyset = KeySet.from_jwks(retired.jwks())
    result = verify_scan(old.code(), keyset=keyset, revocations=RevocationList(),
                         scanner_clock_unix=NOW, event_id=EVENT_ID, gate_group=GATE)
    assert result.reason_code == "unknown_key"


def test_every_refusal_reason_has_a_message_and_ok_reasons_are_few():
    refusals = {r for r in REASONS if not r.startswith("ok")}

    assert len(refusals) == 20
    assert all(REASONS[r].strip() for r in REASONS)
