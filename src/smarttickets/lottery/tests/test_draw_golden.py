"""Golden vectors: fixed inputs give the committed result documents byte for byte, and the small
ones agree with an independent, deliberately naive computation written from the spec page."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from smarttickets.lottery import draw

GOLDEN = Path(__file__).parent / "golden"
SEED = bytes(range(32))
CASES = {
    "small": ("golden-small", 4, {"source": "hk-mark-six", "draw": "24/123"},
              b"3 12 25 33 41 47 + 9", "2025-03-01T12:00:00Z"),
    "small-nobeacon": ("golden-small-nobeacon", 3, None, b"", "2025-03-01T12:00:00Z"),
    "g1000": ("golden-1000", 250, {"source": "drand-quicknet", "round": 1000},
              bytes.fromhex("fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd"),
              "2023-08-23T15:00:00Z"),
}


# --- an independent implementation, one line of the spec at a time --------------------------

def spec_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + spec_mth(leaves[:k]) + spec_mth(leaves[k:])).digest()


def spec_draw(entries: list[dict], lottery_id: str, capacity: int, beacon, beacon_value: bytes,
              published_at: str, seed: bytes) -> dict:
    entries = sorted(entries, key=lambda e: e["entry_id"])
    leaves = [f"v1|{lottery_id}|{e['entry_id']}|{e['weight']}|{e['seats']}".encode()
              for e in entries]
    commitment = {
        "algorithm": "smarttickets-lottery-v1", "lottery_id": lottery_id, "capacity": capacity,
        "n_entries": len(entries), "entries_root": spec_mth(leaves).hex(),
        "seed_commitment": hashlib.sha256(seed).hexdigest(), "beacon": beacon,
        "published_at": published_at,
    }
    canonical = json.dumps(commitment, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode()
    prk = hmac.new(hashlib.sha256(canonical).digest(), seed + beacon_value, "sha256").digest()

    def key(e):
        return min(int.from_bytes(hmac.new(prk, bytes.fromhex(e["entry_id"]) + j.to_bytes(2, "big")
                                           + b"\x01", "sha256").digest(), "big")
                   for j in range(e["weight"]))

    order = sorted(entries, key=lambda e: (key(e), e["entry_id"]))
    remaining, winners, waitlist = capacity, [], []
    for e in order:
        if remaining and e["seats"] <= remaining:
            winners.append(e["entry_id"])
            remaining -= e["seats"]
        else:
            waitlist.append(e["entry_id"])
    return {"commitment": commitment, "commitment_hash": hashlib.sha256(canonical).hexdigest(),
            "seed_secret": seed.hex(), "beacon_value": beacon_value.hex(), "prk": prk.hex(),
            "winners": winners, "waitlist": waitlist}


# --- tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_draw_file_reproduces_the_golden_result_byte_for_byte(name, tmp_path):
    # given the committed entries file and fixed inputs
    lottery_id, capacity, beacon, value, published_at = CASES[name]
    out = tmp_path / "result.json"

    # when drawn
    draw.draw_file(entries_path=GOLDEN / f"{name}.entries.json", lottery_id=lottery_id,
                   capacity=capacity, seed_secret=SEED, published_at=published_at,
                   beacon=beacon, beacon_value=value, out_path=out)

    # then the bytes equal the golden document
    assert out.read_bytes() == (GOLDEN / f"{name}.result.json").read_bytes()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_result_matches_the_independent_spec_computation(name):
    lottery_id, capacity, beacon, value, published_at = CASES[name]
    entries = json.loads((GOLDEN / f"{name}.entries.json").read_text())

    expected = spec_draw(entries, lottery_id, capacity, beacon, value, published_at, SEED)

    golden = json.loads((GOLDEN / f"{name}.result.json").read_text())
    assert golden == expected
    # the published bytes are the same canonical JSON as the commitment's, plus a newline
    assert (GOLDEN / f"{name}.result.json").read_bytes() == json.dumps(
        expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def test_small_vector_step_by_step():
    # Each intermediate value of the "small" vector, written out so it can be checked by hand
    # with sha256sum / openssl (see docs/lottery.md).
    entries = draw.load_entries(GOLDEN / "small.entries.json")

    leaves = [draw.leaf_bytes("golden-small", e, w, s)
              for e, w, s in zip(entries.entry_ids, entries.weights, entries.seats, strict=True)]
    assert leaves[0] == b"v1|golden-small|00000000000000000000000000000001|1|2"
    assert leaves[3] == b"v1|golden-small|aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|3|1"
    # MTH of 5 leaves: k = 4, so H(0x01 || MTH(l0..l3) || MTH(l4)) with MTH(l4) = H(0x00 || l4)
    h = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    left = hashlib.sha256(b"\x01" + hashlib.sha256(b"\x01" + h[0] + h[1]).digest()
                          + hashlib.sha256(b"\x01" + h[2] + h[3]).digest()).digest()
    root = hashlib.sha256(b"\x01" + left + h[4]).hexdigest()
    assert root == "5e29ff31313bfb56903201c3ea298842118635808c04ff337ef0202003f1347b"
    assert draw.entries_root("golden-small", entries) == root

    commitment = draw.make_commitment(
        lottery_id="golden-small", capacity=4, entries=entries,
        seed_commitment=draw.seed_commitment(SEED),
        beacon={"source": "hk-mark-six", "draw": "24/123"}, published_at="2025-03-01T12:00:00Z")
    assert draw.canonical_bytes(commitment) == (
        b'{"algorithm":"smarttickets-lottery-v1","beacon":{"draw":"24/123","source":"hk-mark-six"},'
        b'"capacity":4,"entries_root":"5e29ff31313bfb56903201c3ea298842118635808c04ff337ef0202003f1347b",'
        b'"lottery_id":"golden-small","n_entries":5,"published_at":"2025-03-01T12:00:00Z",'
        b'"seed_commitment":"630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"}')
    assert draw.seed_commitment(SEED) == hashlib.sha256(SEED).hexdigest()

    prk = draw.compute_prk(commitment, SEED, b"3 12 25 33 41 47 + 9")
    assert prk.hex() == "226aaa9814f4e8b0ff1dbbf47e5e2fb7d50b624facbab2e8ae264b38e3744191"

    order = [entries.entry_ids[i] for i in draw.draw_order(prk, entries)]
    assert order == ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "00000000000000000000000000000001",
                     "ffffffffffffffffffffffffffffffff", "0123456789abcdef0123456789abcdef",
                     "11111111111111111111111111111111"]
    # capacity 4: aaaa takes 1 (3 left), 0001 takes 2 (1 left), ffff wants 2 so it waits,
    # 0123 takes the last seat, and 1111 comes after the seats ran out.
    winners, waitlist = draw.allocate(draw.draw_order(prk, entries), entries.seats, 4)
    assert [entries.entry_ids[i] for i in winners] == [order[0], order[1], order[3]]
    assert [entries.entry_ids[i] for i in waitlist] == [order[2], order[4]]


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_results_verify(name):
    summary = draw.verify_files(GOLDEN / f"{name}.result.json", GOLDEN / f"{name}.entries.json")

    golden = json.loads((GOLDEN / f"{name}.result.json").read_text())
    assert summary["winners"] == len(golden["winners"])
    assert summary["waitlist"] == len(golden["waitlist"])
    assert summary["seats_won"] <= golden["commitment"]["capacity"]
