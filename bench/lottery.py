"""Benchmark the lottery draw kernel: draw and verify 1M entries, draw 10M within a memory cap.

    .venv/bin/python bench/lottery.py            # 1M and 10M (10M takes a few minutes)
    .venv/bin/python bench/lottery.py --skip-10m

Entries are generated deterministically (fixed PRNG seed: 95% weight 1, the rest weight 2 or 3;
1-4 seats) and written as the platform publishes them: canonical, sorted by entry_id. Every
timing runs in a fresh child process, which reports wall and CPU seconds and its peak RSS. The
last line is machine-readable:

    RESULT draw_1m_s=<…> verify_1m_s=<…> draw_10m_s=<…> peak_mb=<…>

The draw forks one helper process per core for its Merkle and key stages, so peak_mb is the
10M draw's peak memory of the whole process tree: the largest sampled sum of proportional set
sizes (copy-on-write pages shared with a helper are counted once), and never less than the main
process's own peak RSS. CPU seconds include the helpers': about twice the wall seconds on two
idle cores; much less means other work was competing for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

SRC = Path(__file__).resolve().parents[1] / "src"
SEED_SECRET = bytes(range(32))
PUBLISHED_AT = "2025-06-01T00:00:00Z"
CHUNK = 1 << 18


def generate(path: Path, n: int, *, seed: int = 2025, shuffled: bool = False) -> None:
    """Write n entries; deterministic for a given (n, seed)."""
    rnd = random.Random(seed)
    with tqdm(total=4, desc=f"generate {n:,}", unit="step", leave=False) as bar:
        raw = rnd.randbytes(16 * n).hex()
        ids = [raw[i:i + 32] for i in range(0, 32 * n, 32)]
        del raw
        bar.update()
        ids.sort()
        if shuffled:
            rnd.shuffle(ids)
        bar.update()
        draws = rnd.choices(range(100), k=n)
        weights = [1 if d < 95 else 2 + d % 2 for d in draws]
        seats = rnd.choices((1, 1, 2, 2, 2, 3, 4), k=n)
        del draws
        bar.update()
        fmt = '{{"entry_id":"{}","seats":{},"weight":{}}}'.format
        with path.open("w", encoding="utf-8") as fh:
            fh.write("[\n")
            for start in range(0, n, CHUNK):
                if start:
                    fh.write(",\n")
                fh.write(",\n".join(map(fmt, ids[start:start + CHUNK], seats[start:start + CHUNK],
                                        weights[start:start + CHUNK])))
            fh.write("\n]\n")
        bar.update()


CHILD = r"""
import json, os, resource, sys, threading, time
sys.path.insert(0, {src!r})
from smarttickets.lottery import draw
args = json.loads(sys.argv[1])

# The draw forks helper processes (one per core), so memory is the whole process tree's:
# the sum of proportional set sizes (shared copy-on-write pages counted once), sampled.
peak = {{"pss": 0}}
stop = threading.Event()

def pss_kb(pid):
    try:
        with open(f"/proc/{{pid}}/smaps_rollup") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0

def tree():
    pids = [os.getpid()]
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{{task}}/children") as fh:
                pids += [int(p) for p in fh.read().split()]
        except OSError:
            pass
    return pids

def sample():
    while not stop.wait(0.25):
        peak["pss"] = max(peak["pss"], sum(map(pss_kb, tree())))

sampler = threading.Thread(target=sample, daemon=True)
if os.path.exists("/proc/self/smaps_rollup"):
    sampler.start()
wall, cpu = time.perf_counter(), time.process_time()
if args["op"] == "draw":
    result = draw.draw_file(entries_path=args["entries"], lottery_id=args["lottery_id"],
                            capacity=args["capacity"], seed_secret=bytes.fromhex(args["seed"]),
                            published_at=args["published_at"], out_path=args["out"])
    detail = {{"winners": len(result["winners"]), "waitlist": len(result["waitlist"])}}
