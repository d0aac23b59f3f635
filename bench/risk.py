"""Risk benchmark: score a 1,000,000-event log, train, and time the in-process decision.

Usage: .venv/bin/python bench/risk.py [--events 1000000] [--decisions 500]
Ends with exactly one line: RESULT decision_p99_ms=<…> score_1m_events_s=<…>
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarttickets.settings")
os.environ.setdefault("SMARTTICKETS_ENV", "test")
# As deployed (docs/deploy.md): background work goes to the task worker, not inline.
os.environ.setdefault("TASKS_BACKEND", "django_tasks_db.DatabaseBackend")
EVENTS_PER_ACCOUNT = 29.3  # what the standard scenario produces on average


def bench_score(tmp: Path, events: int, model_path: Path | None) -> tuple[float, int, Path]:
    from django.core.management import call_command

    from smarttickets.risk import simulate

    accounts = max(100, int(events / EVENTS_PER_ACCOUNT))
    started = time.perf_counter()
    world = simulate.simulate(accounts=accounts, seed=2024, progress=True)
    log_path, labels_path = simulate.write(world, tmp / "sim")
    n_events = len(world.lines)
    del world
    print(f"simulated {n_events} events for {accounts} accounts in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    args = ["risk", "score", str(log_path), "--out", str(tmp / "scores.csv")]
    if model_path:
        args += ["--model", str(model_path)]
    started = time.perf_counter()
    call_command(*args)
    return time.perf_counter() - started, n_events, labels_path


def bench_train(log_path: Path, labels_path: Path) -> float:
    from smarttickets.risk import model as M

    started = time.perf_counter()
    M.train(log_path, labels_path, seed=0, members=M.DEFAULT_MEMBERS)  # as `risk train` does
    return time.perf_counter() - started


def bench_decisions(n: int) -> list[float]:
    """Decisions against a test database holding telemetry for a few hundred accounts."""
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    if connection.vendor == "sqlite":
        # A file with WAL, as deployed, not the in-memory test database.
        connection.settings_dict.setdefault("TEST", {})["NAME"] = str(
            Path(tempfile.gettempdir()) / f"risk-bench-{os.getpid()}.sqlite3")
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False, serialize=False)
    try:
        from smarttickets.accounts.models import User
        from smarttickets.events.tests.factories import EventFactory
        from smarttickets.risk import decisions as D
        from smarttickets.risk.services import record_event

        event = EventFactory()  # decisions name a real event (review cases belong to it)
        rng = random.Random(1)
        now = datetime(2026, 3, 1, tzinfo=UTC)
        users = [User.objects.create_user(email=f"b{i}@example.com") for i in range(300)]
        cards = [f"card-{i}" for i in range(120)]
        for user in users:
            start = now - timedelta(days=rng.uniform(1, 20))
            record_event(account=user, type="signup", session="s", ip="203.0.113.1",
                         device=f"d{user.pk}", ua="Mozilla/5.0", now=start - timedelta(days=30),
                         fields={"email_domain": "e.com", "phone_country": "+852",
                                 "name_hash": f"n{user.pk}", "address_hash": f"a{user.pk % 150}"})
            for k in range(rng.randint(10, 60)):
                t = start + timedelta(seconds=k * rng.uniform(1, 30))
                record_event(account=user, type="page_view", session=f"s{user.pk}",
                             ip=f"198.51.100.{rng.randint(1, 250)}", device=f"d{user.pk}",
                             ua="Mozilla/5.0", now=t, fields={"path": "/e/1", "event_id": "1"})
            record_event(account=user, type="payment", session=f"s{user.pk}", ip="203.0.113.7",
                         device=f"d{user.pk}", ua="Mozilla/5.0", now=start + timedelta(hours=1),
                         fields={"order_id": f"o{user.pk}", "amount_minor": 1000,
                                 "currency": "HKD", "card_fp": rng.choice(cards),
                                 "success": True, "decline_code": None})
        # What the task worker does after each new tie: the accounts' graph rows are current.
        refreshed = D.refresh_graph_rows(account_ids=[u.pk for u in users], now=now)
        print(f"decisions on {connection.vendor}: {len(users)} accounts, {refreshed} graph "
              "rows computed by the worker's task", file=sys.stderr)
        if connection.vendor == "postgresql":
            # The tables were filled a moment ago: let autovacuum's analyze of them happen now,
            # not in the middle of the timing (a running platform's tables are not brand new).
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        D.get_model()
        # As the production server does once a worker is up (gunicorn.conf.py): what exists
        # by now lives as long as the process, so the cyclic GC stops re-scanning it.
        gc.collect()
        gc.freeze()
        timings: list[float] = []
        for i in range(n):
            user = rng.choice(users)
            activity = D.AccountActivity(account_id=user.pk, event_id=str(event.pk),
                                         performance_id="11",
                                         ip="203.0.113.7", device=f"d{user.pk}", quantity=2)
            started = time.perf_counter()
            D.decide(activity=activity, checkpoint=("hold", "checkout")[i % 2], now=now)
            timings.append((time.perf_counter() - started) * 1000)
        from django.db.models import Count

        from smarttickets.risk.models import Decision

        stored = Decision.objects.count()
        mix = dict(Decision.objects.values_list("decision").annotate(n=Count("id")))
        print(f"decisions stored: {stored} of {n} ({', '.join(f'{k} {v}' for k, v in sorted(mix.items()))})",
              file=sys.stderr)
        if stored != n:
            raise SystemExit(f"only {stored} of {n} decisions were stored")
        return timings
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--decisions", type=int, default=500)
    parser.add_argument("--train", action="store_true", help="also time training on the log")
    parser.add_argument("--model", type=Path, help="model file (default: the shipped one)")
    args = parser.parse_args()
    import django

    django.setup()
    with tempfile.TemporaryDirectory() as tmp:
        score_s, n_events, labels_path = bench_score(Path(tmp), args.events, args.model)
        rows = [("score", f"{n_events} events", f"{score_s:.1f} s")]
        if args.train:
            train_s = bench_train(Path(tmp) / "sim" / "log.jsonl", labels_path)
            rows.append(("train", f"{n_events} events", f"{train_s:.1f} s"))
            print(f"training took {train_s:.1f} s")
    timings = bench_decisions(args.decisions)
    p50, p99 = percentile(timings, 50), percentile(timings, 99)
    rows.append(("decide", f"{len(timings)} calls", f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"))
    print(f"{'what':<8} {'size':<20} result")
    for what, size, result in rows:
        print(f"{what:<8} {size:<20} {result}")
    scaled = score_s * 1_000_000 / max(n_events, 1)
    print(f"RESULT decision_p99_ms={p99:.2f} score_1m_events_s={scaled:.1f}")


if __name__ == "__main__":
    main()
