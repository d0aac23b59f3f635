"""``smarttickets demo``: an organizer, demo users, an arena and events to click through.

Idempotent: everything is looked up first and only what is missing is created, through the same
services the organizer pages use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from smarttickets.core import clock
from smarttickets.events import services
from smarttickets.events.models import Membership, Organizer, Venue

HK = ZoneInfo("Asia/Hong_Kong")
ARENA_CSV = Path(__file__).resolve().parents[2] / "data" / "demo_arena.csv"
ORGANIZER_SLUG = "harbour-live"
ARENA_SLUG = "victoria-harbour-arena"

USERS = [
    # email, password, legal name, phone, role
    ("organizer@example.com", "organizer-demo-2026", "Mei Ling Chan", "+85291230001", "organizer"),
    ("gate@example.com", "gate-demo-2026", "Ka Ho Wong", "+85291230002", "gate"),
    ("fan@example.com", "fan-demo-2026", "Siu Ming Lee", "+85291230003", "fan"),
]

ZONES = [
    # name, price, colour, section codes, standing-area codes
    ("VIP Standing", "1680", "#e11d74", [], ["FLOOR"]),
    ("Premium", "1280", "#4f46e5", ["103", "104", "105", "106"], []),
    ("Lower Bowl", "980", "#0e7490", ["101", "102", "107", "108"], []),
    ("Upper Centre", "680", "#b45309", ["204", "205", "206", "207"], []),
    ("Upper Side", "480", "#15803d", ["201", "202", "203", "208", "209", "210"], []),
]


@dataclass
class DemoEvent:
    title: str
    artist: str
    description: str
    mode: str
    show_days: list[int]
    personalised: bool = False
    per_person_limit: int = 4
    # Days relative to today for the sales phase (first come: on-sale start; lottery windows).
    phase: dict[str, float] = field(default_factory=dict)
    price_factor: Decimal = Decimal("1")


EVENTS = [
    DemoEvent(
        title="Harbour Lights Tour 2026", artist="Neon Tide",
        description="Hong Kong's favourite synth-pop quartet bring their new album to the "
                    "harbourfront for two nights, with a full light show and special guests.",
        mode="first_come", show_days=[21, 22], phase={"onsale_starts_at": -1},
        price_factor=Decimal("0.75")),
    DemoEvent(
        title="Aurora Skies World Tour — Hong Kong", artist="Starlight Echo",
        description="The most requested tour of the year. Demand is far above capacity, so "
                    "tickets are allocated by a fair, publicly verifiable lottery. Tickets are "
                    "real-name and checked against photo ID at the gate.",
        mode="lottery", show_days=[35, 36], personalised=True, per_person_limit=2,
        phase={"entry_opens_at": -2, "entry_closes_at": 5, "draw_at": 5.05,
               "purchase_opens_at": 6, "purchase_closes_at": 8}),
    DemoEvent(
        title="Cantopop Legends Night", artist="The Golden Melody Orchestra",
        description="Forty years of Cantopop classics, reimagined with a 60-piece orchestra.",
        mode="first_come", show_days=[48], phase={"onsale_starts_at": 10},
        price_factor=Decimal("0.6")),
    DemoEvent(
        title="Midsummer Jazz by the Harbour", artist="Kowloon Blue Quintet",
        description="An evening of jazz standards and new compositions.",
        mode="first_come", show_days=[-30], phase={"onsale_starts_at": -70},
        price_factor=Decimal("0.5")),
]


def _evening(base: datetime, days: float, hour: int = 20) -> datetime:
    day = (base + timedelta(days=days)).astimezone(HK)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


def _at(base: datetime, days: float) -> datetime:
    """Phase moments fall on the hour so they read well on the page."""
    moment = (base + timedelta(days=days)).astimezone(HK)
    return moment.replace(minute=0, second=0, microsecond=0)


class Command(BaseCommand):
    help = "Load demo data (organizer, users, Victoria Harbour Arena, events). Idempotent."

    def handle(self, *args, **options):
        now = clock.now()
        with transaction.atomic():
            organizer, _ = Organizer.objects.get_or_create(
                slug=ORGANIZER_SLUG,
                defaults={"name": "Harbour Live Entertainment",
                          "contact_email": "hello@harbourlive.example",
                          "description": "Concerts and tours across Hong Kong."})
            users = {role: self._user(organizer, email, password, name, phone, role, now)
                     for email, password, name, phone, role in USERS}
        venue = self._venue(organizer, users["organizer"], now)
        created = [self._event(organizer, venue, spec, users["organizer"], now)
                   for spec in EVENTS]

        self.stdout.write(self.style.SUCCESS(
            f"Demo data ready: {organizer.name}, {venue.name} ({venue.seat_count} seats), "
            f"{len(EVENTS)} events ({sum(created)} created now)."))
        self.stdout.write("Log in with:")
        for email, password, _name, _phone, role in USERS:
            self.stdout.write(f"  {role:<10} {email:<24} password: {password}")
        self.stdout.write("Organizer dashboard: /organizer/   Catalogue: /")

    def _user(self, organizer, email, password, legal_name, phone, role, now):
        user_model = get_user_model()
        user = user_model.objects.filter(email=email).first()
        if user is None:
            user = user_model.objects.create_user(
                email=email, password=password, legal_name=legal_name, phone=phone,
                email_verified_at=now, phone_verified_at=now,
                is_gate_staff=(role == "gate"))
        if role == "organizer":
            Membership.objects.get_or_create(
                organizer=organizer, user=user,
                defaults=dict.fromkeys(Membership.PERMISSIONS, True))
        elif role == "gate":
            Membership.objects.get_or_create(organizer=organizer, user=user,
                                             defaults={"can_scan_tickets": True})
        return user

    def _venue(self, organizer, actor, now) -> Venue:
        venue = organizer.venues.filter(slug=ARENA_SLUG).first()
        if venue is None:
            venue = services.create_venue(
                organizer=organizer, name="Victoria Harbour Arena",
                address="1 Harbour Promenade, West Kowloon", city="Hong Kong",
                data=ARENA_CSV.read_bytes(), filename=ARENA_CSV.name, actor=actor, now=now)
        return venue

    def _event(self, organizer, venue, spec: DemoEvent, actor, now) -> bool:
        if organizer.events.filter(title=spec.title).exists():
            return False
        # A past event is created "back then", so the services' own date rules still apply.
        at = now if min(spec.show_days) > 0 else now + timedelta(days=min(spec.show_days) - 60)
        with transaction.atomic():
            event = services.create_event(
                organizer=organizer, venue=venue, title=spec.title, artist=spec.artist,
                description=spec.description, personalised=spec.personalised,
                per_person_limit=spec.per_person_limit, actor=actor, now=at)
            for day in spec.show_days:
                starts = _evening(now, day)
                phase = {name: _at(now, offset) for name, offset in spec.phase.items()}
                services.add_performance(
                    event=event, starts_at=starts, sale_mode=spec.mode,
                    doors_open_at=starts - timedelta(hours=1),
                    ends_at=starts + timedelta(hours=3), actor=actor, now=at, **phase)
            sections = dict(venue.sections.values_list("code", "pk"))
            areas = dict(venue.ga_areas.values_list("code", "pk"))
            for order, (name, price, colour, section_codes, area_codes) in enumerate(ZONES):
                services.create_price_zone(
                    event=event, name=name,
                    price=(Decimal(price) * spec.price_factor).quantize(Decimal("10")),
                    color=colour, section_ids=[sections[c] for c in section_codes],
                    ga_area_ids=[areas[c] for c in area_codes], sort_order=order,
                    actor=actor, now=at)
            services.publish_event(event=event, actor=actor, now=at)
        return True
