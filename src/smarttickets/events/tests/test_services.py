"""Events services: sales-phase rules, price zones, publishing checks, state changes."""

from datetime import timedelta
from decimal import Decimal

import pytest

from smarttickets.core import clock
from smarttickets.core.exceptions import InvalidInput
from smarttickets.core.models import AuditEntry
from smarttickets.events import phases, selectors, services
from smarttickets.events.exceptions import InvalidState, NotPublishable
from smarttickets.events.models import Event, Performance, PriceZone
from smarttickets.events.tests.factories import (
    EventFactory,
    PerformanceFactory,
    PriceZoneFactory,
    VenueFactory,
    publishable_event,
    published_event,
)

pytestmark = pytest.mark.django_db


def test_create_event_makes_a_draft_with_a_readable_unique_slug():
    venue = VenueFactory()
    first = services.create_event(organizer=venue.organizer, venue=venue, title="Neon Nights",
                                  artist="Neon Tide", actor=None, now=clock.now())
    second = services.create_event(organizer=venue.organizer, venue=venue, title="Neon Nights",
                                   artist="Neon Tide", actor=None, now=clock.now())

    assert (first.state, first.slug, second.slug) == ("draft", "neon-tide-neon-nights",
                                                      "neon-tide-neon-nights-2")
    assert AuditEntry.objects.filter(action="events.event.created").count() == 2


def test_create_event_refuses_another_organizers_venue_and_bad_limits():
    venue = VenueFactory()
    other_venue = VenueFactory()

    with pytest.raises(InvalidInput) as info:
        services.create_event(organizer=venue.organizer, venue=other_venue, title="X",
                              per_person_limit=0, actor=None, now=clock.now())

    assert set(info.value.fields) == {"venue", "per_person_limit"}
    assert Event.objects.count() == 0


def test_lottery_dates_must_be_in_order():
    event = EventFactory()
    now = clock.now()
    start = now + timedelta(days=30)

    with pytest.raises(InvalidInput) as info:
        services.add_performance(
            event=event, starts_at=start, sale_mode="lottery", actor=None, now=now,
            entry_opens_at=now + timedelta(days=2), entry_closes_at=now + timedelta(days=1),
            draw_at=now + timedelta(days=3), purchase_opens_at=now + timedelta(days=2),
            purchase_closes_at=start + timedelta(days=1))

    assert info.value.fields == {
        "entry_closes_at": ["Entry must close after it opens."],
        "purchase_opens_at": ["Winners can buy only after the draw."],
        "purchase_closes_at": ["The purchase window must close before the performance starts."],
    }
    assert Performance.objects.count() == 0


def test_first_come_performance_clears_lottery_fields():
    event = EventFactory()
    now = clock.now()

    perf = services.add_performance(
        event=event, starts_at=now + timedelta(days=10), sale_mode="first_come", actor=None,
        now=now, onsale_starts_at=now + timedelta(days=1), draw_at=now + timedelta(days=2))

    assert perf.draw_at is None
    assert phases.phase_status(phases.PhaseDates.of(perf), now) == phases.SALE_UPCOMING
    assert phases.phase_status(phases.PhaseDates.of(perf), now + timedelta(days=2)) == \
        phases.ON_SALE


def test_naive_and_past_datetimes_are_refused():
    event = EventFactory()
    now = clock.now()

    with pytest.raises(InvalidInput) as naive:
        services.add_performance(event=event, starts_at=(now + timedelta(days=3)).replace(
            tzinfo=None), sale_mode="first_come", onsale_starts_at=now, actor=None, now=now)
    with pytest.raises(InvalidInput) as past:
        services.add_performance(event=event, starts_at=now - timedelta(days=1),
                                 sale_mode="first_come", onsale_starts_at=now - timedelta(days=2),
                                 actor=None, now=now)

    assert list(naive.value.fields) == ["starts_at"]
    assert past.value.fields == {"starts_at": ["The performance must be in the future."]}
    assert Performance.objects.count() == 0


def test_a_section_can_be_in_only_one_zone_per_event():
    event = EventFactory()
    PriceZoneFactory(event=event, name="Gold", section_codes=["A"])
    section_a = event.venue.sections.get(code="A")

    with pytest.raises(InvalidInput) as info:
        services.create_price_zone(event=event, name="Silver", price=Decimal("100"),
                                   section_ids=[section_a.pk], actor=None, now=clock.now())

    assert info.value.fields == {"section_ids": ["Section “Section A” is already in price zone "
                                                 "“Gold”."]}
    assert PriceZone.objects.filter(event=event).count() == 1


