"""`smarttickets booking expire-holds` and `smarttickets booking reconcile [--repair]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from smarttickets.booking import reconcile
from smarttickets.booking.services import expire_holds
from smarttickets.core import clock


class Command(BaseCommand):
    help = "Booking housekeeping: expire holds, reconcile inventory counters with the facts."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("expire-holds", help="Expire holds and entitlements whose time is up.")
        rec = sub.add_parser("reconcile", help="Check counters and seat claims against facts; "
                                               "exit code 1 when drift is found.")
        rec.add_argument("--repair", action="store_true",
                         help="Fix drift in one audited transaction.")
        rec.add_argument("--performance", type=int, default=None,
                         help="Only this performance id.")

    def handle(self, *args, **options):
        now = clock.now()
        if options["action"] == "expire-holds":
            total = 0
            while True:  # batches keep each transaction short
                done = expire_holds(now=now)
                total += done
                if done == 0:
                    break
            self.stdout.write(f"expired {total} holds/entitlements")
            return
        if options["repair"]:
            report = reconcile.repair(now=now, performance_id=options["performance"])
        else:
            report = reconcile.check(performance_id=options["performance"])
        for line in reconcile.render_table(report):
            self.stdout.write(line)
        if report.clean:
            self.stdout.write(self.style.SUCCESS("OK: counters equal the facts"))
        elif options["repair"]:
            self.stdout.write(self.style.WARNING(
                f"repaired {len(report.drifted)} buckets, {len(report.stale_claims)} stale and "
                f"{len(report.missing_claims)} missing seat claims"))
        else:
            self.stdout.write(self.style.ERROR("DRIFT found; run with --repair to fix"))
            raise CommandError("inventory drift", returncode=1)
