"""The on-sale hot path: holds recorded in groups (one transaction, one counter bump), a lean
API request (query budget, token bookkeeping) and velocity counters in one Redis round trip."""

import json
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import close_old_connections, connection
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone

from smarttickets.accounts.api_auth import create_api_token
from smarttickets.accounts.models import ApiToken
from smarttickets.booking import groupcommit, services
from smarttickets.booking.exceptions import BookingLimitReached, SeatsUnavailable, SoldOut
from smarttickets.booking.inventory import ensure_inventory
from smarttickets.booking.models import Hold, HoldItem, InventoryBucket, LimitHit, SeatClaim
from smarttickets.booking.tests.factories import buyer, ga_performance, seated_performance
from smarttickets.core.models import AuditEntry


def taken(performance) -> int:
    return InventoryBucket.objects.filter(performance=performance).aggregate(
        n=Sum("taken"))["n"] or 0


def ga_request(user, performance, zone, quantity, now=None):
    return services.HoldRequest(
        user=user, performance=performance, event=performance.event, zones={zone.pk: zone},
        zone_units=Counter({zone.pk: quantity}), seat_ids=[], seat_zone={}, quantity=quantity,
        now=now or timezone.now(), ip=None, device_id="", entitlement=None)


def seat_request(user, performance, zone, seat):
    return services.HoldRequest(
        user=user, performance=performance, event=performance.event, zones={zone.pk: zone},
        zone_units=Counter({zone.pk: 1}), seat_ids=[seat.pk], seat_zone={seat.pk: zone},
        quantity=1, now=timezone.now(), ip=None, device_id="", entitlement=None)


@pytest.mark.django_db
def test_a_batch_records_every_hold_with_items_and_audit_in_one_go():
    performance, zone = ga_performance(capacity=50)
    ensure_inventory(performance=performance)
    users = [buyer() for _ in range(3)]

    results = services.record_holds([ga_request(u, performance, zone, 2) for u in users])

    assert [type(r) for r in results] == [Hold, Hold, Hold]
    assert [r.user_id for r in results] == [u.pk for u in users]
    assert taken(performance) == 6
    assert HoldItem.objects.filter(hold__performance=performance).count() == 6
    assert AuditEntry.objects.filter(action="hold.created", object_id__in=[
        str(r.pk) for r in results]).count() == 3
    assert [i.price for i in results[0].items.all()] == [zone.price, zone.price]


@pytest.mark.django_db
def test_a_buyer_twice_in_one_batch_is_held_to_the_per_person_limit():
    performance, zone = ga_performance(capacity=50, per_person_limit=4)
    ensure_inventory(performance=performance)
    user, other = buyer(), buyer()

    first, second, third = services.record_holds([
        ga_request(user, performance, zone, 3), ga_request(user, performance, zone, 2),
        ga_request(other, performance, zone, 2)])

    assert isinstance(first, Hold) and isinstance(third, Hold)
    assert isinstance(second, BookingLimitReached) and second.limit == "per_person"
    assert Hold.objects.filter(user=user).count() == 1
    assert taken(performance) == 5
    hit = LimitHit.objects.get()
    assert (hit.limit, hit.user_id, hit.subject) == ("per_person", user.pk, str(user.pk))


@pytest.mark.django_db
def test_near_a_sell_out_a_batch_grants_what_fits_and_refuses_the_rest():
    performance, zone = ga_performance(capacity=5)
    ensure_inventory(performance=performance)
    users = [buyer() for _ in range(3)]

    results = services.record_holds([ga_request(u, performance, zone, 2) for u in users])

    assert [type(r) for r in results] == [Hold, Hold, SoldOut]
    assert taken(performance) == 4
    assert not Hold.objects.filter(user=users[2]).exists()
    assert not AuditEntry.objects.filter(actor=users[2]).exists()


