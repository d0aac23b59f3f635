"""Feature extraction on hand-built logs with known answers, and graph features on a known ring."""

import math

from smarttickets.risk import features as F

T0 = 1_700_000_000.0


def ev(ts, type_, account, **fields):
    base = {"ts": T0 + ts, "type": type_, "account": account, "session": fields.pop("session", "s1"),
            "ip": fields.pop("ip", "198.51.100.7"), "device": fields.pop("device", "dev-" + account),
            "ua": fields.pop("ua", "Mozilla/5.0 Firefox/128.0")}
    base.update(fields)
    return base


def form(ts, account, fill_ms, keystrokes, pointer_moves, **fields):
    return ev(ts, "form_submit", account, form=fields.pop("form", "checkout"), fill_ms=fill_ms,
              keystrokes=keystrokes, pastes=fields.pop("pastes", 0), pointer_moves=pointer_moves,
              focus_changes=fields.pop("focus_changes", 6), **fields)


def test_timing_and_form_features_have_known_values():
    # given a fan with intervals 2, 4, 8, 16 s in one session and a gap of an hour before a
    # second session, and two forms
    events = [ev(0, "page_view", "fan", path="/", event_id=None), ev(2, "page_view", "fan", path="/",
              event_id=None), ev(6, "page_view", "fan", path="/", event_id=None),
              form(14, "fan", 12000, 40, 80), form(30, "fan", 3000, 2, 0, form="login"),
              ev(3630, "page_view", "fan", path="/", event_id=None, session="s2")]

    # when features are extracted
    row = F.extract(events).row("fan")

    # then intervals inside a session count and the cross-session hour does not; pace and
    # form times are measured against the defaults (a one-account log has no context of its own)
    ctx = F.DEFAULT_CONTEXT
    assert row["iat_median_rel"] == 6.0 / ctx.iat_median_s
    assert row["iat_min_s"] == 2.0
    assert row["iat_sub1s_frac"] == 0.0
    assert math.isnan(row["iat_log_std"])  # four intervals are too few to judge regularity
    assert row["fill_s_min"] == 3.0
    assert row["fill_rel_min"] == 3.0 / ctx.fill_median("login")
    assert row["keys_per_s_max"] == 40 / 12  # the login's two keys are too few for a rate
    assert row["keystrokes_zero_frac"] == 0.0
    assert row["zero_pointer_forms_frac"] == 0.5
    assert row["robotic_forms_frac"] == 0.0
    assert row["forms_no_telemetry_frac"] == 0.0
    assert row["ips_per_session"] == (1 + 1) / (2 + 2)
    assert row["automation_ua"] == 0


