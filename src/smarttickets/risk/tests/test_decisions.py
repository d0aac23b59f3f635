"""The in-process decision, telemetry recording, export → score round trip and pruning."""

import csv
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core.exceptions import InvalidInput
from smarttickets.core.models import AuditEntry
from smarttickets.risk import decisions as D
from smarttickets.risk import logio
from smarttickets.risk.models import Decision, RiskEvent, RiskLink
from smarttickets.risk.services import prune_events, record_event

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _record(user, type_, at, **fields):
    return record_event(account=user, type=type_, session="sess-1", ip="203.0.113.9",
                        device="dev-1", ua="Mozilla/5.0", now=at, fields=fields)


def _shopping(user, card="card-1", start=NOW - timedelta(hours=2)):
    _record(user, "signup", start - timedelta(days=40), email_domain="example.com",
            phone_country="+852", name_hash="n1", address_hash="a1")
    _record(user, "page_view", start, path="/events/1", event_id="1")
    _record(user, "form_submit", start + timedelta(seconds=20), form="checkout", fill_ms=15000,
            keystrokes=50, pastes=0, pointer_moves=90, focus_changes=7)
    _record(user, "hold", start + timedelta(seconds=30), event_id="1", performance_id="11",
            quantity=2, success=True)
    _record(user, "order", start + timedelta(seconds=40), order_id="o-" + str(user.pk),
            event_id="1", performance_id="11", quantity=2, amount_minor=96000, currency="HKD")
    _record(user, "payment", start + timedelta(seconds=50), order_id="o-" + str(user.pk),
            amount_minor=96000, currency="HKD", card_fp=card, success=True, decline_code=None)


def test_decide_stores_a_decision_with_score_model_version_and_reasons(use_tiny_model):
    # given a fan with some history and a model
    user = UserFactory(verified=True)
    _shopping(user)
    activity = D.AccountActivity(account_id=user.pk, event_id="1", performance_id="11",
                                 ip="203.0.113.9", device="dev-1", quantity=2,
                                 object_type="booking.hold", object_id="77")

    # when booking asks at the hold checkpoint
    decision = D.decide(activity=activity, checkpoint="hold", now=NOW)

    # then the decision is stored with everything needed to explain it, plus an audit entry
    stored = Decision.objects.get()
    assert stored.pk == decision.pk
    assert 0.0 <= stored.score <= 1.0
    assert stored.decision in ("allow", "challenge", "review", "block")
    assert stored.model_version.startswith("hgb-")
    assert stored.failsafe is False
    assert stored.checkpoint == "hold"
    assert (stored.object_type, stored.object_id, stored.event_id) == ("booking.hold", "77", "1")
    assert set(stored.thresholds) == {"challenge", "review", "block"}
    assert isinstance(stored.reasons, list)
    assert stored.created_at == NOW
    audit = AuditEntry.objects.get(action=f"risk.decision.{stored.decision}")
    assert audit.object_id == str(stored.pk)


def test_live_features_see_the_ring_behind_a_shared_card(use_tiny_model):
    # given six accounts paying with one card, one of them also handing tickets to a collector
    ring = [UserFactory() for _ in range(6)]
    collector = UserFactory()
    for user in ring:
        _shopping(user, card="shared-card")
    _record(ring[1], "ticket_transfer", NOW, ticket_id="t", to_account=collector.pk)

    # when the live features of the first member are built
    row = dict(zip(D.M.F.FEATURES, D.live_features(
        D.AccountActivity(account_id=ring[0].pk, quantity=4), "checkout", NOW)[0], strict=True))

    # then they match what the offline extractor computes from the same events
    assert row["card_share"] == 5
    assert row["component_size"] == 7
    assert row["component_tickets"] == 12
    assert row["tickets"] == 6  # 2 bought, plus the 4 being checked out now


