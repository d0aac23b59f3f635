"""On-sale storm benchmark: fans and bots hitting one GA price zone until it is sold out.

    .venv/bin/python bench/onsale.py [--clients 16,64,256,512] [--repeat 3]

Starts the production server (``smarttickets-serve``: granian; ``--server gunicorn`` for
gunicorn.conf.py) with SMARTTICKETS_ENV=production on PostgreSQL (database
st_onsale, created and migrated if missing) with Redis db 7, then for each client count builds a
fresh performance with one GA zone (capacity 20,000 by default) and fires the storm from a
separate, cheap process (bench/onsale/loadgen.py): each client POSTs 2-ticket holds for many
distinct verified users with API tokens until the zone answers ``sold_out``. After each storm it
checks the database facts (live holds + tickets vs capacity, holds answered 201 vs hold rows)
and runs ``smarttickets booking reconcile``. Ends with one ``RESULT`` line.

Loopback only; every step is bounded in count and time; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DATABASE_URL = os.environ.get("ONSALE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/st_onsale")
REDIS_URL = os.environ.get("ONSALE_REDIS_URL", "redis://127.0.0.1:6379/7")
USER_DOMAIN = "bench-onsale.invalid"


def server_env(var_dir: Path, *, workers: int, threads: int, port: int,
               risk: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SMARTTICKETS_"))}
    env.update({
        "SMARTTICKETS_ENV": "production",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": f"http://127.0.0.1:{port}",
        # Production sits behind a TLS proxy; the storm sends X-Forwarded-Proto: https.
        "BEHIND_TLS_PROXY": "true",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SMARTTICKETS_VAR_DIR": str(var_dir),
        "STATIC_ROOT": str(var_dir / "static"),
        "LOG_LEVEL": "WARNING",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
        "WEB_THREADS": str(threads),
        "DJANGO_SETTINGS_MODULE": "smarttickets.settings",
        # The risk checkpoint and telemetry are measured apart (--risk on): they are risk's
        # cost, and the shipped model challenges thousands of identical brand-new accounts.
        # As deployed (docs/deploy.md): background work (graph refreshes after new ties,
        # emails) is queued for the task worker, not run inside the request.
        "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        "RISK_GATES_ENABLED": str(risk).lower(),
        "RISK_TELEMETRY_ENABLED": str(risk).lower(),
    })
    return env


def ensure_database(*, fresh: bool) -> None:
    """Create the benchmark's own database; ``fresh`` drops it first, so a half-applied
    migration from an earlier checkout cannot break the run."""
    import psycopg
    from psycopg import sql

    name = DATABASE_URL.rsplit("/", 1)[1].split("?")[0]
    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            print(f"creating database {name}", flush=True)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def seed_users(count: int) -> list[list[str]]:
    """``count`` verified buyers with fresh API tokens; [[token, device id], ...]."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from smarttickets.accounts.models import ApiToken, User

    now = timezone.now()
    have = User.objects.filter(email__endswith="@" + USER_DOMAIN).count()
    if have < count:
        User.objects.bulk_create([
            User(email=f"fan{i}@{USER_DOMAIN}", password=make_password(None),
                 legal_name=f"Bench Fan {i}", email_verified_at=now,
                 phone=f"+8529{i:07d}", phone_verified_at=now)
            for i in range(have, count)], batch_size=2000)
    users = list(User.objects.filter(email__endswith="@" + USER_DOMAIN)
                 .order_by("pk").values_list("pk", flat=True)[:count])
    keys = []
    with transaction.atomic():
        ApiToken.objects.filter(user_id__in=users).delete()
        tokens = []
        for pk in users:
            key = "st_" + secrets.token_urlsafe(32)
            keys.append([key, f"bench-device-{pk}"])
            tokens.append(ApiToken(user_id=pk, name="onsale bench", prefix=key[:10],
                                   key_hash=ApiToken.hash_key(key), created_at=now))
        ApiToken.objects.bulk_create(tokens, batch_size=2000)
    return keys


