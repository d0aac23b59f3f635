"""Headless Chromium: a fan gives a ticket away from My tickets, the friend accepts it on the
transfers page and finds it in their own wallet."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client

from conftest import save_screenshot
from smarttickets.booking.tests.factories import buyer
from smarttickets.tickets.models import Ticket, Transfer
from smarttickets.tickets.tests.conftest import make_show

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(context, live_server, user):
    client = Client()
    client.force_login(user)
    context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME,
                          "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                          "url": live_server.url}])


def test_a_fan_gives_a_ticket_and_the_friend_accepts_it(page, browser, live_server):
    show = make_show(n_tickets=2, personalised=True)
    friend = buyer(email="friend@example.com", legal_name="Wong Siu Ming")
    ticket = show.tickets[0]
    log_in(page.context, live_server, show.fan)

    page.goto(f"{live_server.url}/tickets/")
    # The wallet registers this browser's key in the background; the in-memory test database
    # cannot serve a second request while that write is open.
    page.wait_for_load_state("networkidle")
    page.get_by_role("link", name="Transfer to a friend").first.click()
    page.get_by_label("Recipient's email address").fill("friend@example.com")
    page.get_by_label("I understand").check()
    save_screenshot(page, "transfer-form")
    page.get_by_role("button", name="Offer ticket").click()
    page.wait_for_url(f"{live_server.url}/tickets/transfers/")
    assert page.get_by_text("its owner gets an email").is_visible()
    assert page.locator(".transfer-card").filter(has_text="friend@example.com").count() == 1

    friend_context = browser.new_context(viewport={"width": 390, "height": 844})
    friend_page = friend_context.new_page()
    log_in(friend_context, live_server, friend)
    friend_page.goto(f"{live_server.url}/tickets/")
    friend_page.wait_for_load_state("networkidle")
    friend_page.get_by_role("link", name="Review and accept").click()
    save_screenshot(friend_page, "transfer-incoming-mobile")
    friend_page.get_by_role("button", name="Accept ticket").click()
    friend_page.wait_for_url(f"{live_server.url}/tickets/")
    friend_page.wait_for_load_state("networkidle")
    card = friend_page.locator("article.ticket-card")
    save_screenshot(friend_page, "transfer-received-mobile")
    assert card.count() == 1
    assert "Wong Siu Ming" in card.inner_text() and "Received by transfer" in card.inner_text()
    friend_context.close()

    page.goto(f"{live_server.url}/tickets/")
    assert page.locator("article.ticket-card").count() == 1
    assert Ticket.objects.get(pk=ticket.pk).holder_user_id == friend.pk
    assert Transfer.objects.get().state == "accepted"
