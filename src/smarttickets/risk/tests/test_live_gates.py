"""Decision hooks in the running platform: hold, checkout start and lottery entry, through HTTP."""

from __future__ import annotations

import pytest
from django.urls import reverse

from smarttickets.booking.models import Hold
from smarttickets.booking.tests.factories import buyer, ga_performance
from smarttickets.core import clock
from smarttickets.core.models import AuditEntry
from smarttickets.payments.models import Payment
from smarttickets.payments.tests.factories import pending_order
from smarttickets.risk import decisions as D
from smarttickets.risk import gates
from smarttickets.risk.models import Decision, ReviewCase, StepUpChallenge
from smarttickets.risk.tests.live_fixtures import allow_all, challenge_all, review_all, sms_code
from smarttickets.risk.tests.live_fixtures import live as live_fixture

pytestmark = pytest.mark.django_db
live = live_fixture


def _hold(client, performance, zone, quantity=2):
    return client.post(reverse("booking:hold_create", args=[performance.pk]),
                       {"zone": zone.pk, "quantity": quantity})


def test_an_allowed_hold_is_decided_stored_and_made(client, live):
    # given a verified fan and an event whose policy allows
    performance, zone = ga_performance()
    allow_all(performance.event)
    fan = buyer()
    client.force_login(fan)

    # when the fan holds two places
    response = _hold(client, performance, zone)

    # then the hold exists and the decision is stored with score, model version and thresholds
    hold = Hold.objects.get(user=fan)
    assert response.status_code == 302
    assert response["Location"] == reverse("booking:hold", args=[hold.pk])
    decision = Decision.objects.get(account=fan)
    assert (decision.checkpoint, decision.decision, decision.event_id) == (
        "hold", "allow", str(performance.event_id))
    assert (decision.object_type, decision.object_id) == ("events.performance",
                                                          str(performance.pk))
    assert decision.model_version.startswith("hgb-")
    assert decision.thresholds == {"challenge": 1.0, "review": 1.0, "block": 1.0}
    assert decision.failsafe is False


def test_a_second_hold_within_the_window_reuses_the_allow(client, live):
    performance, zone = ga_performance()
    allow_all(performance.event)
    fan = buyer()
    client.force_login(fan)
    _hold(client, performance, zone, quantity=1)

    _hold(client, performance, zone, quantity=1)

    assert Hold.objects.filter(user=fan).count() == 2
    assert Decision.objects.filter(account=fan).count() == 1


def test_a_challenged_hold_is_refused_until_the_sms_step_up_is_passed(
        client, live, django_capture_on_commit_callbacks):
    # given an event that challenges everyone
    performance, zone = ga_performance()
    challenge_all(performance.event)
    fan = buyer()
    client.force_login(fan)
    back = reverse("booking:performance", args=[performance.pk])

    # when the fan tries to hold, they are sent to the step-up page and nothing is held
    response = _hold(client, performance, zone)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('risk:stepup')}?next={back.replace('/', '%2F')}"
    assert not Hold.objects.filter(user=fan).exists()
    assert Decision.objects.get(account=fan).decision == "challenge"

    # and a wrong code is refused and counted
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("risk:stepup"), {"action": "send", "next": back})
    assert len(live_sms()) == 1 and live_sms()[0].to == fan.phone
    wrong = client.post(reverse("risk:stepup"), {"action": "verify", "code": "000000",
                                                 "next": back})
    assert wrong.status_code == 400
    assert StepUpChallenge.objects.get(account=fan).attempts == 1
    assert StepUpChallenge.objects.get(account=fan).passed_at is None

    # when the fan enters the texted code
    passed = client.post(reverse("risk:stepup"), {"action": "verify", "code": sms_code(),
                                                  "next": back})

    # then they go back to the performance and the next hold goes through
    assert passed.status_code == 302 and passed["Location"] == back
    assert AuditEntry.objects.filter(action="risk.stepup.passed", actor=fan).count() == 1
    _hold(client, performance, zone)
    assert Hold.objects.filter(user=fan).count() == 1
    latest = Decision.objects.filter(account=fan).first()
    assert (latest.model_decision, latest.decision, latest.override) == (
        "challenge", "allow", "stepup_passed")


def live_sms():
    from smarttickets.accounts import sms

    return sms.outbox