def fresh_performance(*, capacity: int, per_person: int, label: str) -> tuple[int, int]:
    """A published event with one performance on sale now and one GA zone of ``capacity``."""
    from django.utils import timezone

    from smarttickets.booking.inventory import ensure_inventory
    from smarttickets.events.models import Event, GAArea, Organizer, Performance, PriceZone, Venue

    now = timezone.now()
    slug = f"onsale-{label}-{secrets.token_hex(4)}"
    organizer = Organizer.objects.create(name=f"Bench {label}", slug=slug)
    venue = Venue.objects.create(organizer=organizer, name="Bench Arena", slug=slug)
    area = GAArea.objects.create(venue=venue, code="GA", name="Standing", capacity=capacity)
    event = Event.objects.create(organizer=organizer, venue=venue, title=f"Hot show {label}",
                                 slug=slug, state=Event.State.PUBLISHED,
                                 per_person_limit=per_person, hold_minutes=15,
                                 published_at=now)
    performance = Performance.objects.create(event=event, starts_at=now + timedelta(days=30),
                                             onsale_starts_at=now - timedelta(minutes=1),
                                             onsale_ends_at=now + timedelta(days=29))
    zone = PriceZone.objects.create(event=event, name="GA Standing", price=Decimal("880.00"),
                                    currency="HKD")
    zone.ga_areas.add(area)
    ensure_inventory(performance=performance)
    return performance.pk, zone.pk


def flush_cache() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def free_port() -> int:
    for port in range(8731, 8799):
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port
    raise SystemExit("no free port between 8731 and 8798")


def server_command(kind: str) -> list[str]:
    if kind == "gunicorn":
        return [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "smarttickets.wsgi"]
    return [str(BIN / "smarttickets-serve")]  # granian, configured by the same environment


