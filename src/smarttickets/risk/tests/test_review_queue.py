"""The staff review queue: who may see which case, the verdicts with their audit, and appeals."""

from __future__ import annotations

import pytest
from django.urls import reverse

from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.booking.models import Hold
from smarttickets.booking.tests.factories import buyer, ga_performance
from smarttickets.core import clock
from smarttickets.core.models import AuditEntry
from smarttickets.events.models import Membership
from smarttickets.payments.models import Payment
from smarttickets.payments.tests.factories import pending_order
from smarttickets.risk.models import AccountRiskState, Appeal, ReviewCase
from smarttickets.risk.services import record_event
from smarttickets.risk.tests.live_fixtures import live as live_fixture
from smarttickets.risk.tests.live_fixtures import review_all

pytestmark = pytest.mark.django_db
live = live_fixture


def _reviewer(organizer, **perms):
    perms.setdefault("can_review_risk", True)
    user = UserFactory()
    Membership.objects.create(organizer=organizer, user=user, **perms)
    return user


@pytest.fixture
def flagged(client, live):
    """A fan whose hold went to review: (fan, performance, zone, case), fan logged in."""
    performance, zone = ga_performance()
    review_all(performance.event)
    fan = buyer()
    client.force_login(fan)
    client.post(reverse("booking:hold_create", args=[performance.pk]),
                {"zone": zone.pk, "quantity": 2})
    return fan, performance, zone, ReviewCase.objects.get(account=fan)


def test_a_reviewer_sees_the_cases_of_their_organizer_only(client, flagged):
    fan, performance, _zone, case = flagged
    mine = _reviewer(performance.event.organizer)
    other_performance, _ = ga_performance()
    stranger = _reviewer(other_performance.event.organizer)

    client.force_login(mine)
    queue = client.get(reverse("risk:review_queue"))
    detail = client.get(reverse("risk:review_case", args=[case.pk]))
    assert queue.status_code == 200 and fan.email in queue.content.decode()
    assert detail.status_code == 200

    client.force_login(stranger)
    queue = client.get(reverse("risk:review_queue"))
    assert queue.status_code == 200 and fan.email not in queue.content.decode()
    assert client.get(reverse("risk:review_case", args=[case.pk])).status_code == 404
    refused = client.post(reverse("risk:review_verdict", args=[case.pk]),
                          {"action": "ban", "note": "x"})
    assert refused.status_code == 404
    case.refresh_from_db()
    assert case.state == "open"
    assert not AccountRiskState.objects.filter(account=fan, banned_at__isnull=False).exists()


def test_fans_and_staff_without_the_permission_get_404(client, flagged):
    fan, performance, _zone, case = flagged
    manager = _reviewer(performance.event.organizer, can_review_risk=False,
                        can_manage_events=True)

    for user in (fan, manager):
        client.force_login(user)
        assert client.get(reverse("risk:review_queue")).status_code == 404
        assert client.get(reverse("risk:review_case", args=[case.pk])).status_code == 404
        assert client.post(reverse("risk:review_verdict", args=[case.pk]),
                           {"action": "release"}).status_code == 404
    case.refresh_from_db()
    assert case.state == "open"


def test_release_lets_the_fan_pay_and_is_audited(client, flagged):
    fan, performance, zone, case = flagged
    reviewer = _reviewer(performance.event.organizer)
    client.force_login(reviewer)

    response = client.post(reverse("risk:review_verdict", args=[case.pk]),
                           {"action": "release", "note": "Buying for her family."})

    assert response.status_code == 302
    case.refresh_from_db()
    assert (case.state, case.resolved_by, case.note) == ("released", reviewer,
                                                         "Buying for her family.")
    audit = AuditEntry.objects.get(action="risk.case.released")
    assert (audit.actor, audit.object_id) == (reviewer, str(case.pk))
    # and the fan can now pay, although the event still reviews everyone
    client.force_login(fan)
    order = pending_order(user=fan, performance=performance, zone=zone)
    paying = client.post(reverse("payments:start", args=[order.code]))
    assert paying["Location"].startswith("/pay/sandbox/checkout/")
    assert Payment.objects.filter(order=order).count() == 1


def test_cancel_refuses_checkout_for_that_event(client, flagged):
    fan, performance, zone, case = flagged
    reviewer = _reviewer(performance.event.organizer)
    client.force_login(reviewer)
    client.post(reverse("risk:review_verdict", args=[case.pk]), {"action": "cancel"})
    assert AuditEntry.objects.filter(action="risk.case.cancelled", actor=reviewer).count() == 1

    client.force_login(fan)
    order = pending_order(user=fan, performance=performance, zone=zone)
    api = client.post(f"/api/payments/orders/{order.code}/checkout")
    assert api.status_code == 403
    # the event still reviews everyone: the refused purchase opens a fresh case
    assert api.json()["code"] == "risk_review"
    assert not Payment.objects.filter(order=order).exists()
    assert list(ReviewCase.objects.filter(account=fan).order_by("pk")
                .values_list("state", flat=True)) == ["cancelled", "open"]


