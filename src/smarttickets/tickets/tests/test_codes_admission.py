"""The scanner's admission log, its upload format, and the merge of several scanners' logs."""

from __future__ import annotations

import json
import random

import pytest

from smarttickets.tickets.credential import EntryPolicy
from smarttickets.tickets.offline import (
    AdmissionEntry,
    AdmissionLog,
    Direction,
    Presence,
    Tier,
    UploadFormatError,
    merge_admission_logs,
)
from smarttickets.tickets.tests.test_codes_support import EVENT_ID, NOW, scan, wallet


def entry(nonce: int, scanner: str, ticket: int, at_s: float, *, direction="entry",
          policy=EntryPolicy.SINGLE, serial=1) -> AdmissionEntry:
    return AdmissionEntry(nonce=f"{nonce:032x}", scanner_id=scanner, ticket_id=ticket,
                          serial=serial, direction=Direction(direction),
                          at_ms=int(at_s * 1000), entry_policy=policy, tier=Tier.DEVICE)


def four_scanner_logs() -> list[list[AdmissionEntry]]:
    """Four gates offline during doors: ticket 1 shown at three of them, ticket 2 at two (same
    millisecond), ticket 3 re-enters, ticket 4 once."""
    return [
        [entry(1, "gate-a", 1, NOW + 10), entry(2, "gate-a", 4, NOW + 11),
         entry(3, "gate-a", 3, NOW + 12, policy=EntryPolicy.REENTRY)],
        [entry(4, "gate-b", 1, NOW + 9.5), entry(5, "gate-b", 2, NOW + 20),
         entry(6, "gate-b", 3, NOW + 100, direction="exit", policy=EntryPolicy.REENTRY)],
        [entry(7, "gate-c", 1, NOW + 30), entry(8, "gate-c", 2, NOW + 20),
         entry(9, "gate-c", 3, NOW + 200, policy=EntryPolicy.REENTRY)],
        [entry(10, "gate-d", 3, NOW + 150, policy=EntryPolicy.REENTRY),
         entry(11, "gate-d", 3, NOW + 300, direction="exit", policy=EntryPolicy.REENTRY)],
    ]


def test_four_scanner_merge_keeps_the_first_admission_and_flags_duplicates():
    # given four scanners' logs
    logs = four_scanner_logs()

    # when they are merged
    merged = merge_admission_logs(logs)

    # then the earliest admission per ticket stands
    assert {t: e.nonce[-2:] for t, e in merged.first_admissions.items()} == {
        1: "04", 4: "02", 3: "03", 2: "05"}
    assert [e.scanner_id for e in merged.admissions] == [
        "gate-b", "gate-a", "gate-a", "gate-b", "gate-d"]
    # and the duplicates name the ticket, the scanners and the times, kept one first
    assert [(d.ticket_id, d.scanners, d.times_ms) for d in merged.duplicates] == [
        (1, ("gate-b", "gate-a", "gate-c"),
         ((NOW + 9.5) * 1000, (NOW + 10) * 1000, (NOW + 30) * 1000)),
        (2, ("gate-b", "gate-c"), ((NOW + 20) * 1000, (NOW + 20) * 1000)),
        (3, ("gate-a", "gate-c"), ((NOW + 12) * 1000, (NOW + 200) * 1000)),
    ]
    # ticket 3 (re-entry): in at a, out at b, back in at d, so c's entry at +200 was a
    # duplicate while inside, then out at d
    assert merged.presence == {1: Presence.INSIDE, 2: Presence.INSIDE, 3: Presence.OUTSIDE,
                               4: Presence.INSIDE}
    assert merged.stray_exits == ()
    assert merged.conflicts == ()
    assert len(merged.entries) == 11


def test_merge_is_idempotent_and_independent_of_upload_order():
    logs = four_scanner_logs()
    once = merge_admission_logs(logs)

    # a scanner re-uploads (a retry after a timeout), in another order, and the merged log
    # itself is merged again with one more upload
    again = merge_admission_logs([logs[2], logs[0], logs[3], logs[1], logs[0], logs[2]])
    shuffled = [list(reversed(log)) for log in logs]
    random.Random(4).shuffle(shuffled)
    reordered = merge_admission_logs(shuffled)
    remerged = merge_admission_logs([once.entries, logs[3]])

    for other in (again, reordered, remerged):
        assert other == once


def test_a_reused_nonce_with_different_content_is_reported_and_resolved_deterministically():
    a = entry(1, "gate-a", 1, NOW + 10)
    b = entry(1, "gate-b", 2, NOW + 5)  # same nonce, different scan: a broken scanner

    merged = merge_admission_logs([[a], [b]])
    flipped = merge_admission_logs([[b], [a]])

    assert merged == flipped
    assert [(c.kept, c.dropped) for c in merged.conflicts] == [(b, (a,))]
    assert merged.entries == (b,)