@pytest.mark.django_db
def test_two_requests_for_one_seat_in_a_batch_give_it_to_the_first_only():
    performance, zone, seats = seated_performance()
    ensure_inventory(performance=performance)
    a, b = buyer(), buyer()

    first, second = services.record_holds([seat_request(a, performance, zone, seats[0]),
                                           seat_request(b, performance, zone, seats[0])])

    assert isinstance(first, Hold)
    assert isinstance(second, SeatsUnavailable) and second.seat_ids == [seats[0].pk]
    assert list(SeatClaim.objects.values_list("seat_id", "hold_id")) == [(seats[0].pk,
                                                                          first.pk)]
    assert taken(performance) == 1
    assert not Hold.objects.filter(user=b).exists()


@pytest.mark.django_db
def test_expired_holds_do_not_count_against_the_limit_in_a_batch():
    performance, zone = ga_performance(capacity=50, per_person_limit=4)
    ensure_inventory(performance=performance)
    user = buyer()
    now = timezone.now()
    services.record_holds([ga_request(user, performance, zone, 4, now=now)])

    later = now + timedelta(minutes=performance.event.hold_minutes, seconds=1)
    (result,) = services.record_holds([ga_request(user, performance, zone, 4, now=later)])

    assert isinstance(result, Hold)


@pytest.mark.django_db
def test_the_hold_endpoint_stays_within_its_query_budget(client, django_assert_num_queries):
    performance, zone = ga_performance(capacity=50)
    ensure_inventory(performance=performance)
    user = buyer()
    _token, key = create_api_token(user=user, name="test")
    url = f"/api/booking/performances/{performance.pk}/holds"
    body = json.dumps({"zone_id": zone.pk, "quantity": 2})
    client.post(url, body, content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {key}")  # first use: writes last_used_at

    # token, performance, zone, then one transaction: savepoint, buyer lock, per-person
    # count, counter UPDATE, hold INSERT, items INSERT, audit INSERT, release.
    with django_assert_num_queries(11):
        response = client.post(url, body, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 201, response.content
    assert response.json()["total"] == "960.00"
    assert taken(performance) == 4


@pytest.mark.django_db
def test_token_last_used_is_written_once_a_minute_not_per_request(client):
    performance, zone = ga_performance(capacity=50)
    user = buyer()
    token, key = create_api_token(user=user, name="test")
    url = f"/api/booking/performances/{performance.pk}/availability"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    hold_url = f"/api/booking/performances/{performance.pk}/holds"
    body = json.dumps({"zone_id": zone.pk, "quantity": 1})

    client.post(hold_url, body, content_type="application/json", **headers)
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=None)
    client.post(hold_url, body, content_type="application/json", **headers)

    assert first is not None
    assert ApiToken.objects.get(pk=token.pk).last_used_at is None  # within the minute
    cache.delete(f"apitoken:used:{token.pk}")
    client.post(hold_url, body, content_type="application/json", **headers)
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None
    assert client.get(url).status_code == 200


def test_a_reply_hands_one_answer_or_error_to_the_waiting_thread():
    reply = groupcommit.Reply()
    assert not reply.done()
    with pytest.raises(TimeoutError):
        reply.result(timeout=0.01)
    threading.Timer(0.05, reply.set_result, args=("hold",)).start()
    assert reply.result(timeout=5) == "hold"
    assert reply.done() and reply.result(timeout=0) == "hold"  # answered for good

    failed = groupcommit.Reply()
    failed.set_exception(SoldOut("gone"))
    with pytest.raises(SoldOut):
        failed.result(timeout=1)


def test_counters_of_concurrent_requests_go_to_redis_in_one_call_each_gets_its_own():
    calls: list[list[str]] = []
    totals: Counter = Counter()
    gate = threading.Event()

    def run(keys):  # stands in for the Redis script: INCR each occurrence
        gate.wait(5)  # the first call waits until every thread has queued its keys
        calls.append(list(keys))
        out = []
        for key in keys:
            totals[key] += 1
            out.append(totals[key])
        return out

    groupcommit.stop()
    results: dict[int, list[int]] = {}

    def ask(i: int) -> None:
        results[i] = groupcommit.count([f"ip:{i % 3}", f"dev:{i}"], run)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(24)]
    try:
        for t in threads:
            t.start()
        # The first call holds the gate while the others queue up behind it (bounded: the
        # counting thread may have taken a few into its first call).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (
                groupcommit._counter is None or groupcommit._counter.queue.qsize() < 20):
            time.sleep(0.01)
        gate.set()
        for t in threads:
            t.join(10)
    finally:
        groupcommit.stop()

    assert len(calls) < 24  # shared calls, not one per request
    assert sum(len(c) for c in calls) == 48
    assert sorted(results[i][0] for i in range(24) if i % 3 == 0) == list(range(1, 9))
    assert all(results[i][1] == 1 for i in range(24))