else:
    detail = draw.verify_files(args["result"], args["entries"])
wall = time.perf_counter() - wall
stop.set()
times = os.times()
self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"wall": wall, "cpu": time.process_time() - cpu + times.children_user
                  + times.children_system, "rss_mb": self_mb,
                  "peak_mb": max(peak["pss"] / 1024, self_mb),
                  "workers": draw.workers_for(detail.get("n_entries") or detail["winners"]
                                              + detail["waitlist"]),
                  "detail": detail}}))
"""


def calibrate() -> float:
    """Nanoseconds for one short SHA-256 here and now: shows how busy the shared machine is."""
    import hashlib
    import timeit

    return min(timeit.repeat(lambda: hashlib.sha256(b"x" * 48).digest(), number=20000,
                             repeat=5)) / 20000 * 1e9


def run_child(**args: object) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD.format(src=str(SRC)), json.dumps(args)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def draw_args(entries: Path, out: Path, n: int) -> dict:
    return {"op": "draw", "entries": str(entries), "out": str(out), "lottery_id": f"bench-{n}",
            "capacity": max(1, n // 20), "seed": SEED_SECRET.hex(), "published_at": PUBLISHED_AT}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n1", type=int, default=1_000_000, help="entries for the small case")
    parser.add_argument("--n10", type=int, default=10_000_000, help="entries for the large case")
    parser.add_argument("--skip-10m", action="store_true")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    args = parser.parse_args()

    tmp = None
    if args.workdir:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="lottery-bench-")
        workdir = Path(tmp.name)
    rows: list[tuple[str, dict]] = []
    before = calibrate()
    try:
        e1 = workdir / "entries-1m.json"
        generate(e1, args.n1)
        r1 = workdir / "result-1m.json"
        rows.append((f"draw {args.n1:,} (sorted file)", run_child(**draw_args(e1, r1, args.n1))))
        rows.append((f"verify {args.n1:,}",
                     run_child(op="verify", result=str(r1), entries=str(e1))))
        shuffled = workdir / "entries-1m-shuffled.json"
        generate(shuffled, args.n1, shuffled=True)
        rows.append((f"draw {args.n1:,} (unsorted file)",
                     run_child(**draw_args(shuffled, workdir / "r.json", args.n1))))
        shuffled.unlink()
        if not args.skip_10m:
            e10 = workdir / "entries-10m.json"
            generate(e10, args.n10)
            rows.append((f"draw {args.n10:,}",
                         run_child(**draw_args(e10, workdir / "result-10m.json", args.n10))))
            e10.unlink()
    finally:
        if tmp is not None:
            tmp.cleanup()

    load = os.getloadavg()[0]
    after = calibrate()
    print(f"\n{'case':<34}{'wall s':>9}{'cpu s':>9}{'peak MB':>10}{'procs':>7}   detail")
    for name, row in rows:
        print(f"{name:<34}{row['wall']:>9.2f}{row['cpu']:>9.2f}{row['peak_mb']:>10.0f}"
              f"{row['workers']:>7}   "
              f"{json.dumps(row['detail'])}")
    print(f"(load average at the end: {load:.1f} on {os.cpu_count()} cores; one SHA-256 of 48 "
          f"bytes took {before:.0f} ns before and {after:.0f} ns after; "
          f"{time.strftime('%Y-%m-%d %H:%M')})")
    by_name = dict(rows)
    d1 = by_name[f"draw {args.n1:,} (sorted file)"]
    v1 = by_name[f"verify {args.n1:,}"]
    d10 = by_name.get(f"draw {args.n10:,}")
    print(f"RESULT draw_1m_s={d1['wall']:.2f} verify_1m_s={v1['wall']:.2f} "
          f"draw_10m_s={d10['wall'] if d10 else float('nan'):.2f} "
          f"peak_mb={d10['peak_mb'] if d10 else float('nan'):.0f}")


if __name__ == "__main__":
    main()
