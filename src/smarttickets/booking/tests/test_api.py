"""The booking API over real HTTP: availability, holds, release, orders, idempotency."""

import json
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from smarttickets.accounts.api_auth import create_api_token
from smarttickets.booking import services
from smarttickets.booking.models import Hold, InventoryBucket
from smarttickets.booking.tests.factories import buyer, ga_performance, seated_performance
from smarttickets.core.idempotency import IdempotencyKey
from smarttickets.events.models import Performance

pytestmark = pytest.mark.django_db


def auth(user) -> dict:
    _, key = create_api_token(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def post(client, url, body, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def taken(performance) -> int:
    return InventoryBucket.objects.filter(performance=performance).aggregate(
        n=Sum("taken"))["n"] or 0


def test_availability_lists_zones_and_taken_seats(client):
    performance, zone, seats = seated_performance()
    services.create_hold(user=buyer(), performance=performance, now=timezone.now(),
                         selection=services.Selection(seat_ids=(seats[3].pk,)))

    response = client.get(f"/api/booking/performances/{performance.pk}/availability")

    assert response.status_code == 200
    body = response.json()
    assert body["sale_open"] is True
    assert body["zones"] == [{"zone_id": zone.pk, "name": "Stalls", "price": "880.00",
                              "currency": "HKD", "capacity": 10, "available": 9,
                              "seated": True}]
    assert body["unavailable_seat_ids"] == [seats[3].pk]


def test_create_hold_by_quantity_then_release(client):
    performance, zone = ga_performance(capacity=10)
    user = buyer()
    headers = auth(user)

    response = post(client, f"/api/booking/performances/{performance.pk}/holds",
                    {"zone_id": zone.pk, "quantity": 2}, **headers)

    assert response.status_code == 201, response.content
    hold = response.json()
    assert hold["quantity"] == 2 and hold["state"] == "live" and hold["total"] == "960.00"
    assert taken(performance) == 2

    response = client.delete(f"/api/booking/holds/{hold['id']}", **headers)
    assert response.status_code == 200
    assert response.json()["state"] == "released"
    assert taken(performance) == 0
    # Releasing again: the hold is no longer live → 404, nothing changes.
    response = post(client, f"/api/booking/holds/{hold['id']}/release", {}, **headers)
    assert response.status_code == 404
    assert taken(performance) == 0


def test_someone_elses_hold_is_not_found(client):
    performance, zone = ga_performance()
    owner = buyer()
    hold = services.create_hold(user=owner, performance=performance, now=timezone.now(),
                                selection=services.Selection(zone_id=zone.pk, quantity=1))

    response = client.delete(f"/api/booking/holds/{hold.pk}", **auth(buyer()))
    missing = client.delete("/api/booking/holds/999999", **auth(buyer()))

    assert response.status_code == 404 and missing.status_code == 404
    assert response.json() == missing.json()
    assert Hold.objects.get(pk=hold.pk).state == Hold.State.LIVE


@pytest.mark.parametrize("body, status, code", [
    ({"zone_id": None, "quantity": 0}, 400, "invalid_selection"),
    ({"quantity": 0, "zone_id": "ZONE"}, 400, "invalid_selection"),
    ({"seat_ids": [987654]}, 400, "invalid_selection"),
    ({"quantity": 99, "zone_id": "ZONE"}, 422, "validation_error"),
    ({"quantity": "two", "zone_id": "ZONE"}, 422, "validation_error"),
])
def test_bad_hold_requests_are_refused_with_a_code(client, body, status, code):
    performance, zone = ga_performance()
    body = {k: (zone.pk if v == "ZONE" else v) for k, v in body.items()}

    response = post(client, f"/api/booking/performances/{performance.pk}/holds", body,
                    **auth(buyer()))

    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert Hold.objects.count() == 0


def test_sale_not_open_and_unverified_buyer(client):
    performance, zone = ga_performance()
    Performance.objects.filter(pk=performance.pk).update(
        onsale_starts_at=timezone.now() + timedelta(hours=1))
    url = f"/api/booking/performances/{performance.pk}/holds"

    closed = post(client, url, {"zone_id": zone.pk, "quantity": 1}, **auth(buyer()))
    from smarttickets.accounts.tests.factories import UserFactory
    unverified = post(client, url, {"zone_id": zone.pk, "quantity": 1}, **auth(UserFactory()))

    assert (closed.status_code, closed.json()["code"]) == (409, "sale_not_open")
    assert (unverified.status_code, unverified.json()["code"]) == (403, "identity_required")
    assert Hold.objects.count() == 0


def test_limit_hit_says_which_limit(client):
    performance, zone = ga_performance(capacity=20)
    headers = auth(buyer())
    url = f"/api/booking/performances/{performance.pk}/holds"
    post(client, url, {"zone_id": zone.pk, "quantity": 4}, **headers)

    response = post(client, url, {"zone_id": zone.pk, "quantity": 1}, **headers)

    assert response.status_code == 409
    assert response.json()["code"] == "limit_reached"
    assert response.json()["limit"] == "per_person"


def test_idempotent_retry_returns_the_same_hold_once(client):
    performance, zone = ga_performance(capacity=10)
    headers = {**auth(buyer()), "HTTP_IDEMPOTENCY_KEY": "retry-1"}
    url = f"/api/booking/performances/{performance.pk}/holds"

    first = post(client, url, {"zone_id": zone.pk, "quantity": 2}, **headers)
    second = post(client, url, {"zone_id": zone.pk, "quantity": 2}, **headers)

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Hold.objects.count() == 1
    assert taken(performance) == 2


def test_idempotency_key_reused_for_another_request_is_refused(client):
    performance, zone = ga_performance(capacity=10)
    headers = {**auth(buyer()), "HTTP_IDEMPOTENCY_KEY": "k"}
    url = f"/api/booking/performances/{performance.pk}/holds"
    post(client, url, {"zone_id": zone.pk, "quantity": 1}, **headers)

    response = post(client, url, {"zone_id": zone.pk, "quantity": 3}, **headers)

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert taken(performance) == 1


def test_concurrent_duplicate_gets_409_with_retry_after(client):
    performance, zone = ga_performance(capacity=10)
    user = buyer()
    headers = {**auth(user), "HTTP_IDEMPOTENCY_KEY": "inflight"}
    url = f"/api/booking/performances/{performance.pk}/holds"
    body = json.dumps({"zone_id": zone.pk, "quantity": 1})
    from hashlib import sha256
    IdempotencyKey.objects.create(
        user=user, key="inflight", method="POST", path=url, created_at=timezone.now(),
        request_hash=sha256(b"POST\0" + url.encode() + b"\0" + body.encode()).hexdigest())

    response = client.post(url, body, content_type="application/json", **headers)

    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert response.json()["code"] == "idempotency_in_flight"
    assert Hold.objects.count() == 0


def test_refusals_are_replayed_too_but_retryable_ones_are_not_stored(client):
    performance, zone = ga_performance(capacity=1)
    headers = {**auth(buyer()), "HTTP_IDEMPOTENCY_KEY": "sold-out"}
    url = f"/api/booking/performances/{performance.pk}/holds"

    first = post(client, url, {"zone_id": zone.pk, "quantity": 2}, **headers)

    assert first.status_code == 409 and first.json()["code"] == "sold_out"
    assert IdempotencyKey.objects.count() == 0  # 409: the client may retry with the same key


def test_order_status_and_my_tickets(client):
    performance, zone = ga_performance()
    user = buyer()
    hold = services.create_hold(user=user, performance=performance, now=timezone.now(),
                                selection=services.Selection(zone_id=zone.pk, quantity=2))
    order = services.place_order(hold=hold, buyer=user, holder_names=[], now=timezone.now())
    services.mark_order_paid(order_id=order.pk, provider="sandbox", payment_reference="p1",
                             amount_minor=96000, currency="HKD", card_fingerprint="",
                             now=timezone.now())
    headers = auth(user)

    status = client.get(f"/api/booking/orders/{order.code}", **headers)
    mine = client.get("/api/tickets/mine", **headers)
    other = client.get(f"/api/booking/orders/{order.code}", **auth(buyer()))

    assert status.status_code == 200 and status.json()["state"] == "paid"
    assert len(status.json()["ticket_ids"]) == 2
    assert [t["order_code"] for t in mine.json()] == [order.code, order.code]
    assert mine.json()[0]["holder_name"] == user.legal_name
    assert other.status_code == 404


def test_booking_endpoints_are_in_the_openapi_schema(client):
    paths = client.get("/api/openapi.json").json()["paths"]

    for path in ("/api/booking/performances/{performance_id}/availability",
                 "/api/booking/performances/{performance_id}/holds",
                 "/api/booking/holds/{hold_id}", "/api/booking/holds/{hold_id}/release",
                 "/api/booking/orders/{code}", "/api/tickets/mine"):
        assert path in paths
