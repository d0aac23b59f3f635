"""Telemetry written in batches: the same rows as one event at a time, and never a broken hold."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Count, F, Q
from django.test import RequestFactory
from django.urls import reverse

from smarttickets.accounts.models import User
from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.booking.models import Hold
from smarttickets.booking.tests.factories import buyer, ga_performance
from smarttickets.risk import services as S
from smarttickets.risk import telemetry
from smarttickets.risk.models import AccountRiskState, RiskEvent, RiskLink
from smarttickets.risk.tests.live_fixtures import allow_all
from smarttickets.risk.tests.live_fixtures import live as live_fixture

pytestmark = pytest.mark.django_db
live = live_fixture
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOLD = {"event_id": "1", "performance_id": "11", "quantity": 2, "success": True}


# --- the reference: record_event as it was before batching (one event, through the ORM) ----

def _mark_neighbours_stale(idents):
    query = Q()
    for kind, value in idents:
        query |= Q(kind=kind, value=value)
    crowds = [(row["kind"], row["value"]) for row in RiskLink.objects.filter(query)
              .values("kind", "value").annotate(n=Count("account_id"))
              if row["n"] > S._crowd_size(row["kind"])]
    for kind, value in crowds:
        query &= ~Q(kind=kind, value=value)
    if len(crowds) == len(idents):
        return []
    holders = RiskLink.objects.filter(query).values("account_id")
    AccountRiskState.objects.filter(account_id__in=holders).update(
        graph_stale=True, graph_version=F("graph_version") + 1)
    return sorted(set(RiskLink.objects.filter(query).values_list("account_id", flat=True)))[
        :S.EAGER_GRAPH_REFRESH]


@transaction.atomic
def reference_record_event(*, now, source_key="", **kwargs):
    event = S.prepare_event(now=now, source_key=source_key, **kwargs)
    type, clean = event.type, event.data
    if not source_key:
        event.save(force_insert=True)
    else:
        try:
            with transaction.atomic():
                event.save(force_insert=True)
        except IntegrityError:
            return RiskEvent.objects.get(source_key=source_key)
    if event.account_id is None:
        return event
    candidates = {(a, k, v[:128]) for a, k, v in S._links_for(event)}
    match = Q()
    for a, k, v in candidates:
        match |= Q(account_id=a, kind=k, value=v)
    known = set(RiskLink.objects.filter(match).values_list("account_id", "kind", "value"))
    new = candidates - known
    if new:
        RiskLink.objects.bulk_create([RiskLink(account_id=a, kind=k, value=v, first_seen=now)
                                      for a, k, v in sorted(new)], ignore_conflicts=True)
    ties = sorted({(k, v) for _a, k, v in new if k != "ip"})
    changes = {"events": F("events") + 1, "last_event_at": now}
    if type == "order":
        changes["tickets"] = F("tickets") + (clean.get("quantity") or 0)
    affected = set()
    if ties:
        affected.update(_mark_neighbours_stale(ties))
        changes.update(graph_stale=True, graph_version=F("graph_version") + 1)
        affected.add(event.account_id)
    S._upsert_state(event.account_id, now, **changes)
    if type == "ticket_transfer":
        to = clean["to_account"]
        if to.isdigit() and User.objects.filter(pk=int(to)).exists():
            S._upsert_state(int(to), now, transfers_in=F("transfers_in") + 1, graph_stale=True,
                            graph_version=F("graph_version") + 1)
            affected.add(int(to))
    if affected:
        S.enqueue_on_commit(None, account_ids=sorted(affected)[:S.EAGER_GRAPH_REFRESH])
    return event


def snapshot() -> tuple:
    events = list(RiskEvent.objects.order_by("id").values_list(
        "ts", "type", "account_id", "session", "ip", "device", "ua", "data", "quantity",
        "source_key"))
    links = set(RiskLink.objects.values_list("account_id", "kind", "value", "first_seen"))
    states = {row[0]: row[1:] for row in AccountRiskState.objects.values_list(
        "account_id", "events", "tickets", "transfers_in", "last_event_at", "graph_stale",
        "graph_version", "graph", "cleared_events", "ban_reason")}
    return events, links, states


def wipe() -> None:
    RiskEvent.objects.all().delete()
    RiskLink.objects.all().delete()
    AccountRiskState.objects.all().delete()


def scenario() -> tuple[list[dict], list[dict]]:
    """(events recorded before, a batch) covering ties, crowds crossed inside the batch,
    transfers, orders, a duplicate source key in the batch and one already stored."""
    ipo_crowd = S._crowd_size("ipo")
    old = [UserFactory() for _ in range(ipo_crowd - 1)]
    a, b, c, d, e = (UserFactory() for _ in range(5))

    def ev(user, type_, minute, *, ip="203.0.113.1", device="", key="", **fields):
        return {"account": user, "type": type_, "session": f"s-{minute}", "ip": ip,
                "device": device or None, "ua": "UA", "now": NOW + timedelta(minutes=minute),
                "fields": fields, "source_key": key}

    before = [ev(user, "hold", i, ip="198.51.100.9", device=f"old-{i}", **HOLD)
              for i, user in enumerate(old)]
    before += [ev(a, "hold", 20, device="shared", key="hold:1", **HOLD),
               ev(d, "signup", 21, email_domain="example.com", phone_country=None,
                  name_hash="n-1", address_hash="addr-1")]
    batch = [
        # b ties to a (device) and joins the address just under its crowd size
        ev(b, "hold", 30, ip="198.51.100.9", device="shared", key="hold:2", **HOLD),
        ev(c, "hold", 31, ip="198.51.100.9", device="shared", key="hold:3", **HOLD),  # a crowd now
        ev(b, "hold", 32, ip="198.51.100.9", device="shared", key="hold:2", **HOLD),  # again
        ev(a, "hold", 33, device="shared", key="hold:1", **HOLD),  # stored before the batch
        ev(e, "signup", 34, email_domain="example.com", phone_country="+852", name_hash="n-1",
           address_hash="addr-1"),  # ties to d, whose row exists, before e's own row
        ev(d, "order", 35, device="d-dev", key="order:5", order_id="5", event_id="1",
           performance_id="11", quantity=3, amount_minor=100, currency="HKD"),
        ev(c, "ticket_transfer", 36, device="shared", ticket_id="9", to_account=str(e.pk)),
        ev(c, "ticket_transfer", 37, ticket_id="10", to_account="no-such-account"),
        ev(b, "payment", 38, device="b-dev", key="payment:1:ok", order_id="7",
           amount_minor=100, currency="HKD", card_fp="card-x", success=True,
           decline_code=None),
        ev(e, "payment", 39, key="payment:2:failed", order_id="8", amount_minor=100,
           currency="HKD", card_fp="card-x", success=False, decline_code="declined"),
        ev(None, "page_view", 40, path="/", event_id=None),
        ev(c, "login", 41, device="new-dev", success=True),
    ]
    return before, batch


@pytest.mark.parametrize("how", ["batch", "record_event"])
def test_the_same_rows_as_the_former_one_event_write(monkeypatch, how):
    """Against the former implementation (above): one batch, or record_event per event."""
    queued: list[list[int]] = []
    monkeypatch.setattr(S, "enqueue_on_commit",
                        lambda task, **kw: queued.append(kw["account_ids"]))
    before, batch = scenario()
    for kwargs in before:
        reference_record_event(**kwargs)
    queued.clear()
    expected_results = [reference_record_event(**kwargs) for kwargs in batch]
    expected, expected_tasks = snapshot(), list(queued)

    wipe()
    for kwargs in before:
        reference_record_event(**kwargs)
    queued.clear()
    if how == "batch":
        with transaction.atomic():
            results = S.record_events([S.prepare_event(**kwargs) for kwargs in batch])
    else:
        results = [S.record_event(**kwargs) for kwargs in batch]

    assert snapshot() == expected
    assert queued == expected_tasks
    assert len(expected_tasks) >= 4  # the scenario ties accounts together
    # the duplicates answer with the event stored first
    assert results[2].pk == results[0].pk
    assert results[3].source_key == "hold:1" and results[3].pk is not None
    assert [(r.type, r.source_key) for r in results] == [
        (r.type, r.source_key) for r in expected_results]


def test_a_duplicate_source_key_is_stored_once_within_and_across_batches():
    user = UserFactory()
    events = [S.prepare_event(account=user, type="hold", session="s", ip="203.0.113.9",
                              device="d", ua="UA", now=NOW, fields=HOLD, source_key=key)
              for key in ("hold:1", "hold:1", "hold:2", "")]
    with transaction.atomic():
        first = S.record_events(events)
    again = [S.prepare_event(account=user, type="hold", session="s", ip="203.0.113.9",
                             device="d", ua="UA", now=NOW, fields=HOLD, source_key=key)
             for key in ("hold:2", "hold:3", "hold:2")]
    with transaction.atomic():
        second = S.record_events(again)

    assert first[0].pk == first[1].pk and first[2].pk != first[0].pk
    assert second[0].pk == second[2].pk == first[2].pk
    assert sorted(RiskEvent.objects.values_list("source_key", flat=True)) == [
        "", "hold:1", "hold:2", "hold:3"]
    assert AccountRiskState.objects.get(pk=user.pk).events == 4


@pytest.mark.django_db(transaction=True)
def test_record_events_needs_a_transaction():
    with pytest.raises(RuntimeError):
        S.record_events([])


def _hold_request(device: str, ip: str):
    return RequestFactory().post("/", REMOTE_ADDR=ip, HTTP_X_DEVICE_ID=device,
                                 HTTP_USER_AGENT="bench")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_holds_through_the_writer_store_what_one_by_one_stores(settings,
                                                                          monkeypatch):
    settings.RISK_TELEMETRY_ENABLED = True
    settings.RISK_TELEMETRY_BATCH = True
    users = [UserFactory() for _ in range(24)]
    # Distinct addresses and devices (so the order the threads reach the writer in does not
    # matter); some accounts twice, some holds retried (the same source key).
    calls = [(users[i % 24], f"10.0.{i % 24}.1", f"dev-{i % 24}", i + 1) for i in range(48)]
    calls += [calls[5], calls[7]]
    batches: list[int] = []
    real = telemetry.record_events

    def slow_first(events, **kwargs):
        batches.append(len(events))
        if len(batches) == 1:
            time.sleep(0.3)  # let the other threads queue up behind this batch
        return real(events, **kwargs)

    monkeypatch.setattr(telemetry, "record_events", slow_first)
    barrier = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def run(n: int) -> None:
        user, ip, device, hold_id = calls[n]
        try:
            barrier.wait()
            telemetry.record_hold(_hold_request(device, ip), user, event_id=1,
                                  performance_id=11, quantity=2, success=True,
                                  hold_id=hold_id)
            answers[n] = RiskEvent.objects.filter(source_key=f"hold:{hold_id}").exists()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    telemetry.stop_writer()
    close_old_connections()

    assert all(answers)  # each request was answered after its event was committed
    assert max(batches) > 1 and sum(batches) == len(calls)
    stored = snapshot()
    assert len(stored[0]) == 48  # one event per source key
    wipe()
    settings.RISK_TELEMETRY_BATCH = False
    for user, ip, device, hold_id in sorted(calls, key=lambda call: call[3]):
        telemetry.record_hold(_hold_request(device, ip), user, event_id=1, performance_id=11,
                              quantity=2, success=True, hold_id=hold_id)
    one_by_one = snapshot()

    def unordered(snap):  # threads reach the writer in any order: compare rows as sets
        events, links, states = snap
        events = sorted((*row[1:7], json.dumps(row[7], sort_keys=True), *row[8:])
                        for row in events)
        return events, {(a, k, v) for a, k, v, _at in links}, {
            a: (n, t, x, stale, version) for a, (n, t, x, _last, stale, version, *_rest)
            in states.items()}

    assert unordered(stored) == unordered(one_by_one)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_is_written_event_by_event(settings, monkeypatch, caplog):
    settings.RISK_TELEMETRY_ENABLED = True
    settings.RISK_TELEMETRY_BATCH = True
    users = [UserFactory() for _ in range(3)]
    real = telemetry.record_events
    gate = threading.Event()

    def fail_batches(events, **kwargs):
        gate.wait(5)
        if len(events) > 1:
            raise RuntimeError("deadlock detected")
        return real(events, **kwargs)

    monkeypatch.setattr(telemetry, "record_events", fail_batches)
    monkeypatch.setattr(telemetry, "_enqueue_refreshes", lambda refresh: None)

    def run(n: int) -> None:
        try:
            telemetry.record_hold(_hold_request(f"dev-{n}", f"10.1.{n}.1"), users[n],
                                  event_id=1, performance_id=11, quantity=2, success=True,
                                  hold_id=100 + n)
        finally:
            connection.close()

    writer = telemetry._get_writer()
    blocker = threading.Thread(target=run, args=(0,))
    blocker.start()
    time.sleep(0.2)
    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    with caplog.at_level(logging.WARNING, logger="smarttickets.risk.telemetry"):
        gate.set()
        for t in [blocker, *threads]:
            t.join()
    telemetry.stop_writer()
    close_old_connections()

    assert writer.events == 3
    assert sorted(RiskEvent.objects.values_list("source_key", flat=True)) == [
        "hold:100", "hold:101", "hold:102"]
    assert set(AccountRiskState.objects.values_list("events", flat=True)) == {1}
    assert "writing them one by one" in caplog.text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_broken_telemetry_writer_never_breaks_the_hold(client, live, settings,
                                                         monkeypatch, caplog):
    settings.RISK_TELEMETRY_BATCH = True

    def broken(events, **kwargs):
        raise RuntimeError("risk store down")

    monkeypatch.setattr(telemetry, "record_events", broken)
    performance, zone = ga_performance()
    allow_all(performance.event)
    fan = buyer()
    client.force_login(fan)

    with caplog.at_level(logging.WARNING, logger="smarttickets.risk.telemetry"):
        response = client.post(reverse("booking:hold_create", args=[performance.pk]),
                               {"zone": zone.pk, "quantity": 2})
    telemetry.stop_writer()
    close_old_connections()

    assert response.status_code == 302
    assert Hold.objects.filter(user=fan).count() == 1
    assert not RiskEvent.objects.filter(type="hold").exists()
    assert "risk telemetry dropped: hold" in caplog.text


def test_a_lone_accounts_graph_row_is_the_walks_row_without_the_walk(use_tiny_model):
    from smarttickets.risk import decisions as D
    from smarttickets.risk import features as F

    def walked(account_id):
        links, tickets, ip_accounts, counts = D.neighbourhood(account_id)
        return F.graph_features(links, tickets, ip_accounts, [str(account_id)],
                                counts=counts)[0].tolist()

    def same(a, b):
        return [x if x == x else None for x in a] == [x if x == x else None for x in b]

    lone, tied, other = UserFactory(), UserFactory(), UserFactory()
    for user in (tied, other):
        S.record_event(account=user, type="payment", session="s", ip="203.0.113.4",
                       device="dev-shared", ua="UA", now=NOW, source_key=f"payment:{user.pk}",
                       fields={"order_id": "1", "amount_minor": 100, "currency": "HKD",
                               "card_fp": "card-shared", "success": True,
                               "decline_code": None})
    S.record_event(account=other, type="ticket_transfer", session="s", ip="203.0.113.4",
                   device="dev-shared", ua="UA", now=NOW,
                   fields={"ticket_id": "5", "to_account": str(tied.pk)})

    assert same(D.compute_graph_row(lone.pk), walked(lone.pk))
    assert len(D.compute_graph_row(lone.pk)) == len(F.GRAPH_FEATURES)
    assert same(D.compute_graph_row(tied.pk), walked(tied.pk))
    assert not same(D.compute_graph_row(tied.pk), D.compute_graph_row(lone.pk))
    activity = D.AccountActivity(account_id=tied.pk, event_id="1", performance_id="11",
                                 quantity=2, ip="203.0.113.4", device="dev-shared")
    state = D.account_state(tied.pk)
    assert state["transfers_in"] == 1
    senders = D._fetch(D._link_sql(connection.vendor)[2],
                       ["xfer", str(tied.pk), tied.pk, D.MAX_NEIGHBOURS])
    assert senders == [(other.pk,)]
    assert D.live_features(activity, "hold", NOW, state).shape[0] == 1
