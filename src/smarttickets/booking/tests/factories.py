"""Test data for booking: events with seated and general-admission zones, and verified buyers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.events.models import (
    Event,
    GAArea,
    Organizer,
    Performance,
    PriceZone,
    Seat,
    Section,
    Venue,
)

__all__ = ["UserFactory", "buyer", "ga_performance", "seated_performance"]


class OrganizerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organizer

    name = factory.Sequence(lambda n: f"Promoter {n}")
    slug = factory.Sequence(lambda n: f"promoter-{n}")


class VenueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Venue

    organizer = factory.SubFactory(OrganizerFactory)
    name = factory.Sequence(lambda n: f"Hall {n}")
    slug = factory.Sequence(lambda n: f"hall-{n}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    organizer = factory.SelfAttribute("venue.organizer")
    venue = factory.SubFactory(VenueFactory)
    title = factory.Sequence(lambda n: f"Concert {n}")
    slug = factory.Sequence(lambda n: f"concert-{n}")
    state = Event.State.PUBLISHED
    per_person_limit = 4
    hold_minutes = 10


class PerformanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Performance

    event = factory.SubFactory(EventFactory)
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    onsale_starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    onsale_ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=29))


def buyer(**kwargs):
    return UserFactory(verified=True, **kwargs)


def seated_performance(*, rows: int = 2, per_row: int = 5, price: str = "880.00",
                       **event_kwargs) -> tuple[Performance, PriceZone, list[Seat]]:
    """A performance with one seated zone; row A is nearest the stage (stage at y=0)."""
    performance = PerformanceFactory(event__per_person_limit=event_kwargs.pop(
        "per_person_limit", 4), **{f"event__{k}": v for k, v in event_kwargs.items()})
    venue = performance.event.venue
    venue.stage_x, venue.stage_y, venue.stage_width, venue.stage_height = 0, 0, 1000, 10
    venue.save()
    section = Section.objects.create(venue=venue, code="A", name="Stalls A")
    seats = []
    for r in range(rows):
        for n in range(per_row):
            seats.append(Seat(section=section, row=chr(ord("A") + r), number=str(n + 1),
                              x=100 + 20 * n, y=50 + 30 * r))
    Seat.objects.bulk_create(seats)
    seats = list(Seat.objects.filter(section=section).order_by("row", "x"))
    zone = PriceZone.objects.create(event=performance.event, name="Stalls",
                                    price=Decimal(price), currency="HKD")
    zone.sections.add(section)
    return performance, zone, seats


def ga_performance(*, capacity: int = 50, price: str = "480.00", **event_kwargs
                   ) -> tuple[Performance, PriceZone]:
    performance = PerformanceFactory(**{f"event__{k}": v for k, v in event_kwargs.items()})
    area = GAArea.objects.create(venue=performance.event.venue, code="GA", name="Standing",
                                 capacity=capacity)
    zone = PriceZone.objects.create(event=performance.event, name="Standing",
                                    price=Decimal(price), currency="HKD")
    zone.ga_areas.add(area)
    return performance, zone
