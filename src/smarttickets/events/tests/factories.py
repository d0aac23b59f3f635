"""Test data for events: organizers with staff, venues with seats, events, performances, zones.

``VenueFactory()`` makes sections A and B (2 rows × 5 seats each) and a standing area FLOOR of
50; ``PublishableEventFactory()`` is a draft that passes every publish check.
"""

from datetime import timedelta
from decimal import Decimal

import factory

from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core import clock
from smarttickets.events.models import (
    Event,
    GAArea,
    Membership,
    Organizer,
    Performance,
    PriceZone,
    Seat,
    Section,
    Venue,
)


class OrganizerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organizer

    name = factory.Sequence(lambda n: f"Promoter {n}")
    slug = factory.Sequence(lambda n: f"promoter-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organizer = factory.SubFactory(OrganizerFactory)
    user = factory.SubFactory(UserFactory)
    can_manage_events = True


def staff_of(organizer: Organizer, **user_kwargs):
    """A user who may manage ``organizer``'s events."""
    return MembershipFactory(organizer=organizer, user=UserFactory(**user_kwargs)).user


class VenueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Venue
        skip_postgeneration_save = True

    organizer = factory.SubFactory(OrganizerFactory)
    name = factory.Sequence(lambda n: f"Hall {n}")
    slug = factory.Sequence(lambda n: f"hall-{n}")

    @factory.post_generation
    def layout(venue, create, extracted, **kwargs):
        if not create or extracted is False:
            return
        for order, code in enumerate(("A", "B")):
            section = Section.objects.create(venue=venue, code=code, name=f"Section {code}",
                                             sort_order=order)
            Seat.objects.bulk_create(
                Seat(section=section, row=str(row), number=str(n), x=100 + order * 200 + n * 12,
                     y=100 + row * 14, accessible=(row == 2 and n == 1))
                for row in (1, 2) for n in range(1, 6))
        GAArea.objects.create(venue=venue, code="FLOOR", name="Standing floor", capacity=50,
                              x=100, y=200, width=300, height=80)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    organizer = factory.SubFactory(OrganizerFactory)
    venue = factory.SubFactory(VenueFactory, organizer=factory.SelfAttribute("..organizer"))
    title = factory.Sequence(lambda n: f"Concert {n}")
    slug = factory.Sequence(lambda n: f"concert-{n}")
    artist = "The Testers"


class PerformanceFactory(factory.django.DjangoModelFactory):
    """A first-come performance in 30 days, on sale since yesterday."""

    class Meta:
        model = Performance

    event = factory.SubFactory(EventFactory)
    starts_at = factory.LazyFunction(lambda: clock.now() + timedelta(days=30))
    sale_mode = Performance.SaleMode.FIRST_COME
    onsale_starts_at = factory.LazyFunction(lambda: clock.now() - timedelta(days=1))


class LotteryPerformanceFactory(PerformanceFactory):
    sale_mode = Performance.SaleMode.LOTTERY
    onsale_starts_at = None
    entry_opens_at = factory.LazyFunction(lambda: clock.now() - timedelta(days=1))
    entry_closes_at = factory.LazyFunction(lambda: clock.now() + timedelta(days=3))
    draw_at = factory.LazyFunction(lambda: clock.now() + timedelta(days=3, hours=1))
    purchase_opens_at = factory.LazyFunction(lambda: clock.now() + timedelta(days=4))
    purchase_closes_at = factory.LazyFunction(lambda: clock.now() + timedelta(days=6))


class PriceZoneFactory(factory.django.DjangoModelFactory):
    """A zone; pass ``section_codes=["A"]`` / ``ga_codes=["FLOOR"]`` to fill it."""

    class Meta:
        model = PriceZone
        skip_postgeneration_save = True

    event = factory.SubFactory(EventFactory)
    name = factory.Sequence(lambda n: f"Zone {n}")
    price = Decimal("880.00")
    color = "#4f46e5"

    @factory.post_generation
    def section_codes(zone, create, extracted, **kwargs):
        if create and extracted:
            zone.sections.set(Section.objects.filter(venue=zone.event.venue, code__in=extracted))

    @factory.post_generation
    def ga_codes(zone, create, extracted, **kwargs):
        if create and extracted:
            zone.ga_areas.set(GAArea.objects.filter(venue=zone.event.venue, code__in=extracted))


def publishable_event(**kwargs) -> Event:
    """A draft with a performance and two zones covering A (HK$880) and FLOOR (HK$480)."""
    event = EventFactory(**kwargs)
    PerformanceFactory(event=event)
    PriceZoneFactory(event=event, name="Seated", price=Decimal("880.00"), section_codes=["A"])
    PriceZoneFactory(event=event, name="Standing", price=Decimal("480.00"), color="#e11d74",
                     ga_codes=["FLOOR"])
    return event


def published_event(**kwargs) -> Event:
    event = publishable_event(**kwargs)
    event.state = Event.State.PUBLISHED
    event.published_at = clock.now()
    event.save(update_fields=["state", "published_at"])
    return event
