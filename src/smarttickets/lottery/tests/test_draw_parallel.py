"""Large draws split their Merkle and key stages over forked processes; the result must be the
same bytes as the single-process draw, whatever the number of processes, and a helper that dies
must not change it either."""

from __future__ import annotations

import hashlib
import os
import random

import pytest

from smarttickets.lottery import draw

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the parallel draw needs fork()")

PRK = hashlib.sha256(b"parallel").digest()


@pytest.fixture(scope="module")
def entries() -> draw.Entries:
    rnd = random.Random(7)
    # Not a multiple of BLOCK, with weights above 1 (the slow path) and tied ids impossible.
    n = 2 * draw.BLOCK + 12_345
    return draw.entries_from_objects(
        {"entry_id": rnd.randbytes(16).hex(), "weight": rnd.choice((1, 1, 1, 2, 5)),
         "seats": rnd.choice((1, 2, 4))} for _ in range(n))


def serial(monkeypatch: pytest.MonkeyPatch, fn):
    with monkeypatch.context() as m:
        m.setattr(draw, "workers_for", lambda n: 1)
        return fn()


@pytest.mark.parametrize("processes", [2, 3, 5])
def test_parallel_stages_equal_the_serial_ones(monkeypatch, entries, processes):
    root = serial(monkeypatch, lambda: draw.entries_root("lot", entries))
    order = serial(monkeypatch, lambda: draw.draw_order(PRK, entries))
    # The serial order really is the spec's: sorted by (key, entry_id).
    keys = draw.entry_keys(PRK, entries)
    assert order == sorted(range(len(entries)), key=lambda i: (keys[i], entries.entry_ids[i]))
    monkeypatch.setattr(draw, "workers_for", lambda n: processes)
    assert draw.entries_root("lot", entries) == root
    assert draw.draw_order(PRK, entries) == order


def test_progress_is_reported_once_per_stage_and_reaches_the_end(monkeypatch, entries):
    monkeypatch.setattr(draw, "workers_for", lambda n: 2)
    seen: dict[str, list[int]] = {}
    parent = os.getpid()

    def progress(stage: str, done: int, total: int) -> None:
        assert os.getpid() == parent, "a helper process reported progress"
        seen.setdefault(stage, []).append(done)

    draw.entries_root("lot", entries, progress=progress)
    draw.draw_order(PRK, entries, progress=progress)
    for stage in ("merkle", "keys", "sort"):
        assert seen[stage] == sorted(seen[stage])
        assert seen[stage][-1] == len(entries)


def test_a_helper_that_fails_is_redone_in_the_main_process():
    parent = os.getpid()

    def work(a: int, b: int) -> bytes:
        if os.getpid() != parent and a >= 20:
            raise RuntimeError("helper dies")
        return b"".join(i.to_bytes(2, "big") for i in range(a, b))

    ranges = draw._split(40, 4)
    assert ranges == [(0, 10), (10, 20), (20, 30), (30, 40)]
    assert b"".join(draw._fork_map(work, ranges)) == b"".join(
        i.to_bytes(2, "big") for i in range(40))


def test_split_keeps_cuts_on_the_alignment():
    assert draw._split(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert draw._split(5 * 64 + 3, 2, 64) == [(0, 192), (192, 323)]
    assert draw._split(3, 8) == [(0, 1), (1, 2), (2, 3)]
    assert draw._split(0, 2) == []


def test_small_draws_stay_in_one_process():
    assert draw.workers_for(draw.PARALLEL_MIN - 1) == 1
    assert draw.workers_for(10 * draw.PARALLEL_MIN) >= 1
