"""Close and commit, receipts, beacon, reveal, the draw, entitlements, pass-down and the tick."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from smarttickets.booking import services as booking
from smarttickets.booking.models import Entitlement, InventoryBucket
from smarttickets.core import clock
from smarttickets.core.money import to_minor
from smarttickets.lottery import beacon as beacons
from smarttickets.lottery import draw, selectors, services, signing
from smarttickets.lottery.models import Entry, Lottery
from smarttickets.lottery.tests import app_helpers
from smarttickets.lottery.tests.app_helpers import (
    fan,
    lottery_for,
    lottery_performance,
)

# Fixtures shared by the lottery app's tests.
risk = app_helpers.risk
signing_key_in_tmp = app_helpers.signing_key_in_tmp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_key_in_tmp", "risk")]

ROUNDS = {r["round"]: r for r in json.loads(
    (Path(__file__).parent / "golden" / "drand_quicknet_rounds.json").read_text())["rounds"]}


def _entered(lottery, n, quantity=2, now=None):
    now = now or clock.now()
    return [services.enter(lottery=lottery, user=fan(), quantity=quantity, companions=[],
                           now=now) for _ in range(n)]


def _drawn(n_entries=8, capacity=4, quantity=2):
    """A lottery without beacon, committed and drawn; returns (lottery, entries, now)."""
    now = clock.now()
    performance, seated, _ = lottery_performance(now=now)
    lottery = lottery_for(performance, seated, beacon_kind=Lottery.BeaconKind.NONE,
                          capacity=capacity)
    entries = _entered(lottery, n_entries, quantity, now)
    lottery = services.close_and_commit(lottery=lottery, actor=None,
                                        now=performance.entry_closes_at)
    lottery = services.run_draw(lottery=lottery, actor=None, now=performance.draw_at)
    return lottery, entries, performance


def test_close_publishes_a_signed_commitment_to_the_entries(risk):
    now = clock.now()
    performance, seated, _ = lottery_performance(now=now)
    lottery = lottery_for(performance, seated)
    entries = _entered(lottery, 3)
    flagged = fan()
    risk.flag(flagged)
    _entered_flagged = services.enter(lottery=lottery, user=flagged, quantity=1,
                                      companions=[], now=now)
    closes = performance.entry_closes_at

    lottery = services.close_and_commit(lottery=lottery, actor=None, now=closes)

    c = lottery.commitment
    published = draw.entries_from_objects(
        {"entry_id": e.entry_id, "weight": 1, "seats": 2} for e in entries)
    assert lottery.state == Lottery.State.CLOSED
    assert c["n_entries"] == 3 and c["capacity"] == 10
    assert c["entries_root"] == draw.entries_root(lottery.public_id, published)
    assert c["seed_commitment"] == lottery.seed_commitment
    assert c["lottery_id"] == lottery.public_id
    assert c["beacon"]["source"] == "drand-quicknet"
    assert beacons.QUICKNET.round_time(c["beacon"]["round"]) > performance.draw_at
    assert lottery.commitment_hash == draw.commitment_hash(c)
    assert signing.verify_commitment_signature(c, lottery.signature).fingerprint == \
        selectors.public_key_info()["fingerprint"]
    assert draw.load_entries(lottery.entries_document.encode()) == published
    # the unreviewed flagged entry was excluded by the published rule
    _entered_flagged.refresh_from_db()
    assert _entered_flagged.state == Entry.State.EXCLUDED and lottery.n_excluded == 1
    assert selectors.counts(lottery=lottery)["excluded"] == 1


def test_close_before_the_published_time_is_refused():
    performance, seated, _ = lottery_performance()
    lottery = lottery_for(performance, seated)

    with pytest.raises(services.WrongState):
        services.close_and_commit(lottery=lottery, actor=None,
                                  now=performance.entry_closes_at - timedelta(seconds=1))

    lottery.refresh_from_db()
    assert lottery.state == Lottery.State.OPEN and lottery.commitment is None


def test_an_entry_included_after_review_is_in_the_commitment(risk):
    performance, seated, _ = lottery_performance()
    lottery = lottery_for(performance, seated)
    kept, dropped = fan(), fan()
    risk.flag(kept)
    risk.flag(dropped)
    e_kept = services.enter(lottery=lottery, user=kept, quantity=1, companions=[],
                            now=clock.now())
    e_dropped = services.enter(lottery=lottery, user=dropped, quantity=1, companions=[],
                               now=clock.now())
    staff = fan()

    services.review_entry(entry=e_kept, actor=staff, include=True, now=clock.now())
    services.review_entry(entry=e_dropped, actor=staff, include=False, now=clock.now())
    lottery = services.close_and_commit(lottery=lottery, actor=None,
                                        now=performance.entry_closes_at)

    assert json.loads(lottery.entries_document) == [
        {"entry_id": e_kept.entry_id, "seats": 1, "weight": 1}]
    counts = selectors.counts(lottery=lottery)
    assert (counts["excluded"], counts["included_after_review"]) == (1, 1)


def test_exclude_policy_drops_flagged_entries_without_review(risk):
    performance, seated, _ = lottery_performance()
    lottery = lottery_for(performance, seated, flagged_policy=Lottery.FlaggedPolicy.EXCLUDE)
    suspect = fan()
    risk.flag(suspect, "review")
    entry = services.enter(lottery=lottery, user=suspect, quantity=1, companions=[],
                           now=clock.now())
    assert entry.review == Entry.Review.NONE  # nothing for staff to do

    lottery = services.close_and_commit(lottery=lottery, actor=None,
                                        now=performance.entry_closes_at)

    assert lottery.commitment["n_entries"] == 0 and lottery.n_excluded == 1


def test_every_receipt_verifies_against_the_published_root():
    performance, seated, _ = lottery_performance()
    lottery = lottery_for(performance, seated)
    entries = _entered(lottery, 5, quantity=1)
    lottery = services.close_and_commit(lottery=lottery, actor=None,
                                        now=performance.entry_closes_at)
    root = lottery.commitment["entries_root"]

    receipts = [selectors.receipt_for(entry=Entry.objects.get(pk=e.pk)) for e in entries]

    assert all(draw.verify_receipt(r, root) for r in receipts)
    assert sorted(r["leaf_index"] for r in receipts) == [0, 1, 2, 3, 4]
    assert receipts[0]["leaf"] == f"v1|{lottery.public_id}|{entries[0].entry_id}|1|1"
    forged = dict(receipts[0], leaf=receipts[0]["leaf"][:-1] + "4")
    assert not draw.verify_receipt(forged, root)


def _drand_lottery():
    """A lottery committed so that it names drand round 657413 (in the golden file)."""
    due = beacons.QUICKNET.round_time(657413)
    now = due - timedelta(days=2)
    performance, seated, _ = lottery_performance(
        now=now, entry_opens_at=now - timedelta(days=1), entry_closes_at=due - timedelta(hours=1),
        draw_at=beacons.QUICKNET.round_time(657412), purchase_opens_at=due + timedelta(days=1),
        purchase_closes_at=due + timedelta(days=3), starts_at=due + timedelta(days=30))
    lottery = lottery_for(performance, seated, now=now, capacity=3)
    entries = _entered(lottery, 4, quantity=1, now=now)
    lottery = services.close_and_commit(lottery=lottery, actor=None,
                                        now=due - timedelta(minutes=30))
    return lottery, entries, due


@pytest.mark.slow
def test_a_wrong_drand_round_is_refused_and_the_named_one_accepted():
    lottery, _entries, due = _drand_lottery()
    assert lottery.commitment["beacon"] == {"source": "drand-quicknet", "round": 657413}

    with pytest.raises(beacons.BeaconWrongRound):
        services.enter_beacon(lottery=lottery, actor=None, evidence=json.dumps(ROUNDS[1000]),
                              now=due)
    lottery.refresh_from_db()
    assert lottery.beacon_value == ""
    with pytest.raises(beacons.BeaconError):
        services.enter_beacon(lottery=lottery, actor=None, evidence="not json", now=due)

    lottery = services.enter_beacon(lottery=lottery, actor=None,
                                    evidence=json.dumps(ROUNDS[657413]), now=due)
    assert lottery.beacon_value == ROUNDS[657413]["randomness"]

    lottery = services.run_draw(lottery=lottery, actor=None, now=due)
    summary = draw.verify(lottery.result, draw.load_entries(lottery.entries_document.encode()),
                          expected_beacon_value=bytes.fromhex(ROUNDS[657413]["randomness"]))
    assert (summary["winners"], summary["waitlist"]) == (3, 1)


def test_the_draw_waits_for_the_beacon():
    lottery, _entries, due = _drand_lottery()

    with pytest.raises(services.WrongState, match="beacon"):
        services.run_draw(lottery=lottery, actor=None, now=due)

    lottery.refresh_from_db()
    assert lottery.state == Lottery.State.CLOSED and lottery.result is None


def test_a_seed_that_does_not_match_the_commitment_is_refused():
    now = clock.now()
    performance, seated, _ = lottery_performance(now=now)
    lottery = lottery_for(performance, seated, beacon_kind=Lottery.BeaconKind.NONE)
    _entered(lottery, 2)
    lottery = services.close_and_commit(lottery=lottery, actor=None,
                                        now=performance.entry_closes_at)

    with pytest.raises(services.SeedMismatch):
        services.run_draw(lottery=lottery, actor=None, now=performance.draw_at,
                          seed_hex="ab" * 32)

    lottery.refresh_from_db()
    assert lottery.state == Lottery.State.CLOSED and lottery.result is None
    assert Entry.objects.exclude(outcome="").count() == 0
    # the organizer's own copy of the right seed is accepted
    seed = services.unseal_seed(lottery.seed_ciphertext).hex()
    lottery = services.run_draw(lottery=lottery, actor=None, now=performance.draw_at,
                                seed_hex=seed.upper())
    assert lottery.result["seed_secret"] == seed


def test_the_draw_recomputes_with_the_standalone_verifier_and_never_runs_twice(
        mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        lottery, _entries, performance = _drawn(n_entries=8, capacity=4)

    published = json.loads(draw.dump_result(lottery.result))
    summary = draw.verify(published, draw.parse_entries(lottery.entries_document))
    assert summary == {"lottery_id": lottery.public_id, "n_entries": 8, "capacity": 4,
                       "winners": 2, "seats_won": 4, "waitlist": 6,
                       "commitment_hash": lottery.commitment_hash}
    seed = services.unseal_seed(lottery.seed_ciphertext)
    independent = draw.build_result(commitment=lottery.commitment,
                                    entries=draw.load_entries(lottery.entries_document.encode()),
                                    seed_secret=seed)
    assert independent == lottery.result
    won = set(Entry.objects.filter(outcome=Entry.Outcome.WON).values_list("entry_id", flat=True))
    assert won == set(lottery.result["winners"])
    assert Entry.objects.filter(outcome=Entry.Outcome.WAITLISTED).count() == 6
    subjects = sorted(m.subject.split(":")[0] for m in mailoutbox if "result" in m.subject
                      or "won" in m.subject.lower())
    assert subjects.count("You won") == 2 and subjects.count("Lottery result") == 6

    with pytest.raises(services.WrongState):
        services.run_draw(lottery=lottery, actor=None, now=performance.draw_at)
    lottery.refresh_from_db()
    assert lottery.result["winners"] == published["winners"]


def test_winners_get_an_entitlement_when_the_purchase_window_opens():
    lottery, _entries, performance = _drawn(n_entries=8, capacity=4)
    opens = performance.purchase_opens_at

    with pytest.raises(services.WrongState):
        services.start_purchase(lottery=lottery, actor=None, now=opens - timedelta(minutes=1))
    assert Entitlement.objects.count() == 0

    services.start_purchase(lottery=lottery, actor=None, now=opens)

    ents = list(Entitlement.objects.order_by("pk"))
    winners = Entry.objects.filter(outcome=Entry.Outcome.WON)
    assert sorted(e.user_id for e in ents) == sorted(w.user_id for w in winners)
    assert {(e.quantity, e.zone_id, e.state) for e in ents} == {
        (2, lottery.zone_id, Entitlement.State.OPEN)}
    assert {e.expires_at for e in ents} == {opens + timedelta(hours=24)}
    assert sum(b.taken for b in InventoryBucket.objects.filter(zone=lottery.zone)) == 4


def _buy(entry, now):
    entry.refresh_from_db()
    ent = entry.entitlement
    hold = booking.create_hold(user=entry.user, performance=ent.performance,
                               selection=booking.Selection(zone_id=ent.zone_id,
                                                           quantity=ent.quantity),
                               now=now, entitlement_id=ent.pk)
    order = booking.place_order(hold=hold, buyer=entry.user, holder_names=[], now=now)
    return booking.mark_order_paid(order_id=order.pk, provider="sandbox", payment_reference="t",
                                   amount_minor=to_minor(order.total, order.currency),
                                   currency=order.currency, card_fingerprint="", now=now)


def test_unpaid_seats_pass_down_the_waiting_list_in_order(mailoutbox,
                                                           django_capture_on_commit_callbacks):
    lottery, _entries, performance = _drawn(n_entries=8, capacity=4)
    opens = performance.purchase_opens_at
    services.start_purchase(lottery=lottery, actor=None, now=opens)
    first, second = (Entry.objects.get(entry_id=e) for e in lottery.result["winners"])
    _buy(first, opens + timedelta(hours=1))
    later = opens + timedelta(hours=25)  # the second winner's 24 hours are over

    with django_capture_on_commit_callbacks(execute=True):
        counts = services.tick(now=later)

    lottery.refresh_from_db()
    seats = dict(Entry.objects.values_list("entry_id", "quantity"))
    expected = draw.pass_down(winners=lottery.result["winners"],
                              waitlist=lottery.result["waitlist"], seats=seats, capacity=4,
                              lapsed=[second.entry_id])
    assert counts.get("passed_down") == 1
    assert lottery.allocation["winners"] == expected[0]
    assert lottery.allocation["waitlist"] == expected[1]
    promoted = Entry.objects.get(entry_id=lottery.result["waitlist"][0])
    assert lottery.allocation["promoted"] == [promoted.entry_id]
    assert promoted.outcome == Entry.Outcome.WON and promoted.promoted
    assert promoted.entitlement.state == Entitlement.State.OPEN
    assert promoted.entitlement.expires_at == later + timedelta(hours=24)
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.outcome == Entry.Outcome.LAPSED
    assert second.entitlement.state in (Entitlement.State.EXPIRED, Entitlement.State.REVOKED)
    assert first.outcome == Entry.Outcome.PURCHASED
    assert [m.to for m in mailoutbox if "passed down" in m.subject] == [[promoted.user.email]]
    # capacity is never exceeded: 2 sold + 2 reserved for the promoted entry
    assert sum(b.taken for b in InventoryBucket.objects.filter(zone=lottery.zone)) == 4


def test_no_promotion_when_too_little_purchase_time_is_left():
    lottery, _entries, performance = _drawn(n_entries=4, capacity=2)
    services.start_purchase(lottery=lottery, actor=None,
                            now=performance.purchase_closes_at - timedelta(minutes=90))
    now = performance.purchase_closes_at - timedelta(minutes=30)
    Entitlement.objects.update(expires_at=now - timedelta(minutes=1))

    services.pass_down(lottery=lottery, now=now)

    lottery.refresh_from_db()
    assert lottery.allocation["winners"] == [] and lottery.allocation["promoted"] == []
    assert Entry.objects.filter(outcome=Entry.Outcome.LAPSED).count() == 1


def test_tick_runs_a_no_beacon_lottery_from_opening_to_the_end(mailoutbox,
                                                               django_capture_on_commit_callbacks):
    now = clock.now()
    performance, seated, _standing = lottery_performance(
        now=now, entry_opens_at=now + timedelta(hours=1), entry_closes_at=now + timedelta(days=1),
        draw_at=now + timedelta(days=1, hours=1), purchase_opens_at=now + timedelta(days=2),
        purchase_closes_at=now + timedelta(days=4))

    assert services.tick(now=now) == {}
    lotteries = list(Lottery.objects.filter(performance=performance))
    assert [lot.state for lot in lotteries] == [Lottery.State.SCHEDULED] * 2
    Lottery.objects.update(beacon_kind=Lottery.BeaconKind.NONE, capacity=2)

    assert services.tick(now=now + timedelta(hours=2)) == {"opened": 2}
    lottery = Lottery.objects.get(zone=seated)
    users = [fan() for _ in range(3)]
    for u in users:
        services.enter(lottery=lottery, user=u, quantity=1, companions=[],
                       now=now + timedelta(hours=3))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.tick(now=now + timedelta(days=1, hours=2)) == {"committed": 2,
                                                                       "drawn": 2}
    assert services.tick(now=now + timedelta(days=2)) == {"purchase_opened": 2}
    assert Entitlement.objects.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        done = services.tick(now=now + timedelta(days=4))
    assert done == {"finished": 2}
    lottery.refresh_from_db()
    assert lottery.state == Lottery.State.FINISHED
    assert Entry.objects.filter(outcome=Entry.Outcome.NOT_SELECTED).count() == 1
    assert sum("receipt" in m.subject.lower() for m in mailoutbox) == 3
    assert sum("closed" in m.subject.lower() for m in mailoutbox) == 1
