"""Transfer pages: the button in My tickets, the form with its consequences, incoming offers
with accept/decline, pending offers with cancel; the organizer's transfer settings; the
Scanner link in the site header; Traditional Chinese."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smarttickets.booking.tests.factories import buyer
from smarttickets.core import clock
from smarttickets.events.tests.factories import MembershipFactory, OrganizerFactory
from smarttickets.tickets import services as tickets
from smarttickets.tickets.models import Ticket, TicketingPolicy, Transfer
from smarttickets.tickets.tests.conftest import gate_staff_of, make_show

pytestmark = pytest.mark.django_db


@pytest.fixture
def friend():
    return buyer(email="friend@example.com", legal_name="Wong Siu Ming")


def test_my_tickets_offers_a_transfer_button(client, show):
    client.force_login(show.fan)

    page = client.get("/tickets/").content.decode()

    assert f'href="/tickets/t/{show.tickets[0].serial}/transfer/"' in page
    assert "Transfer to a friend" in page


def test_the_form_explains_the_consequences(client):
    show = make_show(personalised=True)
    client.force_login(show.fan)

    page = client.get(f"/tickets/t/{show.tickets[0].serial}/transfer/").content.decode()

    assert "Your code, and any screenshot or printout of it, stops opening the gate." in page
    assert "the ticket will carry their verified legal name" in page
    assert "They cannot pass it on again." in page
    assert "Transfers are free." in page


def test_submitting_without_confirming_offers_nothing(client, show, friend):
    client.force_login(show.fan)

    response = client.post(f"/tickets/t/{show.tickets[0].serial}/transfer/",
                           {"email": friend.email})

    assert response.status_code == 422
    assert "Tick the box to confirm you want to give this ticket away." in \
        response.content.decode()
    assert Transfer.objects.count() == 0


def test_a_refusal_from_the_service_shows_on_the_form(client, show):
    client.force_login(show.fan)

    response = client.post(f"/tickets/t/{show.tickets[0].serial}/transfer/",
                           {"email": show.fan.email, "confirm": "on"})

    assert response.status_code == 422
    assert "Enter someone else&#x27;s address." in response.content.decode()
    assert Transfer.objects.count() == 0


def test_offer_accept_round_trip_through_the_pages(client, show, friend):
    client.force_login(show.fan)
    offered = client.post(f"/tickets/t/{show.tickets[0].serial}/transfer/",
                          {"email": "Friend@Example.com", "confirm": "on"}, follow=True)
    assert offered.redirect_chain == [("/tickets/transfers/", 302)]
    assert "its owner gets an email" in offered.content.decode()
    wallet = client.get("/tickets/").content.decode()
    assert "Offered to friend@example.com" in wallet and "Cancel transfer" in wallet

    client.force_login(friend)
    assert "Friends are giving you" not in client.get("/tickets/").content.decode()
    assert "A friend is giving you a ticket." in client.get("/tickets/").content.decode()
    incoming = client.get("/tickets/transfers/").content.decode()
    transfer = Transfer.objects.get()
    assert f'action="/tickets/transfers/{transfer.pk}/accept/"' in incoming
    assert "Chan Tai Man" in incoming
    accepted = client.post(f"/tickets/transfers/{transfer.pk}/accept/", follow=True)

    assert accepted.redirect_chain == [("/tickets/", 302)]
    assert "The ticket is yours now" in accepted.content.decode()
    assert "Received by transfer" in accepted.content.decode()
    assert "Transfer to a friend" not in accepted.content.decode()  # passed on once already
    assert Ticket.objects.get(pk=show.tickets[0].pk).holder_user_id == friend.pk
    client.force_login(show.fan)
    history = client.get("/tickets/transfers/").content.decode()
    assert "To friend@example.com" in history and "Transferred" in history


def test_decline_and_cancel_buttons(client, friend):
    show = make_show(n_tickets=2)
    a = tickets.start_transfer(ticket=show.tickets[0], sender=show.fan,
                               to_email=friend.email, now=clock.now())
    b = tickets.start_transfer(ticket=show.tickets[1], sender=show.fan,
                               to_email=friend.email, now=clock.now())

    client.force_login(friend)
    declined = client.post(f"/tickets/transfers/{a.pk}/decline/", follow=True)
    client.force_login(show.fan)
    cancelled = client.post(f"/tickets/transfers/{b.pk}/cancel/", follow=True)

    assert "Declined. The ticket stays with the sender." in declined.content.decode()
    assert "Transfer cancelled. The ticket and its code stay yours." in \
        cancelled.content.decode()
    assert dict(Transfer.objects.values_list("pk", "state")) == {a.pk: "declined",
                                                                 b.pk: "cancelled"}
    assert set(Ticket.objects.filter(pk__in=[t.pk for t in show.tickets])
               .values_list("holder_user_id", flat=True)) == {show.fan.pk}


def test_an_unverified_recipient_sees_why_and_keeps_the_offer(client, show):
    half = buyer(email="half@example.com", phone_verified_at=None)
    transfer = tickets.start_transfer(ticket=show.tickets[0], sender=show.fan,
                                      to_email=half.email, now=clock.now())
    client.force_login(half)

    page = client.get("/tickets/transfers/").content.decode()
    response = client.post(f"/tickets/transfers/{transfer.pk}/accept/", follow=True)

    assert "first verify your mobile number" in page
    assert "Accepting a ticket needs a verified identity" in response.content.decode()
    assert Transfer.objects.get().state == "pending"


def test_transfer_page_of_a_started_show_says_why_not(client):
    show = make_show(starts_in=timedelta(minutes=-5))
    client.force_login(show.fan)

    page = client.get(f"/tickets/t/{show.tickets[0].serial}/transfer/").content.decode()

    assert "This ticket cannot be transferred" in page
    assert "Transfers close when the doors open." in page
    assert 'name="email"' not in page


def test_someone_elses_ticket_page_is_404(client, show, friend):
    client.force_login(friend)

    assert client.get(f"/tickets/t/{show.tickets[0].serial}/transfer/").status_code == 404


def test_organizer_turns_transfers_off(client, show):
    manager = MembershipFactory(organizer=show.event.organizer, can_manage_events=True).user
    policy = tickets.policy_for_event(show.event)
    client.force_login(manager)

    response = client.post(f"/tickets/organizer/events/{show.event.pk}/gates/", {
        "default_gate_group": "MAIN", "valid_from_minutes_before": "360",
        "valid_until_minutes_after": "480", "max_transfers_per_ticket": "2"})

    assert response.status_code == 302
    policy = TicketingPolicy.objects.get(pk=policy.pk)
    assert (policy.transfers_allowed, policy.max_transfers_per_ticket) == (False, 2)
    client.force_login(show.fan)
    assert "Transfer to a friend" not in client.get("/tickets/").content.decode()


def test_scanner_link_in_the_header_for_scanning_staff_only(client, show):
    organizer_b = OrganizerFactory()
    scanner = gate_staff_of(show.event.organizer)
    MembershipFactory(organizer=organizer_b, user=scanner, can_scan_tickets=True)
    gate = buyer(is_gate_staff=True)
    reporter = MembershipFactory(organizer=organizer_b, can_view_reports=True).user

    pages = {name: (client.force_login(user), client.get("/").content.decode())[1]
             for name, user in [("scanner", scanner), ("gate", gate),
                                ("reporter", reporter), ("fan", show.fan)]}

    link = '<a href="/tickets/scan/">Scanner</a>'
    assert {name: page.count(link) for name, page in pages.items()} == {
        "scanner": 1, "gate": 1, "reporter": 0, "fan": 0}


def test_pages_in_traditional_chinese(client, show, friend):
    scanner = gate_staff_of(show.event.organizer)
    tickets.start_transfer(ticket=show.tickets[0], sender=show.fan, to_email=friend.email,
                           now=clock.now())
    client.cookies["django_language"] = "zh-hant"

    client.force_login(friend)
    page = client.get("/tickets/transfers/").content.decode()
    client.force_login(scanner)
    header = client.get("/").content.decode()

    assert "<h2 id=\"incoming-title\">收到的轉讓</h2>" in page
    assert "接受門票" in page and "<dt>轉出人</dt><dd>Chan Tai Man</dd>" in page
    assert '<a href="/tickets/scan/">掃描入場</a>' in header


def test_offer_email_is_in_the_recipients_language(
        client, show, friend, mailoutbox, django_capture_on_commit_callbacks):
    friend.preferred_language = "zh-hant"
    friend.save(update_fields=["preferred_language"])

    with django_capture_on_commit_callbacks(execute=True):
        tickets.start_transfer(ticket=show.tickets[0], sender=show.fan,
                               to_email=friend.email, now=clock.now())

    (mail,) = mailoutbox
    assert mail.subject == f"Chan Tai Man 想將 {show.event.title} 的門票轉讓給您"
    assert mail.body.startswith("Wong Siu Ming 你好：")
    assert "SmartTickets 上的轉讓是免費的" in mail.body
