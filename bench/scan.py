"""Benchmark: offline ticket-scan verifications per second on one core, and the online scan API.

Usage: .venv/bin/python bench/scan.py [--seconds 3] [--tickets 2000]

Every scanned code is a different ticket with its own device key, at the scanner's current time
step, against a key set with a rotated-out key, a revocation list and an admission log that
already holds thousands of other tickets, so each scan runs every check including both
signatures. The process is pinned to one CPU and rates are per CPU second, so other work on a
shared machine does not lower them (the wall-clock rate is shown beside). The last line is the
machine-readable result.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable

from smarttickets.tickets.codes import (
    check_device_signature,
    make_code,
    new_device_key,
    parse_code,
    step_at,
)
from smarttickets.tickets.credential import (
    Credential,
    EntryPolicy,
    check_issuer_signature,
    holder_hint,
)
from smarttickets.tickets.keys import Keyring
from smarttickets.tickets.offline import (
    AdmissionEntry,
    AdmissionLog,
    Direction,
    RevocationList,
    Tier,
    verify_scan,
)

EVENT_ID = 4242
PERFORMANCE_ID = 98765
GATE = "NORTH"
NAMES = ["Chan Tai Man", "陳大文", "Wong Ka Yan Christina", "Li Na", "Lee Siu Lung"]


def pin_to_one_core() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def make_codes(n: int, now: float) -> tuple[list[str], Keyring, RevocationList, AdmissionLog]:
    ring = Keyring.generate().rotate()  # the old key stays in the set, as after a rotation
    step = step_at(now)
    codes = []
    for i in range(n):
        device, public = new_device_key()
        cred = Credential(kid=0, ticket_id=1_000_000 + i, event_id=EVENT_ID,
                          performance_id=PERFORMANCE_ID, serial=1 + i % 3,
                          not_before=int(now) - 3600, not_after=int(now) + 5 * 3600,
                          gate_group=GATE, holder_hint=holder_hint(NAMES[i % len(NAMES)]),
                          entry_policy=EntryPolicy.REENTRY if i % 4 == 0 else EntryPolicy.SINGLE,
                          device_public_key=public)
        signed = ring.issue(cred)
        codes.append(make_code(signed.data, signed.signature, device, step))
    # A realistic night: some transfers and cancellations of other tickets, thousands admitted.
    revocations = RevocationList(min_serial={2_000_000 + i: 2 for i in range(5000)},
                                 revoked=frozenset(range(3_000_000, 3_001_000)))
    log = AdmissionLog(scanner_id="bench-1", event_id=EVENT_ID, entries=[
        AdmissionEntry(nonce=f"{i:032x}", scanner_id="bench-0", ticket_id=4_000_000 + i,
                       serial=1, direction=Direction.ENTRY, at_ms=int(now * 1000) - i,
                       entry_policy=EntryPolicy.SINGLE, tier=Tier.DEVICE)
        for i in range(20_000)])
    return codes, ring, revocations, log


def measure(label: str, fn: Callable[[str], object], codes: list[str],
            seconds: float) -> tuple[str, int, float, float]:
    """Run ``fn`` over the codes for about ``seconds`` of CPU time; return the rate per CPU
    second (the capacity of one core) and per wall second (lower when others share the core)."""
    count = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.process_time() - cpu0 < seconds:
        for code in codes:
            fn(code)
        count += len(codes)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return label, count, count / cpu, count / wall


def bench_offline(seconds: float,
                  tickets: int) -> tuple[list[tuple[str, int, float, float]], float]:
    now = time.time()
    codes, ring, revocations, log = make_codes(tickets, now)
    keyset = ring.keyset()
    parsed = [parse_code(c) for c in codes]
    issuer = keyset.get(ring.current.kid)
    by_code = dict(zip(codes, parsed, strict=True))

    def full(code: str) -> object:
        result = verify_scan(code, keyset=keyset, revocations=revocations,
                             scanner_clock_unix=now, event_id=EVENT_ID, gate_group=GATE,
                             performance_id=PERFORMANCE_ID, admitted_lookup=log.presence)
        if not result.ok:
            raise SystemExit(f"benchmark code refused: {result.reason_code}")
        return result

    def issuer_only(code: str) -> bool:
        p = by_code[code]
        return check_issuer_signature(p.credential_bytes, p.issuer_signature, issuer)

    def device_only(code: str) -> bool:
        p = by_code[code]
        return check_device_signature(p.credential.device_public_key, p.credential_bytes,
                                      p.step, p.device_signature)

    share = seconds / 4
    rows = [
        measure("parse (base45 + layout)", parse_code, codes, share),
        measure("issuer Ed25519 verify", issuer_only, codes, share),
        measure("device ECDSA P-256 verify", device_only, codes, share),
        measure("verify_scan, all checks", full, codes, seconds),
    ]
    return rows, rows[-1][2]


def bench_api(seconds: float) -> float | None:
    """Online scan API throughput. PENDING: the server scan endpoint does not exist yet.

    To fill in: start `smarttickets runserver` (or gunicorn) on a free loopback port with a
    seeded event, log in a scanner, and POST codes from make_codes() to the scan endpoint for
    `seconds` from a bounded pool of clients; return accepted scans per second.
    """
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tickets", type=int, default=2000)
    args = parser.parse_args(argv)

    cpu = pin_to_one_core()
    print(f"offline scan benchmark: {args.tickets} distinct tickets, "
          f"pinned to CPU {cpu if cpu is not None else '(not pinned)'}, one process")
    rows, scans_per_s = bench_offline(args.seconds, args.tickets)
    print(f"{'check':<28} {'ops':>7} {'per CPU s':>10} {'µs/op':>7} {'per wall s':>11}")
    for label, count, per_cpu_s, per_wall_s in rows:
        print(f"{label:<28} {count:>7} {per_cpu_s:>10.0f} {1e6 / per_cpu_s:>7.1f} "
              f"{per_wall_s:>11.0f}")

    api = bench_api(args.seconds)
    if api is None:
        print("api: PENDING - the online scan API does not exist yet; bench_api() in "
              "bench/scan.py is the place to measure it")
        api = math.nan
    api_text = "nan" if math.isnan(api) else f"{api:.0f}"
    print(f"RESULT scans_per_s_per_core={scans_per_s:.0f} api_scans_per_s={api_text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
