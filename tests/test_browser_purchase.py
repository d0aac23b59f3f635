"""A fan picks seats, pays on the sandbox's hosted page and finds the tickets in the wallet."""

import re

import pytest
from django.core.cache import cache

from conftest import save_screenshot
from smarttickets.booking.models import Order
from smarttickets.booking.tests.factories import buyer, seated_performance
from smarttickets.payments.models import Payment
from smarttickets.tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_pick_seats_pay_with_the_sandbox_and_see_the_tickets(page, live_server, settings):
    settings.PAYMENT_PROVIDER = "sandbox"
    cache.clear()
    performance, _zone, _seats = seated_performance(rows=3, per_row=8, price="880.00",
                                                     title="Harbour Lights Live")
    venue = performance.event.venue
    # Zoom the factory's seat map onto its few seats so the screenshot is readable.
    venue.map_width, venue.map_height, venue.stage_width = 360, 170, 360
    venue.save()
    fan = buyer(email="browser-fan@example.com", legal_name="Chan Tai Man")

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", fan.email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"^(?!.*/accounts/login/).*$"))

    page.goto(f"{live_server.url}/booking/performances/{performance.pk}/")
    free = page.locator("svg.seatmap circle.seat[tabindex]")
    free.nth(2).click()
    free.nth(3).click()
    page.wait_for_selector("#seat-pick-submit:not([disabled])")
    save_screenshot(page, "purchase-1-seat-map")
    page.click("#seat-pick-submit")

    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("button", name=re.compile(r"^Pay HK\$1,760\.00")).click()

    page.wait_for_url(re.compile(r"/pay/sandbox/checkout/cs_sbx_"))
    assert page.locator(".sbx-testmode").is_visible()
    page.fill("#id_number", "4242 4242 4242 4242")
    page.fill("#id_expiry", "12 / 34")
    page.fill("#id_cvc", "123")
    page.fill("#id_name", "Chan Tai Man")
    save_screenshot(page, "purchase-2-sandbox-page")
    page.get_by_role("button", name="Pay HK$1,760.00").click()

    page.wait_for_url(re.compile(r"/pay/orders/\w+/return"))
    assert page.get_by_role("heading", level=1).inner_text().startswith("Payment received")
    page.get_by_role("link", name="Open my tickets").click()
    page.wait_for_url(re.compile(r"/tickets/"))
    cards = page.locator("article.ticket-card")
    assert cards.count() == 2
    assert "Harbour Lights Live" in page.inner_text("main")
    save_screenshot(page, "purchase-3-my-tickets")

    order = Order.objects.get(buyer=fan)
    assert order.state == Order.State.PAID
    assert Ticket.objects.filter(order=order, state="valid", seat__isnull=False).count() == 2
    assert Payment.objects.get(order=order).card_last4 == "4242"
