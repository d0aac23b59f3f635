"""The simulator's populations: what the detector is trained on must not come in packages.

A bot whose every tell arrives together (machine pace, synthetic forms, a shared card) teaches a
model conjunctions that traffic nobody simulated does not honour; these tests pin down that the
tells, retries, lone scalpers, receive-only collectors and their look-alike fans are there.
"""

import itertools
import json
import math
from collections import defaultdict
from dataclasses import replace

import pytest

from smarttickets.risk import features as F
from smarttickets.risk import simulate


@pytest.fixture(scope="module")
def world():
    # A world with many adversaries of every kind, their tells drawn one by one.
    sc = replace(simulate.STANDARD, name="test", adversary_share=0.4, mimicry=0.5,
                 bot_fast_pace=0.5, bot_retries=(6, 12), own_card_rings=0.5,
                 household_gives=0.6)
    w = simulate.Simulation(accounts=3000, seed=11, scenario=sc).run()
    events = defaultdict(list)
    for _, line in w.lines:
        event = json.loads(line)
        if event["account"] is not None:
            events[event["account"]].append(event)
    return w, events


def _kinds(w, kind):
    return [a for a, (_, k) in w.labels.items() if k == kind]


def _gaps(evs):
    stamps = [(e["session"], e["ts"]) for e in evs if e["type"] in F.TIMING_TYPES]
    return F._intervals(stamps)


def test_bots_retry_a_sold_out_sale_and_frantic_fans_retry_at_a_persons_pace(world):
    w, events = world
    bot_holds = [sum(e["type"] == "hold" for e in events[a])
                 for a in _kinds(w, "bot:stealth") + _kinds(w, "bot:naive")]
    # Rings retry up to 6–12 times per round: many bots make more attempts than three rounds.
    assert sum(h > 3 for h in bot_holds) > len(bot_holds) // 4

    frantic_gaps = []
    for a in _kinds(w, "fan:frantic"):
        holds = sorted(e["ts"] for e in events[a] if e["type"] == "hold")
        frantic_gaps.extend(b - a for a, b in itertools.pairwise(holds))
    assert frantic_gaps
    # Retrying by hand takes seconds (the gap before a hold also covers the failed attempt's
    # own steps, so it is never below a person's retry pace).
    assert min(frantic_gaps) > 0.3


def test_stealth_tells_come_one_by_one(world):
    w, events = world
    fast_with_human_forms = slow_with_synthetic_forms = 0
    for a in _kinds(w, "bot:stealth") + _kinds(w, "bot:aged_sleeper"):
        gaps = _gaps(events[a])
        forms = [e for e in events[a] if e["type"] == "form_submit" and e["fill_ms"] is not None]
        if len(gaps) < 3 or not forms:
            continue
        fast = sorted(gaps)[len(gaps) // 2] < 1.5
        # Human forms vary their keystrokes; synthetic ones type 9 keys a field, ±10%.
        typed = [e["keystrokes"] / {"login": 2, "checkout": 6, "lottery_entry": 4,
                                    "signup": 7}[e["form"]] for e in forms]
        human_like = any(abs(k - 9) > 1.5 for k in typed)
        fast_with_human_forms += fast and human_like
        slow_with_synthetic_forms += (not fast) and not human_like
    assert fast_with_human_forms > 0
    assert slow_with_synthetic_forms > 0


def test_some_stealth_rings_share_no_card(world):
    w, events = world
    card_users = defaultdict(set)
    for a in _kinds(w, "bot:stealth"):
        for e in events[a]:
            if e["type"] == "payment":
                card_users[e["card_fp"]].add(a)
    assert any(len(users) == 1 for users in card_users.values())
    assert any(len(users) > 1 for users in card_users.values())


def test_lone_scalpers_resell_in_lots_and_households_hand_tickets_on(world):
    w, events = world
    scalpers = _kinds(w, "scalper:human")
    assert scalpers
    lots = [e for a in scalpers for e in events[a] if e["type"] == "ticket_transfer"]
    buyers = {e["to_account"] for e in lots}
    # Resold to fans, who are never labelled scalpers.
    assert buyers and all(w.labels[b][0] == 0 for b in buyers)

    givers = [a for a in _kinds(w, "fan:household")
              if any(e["type"] == "ticket_transfer" for e in events[a])]
    assert givers


def test_collectors_vary_their_own_activity(world):
    w, events = world
    collectors = _kinds(w, "collector")
    sessions = {len({e["session"] for e in events[a]}) for a in collectors}
    assert len(sessions) > 2
    received = defaultdict(int)
    for evs in events.values():
        for e in evs:
            if e["type"] == "ticket_transfer":
                received[e["to_account"]] += 1
    assert any(received[c] for c in collectors)


def test_varied_worlds_draw_the_new_knobs_in_range():
    for seed in range(20):
        sc = simulate.varied(seed)
        assert sc.bot_retries[0] == 1 and 2 <= sc.bot_retries[1] <= 30
        assert 0.0 <= sc.bot_fast_pace <= 0.7
        assert 0.0 <= sc.own_card_rings <= 0.8
        assert sc.scalper_accounts[0] == 1 and 2 <= sc.scalper_accounts[1] <= 7
        assert math.isfinite(sc.household_gives)
        assert 0.0 <= sc.fan_enter_all <= 0.12
        assert 0.1 <= sc.sale_odds <= 1.0


@pytest.mark.parametrize("sale_format", ["first_come", "lottery"])
def test_worlds_sell_by_one_format_only(sale_format):
    # given a world whose big show is sold by a first-come sale only, or a lottery only
    sc = replace(simulate.STANDARD, name="test", adversary_share=0.3, sale_format=sale_format)
    w = simulate.Simulation(accounts=800, seed=3, scenario=sc).run()
    events = [json.loads(line) for _, line in w.lines]
    types = {e["type"] for e in events}
    bots = {a for a, (label, kind) in w.labels.items() if label == 1 and kind != "collector"}

    # then the other format leaves no trace, and the bots still go for tickets
    if sale_format == "first_come":
        assert "lottery_entry" not in types
        flooders = set(_kinds(w, "bot:lottery_flooder"))
        assert flooders and {e["account"] for e in events if e["type"] == "hold"} & flooders
    else:
        assert "queue_join" not in types
        assert {e["account"] for e in events if e["type"] == "lottery_entry"} & bots
    assert {e["account"] for e in events if e["type"] == "hold"} & bots


def test_varied_worlds_draw_every_sale_format():
    formats = {simulate.varied(seed).sale_format for seed in range(40)}
    assert formats == set(simulate.SALE_FORMATS)
