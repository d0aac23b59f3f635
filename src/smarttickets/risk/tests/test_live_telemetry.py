"""Telemetry recorded by the running platform, in the behaviour-log fields, and its export."""

from __future__ import annotations

import csv
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from smarttickets.booking.models import Hold, Order
from smarttickets.booking.tests.factories import buyer, ga_performance
from smarttickets.payments.models import Payment
from smarttickets.payments.tests.factories import card, pending_order
from smarttickets.risk import logio
from smarttickets.risk.models import AccountRiskState, RiskEvent
from smarttickets.risk.telemetry import DEVICE_COOKIE, parse_timings
from smarttickets.risk.tests.live_fixtures import allow_all
from smarttickets.risk.tests.live_fixtures import live as live_fixture

pytestmark = pytest.mark.django_db
live = live_fixture
TIMINGS = json.dumps({"fill_ms": 8400, "keystrokes": 61, "pastes": 1, "pointer_moves": 140,
                      "focus_changes": 5})


def test_signup_records_the_signup_and_its_form_timings(client, live,
                                                        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:register"), {
            "email": "Mei@Example.HK", "password": "a-long-passphrase-9", "legal_name": "Chan Mei",
            "accept_terms": "on", "risk_form": "signup", "risk_timings": TIMINGS},
            REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="Mozilla/5.0 test")

    assert response.status_code == 302
    signup = RiskEvent.objects.get(type="signup")
    assert signup.account.email == "mei@example.hk"
    assert (signup.ip, signup.ua) == ("198.51.100.7", "Mozilla/5.0 test")
    assert signup.data["email_domain"] == "example.hk"
    assert signup.data["phone_country"] is None and signup.data["address_hash"] is None
    assert len(signup.data["name_hash"]) == 32
    form = RiskEvent.objects.get(type="form_submit")
    assert form.account_id == signup.account_id
    assert form.data == {"form": "signup", "fill_ms": 8400, "keystrokes": 61, "pastes": 1,
                         "pointer_moves": 140, "focus_changes": 5}
    # the device id is the signed cookie the browser now carries
    assert signup.device == response.cookies[DEVICE_COOKIE].value
    assert response.cookies[DEVICE_COOKIE]["httponly"] is True


def test_login_success_and_failure_are_recorded(client, live):
    fan = buyer(password="a-long-passphrase-9")

    client.post(reverse("accounts:login"), {"username": fan.email, "password": "wrong-one-123",
                                            "risk_form": "login"})
    client.post(reverse("accounts:login"), {"username": fan.email,
                                            "password": "a-long-passphrase-9",
                                            "risk_form": "login", "risk_timings": TIMINGS})

    logins = list(RiskEvent.objects.filter(type="login", account=fan).order_by("pk")
                  .values_list("data", flat=True))
    assert logins == [{"success": False}, {"success": True}]
    forms = list(RiskEvent.objects.filter(type="form_submit", account=fan).order_by("pk")
                 .values_list("data", flat=True))
    # a client that sent no timings still gets its event, with nulls
    assert forms[0] == {"form": "login", "fill_ms": None, "keystrokes": None, "pastes": None,
                        "pointer_moves": None, "focus_changes": None}
    assert forms[1]["fill_ms"] == 8400


def test_page_views_carry_the_event_and_skip_static_api_and_health(client, live):
    performance, _zone = ga_performance()
    fan = buyer()
    client.force_login(fan)

    client.get(reverse("booking:performance", args=[performance.pk]))
    client.get(reverse("events:detail", args=[performance.event.slug]))
    client.get("/healthz")
    client.get(f"/api/booking/performances/{performance.pk}/availability")
    client.get("/static/risk/telemetry.js")

    views = list(RiskEvent.objects.filter(type="page_view").order_by("pk")
                 .values_list("account_id", "data"))
    assert views == [
        (fan.pk, {"path": f"/booking/performances/{performance.pk}/",
                  "event_id": str(performance.event_id)}),
        (fan.pk, {"path": f"/events/{performance.event.slug}/",
                  "event_id": str(performance.event_id)}),
    ]


def test_anonymous_page_views_have_no_account_and_a_device_session(client, live):
    client.get("/")

    view = RiskEvent.objects.get(type="page_view")
    assert view.account_id is None
    assert view.session.startswith("anon-")
    assert view.data == {"path": "/", "event_id": None}


