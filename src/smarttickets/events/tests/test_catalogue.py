"""Public pages: the catalogue with search and filters, and the event page."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core import clock
from smarttickets.events.tests.factories import (
    EventFactory,
    LotteryPerformanceFactory,
    PerformanceFactory,
    PriceZoneFactory,
    VenueFactory,
    published_event,
    staff_of,
)

pytestmark = pytest.mark.django_db


def titles(response) -> list[str]:
    return [card.event.title for card in response.context["cards"]]


def test_home_lists_only_upcoming_published_events_soonest_first(client):
    later = published_event(title="Later Show")
    sooner = published_event(title="Sooner Show")
    sooner.performances.update(starts_at=clock.now() + timedelta(days=5))
    EventFactory(title="Secret Draft")
    past = published_event(title="Old Show")
    past.performances.update(starts_at=clock.now() - timedelta(days=3))

    response = client.get("/")

    assert response.status_code == 200
    assert titles(response) == ["Sooner Show", "Later Show"]
    assert "On sale now" in response.content.decode()
    assert later.venue.name in response.content.decode()
    assert titles(client.get("/?past=on")) == ["Old Show"]


def test_search_matches_title_artist_and_venue(client):
    published_event(title="Harbour Lights", artist="Neon Tide")
    published_event(title="Jazz Night", artist="Blue Quintet",
                    venue=VenueFactory(name="Kowloon Hall"))

    assert titles(client.get("/", {"q": "neon"})) == ["Harbour Lights"]
    assert titles(client.get("/", {"q": "kowloon"})) == ["Jazz Night"]
    assert titles(client.get("/", {"q": "nothing-like-this"})) == []


def test_filters_by_date_venue_and_max_price(client):
    cheap = published_event(title="Cheap")
    cheap.performances.update(starts_at=clock.now().replace(year=clock.now().year + 1, month=3,
                                                            day=10, hour=12))
    dear = published_event(title="Dear")
    dear.price_zones.update(price=Decimal("2000"))
    dear.performances.update(starts_at=clock.now().replace(year=clock.now().year + 1, month=5,
                                                           day=1, hour=12))
    year = clock.now().year + 1

    by_date = client.get("/", {"date_from": f"{year}-03-01", "date_to": f"{year}-03-31"})
    by_venue = client.get("/", {"venue": dear.venue_id})
    by_price = client.get("/", {"max_price": "500"})

    assert titles(by_date) == ["Cheap"]
    assert titles(by_venue) == ["Dear"]
    assert titles(by_price) == ["Cheap"]


def test_bad_filters_show_errors_not_500(client):
    published_event(title="Show")

    response = client.get("/", {"date_from": "not-a-date", "max_price": "-3"})

    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"date_from", "max_price"}
    assert titles(response) == ["Show"]


def test_pagination(client):
    for n in range(14):
        published_event(title=f"Show {n:02}")

    first = client.get("/")
    second = client.get("/", {"page": 2})

    assert len(titles(first)) == 12
    assert len(titles(second)) == 2
    assert "Page 1 of 2" in first.content.decode()


def test_event_page_shows_phases_in_hong_kong_time_prices_and_map(client):
    event = published_event(title="Aurora", personalised=True, per_person_limit=2)
    perf = event.performances.get()
    perf.starts_at = clock.now().replace(year=clock.now().year + 1, month=6, day=1, hour=12,
                                         minute=0, second=0, microsecond=0)  # 12:00 UTC
    perf.save()
    LotteryPerformanceFactory(event=event)

    response = client.get(f"/events/{event.slug}/")
    html = response.content.decode()

    assert response.status_code == 200
    assert "20:00" in html  # 12:00 UTC is 20:00 in Hong Kong
    assert "HK$880.00" in html and "HK$480.00" in html
    assert 'class="seatmap"' in html
    assert "Real-name tickets" in html
    assert "At most 2 tickets per person per performance." in html
    assert "Lottery entry open" in html and "On sale now" in html


def test_drafts_are_404_to_the_public_but_visible_to_their_staff(client):
    event = EventFactory(title="Unannounced")
    PerformanceFactory(event=event)
    PriceZoneFactory(event=event, section_codes=["A"])

    assert client.get(f"/events/{event.slug}/").status_code == 404
    client.force_login(UserFactory())
    assert client.get(f"/events/{event.slug}/").status_code == 404
    client.force_login(staff_of(event.organizer))
    response = client.get(f"/events/{event.slug}/")
    assert response.status_code == 200
    assert "Preview" in response.content.decode()


def test_unknown_event_is_404(client):
    assert client.get("/events/no-such-thing/").status_code == 404


def test_date_filter_uses_local_days():
    from smarttickets.events.selectors import public_events

    event = published_event(title="Late")
    # 23:30 in Hong Kong on 1 June is 15:30 UTC the same day.
    event.performances.update(starts_at=clock.now().replace(
        year=clock.now().year + 1, month=6, day=1, hour=15, minute=30))
    day = date(clock.now().year + 1, 6, 1)

    assert [e.title for e in public_events(now=clock.now(), date_from=day, date_to=day)] == [
        "Late"]


def test_pages_are_translated_to_traditional_chinese(client):
    event = published_event(title="Aurora")

    home = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hant")
    detail = client.get(f"/events/{event.slug}/", HTTP_ACCEPT_LANGUAGE="zh-hant")

    assert "即將舉行的活動" in home.content.decode()
    assert "現正發售" in home.content.decode()
    assert "座位平面圖" in detail.content.decode()
    assert "Section A，1 行 1 號" in detail.content.decode()