def test_a_stale_graph_row_is_used_as_is_and_refreshed_once_off_the_decision(
        use_tiny_model, monkeypatch):
    # given a ring whose rows were computed, then marked stale by a tie on a busy identifier
    from django.core.cache import cache

    from smarttickets.risk.models import AccountRiskState

    ring = [UserFactory() for _ in range(3)]
    for user in ring:
        _shopping(user, card="shared-card")
    first = ring[0].pk
    D.refresh_graph_rows(account_ids=[first], now=NOW)  # what the task after the tie does
    stored = D.account_state(first)["graph"]
    assert stored is not None
    AccountRiskState.objects.filter(pk=first).update(graph_stale=True)
    cache.delete(f"risk:graph:refresh:{first}")
    walks, queued = [], []
    monkeypatch.setattr(D, "compute_graph_row", lambda pk: walks.append(pk) or stored)
    monkeypatch.setattr(D, "enqueue_on_commit", lambda task, **kw: queued.append(kw))

    # when two decisions meet the stale row
    activity = D.AccountActivity(account_id=first, event_id="1", quantity=2)
    for _ in range(2):
        D.decide(activity=activity, checkpoint="hold", now=NOW)

    # then neither walked the graph, and one refresh was queued for the account
    assert walks == []
    assert queued == [{"account_ids": [first]}]


def test_an_account_without_a_graph_row_is_walked_once_and_the_row_kept(use_tiny_model):
    from smarttickets.risk.models import AccountRiskState

    user = UserFactory()
    _shopping(user)
    AccountRiskState.objects.filter(pk=user.pk).update(graph=None, graph_stale=True)

    D.decide(activity=D.AccountActivity(account_id=user.pk, quantity=1), checkpoint="hold",
             now=NOW)

    state = D.account_state(user.pk)
    assert state["graph"] is not None and state["graph_stale"] is False


def test_decide_falls_back_to_the_failsafe_when_the_model_cannot_load(settings, tmp_path,
                                                                      caplog):
    # given a model path that holds no model
    (tmp_path / "broken.joblib").write_bytes(b"garbage")
    settings.RISK_MODEL_PATH = str(tmp_path / "broken.joblib")
    D.reset_model_cache()
    user = UserFactory()

    # when booking asks
    decision = D.decide(activity=D.AccountActivity(account_id=user.pk), checkpoint="hold",
                        now=NOW)

    # then it gets the fail-safe challenge with the reason, stored, and an error is logged
    assert decision.decision == "challenge"
    assert decision.failsafe is True
    assert decision.model_version == "unavailable"
    assert [r["text"] for r in decision.reasons] == ["model unavailable"]
    assert Decision.objects.filter(pk=decision.pk, failsafe=True).exists()
    assert "risk model unavailable" in caplog.text
    D.reset_model_cache()


def test_decide_falls_back_when_the_model_raises(use_tiny_model, monkeypatch):
    user = UserFactory()
    model = D.get_model()

    def explode(X):
        raise RuntimeError("boom")

    monkeypatch.setattr(model, "score_matrix", explode)
    settings_failsafe = "review"
    monkeypatch.setattr(D, "failsafe_decision", lambda: settings_failsafe)

    decision = D.decide(activity=D.AccountActivity(account_id=user.pk), checkpoint="checkout",
                        now=NOW)

    assert decision.decision == "review"
    assert decision.failsafe is True
    assert decision.model_version == model.model_version


def test_unknown_checkpoint_is_a_caller_error_and_stores_nothing():
    user = UserFactory()

    with pytest.raises(InvalidInput):
        D.decide(activity=D.AccountActivity(account_id=user.pk), checkpoint="gate", now=NOW)

    assert not Decision.objects.exists()


def test_record_event_rejects_bad_fields_and_stores_nothing():
    user = UserFactory()

    with pytest.raises(InvalidInput) as err:
        record_event(account=user, type="hold", session="s", ip="999.1.1.1", device=None,
                     ua="x", now=NOW, fields={"event_id": "1", "quantity": "two"})

    assert set(err.value.fields) == {"ip", "quantity", "performance_id", "success"}
    assert not RiskEvent.objects.exists()
    assert not RiskLink.objects.exists()


