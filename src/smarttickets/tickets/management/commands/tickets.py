"""`smarttickets tickets expire-transfers`: housekeeping for ticket transfer offers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from smarttickets.core import clock
from smarttickets.tickets.services import expire_transfers


class Command(BaseCommand):
    help = "Ticket housekeeping: expire-transfers."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("expire-transfers",
                       help="close transfer offers whose time is up and tell their senders")

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        while True:  # in batches, so one run catches up however far behind it is
            done = expire_transfers(now=clock.now())
            total += done
            if done == 0:
                break
        self.stdout.write(f"expired {total} transfer offer(s)")
