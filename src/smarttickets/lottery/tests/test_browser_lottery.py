"""End to end in Chromium: a fan enters, the organizer commits and draws, the fan sees "Won",
buys with the reserved seats through the booking flow and pays on the sandbox page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from conftest import save_screenshot
from smarttickets.booking.models import Order
from smarttickets.core import clock
from smarttickets.lottery import services
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

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("signing_key_in_tmp", "risk")]


def _log_in(page, base, email):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", "correct-horse-battery")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()


def test_a_fan_enters_wins_and_buys(page, live_server):
    now = clock.now()
    performance, _seated, standing = lottery_performance(
        now=now, entry_closes_at=now + timedelta(hours=1), draw_at=now + timedelta(hours=2),
        purchase_opens_at=now + timedelta(hours=3), purchase_closes_at=now + timedelta(days=3))
    lottery = lottery_for(performance, standing, beacon_kind=Lottery.BeaconKind.NONE,
                          capacity=5)
    user = fan(legal_name="Siu Ming Lee")
    base = live_server.url

    # the fan enters through the page
    _log_in(page, base, user.email)
    page.goto(f"{base}/lottery/performances/{performance.pk}/")
    page.get_by_label(re.compile("Standing")).check()
    page.select_option("select[name=quantity]", "2")
    save_screenshot(page, "lottery-enter")
    page.get_by_role("button", name="Enter the lottery").click()
    page.wait_for_url(re.compile(r"/lottery/entries/[0-9a-f]{32}/"))
    assert page.locator(".lottery-status").get_attribute("data-status") == "entered"
    entry = Entry.objects.get(user=user)
    assert (entry.quantity, entry.lottery_id) == (2, lottery.pk)

    # the organizer closes, commits and draws; the purchase window opens
    lottery = services.close_and_commit(lottery=lottery, actor=None,
                                        now=performance.entry_closes_at)
    lottery = services.run_draw(lottery=lottery, actor=None, now=performance.draw_at)
    services.start_purchase(lottery=lottery, actor=None, now=performance.purchase_opens_at)

    # the fan sees the win, checks the receipt and buys
    page.goto(f"{base}/lottery/entries/")
    assert page.locator("table").get_by_text("Won").is_visible()
    page.get_by_role("link", name=re.compile("Details")).click()
    page.get_by_role("button", name="Check my inclusion").click()
    page.wait_for_selector("#receipt-result.alert-success")
    save_screenshot(page, "lottery-won")
    page.get_by_role("link", name="Buy your tickets").first.click()
    page.wait_for_url(re.compile(r"/booking/performances/\d+/"))
    zone_form = page.locator("form.zone-form:has(input[name=entitlement])")
    zone_form.locator("select[name=quantity]").select_option("2")
    zone_form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/booking/holds/\d+/"))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/booking/orders/\w+/"))
    order = Order.objects.get(buyer=user)
    assert order.hold.entitlement_id == Entry.objects.get(user=user).entitlement_id
    page.get_by_role("button", name=re.compile("Pay")).click()
    page.wait_for_url(re.compile(r"/pay/sandbox/checkout/"))
    page.fill("#id_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12 / 34")
    page.fill("#id_cvc", "123")
    page.fill("#id_name", "Siu Ming Lee")
    page.locator("#card-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/booking/orders/\w+/|/pay/orders/\w+/return"))
    save_screenshot(page, "lottery-paid")

    order.refresh_from_db()
    assert order.state == Order.State.PAID
    assert order.tickets.count() == 2
    services.pass_down(lottery=lottery, now=clock.now())
    assert Entry.objects.get(user=user).outcome == Entry.Outcome.PURCHASED