def test_a_broken_model_challenges_logs_and_booking_still_works(
        client, live, tmp_path, caplog, django_capture_on_commit_callbacks):
    # given a model file that cannot be loaded
    (tmp_path / "broken.joblib").write_bytes(b"not a model")
    live.RISK_MODEL_PATH = str(tmp_path / "broken.joblib")
    D.reset_model_cache()
    performance, zone = ga_performance()
    fan = buyer()
    client.force_login(fan)

    # when the fan holds: the fail-safe challenge, logged and stored
    response = _hold(client, performance, zone)
    assert response["Location"].startswith(reverse("risk:stepup"))
    decision = Decision.objects.get(account=fan)
    assert (decision.decision, decision.failsafe, decision.model_version) == (
        "challenge", True, "unavailable")
    assert "risk model unavailable" in caplog.text

    # then the fan passes the step-up and books
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("risk:stepup"), {"action": "send"})
    client.post(reverse("risk:stepup"), {"action": "verify", "code": sms_code()})
    held = _hold(client, performance, zone)
    hold = Hold.objects.get(user=fan)
    assert held["Location"] == reverse("booking:hold", args=[hold.pk])
    D.reset_model_cache()


def test_the_api_answers_a_challenge_with_its_code_and_the_step_up_url(
        client, live, django_capture_on_commit_callbacks):
    performance, zone = ga_performance()
    challenge_all(performance.event)
    fan = buyer()
    client.force_login(fan)

    response = client.post(f"/api/booking/performances/{performance.pk}/holds",
                           {"zone_id": zone.pk, "quantity": 2}, content_type="application/json")

    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "risk_challenge"
    assert body["url"] == reverse("risk:stepup")
    assert not Hold.objects.filter(user=fan).exists()

    # the API client passes the step-up and retries
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/risk/stepup").status_code == 200
    verified = client.post("/api/risk/stepup/verify", {"code": sms_code()},
                           content_type="application/json")
    assert verified.status_code == 200
    retried = client.post(f"/api/booking/performances/{performance.pk}/holds",
                          {"zone_id": zone.pk, "quantity": 2}, content_type="application/json")
    assert retried.status_code == 201
    assert Hold.objects.filter(user=fan).count() == 1


def test_review_lets_the_hold_through_but_checkout_waits(client, live):
    # given an event that sends everyone to review, and a fan with a pending order
    performance, zone = ga_performance()
    review_all(performance.event)
    fan = buyer()
    client.force_login(fan)

    # when the fan holds: allowed, and a case is opened for staff
    _hold(client, performance, zone)
    assert Hold.objects.filter(user=fan).count() == 1
    case = ReviewCase.objects.get(account=fan)
    assert (case.state, case.event_id, case.decision.decision) == (
        "open", performance.event_id, "review")

    # and when they try to pay, they are sent to their case page and no payment starts
    order = pending_order(user=fan, performance=performance, zone=zone)
    response = client.post(reverse("payments:start", args=[order.code]))
    assert response.status_code == 302
    assert response["Location"] == reverse("risk:case", args=[case.pk])
    assert not Payment.objects.filter(order=order).exists()
    api = client.post(f"/api/payments/orders/{order.code}/checkout")
    assert api.status_code == 403
    assert api.json()["code"] == "risk_review"
    assert api.json()["url"] == reverse("risk:case", args=[case.pk])
    assert not Payment.objects.filter(order=order).exists()
    checkouts = Decision.objects.filter(account=fan, checkpoint="checkout")
    assert {d.object_id for d in checkouts} == {str(order.pk)}


def test_an_allowed_checkout_starts_paying(client, live):
    performance, zone = ga_performance()
    allow_all(performance.event)
    fan = buyer()
    client.force_login(fan)
    order = pending_order(user=fan, performance=performance, zone=zone)

    response = client.post(reverse("payments:start", args=[order.code]))

    assert response.status_code == 302
    assert response["Location"].startswith("/pay/sandbox/checkout/")
    assert Payment.objects.filter(order=order).count() == 1
    assert Decision.objects.get(account=fan, checkpoint="checkout").decision == "allow"


def test_the_lottery_entry_hook_blocks_a_banned_account(live):
    # Lottery calls decide/check itself; the checkpoint must refuse a banned account with
    # risk_blocked and store the decision.
    from smarttickets.risk.models import AccountRiskState

    fan = buyer()
    performance, _zone = ga_performance()
    AccountRiskState.objects.create(account=fan, banned_at=clock.now())

    with pytest.raises(gates.RiskBlocked) as refused:
        gates.check(attempt=gates.Attempt(account_id=fan.pk, event_id=performance.event_id,
                                          performance_id=performance.pk, quantity=2,
                                          object_type="lottery.entry"),
                    checkpoint="lottery_entry")

    assert refused.value.code == "risk_blocked"
    assert refused.value.status == 403
    stored = Decision.objects.get(account=fan)
    assert (stored.checkpoint, stored.decision, stored.override) == (
        "lottery_entry", "block", "banned")


def test_gates_are_off_unless_enabled(settings):
    settings.RISK_GATES_ENABLED = False
    fan = buyer()

    assert gates.check(attempt=gates.Attempt(account_id=fan.pk, event_id="1"),
                       checkpoint="hold") is None
    assert not Decision.objects.exists()
