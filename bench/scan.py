"""Benchmark: offline ticket-scan verifications per second on one core, and the online scan API.

Usage: .venv/bin/python bench/scan.py [--seconds 3] [--tickets 2000] [--no-api]

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
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed_api(n_fans: int) -> tuple[int, str, list[str]]:
    """A show starting in an hour, ``n_fans`` × 4 tickets on registered phones, a gate
    staff API token; returns (performance id, token, one live code per ticket)."""
    import django

    django.setup()
    from datetime import timedelta

    from django.core.management import call_command

    from smarttickets.accounts.api_auth import create_api_token
    from smarttickets.accounts.models import User
    from smarttickets.booking import services as booking
    from smarttickets.booking.tests.factories import ga_performance
    from smarttickets.core import clock
    from smarttickets.events.models import Membership, Performance
    from smarttickets.tickets import services as ticket_services
    from smarttickets.tickets.models import IssuedCredential

    call_command("migrate", verbosity=0)

    def _user(email: str):
        # Verified, without a usable password: hashing one would dominate the set-up.
        now = clock.now()
        return User.objects.create_user(email=email, password=None, legal_name="Chan Tai Man",
                                        phone=f"+85291{User.objects.count():06d}",
                                        email_verified_at=now, phone_verified_at=now)

    performance, zone = ga_performance(capacity=n_fans * 4, per_person_limit=4)
    staff = _user("bench-gate@example.com")
    Membership.objects.create(organizer=performance.event.organizer, user=staff,
                              can_scan_tickets=True)
    _, token = create_api_token(user=staff, name="bench")
    phones = []
    now = clock.now()
    for i in range(n_fans):
        fan = _user(f"bench-fan{i}@example.com")
        hold = booking.create_hold(user=fan, performance=performance, now=now,
                                   selection=booking.Selection(zone_id=zone.pk, quantity=4))
        order = booking.place_order(hold=hold, buyer=fan, holder_names=[], now=now)
        booking.mark_order_paid(order_id=order.pk, provider="sandbox", payment_reference="b",
                                amount_minor=int(order.total * 100), currency="HKD",
                                card_fingerprint="", now=now)
        phones.append(fan)
    Performance.objects.filter(pk=performance.pk).update(starts_at=now + timedelta(hours=1))
    keys_by_user = {}
    for fan in phones:
        private_key, public = new_device_key()
        ticket_services.register_device(user=fan, public_key=public, label="bench",
                                        password=None, now=clock.now())
        keys_by_user[fan.pk] = private_key
    step = step_at(time.time())
    codes = [make_code(bytes(c.data), bytes(c.signature),
                       keys_by_user[c.ticket.order.buyer_id], step)
             for c in IssuedCredential.objects.select_related("ticket__order")]
    return performance.pk, token, codes


def bench_api(seconds: float, fans: int = 150, clients: int = 4) -> float | None:
    """Online scan API throughput: gunicorn (gunicorn.conf.py, SQLite in a temporary var dir)
    on a loopback port; ``clients`` threads POST distinct live codes until ``seconds`` pass
    or the codes run out. Returns accepted scans per wall-clock second."""
    import concurrent.futures
    import logging
    import subprocess
    import tempfile

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="st-bench-") as var:
        env = {**os.environ, "SMARTTICKETS_VAR_DIR": var, "DJANGO_SETTINGS_MODULE":
               "smarttickets.settings", "AXES_ENABLED": "false", "DEBUG": "false",
               "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
        env.pop("DATABASE_URL", None)
        os.environ.update({k: env[k] for k in ("SMARTTICKETS_VAR_DIR", "EMAIL_BACKEND",
                                               "DJANGO_SETTINGS_MODULE", "AXES_ENABLED")})
        os.environ.pop("DATABASE_URL", None)
        performance_id, token, codes = _seed_api(fans)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(root / "gunicorn.conf.py"),
             "smarttickets.wsgi"], cwd=root, stdout=subprocess.DEVNULL,
            env={**env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2",
                 "GUNICORN_THREADS": "4"})
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            headers = {"Authorization": f"Bearer {token}"}
            deadline = time.perf_counter() + seconds
            queue = iter(codes)
            lock = threading.Lock()
            accepted = [0]
            refused: dict[str, int] = {}

            def worker() -> None:
                with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
                    while time.perf_counter() < deadline:
                        with lock:
                            code = next(queue, None)
                        if code is None:
                            return
                        answer = http.post("/api/tickets/scan", json={
                            "code": code, "performance_id": performance_id,
                            "nonce": secrets.token_hex(16), "scanner_id": "bench"}).json()
                        with lock:
                            if answer.get("ok"):
                                accepted[0] += 1
                            else:
                                refused[answer.get("reason_code") or answer.get("code")] = \
                                    refused.get(answer.get("reason_code") or answer.get("code"), 0) + 1

            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                for future in [pool.submit(worker) for _ in range(clients)]:
                    future.result()
            elapsed = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=10)
    if refused:
        print(f"api: refused {refused}")
    print(f"api: {accepted[0]} accepted scans of {len(codes)} codes in {elapsed:.1f} s "
          f"(gunicorn 2 workers × 4 threads, SQLite, {clients} clients, loopback)")
    return accepted[0] / elapsed if elapsed else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--no-api", action="store_true", help="skip the online API part")
    args = parser.parse_args(argv)

    cpu = pin_to_one_core()
    print(f"offline scan benchmark: {args.tickets} distinct tickets, "
          f"pinned to CPU {cpu if cpu is not None else '(not pinned)'}, one process")
    rows, scans_per_s = bench_offline(args.seconds, args.tickets)
    print(f"{'check':<28} {'ops':>7} {'per CPU s':>10} {'µs/op':>7} {'per wall s':>11}")
    for label, count, per_cpu_s, per_wall_s in rows:
        print(f"{label:<28} {count:>7} {per_cpu_s:>10.0f} {1e6 / per_cpu_s:>7.1f} "
              f"{per_wall_s:>11.0f}")

    if cpu is not None:  # the server and its clients get the whole machine
        os.sched_setaffinity(0, os.sched_getaffinity(os.getppid()) or {cpu})
    api = bench_api(args.seconds) if not args.no_api else None
    if api is None:
        print("api: not measured")
        api = math.nan
    api_text = "nan" if math.isnan(api) else f"{api:.0f}"
    print(f"RESULT scans_per_s_per_core={scans_per_s:.0f} api_scans_per_s={api_text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
