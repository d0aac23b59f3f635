"""`smarttickets tickets`: housekeeping for transfer offers, and the demo fan's tickets."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smarttickets.core import clock
from smarttickets.tickets.services import expire_transfers


class Command(BaseCommand):
    help = "Ticket housekeeping: expire-transfers."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("expire-transfers",
                       help="close transfer offers whose time is up and tell their senders")
        demo = sub.add_parser("demo", help="give the demo fan two paid tickets (idempotent)")
        demo.add_argument("--email", default="fan@example.com")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "demo":
            self.demo(options["email"])
            return
        total = 0
        while True:  # in batches, so one run catches up however far behind it is
            done = expire_transfers(now=clock.now())
            total += done
            if done == 0:
                break
        self.stdout.write(f"expired {total} transfer offer(s)")

    def demo(self, email: str) -> None:
        """Two seats on the first performance on sale now, paid as if through the sandbox, so a
        fresh `make run` has a ticket to show in the wallet and admit at the scanner."""
        from django.contrib.auth import get_user_model
        from django.db.models import Q

        from smarttickets.booking import services as booking
        from smarttickets.core.money import to_minor
        from smarttickets.events.models import Event, Performance
        from smarttickets.tickets.models import Ticket

        now = clock.now()
        fan = get_user_model().objects.filter(email=email).first()
        if fan is None:
            raise CommandError(f"no user {email}: run `smarttickets demo` first")
        if Ticket.objects.filter(holder_user=fan, state=Ticket.State.VALID).exists():
            self.stdout.write(f"{email} already has tickets")
            return
        performance = (Performance.objects
                       .filter(sale_mode=Performance.SaleMode.FIRST_COME, cancelled=False,
                               event__state=Event.State.PUBLISHED, starts_at__gt=now,
                               onsale_starts_at__lte=now)
                       .filter(Q(onsale_ends_at__isnull=True) | Q(onsale_ends_at__gt=now))
                       .select_related("event").order_by("starts_at").first())
        if performance is None:
            raise CommandError("no performance is on sale now: run `smarttickets demo` first")
        zone = performance.event.price_zones.filter(sections__isnull=False).order_by(
            "-price").first() or performance.event.price_zones.order_by("-price").first()
        hold = booking.create_hold(user=fan, performance=performance, now=now,
                                   selection=booking.Selection(zone_id=zone.pk, quantity=2))
        order = booking.place_order(hold=hold, buyer=fan, holder_names=[], now=now)
        booking.mark_order_paid(order_id=order.pk, provider="sandbox",
                                payment_reference=f"demo-{order.code}",
                                amount_minor=to_minor(order.total, order.currency),
                                currency=order.currency, card_fingerprint="demo", now=now)
        self.stdout.write(f"{email}: order {order.code} paid, 2 tickets for "
                          f"{performance.event.title} ({zone.name})")