def test_identity_and_purchase_features_have_known_values():
    events = [
        ev(0, "signup", "b", email_domain="x.net", phone_country=None, name_hash="n",
           address_hash="h"),
        ev(1800, "lottery_entry", "b", event_id="E", performance_id="P1", quantity=4),
        ev(1801, "lottery_entry", "b", event_id="E", performance_id="P2", quantity=4,
           ua="HeadlessChrome/120"),
        ev(1802, "login", "b", success=False, ip="192.0.2.1"),
        ev(1803, "hold", "b", event_id="E", performance_id="P1", quantity=4, success=False),
        ev(1804, "hold", "b", event_id="E", performance_id="P1", quantity=2, success=True),
        ev(1805, "order", "b", order_id="o1", event_id="E", performance_id="P1", quantity=2,
           amount_minor=100, currency="HKD"),
        ev(1806, "payment", "b", order_id="o1", amount_minor=100, currency="HKD", card_fp="c1",
           success=False, decline_code="do_not_honor"),
        ev(1807, "payment", "b", order_id="o1", amount_minor=100, currency="HKD", card_fp="c2",
           success=True, decline_code=None),
        ev(1900, "ticket_transfer", "b", ticket_id="t1", to_account="z"),
    ]

    table = F.extract(events)
    row = table.row("b")

    assert "has_signup" not in table.names  # where a log starts is no evidence
    assert row["phone_missing"] == 1
    assert row["automation_ua"] == 1
    assert row["uas_per_session"] == (2 + 1) / (1 + 2)
    assert row["ips_per_session"] == (2 + 1) / (1 + 2)
    assert row["login_fail_ratio"] == 1.0
    assert row["entries"] == 2
    assert row["entry_performances"] == 2
    assert row["entries_per_event"] == 2
    assert row["entry_qty_rel"] == 1.0  # 4 of a default limit of 4
    assert row["holds"] == 2
    assert row["hold_fail_ratio"] == 0.5
    assert row["hold_qty_rel"] == 3 / 4
    assert row["hold_qty_max_rel"] == 1.0
    assert row["tickets"] == 2
    assert row["tickets_per_order"] == 2
    assert row["payments_per_order"] == 2
    assert row["pay_fail_ratio"] == 0.5
    assert row["decline_codes"] == 1
    assert row["cards"] == 2
    assert row["transfers_out"] == 1
    assert row["transfer_out_share"] == 0.5
    # the recipient appears in the table although it never acted itself
    assert table.accounts == ["b", "z"]
    assert table.row("z")["transfers_in"] == 1
    assert table.row("z")["transfer_senders"] == 1


def test_graph_features_on_a_known_ring():
    # given three ring accounts sharing one card that each hand 4 tickets to one collector, a
    # household of two sharing an address, and a crowd of 10 fans behind one carrier IP
    events = []
    for i, a in enumerate(["r1", "r2", "r3"]):
        events += [
            ev(i, "order", a, order_id=f"o{a}", event_id="E", performance_id="P", quantity=4,
               amount_minor=1, currency="HKD", ip=f"203.0.113.{i}"),
            ev(i + 1, "payment", a, order_id=f"o{a}", amount_minor=1, currency="HKD",
               card_fp="ring-card", success=True, decline_code=None, ip=f"203.0.113.{i}"),
            ev(i + 2, "ticket_transfer", a, ticket_id=f"t{a}", to_account="boss"),
        ]
    for a in ["h1", "h2"]:
        events.append(ev(0, "signup", a, email_domain="e", phone_country="+852", name_hash=a,
                         address_hash="flat-7"))
    for i in range(10):
        events.append(ev(i, "order", f"c{i}", order_id=f"oc{i}", event_id="E", performance_id="P",
                         quantity=1, amount_minor=1, currency="HKD", ip="100.64.0.1"))

    table = F.extract(events)

    ring = table.row("r1")
    assert ring["card_share"] == 2
    assert ring["recipient_in_degree_max"] == 3
    assert ring["component_size"] == 4          # three senders and the collector
    assert ring["component_tickets"] == 12
    assert ring["component_tickets_per_account"] == 3
    assert ring["component_share"] == 4 / 12
    assert ring["component_transfers"] == 3
    assert ring["neighbours"] == 3
    assert table.row("boss")["transfer_senders"] == 3
    assert table.row("boss")["component_size"] == 4
    household = table.row("h1")
    assert household["addr_share"] == 1
    assert household["component_size"] == 2
    # a busy carrier IP is not a tie: each fan behind it stays on its own
    crowd = table.row("c0")
    assert crowd["ipo_buyers"] == 9
    assert crowd["ipo_accounts_min"] == 10
    assert crowd["component_size"] == 1
    assert crowd["neighbours"] == 0


def test_accounts_with_nothing_measured_get_missing_values_not_zeros():
    row = F.extract([ev(0, "page_view", "solo", path="/", event_id=None)]).row("solo")

    assert math.isnan(row["iat_median_rel"])
    assert math.isnan(row["fill_s_min"])
    assert math.isnan(row["hold_qty_rel"])
    assert math.isnan(row["transfer_out_share"])
    assert row["component_size"] == 1
