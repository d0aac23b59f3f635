"""The organizer dashboard driven through HTTP: venue upload, event, performance, zones, publish."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core import clock
from smarttickets.core.models import AuditEntry
from smarttickets.events.models import Event, Performance, PriceZone, Seat, Venue
from smarttickets.events.tests.factories import (
    OrganizerFactory,
    VenueFactory,
    publishable_event,
    staff_of,
)
from smarttickets.events.tests.test_seatmap import GOOD_CSV

pytestmark = pytest.mark.django_db


def local(dt) -> str:
    """What a datetime-local input would send, in Hong Kong time."""
    from zoneinfo import ZoneInfo

    return dt.astimezone(ZoneInfo("Asia/Hong_Kong")).strftime("%Y-%m-%dT%H:%M")


def test_organizer_creates_venue_event_and_publishes_it(client):
    organizer = OrganizerFactory(name="Harbour Live")
    client.force_login(staff_of(organizer))
    now = clock.now()

    # Venue from a seat-map upload.
    response = client.post("/organizer/venues/new/", {
        "name": "Star Hall", "city": "Hong Kong",
        "seatmap": SimpleUploadedFile("star.csv", GOOD_CSV.encode(), "text/csv")})
    venue = Venue.objects.get(name="Star Hall")
    assert response.status_code == 302
    assert response["Location"] == f"/organizer/venues/{venue.pk}/"
    assert Seat.objects.filter(section__venue=venue).count() == 3

    # Draft event.
    response = client.post("/organizer/events/new/", {
        "title": "Harbour Lights", "artist": "Neon Tide", "venue": venue.pk,
        "per_person_limit": 4, "hold_minutes": 10, "currency": "HKD"})
    event = Event.objects.get(title="Harbour Lights")
    assert response["Location"] == f"/organizer/events/{event.pk}/"
    assert (event.organizer, event.state) == (organizer, "draft")

    # Publishing now is refused, with the list of what is missing.
    response = client.post(f"/organizer/events/{event.pk}/publish/", follow=True)
    assert "This event cannot be published yet." in response.content.decode()
    assert "Add at least one performance." in response.content.decode()
    event.refresh_from_db()
    assert event.state == "draft"

    # A performance, typed in Hong Kong time.
    starts = (now + timedelta(days=20)).replace(second=0, microsecond=0)
    response = client.post(f"/organizer/events/{event.pk}/performances/new/", {
        "starts_at": local(starts), "sale_mode": "first_come",
        "onsale_starts_at": local(now + timedelta(days=1))})
    assert response.status_code == 302
    assert Performance.objects.get(event=event).starts_at == starts

    # Price zones by ticking sections and the standing area.
    section_a = venue.sections.get(code="A")
    floor = venue.ga_areas.get(code="FLOOR")
    client.post(f"/organizer/events/{event.pk}/zones/new/", {
        "name": "Seated", "price": "880", "color": "#4f46e5", "sections": [section_a.pk]})
    client.post(f"/organizer/events/{event.pk}/zones/new/", {
        "name": "Standing", "price": "480", "color": "#e11d74", "ga_areas": [floor.pk]})
    assert list(PriceZone.objects.filter(event=event).values_list("name", "price")) == [
        ("Seated", 880), ("Standing", 480)]

    # The confirmation page, then publish.
    confirm = client.get(f"/organizer/events/{event.pk}/publish/")
    assert "Publish now" in confirm.content.decode()
    response = client.post(f"/organizer/events/{event.pk}/publish/")
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.state == "published"
    assert client.get(f"/events/{event.slug}/").status_code == 200
    assert [a for a in AuditEntry.objects.values_list("action", flat=True).order_by("id")] == [
        "events.venue.created", "events.event.created", "events.performance.added",
        "events.price_zone.created", "events.price_zone.created", "events.event.published"]


def test_seat_map_upload_errors_name_line_and_field_and_store_nothing(client):
    organizer = OrganizerFactory()
    client.force_login(staff_of(organizer))
    bad = GOOD_CSV + "seat,A,Section A,1,2,80,100,,,,\nseat,B,,1,2,nowhere,100,,,,\n"

    response = client.post("/organizer/venues/new/", {
        "name": "Broken Hall", "city": "Hong Kong",
        "seatmap": SimpleUploadedFile("broken.csv", bad.encode(), "text/csv")})

    html = response.content.decode()
    assert response.status_code == 200
    assert "Line 7, field “number”: Duplicate seat" in html
    assert "Line 8, field “x”: “nowhere” is not a number." in html
    assert not Venue.objects.exists()


def test_zone_overlap_is_shown_on_the_form(client):
    event = publishable_event()
    client.force_login(staff_of(event.organizer))
    section_a = event.venue.sections.get(code="A")

    response = client.post(f"/organizer/events/{event.pk}/zones/new/", {
        "name": "Again", "price": "10", "color": "#000000", "sections": [section_a.pk]})

    assert response.status_code == 200
    assert "already in price zone" in response.content.decode()
    assert not PriceZone.objects.filter(name="Again").exists()


def test_performance_dates_out_of_order_are_field_errors(client):
    event = publishable_event()
    client.force_login(staff_of(event.organizer))
    now = clock.now()

    response = client.post(f"/organizer/events/{event.pk}/performances/new/", {
        "starts_at": local(now + timedelta(days=9)), "sale_mode": "first_come",
        "onsale_starts_at": local(now + timedelta(days=10))})

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "onsale_starts_at": ["Sales must start before the performance."]}
    assert event.performances.count() == 1


def test_staff_of_another_organizer_gets_404_everywhere(client):
    event = publishable_event()
    zone = event.price_zones.first()
    perf = event.performances.first()
    client.force_login(staff_of(OrganizerFactory()))

    for url in (f"/organizer/events/{event.pk}/", f"/organizer/events/{event.pk}/edit/",
                f"/organizer/events/{event.pk}/publish/",
                f"/organizer/performances/{perf.pk}/edit/", f"/organizer/zones/{zone.pk}/edit/",
                f"/organizer/venues/{event.venue_id}/"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/organizer/events/{event.pk}/publish/").status_code == 404
    assert client.post(f"/organizer/zones/{zone.pk}/delete/").status_code == 404
    event.refresh_from_db()
    assert event.state == "draft"
    assert PriceZone.objects.filter(pk=zone.pk).exists()


def test_users_without_membership_are_refused_and_anonymous_asked_to_log_in(client):
    anonymous = client.get("/organizer/")
    client.force_login(UserFactory())
    stranger = client.get("/organizer/")

    assert anonymous.status_code == 302
    assert "next=/organizer/" in anonymous["Location"]
    assert stranger.status_code == 403


def test_dashboard_lists_my_events_only(client):
    mine = publishable_event(title="Mine")
    publishable_event(title="Theirs")
    client.force_login(staff_of(mine.organizer))

    response = client.get("/organizer/")

    assert [row.event.title for row in response.context["rows"]] == ["Mine"]
    assert response.context["rows"][0].capacity == 60


def test_reimport_is_refused_on_a_venue_with_published_events(client):
    event = publishable_event()
    Event.objects.filter(pk=event.pk).update(state="published")
    client.force_login(staff_of(event.organizer))

    response = client.post(f"/organizer/venues/{event.venue_id}/", {
        "seatmap": SimpleUploadedFile("new.csv", GOOD_CSV.encode(), "text/csv")})

    assert response.status_code == 200
    assert "can no longer change" in response.content.decode()
    assert Seat.objects.filter(section__venue=event.venue).count() == 20


def test_cancel_event_through_the_form(client):
    event = publishable_event()
    client.force_login(staff_of(event.organizer))

    empty = client.post(f"/organizer/events/{event.pk}/cancel/", {"reason": ""})
    done = client.post(f"/organizer/events/{event.pk}/cancel/", {"reason": "Typhoon"})

    assert empty.status_code == 200
    assert done.status_code == 302
    event.refresh_from_db()
    assert event.state == "cancelled"


def test_every_organizer_page_renders(client):
    event = publishable_event()
    client.force_login(staff_of(event.organizer))
    venue = VenueFactory(organizer=event.organizer)

    for url in ("/organizer/", "/organizer/events/new/", f"/organizer/events/{event.pk}/",
                f"/organizer/events/{event.pk}/edit/",
                f"/organizer/events/{event.pk}/performances/new/",
                f"/organizer/performances/{event.performances.get().pk}/edit/",
                f"/organizer/events/{event.pk}/zones/new/",
                f"/organizer/zones/{event.price_zones.first().pk}/edit/",
                f"/organizer/events/{event.pk}/cancel/", "/organizer/venues/",
                "/organizer/venues/new/", f"/organizer/venues/{venue.pk}/"):
        assert client.get(url).status_code == 200, url
    export = client.get(f"/organizer/venues/{venue.pk}/seatmap.csv")
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    assert export.content.decode().count("\nseat,") == 20
