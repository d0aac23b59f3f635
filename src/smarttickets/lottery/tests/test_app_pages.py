"""Lottery pages and API over HTTP: entering, my entries, the public record and downloads, the
organizer's steps and their permissions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from smarttickets.accounts.api_auth import create_api_token
from smarttickets.core import clock
from smarttickets.events.tests.factories import OrganizerFactory
from smarttickets.lottery import draw, services
from smarttickets.lottery.models import Entry, Lottery
from smarttickets.lottery.tests import app_helpers
from smarttickets.lottery.tests.app_helpers import (
    fan,
    lottery_for,
    lottery_performance,
    runner_of,
)

# Fixtures shared by the lottery app's tests.
risk = app_helpers.risk
signing_key_in_tmp = app_helpers.signing_key_in_tmp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_key_in_tmp", "risk")]


def test_a_fan_enters_through_the_page_and_sees_the_entry(client):
    performance, seated, _ = lottery_performance(personalised=True)
    user = fan()
    client.force_login(user)
    page = client.get(reverse("lottery:performance", args=[performance.pk]))
    lottery = Lottery.objects.get(zone=seated)
    assert page.status_code == 200
    assert lottery.seed_commitment in page.content.decode()

    response = client.post(reverse("lottery:enter", args=[performance.pk]), {
        "lottery": lottery.public_id, "quantity": "2", "companion_1": "Wong Ka Ho"})

    entry = Entry.objects.get(user=user)
    assert response.status_code == 302
    assert response["Location"] == reverse("lottery:entry", args=[entry.entry_id])
    assert (entry.quantity, entry.companions) == (2, ["Wong Ka Ho"])
    mine = client.get(reverse("lottery:my_entries")).content.decode()
    assert "Seated" in mine and "Entered" in mine


def test_a_refused_entry_shows_the_reason_and_stores_nothing(client):
    performance, seated, _ = lottery_performance(per_person_limit=2, personalised=True)
    client.force_login(fan())
    lottery = Lottery.objects.filter(zone=seated).first() or lottery_for(performance, seated)

    over = client.post(reverse("lottery:enter", args=[performance.pk]),
                       {"lottery": lottery.public_id, "quantity": "5"})
    nameless = client.post(reverse("lottery:enter", args=[performance.pk]),
                           {"lottery": lottery.public_id, "quantity": "2"})

    assert over.status_code == 422
    assert "at most 2 tickets" in over.content.decode()
    assert nameless.status_code == 422
    assert "legal name of companion 1" in nameless.content.decode()
    assert Entry.objects.count() == 0


def test_entry_page_withdraw_and_another_fans_entry_is_404(client):
    performance, seated, _ = lottery_performance()
    user = fan()
    entry = services.enter(lottery=lottery_for(performance, seated), user=user, quantity=1,
                           companions=[], now=clock.now())
    client.force_login(fan())
    assert client.get(reverse("lottery:entry", args=[entry.entry_id])).status_code == 404
    assert client.post(reverse("lottery:withdraw", args=[entry.entry_id])).status_code == 404
    entry.refresh_from_db()
    assert entry.state == Entry.State.ACTIVE

    client.force_login(user)
    assert client.get(reverse("lottery:entry", args=[entry.entry_id])).status_code == 200
    response = client.post(reverse("lottery:withdraw", args=[entry.entry_id]))

    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.state == Entry.State.WITHDRAWN


def test_public_record_and_downloads_verify_without_login(client):
    performance, seated, _ = lottery_performance()
    lottery = lottery_for(performance, seated, beacon_kind=Lottery.BeaconKind.NONE, capacity=2)
    for _ in range(3):
        services.enter(lottery=lottery, user=fan(), quantity=1, companions=[], now=clock.now())
    lottery = services.close_and_commit(lottery=lottery, actor=None,
                                        now=performance.entry_closes_at)
    services.run_draw(lottery=lottery, actor=None, now=performance.draw_at)

    page = client.get(reverse("lottery:draw", args=[lottery.public_id]))
    result = client.get(reverse("lottery:result_json", args=[lottery.public_id]))
    entries = client.get(reverse("lottery:entries_json", args=[lottery.public_id]))
    commitment = client.get(reverse("lottery:commitment_json", args=[lottery.public_id]))
    verifier = client.get(reverse("lottery:verifier"))

    assert page.status_code == 200
    html = page.content.decode()
    assert lottery.commitment_hash in html and "<svg" in html
    summary = draw.verify(json.loads(result.content), draw.parse_entries(entries.content))
    assert (summary["winners"], summary["waitlist"]) == (2, 1)
    assert json.loads(commitment.content) == lottery.commitment
    assert verifier.content == Path(draw.__file__).read_bytes()


def test_the_api_enters_lists_and_refuses_a_second_entry(client):
    performance, seated, standing = lottery_performance()
    user = fan()
    _token, key = create_api_token(user=user, name="app")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    lotteries = client.get(f"/api/lottery/performances/{performance.pk}").json()
    seated_id = next(lot["lottery_id"] for lot in lotteries if lot["zone_id"] == seated.pk)
    standing_id = next(lot["lottery_id"] for lot in lotteries if lot["zone_id"] == standing.pk)

    created = client.post("/api/lottery/entries", {"lottery_id": seated_id, "quantity": 2},
                          content_type="application/json", **auth)
    again = client.post("/api/lottery/entries", {"lottery_id": standing_id, "quantity": 1},
                        content_type="application/json", **auth)
    mine = client.get("/api/lottery/entries", **auth)

    assert created.status_code == 201 and created.json()["status"] == "entered"
    assert again.status_code == 409 and again.json()["code"] == "duplicate_entry"
    assert [e["entry_id"] for e in mine.json()] == [created.json()["entry_id"]]
    assert Entry.objects.filter(user=user).count() == 1


def test_organizer_runs_the_steps_with_confirmation(client):
    performance, seated, _ = lottery_performance()
    staff = runner_of(performance.event.organizer)
    lottery = lottery_for(performance, seated)
    services.enter(lottery=lottery, user=fan(), quantity=1, companions=[], now=clock.now())
    client.force_login(staff)
    url = reverse("lottery:organizer_action", args=[lottery.pk, "settings"])

    saved = client.post(url, {"capacity": "5", "flagged_policy": "review", "beacon_kind": "drand",
                              "beacon_source": "", "beacon_draw": "", "offer_hours": "12"})
    unconfirmed = client.post(reverse("lottery:organizer_action", args=[lottery.pk, "close"]))

    assert saved.status_code == 302
    lottery.refresh_from_db()
    assert (lottery.capacity, lottery.offer_hours) == (5, 12)
    assert unconfirmed.status_code == 422
    assert "Tick the box" in unconfirmed.content.decode()
    assert lottery.state == Lottery.State.OPEN
    page = client.get(reverse("lottery:organizer_lottery", args=[lottery.pk]))
    assert page.status_code == 200 and "Close and commit" in page.content.decode()


def test_another_organizers_staff_get_404_everywhere(client):
    performance, seated, _ = lottery_performance()
    lottery = lottery_for(performance, seated)
    outsider = runner_of(OrganizerFactory())
    client.force_login(outsider)

    pages = [reverse("lottery:organizer_lottery", args=[lottery.pk]),
             reverse("lottery:organizer_performance", args=[performance.pk])]
    actions = [reverse("lottery:organizer_action", args=[lottery.pk, a])
               for a in ("settings", "close", "draw", "purchase")]

    assert [client.get(u).status_code for u in pages] == [404, 404]
    assert [client.post(u, {"close-confirm": "on", "draw-confirm": "on"}).status_code
            for u in actions] == [404] * 4
    lottery.refresh_from_db()
    assert lottery.state == Lottery.State.OPEN and lottery.commitment is None
