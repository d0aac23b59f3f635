"""A visitor in a real browser finds an event from the home page and opens its page."""

import pytest

from conftest import save_screenshot
from smarttickets.events.tests.factories import published_event


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_visitor_searches_and_opens_an_event(page, live_server):
    event = published_event(title="Harbour Lights Tour", artist="Neon Tide", personalised=True)
    published_event(title="Jazz by the Harbour", artist="Kowloon Blue Quintet")

    page.goto(live_server.url + "/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Fair tickets")
    assert page.locator(".event-card").count() == 2

    page.get_by_label("Search").fill("neon")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/?q=neon*")
    cards = page.locator(".event-card")
    assert cards.count() == 1

    cards.first.click()
    page.wait_for_url(f"**/events/{event.slug}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Harbour Lights Tour"
    seatmap = page.locator("svg.seatmap")
    assert seatmap.get_attribute("role") == "img"
    assert page.locator("svg.seatmap circle.seat").count() == 20
    assert "HK$880.00" in page.locator(".zone-table").inner_text()
    assert page.get_by_text("Real-name tickets:").is_visible()
    save_screenshot(page, "event-page")