def test_record_event_links_identifiers_for_the_graph():
    sender, collector = UserFactory(), UserFactory()

    _record(sender, "payment", NOW, order_id="o", amount_minor=1, currency="HKD", card_fp="c9",
            success=True, decline_code=None)
    _record(sender, "ticket_transfer", NOW, ticket_id="t1", to_account=collector.pk)

    links = set(RiskLink.objects.values_list("account_id", "kind", "value"))
    assert links == {(sender.pk, "ip", "203.0.113.9"), (sender.pk, "device", "dev-1"),
                     (sender.pk, "ipo", "203.0.113.9"), (sender.pk, "card", "c9"),
                     (sender.pk, "xfer", str(collector.pk)),
                     (collector.pk, "xfer", str(collector.pk))}


def test_record_export_score_round_trip(use_tiny_model, tmp_path):
    # given stored telemetry for two accounts, one of them receiving a transfer
    fan, friend = UserFactory(), UserFactory()
    _shopping(fan)
    _record(fan, "ticket_transfer", NOW, ticket_id="t1", to_account=str(friend.pk))
    record_event(account=None, type="page_view", session="anon", ip="2001:db8::1", device=None,
                 ua="Mozilla/5.0", now=NOW, fields={"path": "/", "event_id": None})

    # when it is exported and scored by the commands
    call_command("risk", "export", "--out", str(tmp_path / "log.jsonl"))
    call_command("risk", "score", str(tmp_path / "log.jsonl"), "--out",
                 str(tmp_path / "scores.csv"), "--model", str(use_tiny_model))

    # then the export follows the spec and every account gets one scored row
    events, stats = logio.read_events(tmp_path / "log.jsonl")
    assert stats.malformed == 0 and stats.events == 8
    first = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])
    assert set(first) == {"ts", "type", "account", "session", "ip", "device", "ua",
                          "email_domain", "phone_country", "name_hash", "address_hash"}
    assert first["account"] == str(fan.pk)
    assert events[-1]["account"] is None
    with open(tmp_path / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["account", "score", "decision", "reasons"]
    assert sorted(r["account"] for r in rows) == sorted([str(fan.pk), str(friend.pk)])
    for row in rows:
        assert 0.0 <= float(row["score"]) <= 1.0
        assert row["decision"] in ("allow", "challenge", "review", "block")


def test_score_command_refuses_a_missing_log(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("risk", "score", str(tmp_path / "nope.jsonl"), "--out",
                     str(tmp_path / "s.csv"))


def test_train_command_refuses_missing_labels(tiny_log, tmp_path):
    with pytest.raises(CommandError, match="cannot train without labels"):
        call_command("risk", "train", str(tiny_log[0]), str(tmp_path / "none.csv"), "--out",
                     str(tmp_path / "m.joblib"))
    assert not (tmp_path / "m.joblib").exists()


def test_prune_deletes_only_events_past_retention():
    user = UserFactory()
    old = _record(user, "login", NOW - timedelta(days=401), success=True)
    recent = _record(user, "login", NOW - timedelta(days=10), success=True)

    deleted = prune_events(now=NOW, days=400)

    assert deleted == 1
    assert list(RiskEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk not in RiskEvent.objects.values_list("pk", flat=True)
    assert AuditEntry.objects.filter(action="risk.events_pruned").count() == 1


def test_simulator_is_deterministic_per_seed(tmp_path):
    call_command("risk", "simulate", "--accounts", "60", "--seed", "3", "--out",
                 str(tmp_path / "a"))
    call_command("risk", "simulate", "--accounts", "60", "--seed", "3", "--out",
                 str(tmp_path / "b"))
    call_command("risk", "simulate", "--accounts", "60", "--seed", "4", "--out",
                 str(tmp_path / "c"))

    a = (tmp_path / "a" / "log.jsonl").read_bytes()
    assert a == (tmp_path / "b" / "log.jsonl").read_bytes()
    assert a != (tmp_path / "c" / "log.jsonl").read_bytes()
    labels = (tmp_path / "a" / "labels.csv").read_text().splitlines()
    assert labels[0] == "account,label,kind"
    assert len(labels) == 61


def test_a_changed_policy_applies_at_once_in_this_process(use_tiny_model):
    from smarttickets.events.tests.factories import EventFactory
    from smarttickets.risk.services import set_policy

    event = EventFactory()
    assert D.policy_for(str(event.pk)).challenge_at is None  # remembered for a few seconds

    set_policy(event_id=event.pk, enabled=True, challenge_at=0.2, review_at=None,
               block_at=None, actor=None, now=NOW)

    assert D.policy_for(str(event.pk)).challenge_at == 0.2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_decisions_alone_skip_the_wal_flush_and_never_inside_a_callers_transaction(
        use_tiny_model):
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from smarttickets.events.tests.factories import EventFactory
    from smarttickets.risk.services import store_decision

    user = UserFactory()
    event = str(EventFactory().pk)
    common = {"account_id": user.pk, "checkpoint": "hold", "score": 0.1, "model_version": "m",
              "reasons": [], "thresholds": {}, "failsafe": False, "now": NOW}

    def async_commits(decision: str, *, event_id: str = "", inside: bool = False) -> int:
        with CaptureQueriesContext(connection) as ctx:
            if inside:
                with transaction.atomic():
                    store_decision(decision=decision, event_id=event_id, **common)
            else:
                store_decision(decision=decision, event_id=event_id, **common)
        return sum("synchronous_commit" in q["sql"] for q in ctx.captured_queries)

    assert async_commits("allow") == 1
    assert async_commits("challenge") == 1
    assert async_commits("review", event_id=event) == 1  # with its case, one statement
    assert async_commits("block", event_id=event) == 1
    assert async_commits("review") == 0  # no event: the general path, a durable transaction
    assert async_commits("allow", inside=True) == 0  # never weakens a caller's transaction
    assert async_commits("review", event_id=event, inside=True) == 0
    assert Decision.objects.filter(account_id=user.pk).count() == 7


@pytest.mark.parametrize("outcome", ["review", "block"])
def test_review_and_block_decisions_open_one_case_per_event_and_keep_it_current(
        use_tiny_model, outcome):
    from smarttickets.events.tests.factories import EventFactory
    from smarttickets.risk.models import ReviewCase
    from smarttickets.risk.services import store_decision

    fan = UserFactory()
    first_event, second_event = EventFactory(), EventFactory()
    common = {"account_id": fan.pk, "checkpoint": "checkout", "score": 0.97,
              "model_version": "m", "reasons": [{"code": "ring"}], "thresholds": {},
              "failsafe": False, "now": NOW, "decision": outcome}

    # when the same account is flagged twice for one event, then once for another
    one = store_decision(event_id=str(first_event.pk), **common)
    two = store_decision(event_id=str(first_event.pk), **common)
    other = store_decision(event_id=str(second_event.pk), **common)

    # then each event has one open case, pointing at its latest decision
    cases = {c.event_id: c for c in ReviewCase.objects.filter(account=fan)}
    assert set(cases) == {first_event.pk, second_event.pk}
    assert cases[first_event.pk].decision_id == two.pk != one.pk
    assert cases[second_event.pk].decision_id == other.pk
    assert all(c.state == ReviewCase.State.OPEN and c.opened_at == NOW for c in cases.values())
    # and every decision and every opened case has its audit entry
    for d in (one, two, other):
        stored = Decision.objects.get(pk=d.pk)
        assert (stored.decision, stored.reasons) == (outcome, [{"code": "ring"}])
        assert AuditEntry.objects.filter(action=f"risk.decision.{outcome}",
                                         object_id=str(d.pk)).count() == 1
    opened = AuditEntry.objects.filter(action="risk.case.opened")
    assert sorted(opened.values_list("object_id", flat=True)) == sorted(
        str(c.pk) for c in cases.values())
    assert {e.data["outcome"] for e in opened} == {outcome}


def test_a_hold_behind_a_crowded_address_does_not_make_the_crowd_stale(monkeypatch):
    """A carrier or campus address at order time is a crowd, not a tie: a newcomer's hold
    there refreshes the newcomer's own row only, not one row per fan behind the address."""
    from smarttickets.risk import services as S
    from smarttickets.risk.models import AccountRiskState

    queued: list[list[int]] = []
    monkeypatch.setattr(S, "enqueue_on_commit", lambda task, **kw: queued.append(kw["account_ids"]))
    crowd = [UserFactory() for _ in range(7)]  # more than features.IP_LINK_MAX_ACCOUNTS
    for user in crowd:
        record_event(account=user, type="hold", session="s", ip="198.51.100.7", device="",
                     ua="UA", now=NOW, fields={"event_id": "1", "performance_id": "11",
                                               "quantity": 2, "success": True})
    AccountRiskState.objects.update(graph_stale=False)
    queued.clear()

    newcomer = UserFactory()
    record_event(account=newcomer, type="hold", session="s", ip="198.51.100.7", device="",
                 ua="UA", now=NOW, fields={"event_id": "1", "performance_id": "11",
                                           "quantity": 2, "success": True})

    assert not AccountRiskState.objects.filter(graph_stale=True).exclude(
        pk=newcomer.pk).exists()
    assert queued == [[newcomer.pk]]
    # A small group behind one address is still a tie: its members are refreshed.
    small = [UserFactory() for _ in range(2)]
    for user in small:
        record_event(account=user, type="hold", session="s", ip="192.0.2.44", device="",
                     ua="UA", now=NOW, fields={"event_id": "1", "performance_id": "11",
                                               "quantity": 2, "success": True})
    assert queued[-1] == sorted(u.pk for u in small)


def test_an_event_from_the_same_source_is_recorded_once():
    from smarttickets.risk.models import AccountRiskState

    user = UserFactory()
    fields = {"event_id": "1", "performance_id": "11", "quantity": 2, "success": True}
    first = record_event(account=user, type="hold", session="s", ip="203.0.113.9",
                         device="d", ua="UA", now=NOW, fields=fields, source_key="hold:77")
    again = record_event(account=user, type="hold", session="s", ip="203.0.113.9",
                         device="d", ua="UA", now=NOW + timedelta(seconds=1), fields=fields,
                         source_key="hold:77")
    other = record_event(account=user, type="hold", session="s", ip="203.0.113.9",
                         device="d", ua="UA", now=NOW, fields=fields, source_key="hold:78")

    assert again.pk == first.pk and other.pk != first.pk
    assert RiskEvent.objects.filter(source_key="hold:77").count() == 1
    assert AccountRiskState.objects.get(pk=user.pk).events == 2


@pytest.mark.postgres
def test_the_pipelined_reads_give_what_the_two_queries_give(use_tiny_model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # given an account with a state row, events in the window and a signup long before
    user = UserFactory()
    _shopping(user)
    activity = D.AccountActivity(account_id=user.pk, event_id="e1", performance_id="p1",
                                 ip="203.0.113.9", device="dev-1", quantity=2)

    # when a decision reads the account in one round trip
    with CaptureQueriesContext(connection) as reads:
        state, rows = D.read_account(activity, NOW)

    # then it has exactly what the separate reads return, in their order, on the same connection
    assert len(reads) == 0  # straight on psycopg's pipeline, not through Django's cursor
    assert state == D.account_state(user.pk)
    assert rows == D._event_rows(user.pk, NOW)
    assert len(rows) == RiskEvent.objects.filter(account=user).count() > 3
    assert D.local_events(activity, "hold", NOW, rows) == D.local_events(activity, "hold", NOW)

    # and an account without any state or event reads as such
    assert D.read_account(D.AccountActivity(account_id=10**9, event_id="e1",
                                            performance_id="p1", ip="", device="",
                                            quantity=1), NOW) == (None, [])
