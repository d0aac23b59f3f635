"""Every single changed byte of a code's credential and signatures is refused, for a reason that
fits where the change was."""

from __future__ import annotations

import base45

from smarttickets.tickets.codes import PREFIX, parse_code
from smarttickets.tickets.offline import AdmissionLog
from smarttickets.tickets.tests.test_codes_support import EVENT_ID, NOW, scan, wallet

FLIPS = (0x01, 0x80, 0xFF)


def _regions(cred_len: int) -> list[tuple[range, set[str]]]:
    """Byte ranges of a code body and the refusals a change there may cause."""
    structural = {"unsupported_version", "malformed", "truncated", "bad_issuer_signature"}
    signed_only = {"bad_issuer_signature"}
    # ids, serial and window: the value stays parseable unless it breaks serial ≥ 1 or
    # not_before < not_after, which the parser refuses first
    numbers = {"bad_issuer_signature", "malformed"}
    return [
        (range(0, 1), {"unsupported_version"}),
        (range(1, 2), structural),  # flags: unknown bit, or printed bit moving the layout
        (range(2, 4), {"unknown_key"}),
        (range(4, 26), numbers),
        (range(26, cred_len - 33), structural),  # length-prefixed texts
        (range(cred_len - 33, cred_len - 32), structural),  # point prefix 02/03
        (range(cred_len - 32, cred_len), signed_only),
        (range(cred_len, cred_len + 64), signed_only),  # issuer signature
        (range(cred_len + 64, cred_len + 68), {"bad_device_signature"}),  # step
        (range(cred_len + 68, cred_len + 132), {"bad_device_signature"}),
    ]


def test_every_flipped_byte_is_refused_with_a_fitting_reason():
    # given a valid code and a scanner log
    fan = wallet(ticket_id=1001, gate_group="NORTH", holder_hint="CTM/AN")
    code = fan.code(NOW)
    body = base45.b45decode(code[len(PREFIX):])
    cred_len = len(parse_code(code).credential_bytes)
    assert len(body) == cred_len + 132
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID)
    assert scan(code, log=log).ok is True

    seen: dict[str, int] = {}
    regions = _regions(cred_len)
    assert sum(len(r) for r, _ in regions) == len(body)
    for positions, allowed in regions:
        for pos in positions:
            for flip in FLIPS:
                # when one byte is changed
                tampered = bytearray(body)
                tampered[pos] ^= flip
                result = scan(PREFIX + base45.b45encode(bytes(tampered)).decode(), log=log)

                # then it is refused, for a reason that fits the place
                assert result.ok is False, (pos, flip)
                assert result.reason_code in allowed, (pos, flip, result.reason_code)
                seen[result.reason_code] = seen.get(result.reason_code, 0) + 1

    # and nothing was admitted; signatures caught the changes that still parsed
    assert len(log) == 0
    assert seen["bad_issuer_signature"] > seen.get("malformed", 0)
    assert seen["bad_device_signature"] == 68 * len(FLIPS)
    assert seen["unknown_key"] == 2 * len(FLIPS)


def test_every_changed_character_of_the_text_is_refused():
    # given a valid code; when any one base45 character is replaced by another
    code = wallet().code(NOW)
    for pos in range(len(PREFIX), len(code)):
        replacement = "0" if code[pos] != "0" else "1"
        result = scan(code[:pos] + replacement + code[pos + 1:])
        # then the code is refused
        assert result.ok is False, pos
