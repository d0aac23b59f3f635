"""`smarttickets lottery draw-file | verify | key`: round trips and clear errors on bad input."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from smarttickets.lottery import signing

GOLDEN = Path(__file__).parent / "golden"
SEED_HEX = bytes(range(32)).hex()
ROUNDS = json.loads((GOLDEN / "drand_quicknet_rounds.json").read_text())["rounds"]
ROUND_1000 = json.dumps(next(r for r in ROUNDS if r["round"] == 1000))
ROUND_657413 = json.dumps(next(r for r in ROUNDS if r["round"] == 657413))


@pytest.fixture(autouse=True)
def _signing_key_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.LOTTERY_SIGNING_KEY_PATH = None
    settings.LOTTERY_RETIRED_PUBLIC_KEYS = []
    signing._cache.clear()
    yield
    signing._cache.clear()


def lottery(*args: str) -> str:
    out = StringIO()
    call_command("lottery", *args, stdout=out)
    return out.getvalue()


def small_draw_args(out: Path, *extra: str) -> list[str]:
    return ["draw-file", "--entries", str(GOLDEN / "small.entries.json"),
            "--lottery-id", "golden-small", "--capacity", "4", "--seed-secret", SEED_HEX,
            "--published-at", "2025-03-01T12:00:00Z", "--out", str(out), "--no-progress",
            "--beacon-json", '{"source": "hk-mark-six", "draw": "24/123"}', *extra]


def test_draw_file_writes_the_golden_result_and_verify_accepts_it(tmp_path):
    out = tmp_path / "result.json"

    # the organizer types the outcome with extra spaces; it is normalised before use
    printed = lottery(*small_draw_args(out, "--beacon-text", " 3 12 25  33 41 47 + 9 "))

    assert out.read_bytes() == (GOLDEN / "small.result.json").read_bytes()
    assert "Drew 5 entries for golden-small: 3 winners, 2 waiting." in printed
    verified = lottery("verify", "--result", str(out), "--entries",
                       str(GOLDEN / "small.entries.json"), "--no-progress")
    assert verified.strip().startswith("OK smarttickets-lottery-v1 lottery=golden-small entries=5 "
                                       "winners=3 seats=4/4 waitlist=2")


def test_drand_beacon_is_checked_against_its_signed_round(tmp_path):
    out = tmp_path / "result.json"

    lottery("draw-file", "--entries", str(GOLDEN / "g1000.entries.json"), "--lottery-id",
            "golden-1000", "--capacity", "250", "--seed-secret", SEED_HEX,
            "--published-at", "2023-08-23T15:00:00Z", "--out", str(out), "--no-progress",
            "--beacon-json", '{"source": "drand-quicknet", "round": 1000}',
            "--drand-round", ROUND_1000)

    assert out.read_bytes() == (GOLDEN / "g1000.result.json").read_bytes()


def test_drand_round_for_another_round_is_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "result.json"

    with pytest.raises(CommandError, match="drand round 657413, but the commitment named round "
                                           "1000"):
        lottery("draw-file", "--entries", str(GOLDEN / "g1000.entries.json"), "--lottery-id",
                "golden-1000", "--capacity", "250", "--seed-secret", SEED_HEX,
                "--published-at", "2023-08-23T15:00:00Z", "--out", str(out), "--no-progress",
                "--beacon-json", '{"source": "drand-quicknet", "round": 1000}',
                "--drand-round", ROUND_657413)

    assert not out.exists()


def test_drand_round_already_public_at_publication_is_refused(tmp_path):
    out = tmp_path / "result.json"

    with pytest.raises(CommandError, match="already public"):
        lottery("draw-file", "--entries", str(GOLDEN / "g1000.entries.json"), "--lottery-id",
                "golden-1000", "--capacity", "250", "--seed-secret", SEED_HEX,
                "--published-at", "2024-01-01T00:00:00Z", "--out", str(out), "--no-progress",
                "--beacon-json", '{"source": "drand-quicknet", "round": 1000}',
                "--drand-round", ROUND_1000)

    assert not out.exists()


def test_drand_beacon_without_its_round_document_is_refused(tmp_path):
    with pytest.raises(CommandError, match="needs --drand-round"):
        lottery("draw-file", "--entries", str(GOLDEN / "g1000.entries.json"), "--lottery-id",
                "x", "--capacity", "5", "--seed-secret", SEED_HEX,
                "--published-at", "2023-08-23T15:00:00Z", "--out", str(tmp_path / "r.json"),
                "--beacon-json", '{"source": "drand-quicknet", "round": 1000}',
                "--beacon-value", "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd")


def test_bad_entry_names_the_file_entry_and_line(tmp_path):
    entries = tmp_path / "entries.json"
    entries.write_text('[\n{"entry_id":"00000000000000000000000000000001","seats":1,"weight":1},\n'
                       '{"entry_id":"00000000000000000000000000000002","seats":1,"weight":1},\n'
                       '{"entry_id":"00000000000000000000000000000003","seats":-2,"weight":1}\n]\n')
    out = tmp_path / "result.json"

    with pytest.raises(CommandError) as info:
        lottery("draw-file", "--entries", str(entries), "--lottery-id", "x", "--capacity", "2",
                "--seed-secret", SEED_HEX, "--published-at", "2025-01-01T00:00:00Z",
                "--out", str(out), "--no-progress")

    assert str(info.value) == (f"{entries}: entries[2] line 4: seats must be an integer of at "
                               "least 1, got -2")
    assert not out.exists()


@pytest.mark.parametrize(("change", "message"), [
    (("--seed-secret", "abc"), "--seed-secret must be hex"),
    (("--seed-secret", "00" * 31), "must be 32 bytes"),
    (("--seed-secret", "AB" * 32), "lowercase hex"),
    (("--published-at", "yesterday"), "published_at must be an ISO 8601 UTC timestamp"),
    (("--published-at", "2025-03-01T12:00:00+08:00"), "must be in UTC"),
    (("--capacity", "0"), "capacity must be an integer of at least 1"),
    (("--beacon-json", "{oops"), "--beacon-json is not valid JSON"),
    (("--beacon-json", '{"source": "hk-mark-six"}'), "beacon:"),
])
def test_bad_arguments_are_refused_and_nothing_is_written(tmp_path, change, message):
    out = tmp_path / "result.json"
    args = small_draw_args(out, "--beacon-text", "1 2 3")
    flag, value = change
    args[args.index(flag) + 1] = value

    with pytest.raises(CommandError, match=message):
        lottery(*args)

    assert not out.exists()


def test_beacon_value_without_a_beacon_is_refused(tmp_path):
    args = small_draw_args(tmp_path / "r.json")
    i = args.index("--beacon-json")
    del args[i:i + 2]
    with pytest.raises(CommandError, match="no --beacon-json names the beacon"):
        lottery(*args, "--beacon-value", "00")


def test_verify_names_the_failed_check(tmp_path):
    result = json.loads((GOLDEN / "small.result.json").read_text())
    result["waitlist"].reverse()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(result))

    with pytest.raises(CommandError, match=r"^FAILED check=waitlist: waitlist\[0\] is "):
        lottery("verify", "--result", str(tampered), "--entries",
                str(GOLDEN / "small.entries.json"), "--no-progress")


def test_verify_checks_the_drand_round_the_result_used(tmp_path):
    args = ["verify", "--result", str(GOLDEN / "g1000.result.json"), "--entries",
            str(GOLDEN / "g1000.entries.json"), "--no-progress"]

    assert "OK smarttickets-lottery-v1" in lottery(*args, "--drand-round", ROUND_1000)
    with pytest.raises(CommandError, match="drand round 657413"):
        lottery(*args, "--drand-round", ROUND_657413)


def test_signed_commitment_verifies_and_a_forged_one_does_not(tmp_path):
    out, sig = tmp_path / "result.json", tmp_path / "sig.json"
    lottery(*small_draw_args(out, "--beacon-text", "3 12 25 33 41 47 + 9",
                             "--signature-out", str(sig)))
    args = ["verify", "--result", str(out), "--entries", str(GOLDEN / "small.entries.json"),
            "--no-progress", "--signature"]

    printed = lottery(*args, str(sig))

    assert f"signature OK (kid {signing.platform_key().kid}" in printed
    forged = json.loads(sig.read_text()) | {"signature": "00" * 64}
    with pytest.raises(CommandError, match="FAILED check=signature"):
        lottery(*args, json.dumps(forged))


def test_key_shows_the_platform_key_and_generates_new_ones(tmp_path):
    shown = lottery("key")
    assert f"kid {signing.platform_key().kid}" in shown
    assert "-----BEGIN PUBLIC KEY-----" in shown

    made = lottery("key", "--generate", str(tmp_path / "next.pem"))
    assert "Wrote a new Ed25519 key" in made
    with pytest.raises(CommandError, match="already exists"):
        lottery("key", "--generate", str(tmp_path / "next.pem"))


def test_signing_without_a_usable_key_stops_before_anything_is_written(settings, tmp_path):
    settings.LOTTERY_SIGNING_KEY_PATH = str(tmp_path / "missing.pem")
    out, sig = tmp_path / "result.json", tmp_path / "sig.json"

    with pytest.raises(CommandError, match=r"signing key .* does not exist"):
        lottery(*small_draw_args(out, "--beacon-text", "1 2 3", "--signature-out", str(sig)))

    assert not out.exists()
    assert not sig.exists()


@pytest.mark.django_db
def test_tick_creates_the_lotteries_of_a_published_lottery_performance_and_reports():
    from smarttickets.lottery.models import Lottery
    from smarttickets.lottery.tests.app_helpers import lottery_performance

    performance, _seated, _standing = lottery_performance()
    assert not Lottery.objects.filter(performance=performance).exists()
    out = StringIO()
    call_command("lottery", "tick", stdout=out)
    assert out.getvalue().startswith("lottery tick: ")
    assert Lottery.objects.filter(performance=performance).count() == 2