def test_ban_refuses_every_checkpoint_with_risk_blocked(client, flagged):
    fan, performance, _zone, case = flagged
    reviewer = _reviewer(performance.event.organizer)
    client.force_login(reviewer)
    client.post(reverse("risk:review_verdict", args=[case.pk]),
                {"action": "ban", "note": "Ring of 12 accounts on one card."})
    assert AccountRiskState.objects.get(account=fan).banned_at is not None
    assert AuditEntry.objects.filter(action="risk.case.banned", actor=reviewer).count() == 1

    client.force_login(fan)
    other, other_zone = ga_performance()
    holds_before = Hold.objects.filter(user=fan).count()
    api = client.post(f"/api/booking/performances/{other.pk}/holds",
                      {"zone_id": other_zone.pk, "quantity": 1},
                      content_type="application/json")
    assert api.status_code == 403
    assert api.json()["code"] == "risk_blocked"
    assert api.json()["url"] == reverse("risk:status")
    web = client.post(reverse("booking:hold_create", args=[other.pk]),
                      {"zone": other_zone.pk, "quantity": 1})
    assert web.status_code == 302
    assert Hold.objects.filter(user=fan).count() == holds_before


def test_a_second_verdict_on_a_closed_case_changes_nothing(client, flagged):
    _fan, performance, _zone, case = flagged
    reviewer = _reviewer(performance.event.organizer)
    client.force_login(reviewer)
    client.post(reverse("risk:review_verdict", args=[case.pk]), {"action": "release"})

    again = client.post(reverse("risk:review_verdict", args=[case.pk]), {"action": "ban"})

    assert again.status_code == 400
    case.refresh_from_db()
    assert case.state == "released"
    assert not AuditEntry.objects.filter(action="risk.case.banned").exists()


def test_a_fan_appeals_from_the_case_page_and_the_reviewer_reads_it(client, flagged):
    fan, performance, _zone, case = flagged

    short = client.post(reverse("risk:case", args=[case.pk]), {"text": "pls"})
    assert short.status_code == 400
    assert not Appeal.objects.exists()

    sent = client.post(reverse("risk:case", args=[case.pk]),
                       {"text": "I buy for my parents; we share one card."})
    assert sent.status_code == 302
    appeal = Appeal.objects.get(case=case)
    assert appeal.account == fan
    assert AuditEntry.objects.filter(action="risk.appeal.submitted", actor=fan).count() == 1

    reviewer = _reviewer(performance.event.organizer)
    client.force_login(reviewer)
    page = client.get(reverse("risk:review_case", args=[case.pk])).content.decode()
    assert "I buy for my parents; we share one card." in page


def test_an_appeal_reopens_a_banned_case(client, flagged):
    fan, performance, _zone, case = flagged
    reviewer = _reviewer(performance.event.organizer)
    client.force_login(reviewer)
    client.post(reverse("risk:review_verdict", args=[case.pk]), {"action": "ban"})

    client.force_login(fan)
    client.post(reverse("risk:case", args=[case.pk]), {"text": "This is my only account."})

    case.refresh_from_db()
    assert case.state == "open"
    assert case.resolved_by is None


def test_someone_elses_case_is_not_found(client, flagged):
    _fan, _performance, _zone, case = flagged
    client.force_login(buyer())

    assert client.get(reverse("risk:case", args=[case.pk])).status_code == 404
    posted = client.post(reverse("risk:case", args=[case.pk]), {"text": "Let me in please!"})
    assert posted.status_code == 404
    assert not Appeal.objects.exists()


def test_the_case_page_draws_the_ring_behind_a_shared_card(client, flagged):
    fan, performance, _zone, case = flagged
    ring = [buyer() for _ in range(3)]
    for user in [fan, *ring]:
        record_event(account=user, type="payment", session="s", ip="203.0.113.5",
                     device=None, ua="ua", now=clock.now(),
                     fields={"order_id": f"o{user.pk}", "amount_minor": 100, "currency": "HKD",
                             "card_fp": "one-card", "success": True, "decline_code": None})
    reviewer = _reviewer(performance.event.organizer)
    client.force_login(reviewer)

    page = client.get(reverse("risk:review_case", args=[case.pk])).content.decode()

    assert page.count('<g class="node') == 4
    assert page.count('class="edge edge-card"') >= 3
    for user in ring:
        assert f"#{user.pk}" in page