def start_server(env: dict[str, str], log: Path, kind: str = "granian") -> subprocess.Popen:
    proc = subprocess.Popen(
        server_command(kind),
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://{env['BIND']}/healthz"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: see {log}\n{log.read_text()[-3000:]}")
        try:
            req = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})
            with urllib.request.urlopen(req, timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise SystemExit(f"the server did not answer /healthz within 60 s: see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> dict[int, tuple[str, int, float]]:
    """pid → (command, session id, CPU seconds so far) for every process we can read."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        stats[int(entry.name)] = (comm, int(fields[3]), (int(fields[11]) + int(fields[12]))
                                  / CLK_TCK)
    return stats


def _cpu_by_role(before: dict, after: dict, *, server_sid: int, db_pids: set[int]) -> dict:
    """CPU seconds spent during the storm by the app server (its whole session), our
    PostgreSQL backends, and Redis (shared with other users of the machine)."""
    roles = {"server": 0.0, "postgres": 0.0, "redis": 0.0}
    for pid, (comm, sid, cpu) in after.items():
        spent = cpu - before.get(pid, (comm, sid, 0.0))[2]
        if sid == server_sid:
            roles["server"] += spent
        elif pid in db_pids or comm in ("postgres: walwriter", "walwriter"):
            roles["postgres"] += spent
        elif comm.startswith("redis-server"):
            roles["redis"] += spent
    return roles


def _db_backend_pids() -> set[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "OR backend_type = 'walwriter'")
        return {pid for (pid,) in cursor.fetchall()} - {connection.connection.info.backend_pid}


def storm(*, spec: Path, port: int, clients: int, run_octet: int, duration: float,
          server: subprocess.Popen) -> dict:
    """Run the load generator and measure around it: load average (sampled every second)
    and CPU seconds of load generator, app server, PostgreSQL and Redis."""
    import resource
    import threading

    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            samples.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    before = _proc_stats()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler.start()
    try:
        out = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "onsale" / "loadgen.py"), str(spec),
             "--port", str(port), "--clients", str(clients), "--run-octet", str(run_octet),
             "--duration", str(duration)],
            capture_output=True, text=True, timeout=duration + 60, check=False)
    finally:
        done.set()
        sampler.join()
    after = _proc_stats()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"load generator failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout)
    cpu = _cpu_by_role(before, after, server_sid=os.getsid(server.pid),
                       db_pids=_db_backend_pids())
    cpu["loadgen"] = (used.ru_utime + used.ru_stime) - (children.ru_utime + children.ru_stime)
    answered = max(1, result["requests"])
    result["cpu_ms_per_request"] = {k: round(v * 1000 / answered, 3) for k, v in cpu.items()}
    result["cpu_s"] = {k: round(v, 2) for k, v in cpu.items()}
    result["load_during"] = round(statistics.mean(samples), 2) if samples else None
    result["load_max"] = round(max(samples), 2) if samples else None
    return result


def check_facts(*, performance_id: int, capacity: int, holds_answered: int,
                env: dict[str, str], risk: bool = False) -> dict:
    """The database is the judge: live hold units + tickets + open entitlements vs capacity
    (and with ``risk``: a stored "hold" telemetry event for every hold answered 201)."""
    from django.db.models import Count, Sum
    from django.utils import timezone

    from smarttickets.booking.models import Entitlement, Hold, HoldItem, InventoryBucket
    from smarttickets.risk.models import RiskEvent
    from smarttickets.tickets.models import Ticket

    now = timezone.now()
    holds = Hold.objects.filter(performance_id=performance_id)
    live = holds.filter(state=Hold.State.LIVE, expires_at__gt=now).aggregate(
        n=Sum("quantity"))["n"] or 0
    items = HoldItem.objects.filter(hold__performance_id=performance_id,
                                    hold__state=Hold.State.LIVE).count()
    sold = Ticket.objects.filter(performance_id=performance_id,
                                 state=Ticket.State.VALID).count()
    reserved = Entitlement.objects.filter(performance_id=performance_id,
                                          state=Entitlement.State.OPEN).aggregate(
        n=Sum("quantity"))["n"] or 0
    counter = InventoryBucket.objects.filter(performance_id=performance_id).aggregate(
        n=Sum("taken"))["n"] or 0
    per_user_max = (holds.filter(state=Hold.State.LIVE).values("user_id")
                    .annotate(n=Sum("quantity")).order_by("-n").values_list("n", flat=True)
                    .first()) or 0
    rec = subprocess.run(
        [str(BIN / "smarttickets"), "booking", "reconcile", "--performance", str(performance_id)],
        env=env, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    facts = live + sold + reserved
    return {
        "capacity": capacity, "live_units": live, "item_rows": items, "sold": sold,
        "reserved": reserved, "counter": counter,
        "hold_rows": holds.count(), "holds_answered_201": holds_answered,
        "lost": holds_answered - holds.count(),
        "oversold": max(0, facts - capacity), "unsold": max(0, capacity - facts),
        "per_user_max": per_user_max,
        "audit_ok": _audit_count(performance_id) == holds.count(),
        "reconcile_ok": rec.returncode == 0, "reconcile": rec.stdout.strip().splitlines()[-1:],
        "holds_by_state": dict(holds.values_list("state").annotate(n=Count("id"))
                               .values_list("state", "n")),
        "telemetry_lost": (holds_answered - RiskEvent.objects.filter(
            type="hold", data__performance_id=str(performance_id), data__success=True).count()
            if risk else None),
    }


def _audit_count(performance_id: int) -> int:
    from smarttickets.booking.models import Hold
    from smarttickets.core.models import AuditEntry

    ids = [str(pk) for pk in Hold.objects.filter(performance_id=performance_id)
           .values_list("pk", flat=True)]
    return AuditEntry.objects.filter(action="hold.created", object_type="booking.hold",
                                     object_id__in=ids).count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="16,64,256,512",
                        help="comma-separated concurrent client counts")
    parser.add_argument("--capacity", type=int, default=20000)
    parser.add_argument("--quantity", type=int, default=2, help="tickets per hold request")
    parser.add_argument("--per-person", type=int, default=4, help="the event's limit")
    parser.add_argument("--repeat", type=int, default=1, help="runs per client count")
    parser.add_argument("--workers", type=int,
                        default=int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2)))
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("GUNICORN_THREADS", 32)))
    parser.add_argument("--duration", type=float, default=90.0,
                        help="hard stop per storm, seconds")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--risk", choices=("on", "off"), default="off",
                        help="risk checkpoint and telemetry on the hold (default off: see "
                             "docs/onsale-performance.md)")
    parser.add_argument("--server", choices=("granian", "gunicorn"), default="granian",
                        help="production server: smarttickets-serve (granian, the default "
                             "deployment) or gunicorn with gunicorn.conf.py")
    parser.add_argument("--keep-db", action="store_true",
                        help="reuse the benchmark database instead of recreating it")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    if args.capacity < 1 or args.quantity < 1 or args.per_person < args.quantity:
        parser.error("need capacity >= 1 and 1 <= quantity <= per-person")

    var_dir = Path(tempfile.mkdtemp(prefix="onsale-"))
    port = free_port()
    env = server_env(var_dir, workers=args.workers, threads=args.threads, port=port,
                     risk=args.risk == "on")
    ensure_database(fresh=not args.keep_db)
    setup_django(env)
    rounds = args.per_person // args.quantity
    users_needed = -(-args.capacity // (args.quantity * rounds)) * 11 // 10 + 50
    print(f"seeding {users_needed} verified buyers with API tokens …", flush=True)
    spec_users = seed_users(users_needed)
    print(f"{args.server}: {args.workers} workers x {args.threads} threads on 127.0.0.1:{port}; "
          f"load {os.getloadavg()[0]:.2f} (1-min) on {os.cpu_count()} cores", flush=True)
    server = start_server(env, var_dir / "server.log", args.server)
    runs: list[dict] = []
    try:
        for rep in range(args.repeat):
            for i, clients in enumerate(counts):
                label = f"{clients}c-r{rep}"
                perf_id, zone_id = fresh_performance(capacity=args.capacity,
                                                     per_person=args.per_person, label=label)
                flush_cache()  # fresh velocity windows: these fans have not booked before
                spec = var_dir / f"{label}.json"
                spec.write_text(json.dumps({"performance_id": perf_id, "zone_id": zone_id,
                                            "quantity": args.quantity, "rounds": rounds,
                                            "users": spec_users}))
                load = os.getloadavg()[0]
                result = storm(spec=spec, port=port, clients=clients,
                               run_octet=1 + (rep * len(counts) + i) % 250,
                               duration=args.duration, server=server)
                spec.unlink()
                result["facts"] = check_facts(performance_id=perf_id, capacity=args.capacity,
                                              holds_answered=result["holds"], env=env,
                                              risk=args.risk == "on")
                result["load_before"] = round(load, 2)
                runs.append(result)
                print_run(result)
    finally:
        stop_server(server)
    summary = summarise(runs, counts)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))
    print(f"server log: {var_dir / 'server.log'}")
    print(f"RESULT holds_per_s={summary[counts[-1]]['holds_per_s']:.0f} "
          f"holds_per_s_{counts[0]}={summary[counts[0]]['holds_per_s']:.0f} "
          f"p99_ms={summary[counts[-1]]['p99_ms']:.0f} "
          f"oversold={sum(r['facts']['oversold'] for r in runs)}")


def print_run(r: dict) -> None:
    f = r["facts"]
    lat = r["latency_ms"]
    print(f"clients={r['clients']:>4}  holds/s={r['holds_per_s']:>7.1f}  holds={r['holds']:>6} "
          f"in {r['selling_s']:.2f}s  p50/p95/p99 ms (all)={lat['all']['p50']:.1f}/"
          f"{lat['all']['p95']:.1f}/{lat['all']['p99']:.1f}  (201s)={lat['ok']['p50']:.1f}/"
          f"{lat['ok']['p95']:.1f}/{lat['ok']['p99']:.1f}", flush=True)
    print(f"      load avg before/during/max={r['load_before']}/{r['load_during']}/"
          f"{r['load_max']}  CPU ms per request: " + "  ".join(
              f"{k}={v:.3f}" for k, v in r["cpu_ms_per_request"].items()), flush=True)
    print(f"      errors={json.dumps(r['errors'])}{'  TIMED OUT' if r['timed_out'] else ''}")
    print(f"      facts: capacity={f['capacity']} live={f['live_units']} sold={f['sold']} "
          f"counter={f['counter']} oversold={f['oversold']} unsold={f['unsold']} "
          f"lost={f['lost']} per_user_max={f['per_user_max']} audit_ok={f['audit_ok']} "
          f"reconcile={'OK' if f['reconcile_ok'] else 'DRIFT'}"
          + ("" if f.get("telemetry_lost") is None
             else f" telemetry_lost={f['telemetry_lost']}"), flush=True)


def summarise(runs: list[dict], counts: list[int]) -> dict[int, dict]:
    summary = {}
    print("\nmedians over runs:")
    for clients in counts:
        mine = [r for r in runs if r["clients"] == clients]
        summary[clients] = {
            "holds_per_s": statistics.median(r["holds_per_s"] for r in mine),
            "p50_ms": statistics.median(r["latency_ms"]["all"]["p50"] for r in mine),
            "p95_ms": statistics.median(r["latency_ms"]["all"]["p95"] for r in mine),
            "p99_ms": statistics.median(r["latency_ms"]["all"]["p99"] for r in mine),
            "runs": len(mine),
        }
        s = summary[clients]
        print(f"  clients={clients:>4}  holds/s={s['holds_per_s']:>7.1f}  p50/p95/p99 ms="
              f"{s['p50_ms']:.1f}/{s['p95_ms']:.1f}/{s['p99_ms']:.1f}  ({s['runs']} runs)")
    return summary


if __name__ == "__main__":
    main()