def test_a_failed_counting_call_fails_only_the_requests_it_carried():
    groupcommit.stop()
    try:
        with pytest.raises(ConnectionError):
            groupcommit.count(["k"], lambda keys: (_ for _ in ()).throw(ConnectionError("down")))
        assert groupcommit.count(["k", "k"], lambda keys: list(range(1, len(keys) + 1))) == [1, 2]
    finally:
        groupcommit.stop()


@pytest.mark.redis
@pytest.mark.django_db
@pytest.mark.parametrize("batched", [False, True], ids=["inline", "batched"])
def test_velocity_counters_on_redis_refuse_the_attempt_over_the_limit(redis_url, batched):
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": redis_url, "KEY_PREFIX": "st-test-velocity"}}
    # Fresh subjects instead of flushing a Redis database other test runs may share.
    device, ip = f"dev-{uuid.uuid4().hex}", f"10.{uuid.uuid4().int % 250}.0.1"
    # batched: as in a server, the counting goes through the per-process counting thread
    # (the holds are still recorded in this test's transaction).
    with override_settings(CACHES=caches, BOOKING_DEVICE_HOLDS_PER_10MIN=2,
                           BOOKING_GROUP_COMMIT=batched):
        performance, zone = ga_performance(capacity=20)
        now = timezone.now()
        window = int(now.timestamp()) // services.VELOCITY_WINDOW_S
        keys = [f"booking:velocity:ip:{ip}:{window}", f"booking:velocity:device:{device}:{window}"]
        try:
            for _ in range(2):
                services.create_hold(user=buyer(), performance=performance, now=now,
                                     device_id=device, ip=ip,
                                     selection=services.Selection(zone_id=zone.pk, quantity=1))

            with pytest.raises(BookingLimitReached) as exc:
                services.create_hold(user=buyer(), performance=performance, now=now,
                                     device_id=device, ip=ip,
                                     selection=services.Selection(zone_id=zone.pk, quantity=1))

            assert exc.value.limit == "device"
            assert Hold.objects.count() == 2
            assert taken(performance) == 2
            assert LimitHit.objects.get().subject == device
            assert cache.get_many(keys) == dict(zip(keys, [3, 3], strict=True))
            # Each counter lives for its window (and a margin), from its first attempt.
            ttls = [services.redis_client().ttl(cache.make_and_validate_key(k)) for k in keys]
            assert all(0 < t <= services.VELOCITY_WINDOW_S + 100 for t in ttls), ttls
        finally:
            cache.delete_many(keys)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@override_settings(BOOKING_GROUP_COMMIT=True)
def test_group_commit_thread_sells_exactly_the_capacity_to_racing_buyers():
    performance, zone = ga_performance(capacity=60, per_person_limit=4)
    users = [buyer() for _ in range(64)]
    ensure_inventory(performance=performance)
    barrier = threading.Barrier(32)
    results: list = [None] * len(users)

    def run(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(worker, len(users), 32):
                try:
                    results[i] = services.create_hold(
                        user=users[i], performance=performance, now=timezone.now(),
                        selection=services.Selection(zone_id=zone.pk, quantity=2))
                except Exception as exc:
                    results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    committer = groupcommit._get()
    groupcommit.stop()

    won = [r for r in results if isinstance(r, Hold)]
    assert len(won) == 30
    assert all(isinstance(r, SoldOut) for r in results if not isinstance(r, Hold))
    assert taken(performance) == 60
    assert HoldItem.objects.filter(hold__performance=performance).count() == 60
    assert AuditEntry.objects.filter(action="hold.created").count() == 30
    assert committer.batches < committer.requests  # requests were grouped
