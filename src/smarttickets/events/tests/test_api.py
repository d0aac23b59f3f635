"""The events API: public list/detail/availability and token-protected organizer endpoints."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from smarttickets.accounts.api_auth import create_api_token
from smarttickets.core import clock
from smarttickets.events.models import Event, Performance, PriceZone
from smarttickets.events.tests.factories import (
    EventFactory,
    OrganizerFactory,
    VenueFactory,
    publishable_event,
    published_event,
    staff_of,
)

pytestmark = pytest.mark.django_db


def bearer(user) -> dict:
    _token, key = create_api_token(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def post(client, url, body, auth, method="post"):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json",
                                   **auth)


def test_list_search_filter_and_paginate(client):
    published_event(title="Harbour Lights", artist="Neon Tide")
    published_event(title="Jazz Night")
    EventFactory(title="Draft Only")

    everything = client.get("/api/events").json()
    searched = client.get("/api/events", {"q": "neon"}).json()
    paged = client.get("/api/events", {"page_size": 1, "page": 2}).json()

    assert everything["count"] == 2
    assert {e["title"] for e in everything["items"]} == {"Harbour Lights", "Jazz Night"}
    assert [e["title"] for e in searched["items"]] == ["Harbour Lights"]
    assert searched["items"][0]["min_price"] == "480.00"
    assert (paged["page"], paged["pages"], len(paged["items"])) == (2, 2, 1)


def test_list_rejects_bad_parameters_with_codes(client):
    bad_date = client.get("/api/events", {"date_from": "soon"})
    no_page = client.get("/api/events", {"page": 9})

    assert (bad_date.status_code, bad_date.json()["code"]) == (422, "validation_error")
    assert (no_page.status_code, no_page.json()["code"]) == (400, "invalid_page")


def test_detail_and_availability(client):
    event = published_event(title="Aurora")
    perf = event.performances.get()

    detail = client.get(f"/api/events/{event.slug}").json()
    availability = client.get(f"/api/performances/{perf.pk}/availability").json()

    assert detail["title"] == "Aurora"
    assert [(z["name"], z["price"], z["section_codes"], z["ga_area_codes"])
            for z in detail["price_zones"]] == [("Seated", "880.00", ["A"], []),
                                                ("Standing", "480.00", [], ["FLOOR"])]
    assert detail["performances"][0]["status"] == "on_sale"
    assert availability["status"] == "on_sale"
    assert [(z["name"], z["capacity"], z["available"]) for z in availability["zones"]] == [
        ("Seated", 10, 10), ("Standing", 50, 50)]


def test_drafts_are_not_found_in_the_public_api(client):
    event = publishable_event()
    perf = event.performances.get()

    assert client.get(f"/api/events/{event.slug}").json() == {"code": "not_found",
                                                               "message": "Event not found."}
    assert client.get(f"/api/performances/{perf.pk}/availability").status_code == 404


def test_organizer_builds_and_publishes_an_event_through_the_api(client):
    venue = VenueFactory()
    auth = bearer(staff_of(venue.organizer))
    now = clock.now()

    created = post(client, "/api/organizer/events", {
        "venue_id": venue.pk, "title": "API Show", "artist": "Curl", "per_person_limit": 2},
        auth)
    event_id = created.json()["id"]
    patched = post(client, f"/api/organizer/events/{event_id}",
                   {"description": "Now with words"}, auth, method="patch")
    perf = post(client, f"/api/organizer/events/{event_id}/performances", {
        "starts_at": (now + timedelta(days=20)).isoformat(), "sale_mode": "lottery",
        "entry_opens_at": (now + timedelta(days=1)).isoformat(),
        "entry_closes_at": (now + timedelta(days=3)).isoformat(),
        "draw_at": (now + timedelta(days=3)).isoformat(),
        "purchase_opens_at": (now + timedelta(days=4)).isoformat(),
        "purchase_closes_at": (now + timedelta(days=6)).isoformat()}, auth)
    zone = post(client, f"/api/organizer/events/{event_id}/price-zones", {
        "name": "Everything", "price": "399.5", "section_codes": ["A", "B"],
        "ga_area_codes": ["FLOOR"]}, auth)
    published = post(client, f"/api/organizer/events/{event_id}/publish", {}, auth)

    assert created.status_code == 201
    assert created.json()["state"] == "draft"
    assert patched.json()["description"] == "Now with words"
    assert (perf.status_code, perf.json()["status"]) == (201, "entry_upcoming")
    assert zone.status_code == 201
    assert (zone.json()["price"], zone.json()["capacity"]) == ("399.50", 70)
    assert published.json()["state"] == "published"
    assert Event.objects.get(pk=event_id).state == "published"


def test_naive_times_are_read_as_hong_kong_time(client):
    event = EventFactory()
    auth = bearer(staff_of(event.organizer))
    year = clock.now().year + 1

    response = post(client, f"/api/organizer/events/{event.pk}/performances", {
        "starts_at": f"{year}-06-01T20:00:00", "sale_mode": "first_come",
        "onsale_starts_at": f"{year}-05-01T10:00:00"}, auth)

    assert response.status_code == 201
    assert datetime.fromisoformat(response.json()["starts_at"]) == datetime(year, 6, 1, 12,
                                                                            tzinfo=UTC)


def test_publish_problems_come_back_as_409(client):
    event = EventFactory()
    auth = bearer(staff_of(event.organizer))

    response = post(client, f"/api/organizer/events/{event.pk}/publish", {}, auth)

    assert response.status_code == 409
    assert response.json()["code"] == "not_publishable"
    assert response.json()["fields"]["problems"] == ["Add at least one performance.",
                                                     "Add at least one price zone."]
    event.refresh_from_db()
    assert event.state == "draft"


def test_other_organizers_events_are_404_and_nothing_changes(client):
    event = publishable_event(title="Theirs")
    auth = bearer(staff_of(OrganizerFactory()))

    patched = post(client, f"/api/organizer/events/{event.pk}", {"title": "Mine now"}, auth,
                   method="patch")
    published = post(client, f"/api/organizer/events/{event.pk}/publish", {}, auth)
    perf = post(client, f"/api/organizer/events/{event.pk}/performances", {
        "starts_at": (clock.now() + timedelta(days=9)).isoformat(), "sale_mode": "first_come",
        "onsale_starts_at": clock.now().isoformat()}, auth)
    zone = post(client, f"/api/organizer/events/{event.pk}/price-zones",
                {"name": "Z", "price": "1"}, auth)

    assert [r.status_code for r in (patched, published, perf, zone)] == [404] * 4
    assert patched.json()["code"] == "not_found"
    event.refresh_from_db()
    assert (event.title, event.state) == ("Theirs", "draft")
    assert Performance.objects.filter(event=event).count() == 1
    assert PriceZone.objects.filter(event=event).count() == 2


def test_organizer_endpoints_need_a_token(client):
    venue = VenueFactory()

    response = post(client, "/api/organizer/events", {"venue_id": venue.pk, "title": "X"}, {})

    assert (response.status_code, response.json()["code"]) == (401, "unauthorized")
    assert not Event.objects.exists()


def test_domain_errors_are_json_with_fields(client):
    venue = VenueFactory()
    auth = bearer(staff_of(venue.organizer))

    response = post(client, "/api/organizer/events",
                    {"venue_id": venue.pk, "title": "  ", "hold_minutes": 500}, auth)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert set(response.json()["fields"]) == {"title", "hold_minutes"}
    assert not Event.objects.exists()
