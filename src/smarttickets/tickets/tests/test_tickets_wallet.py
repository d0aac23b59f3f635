"""The wallet page lists my tickets with event, date, venue, seat, holder and order code."""

import pytest
from django.urls import reverse
from django.utils import timezone

from smarttickets.booking import services
from smarttickets.booking.tests.factories import buyer, seated_performance

pytestmark = pytest.mark.django_db


def test_wallet_lists_only_my_valid_tickets(client):
    performance, _zone, seats = seated_performance()
    user = buyer(legal_name="Chan Tai Man")
    now = timezone.now()
    hold = services.create_hold(user=user, performance=performance, now=now,
                                selection=services.Selection(seat_ids=(seats[0].pk,)))
    order = services.place_order(hold=hold, buyer=user, holder_names=[], now=now)
    services.mark_order_paid(order_id=order.pk, provider="sandbox", payment_reference="r",
                             amount_minor=88000, currency="HKD", card_fingerprint="", now=now)
    client.force_login(user)

    html = client.get(reverse("tickets:wallet")).content.decode()

    assert performance.event.title in html and performance.event.venue.name in html
    assert "Chan Tai Man" in html and order.code in html and "row A, seat 1" in html

    services.record_refund(order_id=order.pk, ticket_ids=None, actor=None, reason="x", now=now)
    assert order.code not in client.get(reverse("tickets:wallet")).content.decode()
    assert order.code in client.get(reverse("tickets:wallet"), {"show": "all"}).content.decode()


def test_wallet_needs_login(client):
    response = client.get(reverse("tickets:wallet"))

    assert response.status_code == 302
