"""Booking pages over HTTP: performance page, hold → order flow, my orders, organizer views."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from smarttickets.booking import services
from smarttickets.booking.models import Hold, Order
from smarttickets.booking.tests.factories import (
    OrganizerFactory,
    UserFactory,
    buyer,
    ga_performance,
    seated_performance,
)
from smarttickets.events.models import Membership, Performance

pytestmark = pytest.mark.django_db


def test_performance_page_shows_map_zones_and_sets_a_device_cookie(client):
    performance, _zone, seats = seated_performance()
    client.force_login(buyer())

    response = client.get(reverse("booking:performance", args=[performance.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-seat-id="{seats[0].pk}"' in html
    assert "Stalls" in html and "HK$880.00" in html
    assert "10 left" in html
    assert "st_device" in response.cookies


def test_performance_page_explains_a_closed_sale(client):
    performance, _zone = ga_performance()
    Performance.objects.filter(pk=performance.pk).update(
        onsale_starts_at=timezone.now() + timedelta(days=2))

    response = client.get(reverse("booking:performance", args=[performance.pk]))

    assert "Sales open on" in response.content.decode()
    assert "Hold tickets" not in response.content.decode()


def test_unverified_buyer_gets_a_message_with_a_profile_link(client):
    performance, zone = ga_performance()
    client.force_login(UserFactory())

    response = client.post(reverse("booking:hold_create", args=[performance.pk]),
                           {"zone": zone.pk, "quantity": 1}, follow=True)

    assert "verified identity" in response.content.decode()
    assert Hold.objects.count() == 0


def test_hold_names_order_flow_and_release(client):
    performance, zone = ga_performance(personalised=True)
    user = buyer(legal_name="Chan Tai Man")
    client.force_login(user)

    response = client.post(reverse("booking:hold_create", args=[performance.pk]),
                           {"zone": zone.pk, "quantity": 2})
    hold = Hold.objects.get(user=user)
    assert response.url == reverse("booking:hold", args=[hold.pk])

    page = client.get(response.url)
    assert "data-countdown" in page.content.decode()
    assert "Chan Tai Man" in page.content.decode()

    missing = client.post(response.url, {"holder_1": ""})
    assert missing.status_code == 200
    assert "Enter the legal name" in missing.content.decode() or "required" in \
        missing.content.decode()
    assert Order.objects.count() == 0

    done = client.post(response.url, {"holder_1": "Wong Siu Ming"})
    order = Order.objects.get()
    assert done.url == reverse("booking:order", args=[order.code])
    order_page = client.get(done.url).content.decode()
    assert "Wong Siu Ming" in order_page and "data-countdown" in order_page

    client.post(reverse("booking:hold_release", args=[hold.pk]))
    order.refresh_from_db()
    assert order.state == Order.State.CANCELLED


def test_someone_elses_hold_and_order_are_404(client):
    performance, zone = ga_performance()
    owner = buyer()
    hold = services.create_hold(user=owner, performance=performance, now=timezone.now(),
                                selection=services.Selection(zone_id=zone.pk, quantity=1))
    order = services.place_order(hold=hold, buyer=owner, holder_names=[], now=timezone.now())
    client.force_login(buyer())

    assert client.get(reverse("booking:hold", args=[hold.pk])).status_code == 404
    assert client.post(reverse("booking:hold_release", args=[hold.pk])).status_code == 404
    assert client.get(reverse("booking:order", args=[order.code])).status_code == 404
    assert Hold.objects.get(pk=hold.pk).state == Hold.State.LIVE


def test_my_orders_lists_the_buyers_orders_only(client):
    performance, zone = ga_performance()
    user, other = buyer(), buyer()
    now = timezone.now()
    mine = services.place_order(hold=services.create_hold(
        user=user, performance=performance, now=now,
        selection=services.Selection(zone_id=zone.pk, quantity=1)), buyer=user,
        holder_names=[], now=now)
    theirs = services.place_order(hold=services.create_hold(
        user=other, performance=performance, now=now,
        selection=services.Selection(zone_id=zone.pk, quantity=1)), buyer=other,
        holder_names=[], now=now)
    client.force_login(user)

    html = client.get(reverse("booking:my_orders")).content.decode()

    assert mine.code in html and theirs.code not in html


def staff(organizer, **perms):
    user = UserFactory()
    Membership.objects.create(organizer=organizer, user=user, **perms)
    return user


def test_organizer_search_detail_and_sales(client):
    performance, zone = ga_performance(capacity=10)
    organizer = performance.event.organizer
    fan = buyer(legal_name="Ho Ka Ming", email="ho@example.com")
    now = timezone.now()
    order = services.place_order(hold=services.create_hold(
        user=fan, performance=performance, now=now,
        selection=services.Selection(zone_id=zone.pk, quantity=2)), buyer=fan,
        holder_names=[], now=now)
    services.mark_order_paid(order_id=order.pk, provider="sandbox", payment_reference="r",
                             amount_minor=96000, currency="HKD", card_fingerprint="", now=now)
    client.force_login(staff(organizer, can_view_reports=True))

    for q in ("Ka Ming", "ho@example", order.code.lower()):
        assert order.code in client.get(reverse("booking:organizer_orders"), {"q": q}
                                        ).content.decode()
    assert order.code not in client.get(reverse("booking:organizer_orders"),
                                        {"q": "nobody"}).content.decode()
    detail = client.get(reverse("booking:organizer_order", args=[order.code])).content.decode()
    assert "order.paid" in detail and "order.created" in detail
    sales = client.get(reverse("booking:organizer_sales", args=[performance.pk]))
    rows = {r.zone.pk: r for r in sales.context["rows"]}
    assert (rows[zone.pk].sold, rows[zone.pk].available, str(rows[zone.pk].revenue)) == (
        2, 8, "960.00")


def test_staff_of_another_organizer_gets_404(client):
    performance, zone = ga_performance()
    fan = buyer()
    now = timezone.now()
    order = services.place_order(hold=services.create_hold(
        user=fan, performance=performance, now=now,
        selection=services.Selection(zone_id=zone.pk, quantity=1)), buyer=fan,
        holder_names=[], now=now)
    client.force_login(staff(OrganizerFactory(), can_view_reports=True, can_manage_events=True))

    assert client.get(reverse("booking:organizer_order", args=[order.code])).status_code == 404
    assert client.get(reverse("booking:organizer_sales", args=[performance.pk])
                      ).status_code == 404
    assert order.code not in client.get(reverse("booking:organizer_orders")).content.decode()


def test_member_without_report_permission_gets_404(client):
    performance, _zone = ga_performance()
    client.force_login(staff(performance.event.organizer, can_scan_tickets=True))

    assert client.get(reverse("booking:organizer_orders")).status_code == 404
    assert client.get(reverse("booking:organizer_sales", args=[performance.pk])
                      ).status_code == 404
