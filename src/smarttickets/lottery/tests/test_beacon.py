"""Beacons: recorded drand quicknet rounds verify, the wrong round or a forged one is refused,
public values normalise, and a beacon must not exist yet when the commitment is published."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smarttickets.lottery import beacon as beacons

ROUNDS = json.loads((Path(__file__).parent / "golden" / "drand_quicknet_rounds.json").read_text())


def recorded(number: int) -> dict:
    return next(r for r in ROUNDS["rounds"] if r["round"] == number)


def test_fixture_describes_the_chain_the_code_trusts():
    assert ROUNDS["chain"]["public_key"] == beacons.QUICKNET.public_key
    assert ROUNDS["chain"]["hash"] == beacons.QUICKNET.chain_hash
    assert ROUNDS["chain"]["genesis_time"] == beacons.QUICKNET.genesis_time


@pytest.mark.parametrize("number", [1000, 657413])
def test_recorded_quicknet_round_verifies_and_gives_its_randomness(number):
    doc = recorded(number)

    value = beacons.DrandBeacon(round=number).value(doc)

    assert value.hex() == doc["randomness"]


def test_round_for_another_round_is_refused_before_any_crypto():
    beacon = beacons.DrandBeacon(round=1001)

    with pytest.raises(beacons.BeaconWrongRound) as info:
        beacon.value(recorded(1000))

    assert info.value.code == "beacon_wrong_round"
    assert "round 1000" in str(info.value.message) and "round 1001" in str(info.value.message)


def test_signature_relabelled_as_another_round_does_not_verify():
    # round 1000's signature presented as round 1001 (randomness recomputed to match)
    doc = {**recorded(1000), "round": 1001}

    with pytest.raises(beacons.BeaconSignatureInvalid):
        beacons.DrandBeacon(round=1001).value(doc)


def test_another_rounds_signature_does_not_verify_for_this_round():
    doc = {"round": 1000, "signature": recorded(657413)["signature"]}

    with pytest.raises(beacons.BeaconSignatureInvalid):
        beacons.verify_drand_round(doc, expected_round=1000)


@pytest.mark.parametrize(("doc", "error"), [
    ({**recorded(1000), "randomness": "00" * 32}, beacons.BeaconSignatureInvalid),
    ({"round": 1000, "signature": "abcd"}, beacons.BeaconError),
    ({"round": 1000, "signature": "zz" * 48}, beacons.BeaconError),
    ({"round": 0, "signature": recorded(1000)["signature"]}, beacons.BeaconError),
    ({"round": "1000", "signature": recorded(1000)["signature"]}, beacons.BeaconError),
    (["not", "an", "object"], beacons.BeaconError),
    # 48 bytes that are not a point on the curve
    ({"round": 1000, "signature": "a0" + "00" * 47}, beacons.BeaconSignatureInvalid),
])
def test_malformed_round_documents_are_refused(doc, error):
    with pytest.raises(error):
        beacons.verify_drand_round(doc, expected_round=1000)


def test_quicknet_round_times():
    chain = beacons.QUICKNET
    assert chain.round_time(1) == datetime.fromtimestamp(1692803367, UTC)
    assert chain.round_time(1000) == datetime(2023, 8, 23, 15, 59, 24, tzinfo=UTC)
    assert chain.round_at(datetime(2023, 8, 23, 15, 59, 24, tzinfo=UTC)) == 1000
    assert chain.round_at(datetime(2023, 8, 23, 15, 59, 23, tzinfo=UTC)) == 999
    assert chain.round_at(datetime(2020, 1, 1, tzinfo=UTC)) == 0
    assert chain.first_round_after(datetime(2023, 8, 23, 15, 59, 24, tzinfo=UTC)) == 1001


def test_drand_round_must_not_exist_yet_when_the_commitment_is_published():
    beacon = beacons.DrandBeacon(round=1000)

    beacon.check_named_in_advance(datetime(2023, 8, 23, 15, 0, tzinfo=UTC))
    with pytest.raises(beacons.BeaconNotInFuture, match="at least 1001"):
        beacon.check_named_in_advance(datetime(2023, 8, 23, 15, 59, 24, tzinfo=UTC))


@pytest.mark.parametrize(("typed", "normalised"), [
    ("3 12 25 33 41 47 + 9", "3 12 25 33 41 47 + 9"),
    ("  3  12\t25\n33 41 47 +   9 ", "3 12 25 33 41 47 + 9"),
    ("３ １２ ２５", "3 12 25"),  # full-width digits, as an IME may type them
    ("Heads", "heads"),
])
def test_public_value_is_the_utf8_of_the_normalised_text(typed, normalised):
    beacon = beacons.PublicValueBeacon(source="hk-mark-six", draw="24/123")

    assert beacon.value(typed) == normalised.encode("utf-8")
    assert beacons.normalise_public_value(typed) == normalised


def test_public_value_beacon_refuses_an_empty_value_and_bad_names():
    beacon = beacons.PublicValueBeacon(source="hk-mark-six", draw="24/123")
    with pytest.raises(beacons.BeaconError):
        beacon.value("   ")
    with pytest.raises(beacons.BeaconError):
        beacons.PublicValueBeacon(source="HK Mark Six!", draw="24/123")
    with pytest.raises(beacons.BeaconError):
        beacons.PublicValueBeacon(source="hk-mark-six", draw=" ")


@pytest.mark.parametrize(("description", "kind"), [
    (None, beacons.NoBeacon),
    ({"source": "drand-quicknet", "round": 5}, beacons.DrandBeacon),
    ({"source": "hk-mark-six", "draw": "24/123"}, beacons.PublicValueBeacon),
])
def test_beacon_for_reads_the_commitment_object(description, kind):
    beacon = beacons.beacon_for(description)
    assert isinstance(beacon, kind)
    assert beacon.describe() == description


@pytest.mark.parametrize("description", [
    {"source": "drand-quicknet"},
    {"source": "drand-quicknet", "round": 5, "extra": 1},
    {"source": "drand-quicknet", "round": -1},
    {"source": "hk-mark-six"},
    {"round": 5},
    "drand",
])
def test_beacon_for_refuses_malformed_objects(description):
    with pytest.raises(beacons.BeaconError):
        beacons.beacon_for(description)


def test_no_beacon_takes_no_value():
    assert beacons.NoBeacon().value(None) == b""
    with pytest.raises(beacons.BeaconError):
        beacons.NoBeacon().value("something")