def test_zone_price_is_decimal_rounded_and_floats_are_refused():
    event = EventFactory()

    zone = services.create_price_zone(event=event, name="Gold", price="880.456", actor=None,
                                      now=clock.now())
    with pytest.raises(InvalidInput):
        services.create_price_zone(event=event, name="Float", price=1.5, actor=None,
                                   now=clock.now())

    assert zone.price == Decimal("880.46")
    assert list(event.price_zones.values_list("name", flat=True)) == ["Gold"]


def test_sections_of_another_venue_are_refused():
    event = EventFactory()
    foreign = VenueFactory().sections.get(code="A")

    with pytest.raises(InvalidInput) as info:
        services.create_price_zone(event=event, name="Gold", price=Decimal("1"),
                                   section_ids=[foreign.pk], actor=None, now=clock.now())

    assert list(info.value.fields) == ["section_ids"]
    assert not PriceZone.objects.exists()


def test_publish_lists_everything_missing():
    event = EventFactory()
    PriceZoneFactory(event=event, name="Empty")

    with pytest.raises(NotPublishable) as info:
        services.publish_event(event=event, actor=None, now=clock.now())

    assert info.value.problems == [
        "Add at least one performance.",
        "Price zone “Empty” has no seats or standing capacity.",
    ]
    event.refresh_from_db()
    assert (event.state, event.published_at) == ("draft", None)
    assert not AuditEntry.objects.filter(action="events.event.published").exists()


def test_publish_needs_a_zone_and_a_valid_phase():
    event = EventFactory()
    PerformanceFactory(event=event, onsale_starts_at=None)

    problems = services.publish_problems(event, now=clock.now())

    assert len(problems) == 2
    assert problems[0].endswith("Enter when tickets go on sale.")
    assert problems[1] == "Add at least one price zone."


def test_publish_a_complete_draft():
    event = publishable_event()
    now = clock.now()

    event = services.publish_event(event=event, actor=None, now=now)

    assert (event.state, event.published_at) == ("published", now)
    assert AuditEntry.objects.filter(action="events.event.published",
                                     object_id=str(event.pk)).count() == 1
    with pytest.raises(InvalidState):
        services.publish_event(event=event, actor=None, now=now)


def test_zones_and_venue_are_fixed_after_publishing():
    event = published_event()
    zone = event.price_zones.first()

    with pytest.raises(InvalidState):
        services.update_price_zone(zone=zone, changes={"price": Decimal("1")}, actor=None,
                                   now=clock.now())
    with pytest.raises(InvalidState):
        services.update_event(event=event, changes={"venue": VenueFactory(
            organizer=event.organizer)}, actor=None, now=clock.now())

    zone.refresh_from_db()
    assert zone.price == Decimal("880.00")


def test_cancel_needs_a_reason_and_happens_once():
    event = published_event()

    with pytest.raises(InvalidInput):
        services.cancel_event(event=event, reason="  ", actor=None, now=clock.now())
    event.refresh_from_db()
    assert event.state == "published"

    services.cancel_event(event=event, reason="Artist ill", actor=None, now=clock.now())
    with pytest.raises(InvalidState):
        services.cancel_event(event=event, reason="again", actor=None, now=clock.now())

    event.refresh_from_db()
    assert event.state == "cancelled"
    entry = AuditEntry.objects.get(action="events.event.cancelled")
    assert entry.data == {"reason": "Artist ill", "previous_state": "published"}


def test_availability_summary_counts_seats_and_standing_per_zone():
    event = published_event()
    perf = event.performances.get()

    summary = selectors.availability_summary(perf)

    assert [(z.name, z.price, z.capacity, z.available) for z in summary] == [
        ("Seated", Decimal("880.00"), 10, 10), ("Standing", Decimal("480.00"), 50, 50)]


def test_update_performance_refuses_mode_change_once_sales_opened():
    event = published_event()
    perf = event.performances.get()
    now = clock.now()

    with pytest.raises(InvalidState):
        services.update_performance(
            performance=perf, actor=None, now=now, changes={
                "sale_mode": "lottery", "entry_opens_at": now + timedelta(days=1),
                "entry_closes_at": now + timedelta(days=2), "draw_at": now + timedelta(days=2),
                "purchase_opens_at": now + timedelta(days=3),
                "purchase_closes_at": now + timedelta(days=4)})

    perf.refresh_from_db()
    assert perf.sale_mode == "first_come"
    assert perf.entry_opens_at is None