def test_an_exit_without_an_entry_is_listed_and_admits_nobody():
    stray = entry(1, "gate-a", 9, NOW, direction="exit", policy=EntryPolicy.REENTRY)

    merged = merge_admission_logs([[stray]])

    assert merged.stray_exits == (stray,)
    assert merged.admissions == ()
    assert merged.presence == {}


def test_ties_on_time_break_by_scanner_then_nonce():
    late_name = entry(1, "gate-z", 5, NOW)
    early_name = entry(2, "gate-a", 5, NOW)

    merged = merge_admission_logs([[late_name], [early_name]])

    assert merged.first_admissions[5] == early_name
    assert merged.duplicates[0].refused == (late_name,)


def test_scanner_log_round_trips_through_its_json_upload():
    # given a scanner that admitted two fans
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID)
    for ticket, device in ((1001, "p1"), (1002, "p2")):
        result = scan(wallet(ticket_id=ticket, device=device).code(), log=log)
        log.record(result, at_unix=NOW + 0.25)

    # when it uploads as JSON and the server parses it
    upload = json.loads(json.dumps(log.to_upload()))
    parsed = AdmissionLog.from_upload(upload)

    # then nothing is lost
    assert upload["format"] == "smarttickets.admissions/1"
    assert upload["entries"][0] == {
        "nonce": log.entries[0].nonce, "scanner": "north-1", "ticket": 1001, "serial": 1,
        "direction": "entry", "at_ms": (NOW * 1000) + 250, "policy": "single",
        "tier": "device"}
    assert parsed.entries == log.entries
    assert parsed.presence(1001) == Presence.INSIDE
    assert parsed.presence(9999) == Presence.NEVER
    assert len({e.nonce for e in log}) == 2


@pytest.mark.parametrize(("change", "message"), [
    (lambda u: u.update(format="x"), "format: must be smarttickets.admissions/1"),
    (lambda u: u.update(scanner_id=""), "scanner_id: must be 1-64"),
    (lambda u: u.update(event_id="42"), "event_id: must be an event id"),
    (lambda u: u.update(entries={}), "entries: must be a list"),
    (lambda u: u["entries"][1].update(nonce="XYZ"), r"entries\[1\]\.nonce: must be 32"),
    (lambda u: u["entries"][0].update(ticket=-1), r"entries\[0\]\.ticket: must be a ticket"),
    (lambda u: u["entries"][0].update(serial=0), r"entries\[0\]\.serial: must be a serial"),
    (lambda u: u["entries"][1].update(direction="in"), r"entries\[1\]\.direction"),
    (lambda u: u["entries"][0].update(at_ms=1.5), r"entries\[0\]\.at_ms"),
    (lambda u: u["entries"][0].update(policy="twice"), r"entries\[0\]\.policy"),
    (lambda u: u["entries"][0].update(tier="paper"), r"entries\[0\]\.tier"),
    (lambda u: u["entries"].append("x"), r"entries\[2\]: not an object"),
])
def test_a_bad_upload_names_the_field(change, message):
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID,
                       entries=[entry(1, "north-1", 1, NOW), entry(2, "north-1", 2, NOW)])
    upload = log.to_upload()
    change(upload)

    with pytest.raises(UploadFormatError, match=message):
        AdmissionLog.from_upload(upload)


def test_absorbing_other_scanners_admissions_blocks_a_second_entry():
    # given scanner B learns (through the server) what scanner A admitted
    fan = wallet(ticket_id=1001)
    a = AdmissionLog(scanner_id="gate-a", event_id=EVENT_ID)
    a.record(scan(fan.code(), log=a), at_unix=NOW)
    b = AdmissionLog(scanner_id="gate-b", event_id=EVENT_ID)

    added = b.absorb(a.entries)
    added_again = b.absorb(a.entries)

    # then B refuses the same ticket and the absorbed entry is kept once
    assert (added, added_again) == (1, 0)
    assert scan(fan.code(NOW + 30), clock=NOW + 30, log=b).reason_code == "already_admitted"
    assert len(b) == 1


def test_only_accepted_scans_are_recorded_and_nonces_are_unique():
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID)
    refused = scan("nonsense", log=log)
    fan = wallet()
    ok = scan(fan.code(), log=log)
    log.record(ok, at_unix=NOW, nonce="a" * 32)

    with pytest.raises(ValueError, match="only an accepted scan"):
        log.record(refused, at_unix=NOW)
    with pytest.raises(ValueError, match="nonce already used"):
        log.record(ok, at_unix=NOW + 1, nonce="a" * 32)
    assert len(log) == 1
