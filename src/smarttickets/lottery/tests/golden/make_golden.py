"""Regenerate the golden draw vectors (run by hand only when the format changes on purpose).

    python src/smarttickets/lottery/tests/golden/make_golden.py

The tests compare the committed files byte for byte with what draw.py produces, and check the
small vectors step by step against an independent computation written from the spec.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the lottery package: draw.py is standalone
import draw  # noqa: E402

SEED = bytes(range(32))

SMALL_ENTRIES = [
    {"entry_id": "00000000000000000000000000000001", "weight": 1, "seats": 2},
    {"entry_id": "0123456789abcdef0123456789abcdef", "weight": 2, "seats": 1},
    {"entry_id": "11111111111111111111111111111111", "weight": 1, "seats": 3},
    {"entry_id": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "weight": 3, "seats": 1},
    {"entry_id": "ffffffffffffffffffffffffffffffff", "weight": 1, "seats": 2},
]


def g1000_entries() -> list[dict]:
    out = []
    for i in range(1000):
        entry_id = hashlib.sha256(f"golden-1000/{i}".encode()).hexdigest()[:32]
        weight = 3 if i % 25 == 0 else 2 if i % 10 == 0 else 1
        out.append({"entry_id": entry_id, "weight": weight, "seats": 1 + i % 4})
    return out


CASES = {
    # name: (entries, lottery_id, capacity, beacon, beacon value, published_at)
    "small": (SMALL_ENTRIES, "golden-small", 4, {"source": "hk-mark-six", "draw": "24/123"},
              b"3 12 25 33 41 47 + 9", "2025-03-01T12:00:00Z"),
    "small-nobeacon": (SMALL_ENTRIES, "golden-small-nobeacon", 3, None, b"",
                       "2025-03-01T12:00:00Z"),
    # Beacon: drand quicknet round 1000 (recorded; see drand_quicknet_rounds.json), named
    # an hour before it was emitted.
    "g1000": (g1000_entries(), "golden-1000", 250, {"source": "drand-quicknet", "round": 1000},
              bytes.fromhex("fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd"),
              "2023-08-23T15:00:00Z"),
}


def main() -> None:
    for name, (objects, lottery_id, capacity, beacon, value, published_at) in CASES.items():
        entries_path = HERE / f"{name}.entries.json"
        entries = draw.entries_from_objects(objects)
        entries_path.write_bytes(draw.dump_entries(entries))
        result = draw.draw_file(entries_path=entries_path, lottery_id=lottery_id,
                                capacity=capacity, seed_secret=SEED, published_at=published_at,
                                beacon=beacon, beacon_value=value,
                                out_path=HERE / f"{name}.result.json")
        print(name, result["commitment_hash"], len(result["winners"]), "winners")


if __name__ == "__main__":
    main()
