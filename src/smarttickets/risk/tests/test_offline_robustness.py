"""The detector on traffic it never saw: an independent generator, shuffled and noisy logs,
other platforms' pace, credential stuffing, single transfers, mixed training."""

import importlib.util
import io
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from smarttickets.risk import features as F
from smarttickets.risk import logio, simulate
from smarttickets.risk import model as M

REPO = Path(__file__).resolve().parents[4]
T0 = 1_760_000_000.0


def _independent_sim():
    spec = importlib.util.spec_from_file_location("independent_sim",
                                                  REPO / "tools" / "independent_sim.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["independent_sim"] = module
    spec.loader.exec_module(module)
    return module


def ev(ts, type_, account, **fields):
    base = {"ts": T0 + ts, "type": type_, "account": account,
            "session": fields.pop("session", "s-" + str(account)),
            "ip": fields.pop("ip", "198.51.100.7"), "device": fields.pop("device", "d-" + str(account)),
            "ua": fields.pop("ua", "Mozilla/5.0 Firefox/128.0")}
    base.update(fields)
    return base


def _same(a, b):
    return np.array_equal(a, b, equal_nan=True)


@pytest.mark.slow
def test_shipped_model_ranks_an_independent_generators_log(tmp_path):
    # given a small log from a generator written from the spec alone, never trained on
    sim = _independent_sim()
    world = sim.generate(accounts=1000, seed=4242, bad_share=0.2)
    log_path, labels_path = sim.write(world, tmp_path)

    # when the shipped model scores it
    trained = M.load(M.DEFAULT_MODEL_PATH)
    data = M.load_dataset(log_path, labels_path)
    result = trained.assess(data.table)
    scores = result.scores[data.rows]
    decisions = [result.decisions[i] for i in data.rows]
    metrics = M.evaluate(scores, data.y, decisions)

    # then scalpers rank above fans and no fan is blocked
    assert data.stats.malformed <= world.cfg.malformed  # its blank "bad" lines are skipped
    assert metrics["scalpers"] > 60
    assert metrics["roc_auc"] > 0.95
    assert metrics["fans_block"] == 0


def test_features_ignore_line_order_unknown_types_and_extra_fields():
    # given a small log, and the same log shuffled with unknown fields and event types added
    events = [
        ev(0, "signup", "a", email_domain="x.com", phone_country="+852", name_hash="n",
           address_hash="h"),
        ev(5, "page_view", "a", path="/", event_id=None),
        ev(9, "form_submit", "a", form="checkout", fill_ms=9000, keystrokes=30, pastes=0,
           pointer_moves=40, focus_changes=5),
        ev(12, "hold", "a", event_id="E", performance_id="P", quantity=2, success=True),
        ev(13, "order", "a", order_id="o", event_id="E", performance_id="P", quantity=2,
           amount_minor=100, currency="HKD"),
        ev(15, "payment", "a", order_id="o", amount_minor=100, currency="HKD", card_fp="c",
           success=True, decline_code=None),
        ev(99, "ticket_transfer", "a", ticket_id="t", to_account="b"),
        ev(20, "page_view", "b", path="/", event_id=None, ip="2001:db8::7"),
    ]
    noisy = [dict(e, request_id=f"r{i}", geo={"country": "HK"}) for i, e in enumerate(events)]
    noisy += [ev(50, "heartbeat", "a"), ev(51, "logout", "b", reason="idle")]
    random.Random(3).shuffle(noisy)
    text = "\n".join(json.dumps(e) for e in noisy) + "\n"

    # when both are read and featurised
    stats = logio.ReadStats()
    shuffled = F.extract(logio.iter_events(io.StringIO(text), stats))
    ordered = F.extract(events)

    # then the features are identical and the unknown types were counted, not used
    assert shuffled.accounts == ordered.accounts == ["a", "b"]
    assert _same(shuffled.X, ordered.X)
    assert stats.unknown_types == {"heartbeat": 1, "logout": 1}
    assert stats.malformed == 0


def _paced_log(scale: float, accounts: int = 60) -> list[dict]:
    """Accounts clicking every 2, 4, 8 s (times ``scale``) and filling a login form."""
    events = []
    for n in range(accounts):
        a = f"u{n}"
        t = n * 10_000.0
        for gap in (2, 4, 8, 2):
            events.append(ev(t, "page_view", a, path="/", event_id=None))
            t += gap * scale
        events.append(ev(t, "form_submit", a, form="login", fill_ms=int(6000 * scale),
                         keystrokes=24, pastes=0, pointer_moves=10, focus_changes=2))
        events.append(ev(t, "login", a, success=True))
    return events


def test_pace_and_form_times_are_measured_against_the_logs_own_fans():
    # given two platforms whose people are alike except that one is three times slower
    fast = F.extract(_paced_log(1.0))
    slow = F.extract(_paced_log(3.0))

    # then relative pace and form times are the same, and each log found its own context
    for name in ("iat_median_rel", "fill_rel_min", "fill_rel_median", "iat_log_std"):
        assert np.allclose(fast.column(name), slow.column(name), equal_nan=True), name
    assert fast.context.iat_median_s == 3.0 and slow.context.iat_median_s == 9.0
    assert fast.context.fill_median("login") == 6.0
    assert slow.context.fill_median("login") == 18.0
    # too few accounts for a context of their own: the defaults are used
    assert F.extract(_paced_log(3.0, accounts=10)).context == F.DEFAULT_CONTEXT


def test_someone_elses_failed_logins_do_not_describe_the_account():
    # given a fan whose password a headless bot tried from a datacentre, and the fan's own
    # session, which also had one typo before getting in
    bot_ua = "Mozilla/5.0 HeadlessChrome/120.0"
    events = [
        ev(0, "form_submit", "fan", session="attack", ip="203.0.113.9", device=None, ua=bot_ua,
           form="login", fill_ms=None, keystrokes=None, pastes=None, pointer_moves=None,
           focus_changes=None),
        ev(0.2, "login", "fan", session="attack", ip="203.0.113.9", device=None, ua=bot_ua,
           success=False),
        ev(500, "login", "fan", session="own", success=True),
        ev(400, "login", "fan", session="own", success=False),
        ev(600, "page_view", "fan", session="own", path="/", event_id=None),
    ]

    # when features are extracted (in both orders)
    row = F.extract(events).row("fan")
    backward = F.extract(list(reversed(events))).row("fan")

    # then the bot's user agent, address and form are not the fan's; the typo is
    assert row["automation_ua"] == 0
    assert row["ips_per_session"] == (1 + 1) / (1 + 2)
    assert row["login_fail_ratio"] == 0.5
    assert math.isnan(row["forms_no_telemetry_frac"])
    assert _same(np.array(list(row.values())), np.array(list(backward.values())))


def test_a_single_transfer_is_not_a_tie_but_a_collector_is():
    # given a fan who gives a ticket to a friend who also bought one from a reseller, and three
    # accounts feeding one collector
    events = [ev(0, "ticket_transfer", "fan", ticket_id="t1", to_account="friend"),
              ev(0, "ticket_transfer", "reseller", ticket_id="t0", to_account="friend"),
              ev(1, "ticket_transfer", "s1", ticket_id="t2", to_account="boss"),
              ev(2, "ticket_transfer", "s2", ticket_id="t3", to_account="boss"),
              ev(3, "ticket_transfer", "s3", ticket_id="t4", to_account="boss")]

    table = F.extract(events)

    # then the friend ties nobody together, and the collector ties its senders
    assert table.row("fan")["component_size"] == 1
    assert table.row("friend")["component_size"] == 1
    assert table.row("friend")["transfer_senders"] == 2
    assert table.row("s1")["component_size"] == 4
    assert table.row("boss")["transfer_senders"] == 3
    assert table.row("s1")["recipient_in_degree_max"] == 3


def test_self_declared_automation_and_card_testing_score_high_whatever_the_model(
        tiny_model_path):
    # given a fan-like row, the same row with a headless user agent, and a card-testing row
    trained = M.load(tiny_model_path)
    base = trained.impute.copy()
    bot = base.copy()
    bot[trained.features.index("automation_ua")] = 1
    tester = base.copy()
    for name, value in (("cards", 12), ("pay_fail_ratio", 0.95), ("decline_codes", 4)):
        tester[trained.features.index(name)] = value

    scores = trained.score_matrix(np.array([base, bot, tester]))

    assert scores[1] >= M.HARD_EVIDENCE_SCORE
    assert scores[2] >= M.HARD_EVIDENCE_SCORE
    assert scores[0] < M.HARD_EVIDENCE_SCORE


@pytest.mark.slow
def test_training_on_a_mix_of_worlds(tiny_log, tmp_path):
    # given the tiny standard log and a small varied world
    other = simulate.write(simulate.simulate(accounts=400, seed=31, scenario="varied"),
                           tmp_path / "varied")

    # when a model is trained on both
    trained = M.train(*tiny_log, seed=2, max_iter=40, extra=[other])

    # then it saw both logs, recorded both in its hash, and never learned from missing values
    assert trained.metrics["logs"] == 2
    assert trained.training_hash == M.file_sha256(*tiny_log, *other)
    assert not np.isnan(trained.impute).any()
    assert trained.estimator.monotonic_cst is not None


def test_varied_worlds_are_deterministic_and_differ_by_seed():
    a, b, c = simulate.varied(5), simulate.varied(5), simulate.varied(6)

    assert a == b
    assert a != c
    assert 0.03 <= a.adversary_share <= 0.35
    assert a.max_qty in (2, 4, 6, 8)
    with pytest.raises(ValueError, match="unknown scenario"):
        simulate.simulate(accounts=10, seed=1, scenario="easy")