def test_a_forged_device_cookie_is_replaced(client, live):
    client.cookies[DEVICE_COOKIE] = "someone-elses-device"

    response = client.get("/")

    fresh = response.cookies[DEVICE_COOKIE].value
    assert fresh != "someone-elses-device" and ":" in fresh
    assert RiskEvent.objects.get(type="page_view").device == fresh


def test_hold_order_and_payment_are_recorded_with_the_spec_fields(
        client, live, django_capture_on_commit_callbacks):
    performance, zone = ga_performance(price="480.00")
    allow_all(performance.event)
    fan = buyer()
    client.force_login(fan)

    client.post(reverse("booking:hold_create", args=[performance.pk]),
                {"zone": zone.pk, "quantity": 2})
    hold = Hold.objects.get(user=fan)
    client.post(reverse("booking:hold", args=[hold.pk]),
                {"holder_1": "Chan Siu Ming", "risk_form": "checkout"})
    order = Order.objects.get(hold=hold)
    start = client.post(reverse("payments:start", args=[order.code]))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(start["Location"], card("4000 0000 0000 9995"))
    client.get(reverse("payments:return", args=[order.code]))
    client.get(reverse("payments:return", args=[order.code]))  # a reload records nothing new

    by_type = {e.type: e for e in RiskEvent.objects.filter(account=fan)}
    assert by_type["hold"].data == {"event_id": str(performance.event_id),
                                    "performance_id": str(performance.pk), "quantity": 2,
                                    "success": True}
    assert by_type["order"].data == {"order_id": str(order.pk),
                                     "event_id": str(performance.event_id),
                                     "performance_id": str(performance.pk), "quantity": 2,
                                     "amount_minor": 96000, "currency": "HKD"}
    payment = Payment.objects.get(order=order)
    assert by_type["payment"].data == {"order_id": str(order.pk), "amount_minor": 96000,
                                       "currency": "HKD", "card_fp": payment.card_fingerprint,
                                       "success": False, "decline_code": "insufficient_funds"}
    assert payment.card_fingerprint
    assert RiskEvent.objects.filter(account=fan, type="payment").count() == 1
    assert by_type["form_submit"].data["form"] == "checkout"
    assert AccountRiskState.objects.get(account=fan).tickets == 2


def test_a_sold_out_hold_is_recorded_as_failed(client, live):
    performance, zone = ga_performance(capacity=1)
    allow_all(performance.event)
    fan = buyer()
    client.force_login(fan)

    client.post(reverse("booking:hold_create", args=[performance.pk]),
                {"zone": zone.pk, "quantity": 2})

    event = RiskEvent.objects.get(type="hold", account=fan)
    assert event.data["success"] is False and event.data["quantity"] == 2


def test_export_then_score_round_trip_from_platform_activity(client, live, tmp_path):
    # given activity recorded by the platform for two fans
    performance, zone = ga_performance()
    allow_all(performance.event)
    fans = [buyer(), buyer()]
    for fan in fans:
        client.force_login(fan)
        client.get(reverse("booking:performance", args=[performance.pk]))
        client.post(reverse("booking:hold_create", args=[performance.pk]),
                    {"zone": zone.pk, "quantity": 1})
        pending_order(user=fan, performance=performance, zone=zone, quantity=1)
    client.logout()
    client.get("/")

    # when it is exported and scored with the detector's own CLI
    log = tmp_path / "log.jsonl"
    call_command("risk", "export", "--out", str(log))
    call_command("risk", "score", str(log), "--out", str(tmp_path / "scores.csv"),
                 "--model", str(live.RISK_MODEL_PATH))

    # then every line is valid behaviour-log v1 and every account gets a score
    stats = logio.ReadStats()
    events = list(logio.iter_events(str(log), stats))
    assert stats.malformed == 0
    assert len(events) == RiskEvent.objects.count()
    assert {e["type"] for e in events} >= {"page_view", "hold"}
    with open(tmp_path / "scores.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["account"] for r in rows} == {str(f.pk) for f in fans}
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)


def test_timings_from_the_browser_are_checked():
    assert parse_timings('{"fill_ms": 12.7, "keystrokes": -1, "pastes": true}') == {
        "fill_ms": 12, "keystrokes": None, "pastes": None, "pointer_moves": None,
        "focus_changes": None}
    assert parse_timings("not json") == dict.fromkeys(
        ("fill_ms", "keystrokes", "pastes", "pointer_moves", "focus_changes"))
