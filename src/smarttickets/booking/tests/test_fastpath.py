"""The lean hold entry (booking/fastpath.py via smarttickets.wsgi) answers byte for byte as the
ninja endpoint does, from caches that expire as documented."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.db.models import Sum
from django.test import RequestFactory, override_settings
from django.utils import timezone

from smarttickets.accounts.api_auth import create_api_token
from smarttickets.accounts.models import ApiToken
from smarttickets.booking import fastpath, groupcommit, services
from smarttickets.booking.inventory import ensure_inventory
from smarttickets.booking.models import Hold, HoldItem, InventoryBucket
from smarttickets.booking.tests.factories import buyer, ga_performance
from smarttickets.core import clock
from smarttickets.core.idempotency import IdempotencyKey
from smarttickets.core.models import AuditEntry
from smarttickets.events.models import Performance
from smarttickets.wsgi import application

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches():
    fastpath.tokens.clear()
    fastpath.catalogue.clear()
    yield
    fastpath.tokens.clear()
    fastpath.catalogue.clear()


class WsgiResponse:
    def __init__(self, status: str, headers: list[tuple[str, str]], content: bytes) -> None:
        self.status_code = int(status.split(" ", 1)[0])
        self.headers = dict(headers)
        self.content = content

    def json(self):
        return json.loads(self.content)


def environ(url: str, body, **extra) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RequestFactory().post(url, raw, content_type="application/json", **extra).environ


def call(env: dict) -> WsgiResponse:
    """Through the real WSGI entry point, as gunicorn calls it; like Django's test client,
    without closing the test's database connection at the request's start and end."""
    started = {}

    def start_response(status, headers):
        started.update(status=status, headers=headers)

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = application(env, start_response)
        try:
            content = b"".join(result)
        finally:
            result.close()  # request_finished, as the server sends it
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return WsgiResponse(started["status"], started["headers"], content)


def fast(url: str, body, **extra) -> WsgiResponse:
    env = environ(url, body, **extra)
    assert fastpath.wants(env)
    return call(env)


def ninja(client, url: str, body, **extra):
    raw = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(url, raw, content_type="application/json", **extra)


def token_for(user) -> dict:
    _, key = create_api_token(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def same_answer(ours: WsgiResponse, theirs) -> None:
    assert ours.status_code == theirs.status_code
    assert ours.content == theirs.content
    assert ours.headers == dict(theirs.headers)


def taken(performance) -> int:
    return InventoryBucket.objects.filter(performance=performance).aggregate(
        n=Sum("taken"))["n"] or 0


def url_of(performance) -> str:
    return f"/api/booking/performances/{performance.pk}/holds"


# --- routing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, headers, body, taken_by_fast_path", [
    ("post", "/api/booking/performances/7/holds", {"HTTP_AUTHORIZATION": "Bearer st_x"},
     b"{}", True),
    ("post", "/api/booking/performances/7/holds", {"HTTP_AUTHORIZATION": "bearer st_x"},
     b"{}", True),
    ("get", "/api/booking/performances/7/holds", {"HTTP_AUTHORIZATION": "Bearer st_x"},
     b"", False),
    ("post", "/api/booking/performances/7/holds", {}, b"{}", False),
    ("post", "/api/booking/performances/7/holds", {"HTTP_AUTHORIZATION": "Basic eDp5"},
     b"{}", False),
    ("post", "/api/booking/performances/7/holds/", {"HTTP_AUTHORIZATION": "Bearer st_x"},
     b"{}", False),
    ("post", "/api/booking/performances/7/availability",
     {"HTTP_AUTHORIZATION": "Bearer st_x"}, b"{}", False),
    ("post", "/api/booking/performances/1234567890123456789/holds",
     {"HTTP_AUTHORIZATION": "Bearer st_x"}, b"{}", False),
    ("post", "/api/booking/performances/7/holds",
     {"HTTP_AUTHORIZATION": "Bearer st_x", "HTTP_COOKIE": "sessionid=abc; st_device=d"},
     b"{}", False),
    ("post", "/api/booking/performances/7/holds",
     {"HTTP_AUTHORIZATION": "Bearer st_x", "HTTP_COOKIE": "st_device=d"}, b"{}", True),
    ("post", "/api/booking/performances/7/holds", {"HTTP_AUTHORIZATION": "Bearer st_x"},
     b" " * 5000, False),
])
def test_only_the_hold_post_with_a_bearer_token_and_no_session_takes_the_fast_path(
        method, path, headers, body, taken_by_fast_path):
    factory = RequestFactory()
    if method == "get":
        env = factory.get(path, **headers).environ
    else:
        env = factory.post(path, body, content_type="application/json", **headers).environ

    assert fastpath.wants(env) is taken_by_fast_path


def test_every_installed_middleware_is_either_kept_or_skipped_for_a_reason(settings):
    assert fastpath.enabled() is True
    for name in settings.MIDDLEWARE:
        assert name in fastpath.KEPT_MIDDLEWARE or fastpath.SKIPPED_MIDDLEWARE[name]

    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "example.middleware.NobodyReviewedThis"]

    assert fastpath.enabled() is False


# --- same answers as the ninja endpoint ------------------------------------------------------

def test_a_hold_is_answered_byte_for_byte_as_ninja_answers_it(client):
    performance, zone = ga_performance(capacity=10)
    body = {"zone_id": zone.pk, "quantity": 2}
    at = timezone.now().replace(microsecond=123456)

    with clock.frozen(at):
        theirs = ninja(client, url_of(performance), body, **token_for(buyer()))
        ours = fast(url_of(performance), body, **token_for(buyer()))

    assert ours.status_code == 201, ours.content
    mine, other = ours.json()["id"], theirs.json()["id"]
    assert ours.content == theirs.content.replace(f'"id": {other},'.encode(),
                                                  f'"id": {mine},'.encode())
    assert ours.headers == dict(theirs.headers)
    assert ours.json()["total"] == "960.00"
    hold = Hold.objects.get(pk=mine)
    assert (hold.quantity, hold.state, hold.expires_at) == (2, "live", at + timedelta(minutes=10))
    assert AuditEntry.objects.filter(action="hold.created", object_id=str(mine)).count() == 1
    assert taken(performance) == 4


@pytest.mark.parametrize("body, content_type", [
    ('{"zone_id": ZONE, "quantity": 1}', "application/json"),  # the common shape
    ('{"quantity": 1, "zone_id": ZONE}', "application/json"),
    ('{"zone_id": ZONE, "quantity": 20}', "application/json"),
    ('{"zone_id": ZONE, "quantity": "1"}', "application/json"),  # lax pydantic: accepted
    ('{"zone_id": ZONE, "quantity": 1.0}', "application/json"),
    ('{"zone_id": "ZONE", "quantity": 1}', "application/json"),
    ('{"zone_id": ZONE, "quantity": true}', "application/json"),
    ('{"zone_id": ZONE, "quantity": 21}', "application/json"),
    ('{"zone_id": ZONE, "quantity": -1}', "application/json"),
    ('{"zone_id": ZONE, "quantity": 0}', "application/json"),
    ('{"zone_id": null, "quantity": 1}', "application/json"),
    ('{"zone_id": ZONE, "quantity": 1, "entitlement_id": null}', "application/json"),
    ('{"zone_id": ZONE, "quantity": 1}', "text/plain"),
    ('{"zone_id": ZONE, "quantity": 1}', "application/json; charset=utf-8"),
])
def test_bodies_near_the_common_shape_get_ninjas_answer(client, body, content_type):
    """The lean entry checks the common body itself; whatever it does not take, and whatever
    it takes, is answered exactly as ninja answers it."""
    performance, zone = ga_performance(capacity=100)
    raw = body.replace("ZONE", str(zone.pk)).encode()
    at = timezone.now().replace(microsecond=123456)
    with clock.frozen(at):
        theirs = client.post(url_of(performance), raw, content_type=content_type,
                             **token_for(buyer()))
        ours = call(RequestFactory().post(url_of(performance), raw, content_type=content_type,
                                          **token_for(buyer())).environ)

    assert ours.status_code == theirs.status_code
    assert ours.headers == dict(theirs.headers)
    if ours.status_code == 201:
        mine, other = ours.json()["id"], theirs.json()["id"]
        assert ours.content == theirs.content.replace(f'"id": {other},'.encode(),
                                                      f'"id": {mine},'.encode())
    else:
        assert ours.content == theirs.content


@pytest.mark.parametrize("body", [
    {"quantity": 99, "zone_id": "ZONE"},
    {"quantity": "two", "zone_id": "ZONE"},
    {"seat_ids": list(range(21))},
    {"zone_id": "ZONE", "quantity": 1, "seat_ids": "7"},
    [1, 2],
    None,
    b"",
    b"{not json",
    b"\xff\xfe",
])
def test_bad_bodies_get_ninjas_exact_refusal(client, body):
    performance, zone = ga_performance(capacity=10)
    user = buyer()
    if isinstance(body, dict):
        body = {k: (zone.pk if v == "ZONE" else v) for k, v in body.items()}

    theirs = ninja(client, url_of(performance), body, **token_for(user))
    ours = fast(url_of(performance), body, **token_for(user))

    assert ours.status_code in (400, 422)
    same_answer(ours, theirs)
    assert Hold.objects.count() == 0


def test_a_token_nobody_knows_gets_401_from_both_entries(client):
    performance, zone = ga_performance(capacity=10)
    body = {"zone_id": zone.pk, "quantity": 1}
    headers = {"HTTP_AUTHORIZATION": "Bearer st_not-a-token"}

    theirs = ninja(client, url_of(performance), body, **headers)
    ours = fast(url_of(performance), body, **headers)

    assert ours.status_code == 401
    assert ours.json() == {"code": "unauthorized", "message": "A valid API token is required."}
    same_answer(ours, theirs)
    assert Hold.objects.count() == 0


@pytest.mark.parametrize("case", ["sale_closed", "limit_reached", "sold_out", "no_zone",
                                  "no_performance", "identity_required"])
def test_refusals_are_answered_byte_for_byte_as_ninja_answers_them(client, case):
    performance, zone = ga_performance(capacity=3 if case == "sold_out" else 20)
    ours_user, their_user = buyer(), buyer()
    body = {"zone_id": zone.pk, "quantity": 2}
    url = url_of(performance)
    if case == "sale_closed":
        Performance.objects.filter(pk=performance.pk).update(
            onsale_starts_at=timezone.now() + timedelta(hours=1))
    elif case == "limit_reached":
        for user in (ours_user, their_user):
            services.create_hold(user=user, performance=performance, now=timezone.now(),
                                 selection=services.Selection(zone_id=zone.pk, quantity=3))
    elif case == "sold_out":
        services.create_hold(user=buyer(), performance=performance, now=timezone.now(),
                             selection=services.Selection(zone_id=zone.pk, quantity=2))
    elif case == "no_zone":
        body["zone_id"] = zone.pk + 1000
    elif case == "no_performance":
        url = "/api/booking/performances/987654/holds"
    elif case == "identity_required":
        ours_user.phone_verified_at = their_user.phone_verified_at = None
        ours_user.save(update_fields=["phone_verified_at"])
        their_user.save(update_fields=["phone_verified_at"])
    holds_before, taken_before = Hold.objects.count(), taken(performance)

    theirs = ninja(client, url, body, **token_for(their_user))
    ours = fast(url, body, **token_for(ours_user))

    assert ours.status_code in (400, 403, 404, 409), ours.content
    same_answer(ours, theirs)
    assert Hold.objects.count() == holds_before
    assert taken(performance) == taken_before


def test_an_idempotent_retry_replays_the_first_answer_across_both_entries(client):
    performance, zone = ga_performance(capacity=10)
    headers = {**token_for(buyer()), "HTTP_IDEMPOTENCY_KEY": "retry-1"}
    body = {"zone_id": zone.pk, "quantity": 2}

    first = fast(url_of(performance), body, **headers)
    again = fast(url_of(performance), body, **headers)
    via_ninja = ninja(client, url_of(performance), body, **headers)

    assert first.status_code == again.status_code == via_ninja.status_code == 201
    assert again.content == via_ninja.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert via_ninja["Idempotent-Replayed"] == "true"
    assert Hold.objects.count() == 1
    assert IdempotencyKey.objects.get().response_status == 201
    assert taken(performance) == 2


def test_an_idempotency_key_reused_for_another_body_is_refused_by_the_fast_path(client):
    performance, zone = ga_performance(capacity=10)
    headers = {**token_for(buyer()), "HTTP_IDEMPOTENCY_KEY": "k"}
    fast(url_of(performance), {"zone_id": zone.pk, "quantity": 1}, **headers)

    ours = fast(url_of(performance), {"zone_id": zone.pk, "quantity": 3}, **headers)
    theirs = ninja(client, url_of(performance), {"zone_id": zone.pk, "quantity": 3}, **headers)

    assert ours.status_code == 422 and ours.json()["code"] == "idempotency_key_reused"
    same_answer(ours, theirs)
    assert taken(performance) == 1


def test_error_messages_follow_accept_language_like_the_api(client):
    performance, zone = ga_performance(capacity=10)
    Performance.objects.filter(pk=performance.pk).update(cancelled=True)
    user = buyer()
    body = {"zone_id": zone.pk, "quantity": 1}

    theirs = ninja(client, url_of(performance), body, HTTP_ACCEPT_LANGUAGE="zh-hant",
                   **token_for(user))
    ours = fast(url_of(performance), body, HTTP_ACCEPT_LANGUAGE="zh-hant", **token_for(user))

    same_answer(ours, theirs)
    assert ours.headers["Content-Language"] == "zh-hant"
    assert ours.json()["code"] == "sale_not_open"


# --- caches and their limits -----------------------------------------------------------------

def test_the_fast_path_reads_nothing_but_the_holds_transaction_from_the_database(
        django_assert_num_queries):
    performance, zone = ga_performance(capacity=50)
    ensure_inventory(performance=performance)
    headers = token_for(buyer())
    body = {"zone_id": zone.pk, "quantity": 1}
    fast(url_of(performance), body, **headers)  # token, performance and zones are now cached

    # savepoint, buyer lock, per-person count, counter UPDATE, hold, items, audit, release
    with django_assert_num_queries(8):
        response = fast(url_of(performance), body, **headers)

    assert response.status_code == 201, response.content
    assert taken(performance) == 2


def test_a_revoked_token_works_until_the_cache_entry_expires_then_gets_401():
    performance, zone = ga_performance(capacity=10)
    user = buyer()
    token, key = create_api_token(user=user, name="app")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    body = {"zone_id": zone.pk, "quantity": 1}
    start = timezone.now()
    with clock.frozen(start):
        assert fast(url_of(performance), body, **headers).status_code == 201
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=start)

    with clock.frozen(start + timedelta(seconds=fastpath.TOKEN_TTL_S - 1)):
        within = fast(url_of(performance), body, **headers)
    with clock.frozen(start + timedelta(seconds=fastpath.TOKEN_TTL_S)):
        after = fast(url_of(performance), body, **headers)
    assert within.status_code == 201
    assert after.status_code == 401
    assert after.json()["code"] == "unauthorized"
    assert Hold.objects.filter(user=user).count() == 2

    # Another server, which has not cached the token yet, refuses it at once.
    fastpath.tokens.local.clear()
    with clock.frozen(start + timedelta(seconds=1)):
        other_server = fast(url_of(performance), body, **headers)
    assert other_server.status_code == 401


def test_a_deactivated_buyer_is_refused_once_the_token_entry_expires():
    performance, zone = ga_performance(capacity=10)
    user = buyer()
    headers = token_for(user)
    body = {"zone_id": zone.pk, "quantity": 1}
    start = timezone.now()
    with clock.frozen(start):
        fast(url_of(performance), body, **headers)
    user.is_active = False
    user.save(update_fields=["is_active"])

    with clock.frozen(start + timedelta(seconds=fastpath.TOKEN_TTL_S + 1)):
        response = fast(url_of(performance), body, **headers)

    assert response.status_code == 401
    assert Hold.objects.filter(user=user).count() == 1


def test_token_use_is_recorded_in_batches_not_per_request(monkeypatch):
    performance, zone = ga_performance(capacity=50)
    tokens = [create_api_token(user=buyer(), name="app") for _ in range(3)]
    body = {"zone_id": zone.pk, "quantity": 1}
    monkeypatch.setattr(fastpath.tokens, "_touched_at", 0.0)  # the next use flushes

    for _token, key in tokens:
        fast(url_of(performance), body, HTTP_AUTHORIZATION=f"Bearer {key}")

    used = dict(ApiToken.objects.filter(pk__in=[t.pk for t, _k in tokens])
                .values_list("pk", "last_used_at"))
    assert used[tokens[0][0].pk] is not None  # flushed with the first use
    assert used[tokens[1][0].pk] is None and used[tokens[2][0].pk] is None  # next batch
    assert fastpath.tokens._touched == {tokens[1][0].pk, tokens[2][0].pk}


def test_a_cancelled_performance_stops_selling_within_the_catalogue_ttl(monkeypatch):
    performance, zone = ga_performance(capacity=10)
    seconds = [100.0]
    monkeypatch.setattr(fastpath.catalogue, "monotonic", lambda: seconds[0])
    headers = token_for(buyer())
    body = {"zone_id": zone.pk, "quantity": 1}

    assert fast(url_of(performance), body, **headers).status_code == 201
    Performance.objects.filter(pk=performance.pk).update(cancelled=True)
    seconds[0] = 100.9
    within = fast(url_of(performance), body, **headers)  # still cached
    seconds[0] = 101.0
    after = fast(url_of(performance), body, **headers)  # read again

    assert within.status_code == 201
    assert (after.status_code, after.json()["code"]) == (409, "sale_not_open")
    assert taken(performance) == 2


def test_an_unexpected_error_is_a_json_500_without_details(monkeypatch):
    performance, zone = ga_performance(capacity=10)

    def broken(**kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(services, "create_hold", broken)

    response = fast(url_of(performance), {"zone_id": zone.pk, "quantity": 1},
                    **token_for(buyer()))

    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["code"] == "server_error"
    assert b"hunter2" not in response.content
    assert Hold.objects.count() == 0


# --- the race, on PostgreSQL, through the real group commit ----------------------------------

@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@override_settings(BOOKING_GROUP_COMMIT=True)
def test_200_buyers_racing_through_the_fast_path_for_50_places_get_exactly_50():
    performance, zone = ga_performance(capacity=50)
    ensure_inventory(performance=performance)
    keys = [create_api_token(user=buyer(), name="race")[1] for _ in range(200)]
    body = json.dumps({"zone_id": zone.pk, "quantity": 1}).encode()
    envs = [environ(url_of(performance), body, HTTP_AUTHORIZATION=f"Bearer {k}",
                    REMOTE_ADDR=f"10.0.{i // 250}.{i % 250 + 1}") for i, k in enumerate(keys)]
    threads_n = 32
    barrier = threading.Barrier(threads_n)
    answers: list = [None] * len(envs)

    def run(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(worker, len(envs), threads_n):
                answers[i] = call(envs[i])
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    committer = groupcommit._get()
    groupcommit.stop()
    fastpath.reader.stop()

    outcomes = Counter((a.status_code, a.json()["code"] if a.status_code != 201 else "")
                       for a in answers)
    assert outcomes == {(201, ""): 50, (409, "sold_out"): 150}
    assert taken(performance) == 50
    assert HoldItem.objects.filter(hold__performance=performance).count() == 50
    assert AuditEntry.objects.filter(action="hold.created").count() == 50
    assert committer.batches < committer.requests


def test_the_openapi_schema_still_documents_the_ninja_endpoint(client):
    paths = client.get("/api/openapi.json").json()["paths"]

    operation = paths["/api/booking/performances/{performance_id}/holds"]["post"]

    assert re.search("Idempotency-Key", operation["summary"])
    assert {"201", "409", "422"} <= set(operation["responses"])
