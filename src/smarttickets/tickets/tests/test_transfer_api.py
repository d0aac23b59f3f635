"""Ticket transfers through the HTTP API: offer, accept, decline, cancel and expiry; every
refusal leaves the ticket as it was; the sender's old code is refused at the gate afterwards."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from smarttickets.booking.tests.factories import buyer
from smarttickets.core import clock
from smarttickets.core.models import AuditEntry
from smarttickets.tickets import services as tickets
from smarttickets.tickets.credential import holder_hint
from smarttickets.tickets.models import CheckIn, IssuedCredential, Ticket, Transfer
from smarttickets.tickets.tests.conftest import (
    buy,
    gate_staff_of,
    make_show,
    register_wallet,
)

pytestmark = pytest.mark.django_db
NEUTRAL = ("If that address belongs to a SmartTickets account, its owner gets an email and can "
           "accept the ticket until the offer expires. Otherwise ask them to sign up with "
           "exactly this address and verify their identity before then.")


def call(client, user, path, body=None, method="post"):
    client.force_login(user)
    if method == "get":
        return client.get(path)
    return client.post(path, body or {}, content_type="application/json")


def offer(client, show, email, *, ticket=None, sender=None):
    ticket = ticket or show.tickets[0]
    return call(client, sender or show.fan, f"/api/tickets/tickets/{ticket.serial}/transfer",
                {"email": email})


def act(client, user, transfer_id, action):
    return call(client, user, f"/api/tickets/transfers/{transfer_id}/{action}")


def snapshot(ticket):
    t = Ticket.objects.get(pk=ticket.pk)
    live = sorted(IssuedCredential.objects.filter(ticket=t, revoked_at__isnull=True)
                  .values_list("serial", "device_id"))
    return (t.holder_user_id, t.holder_name, t.credential_serial, t.state, live)


def scan(client, staff, performance, code):
    return call(client, staff, "/api/tickets/scan",
                {"code": code, "performance_id": performance.pk, "gate": "MAIN",
                 "direction": "entry", "nonce": secrets.token_hex(16),
                 "scanner_id": "north-1"}).json()


@pytest.fixture
def friend():
    return buyer(email="friend@example.com", legal_name="Wong Siu Ming")


# --- the happy path --------------------------------------------------------------------------

def test_offer_and_accept_moves_the_ticket_and_emails_both(
        client, show, wallet, friend, mailoutbox, django_capture_on_commit_callbacks):
    ticket = show.tickets[0]
    assert snapshot(ticket)[2] == 1  # bound to the sender's phone at serial 1

    with django_capture_on_commit_callbacks(execute=True):
        offered = offer(client, show, "  Friend@Example.com ")
    body = offered.json()
    assert offered.status_code == 201
    assert (body["state"], body["to_email"], body["message"]) == (
        "pending", "friend@example.com", NEUTRAL)
    assert body["ticket"]["serial"] == ticket.serial
    assert [m.to for m in mailoutbox] == [["friend@example.com"]]
    assert mailoutbox[0].subject == f"Chan Tai Man wants to give you a ticket for {show.event.title}"

    incoming = call(client, friend, "/api/tickets/transfers/incoming", method="get").json()
    assert [(t["id"], t["from_name"]) for t in incoming] == [(body["id"], "Chan Tai Man")]
    with django_capture_on_commit_callbacks(execute=True):
        accepted = act(client, friend, body["id"], "accept")

    assert accepted.status_code == 200
    assert (accepted.json()["state"], accepted.json()["credential_serial"]) == ("accepted", 2)
    moved = Ticket.objects.get(pk=ticket.pk)
    assert (moved.holder_user_id, moved.holder_name, moved.credential_serial) == (
        friend.pk, "Wong Siu Ming", 2)
    assert not IssuedCredential.objects.filter(ticket=ticket, revoked_at__isnull=True).exists()
    transfer = Transfer.objects.get()
    assert (transfer.state, transfer.to_user_id, transfer.close_reason) == (
        "accepted", friend.pk, "accepted")
    assert call(client, show.fan, "/api/tickets/mine", method="get").json() == []
    assert call(client, show.fan, "/api/tickets/wallet", method="get").json()["tickets"] == []
    assert [t["serial"] for t in call(client, friend, "/api/tickets/mine",
                                      method="get").json()] == [ticket.serial]
    assert set(AuditEntry.objects.filter(object_id__in=[str(ticket.pk), str(transfer.pk)])
               .values_list("action", flat=True)) >= {
        "transfer.offered", "transfer.accepted", "ticket.transferred", "ticket.reissued"}
    assert sorted(m.to[0] for m in mailoutbox[1:]) == sorted(["friend@example.com",
                                                              show.fan.email])


def test_the_senders_old_code_is_refused_at_the_gate_and_the_new_one_admits(
        client, show, wallet, friend):
    ticket = show.tickets[0]
    staff = gate_staff_of(show.event.organizer)
    screenshot = wallet.code(ticket)  # what the sender could keep after giving it away
    transfer = offer(client, show, friend.email).json()
    friend_phone = register_wallet(friend)

    act(client, friend, transfer["id"], "accept")
    refused = scan(client, staff, show.performance, screenshot)
    admitted = scan(client, staff, show.performance, friend_phone.code(ticket))

    assert (refused["ok"], refused["reason_code"]) == (False, "superseded")
    assert (admitted["ok"], admitted["ticket"]["credential_serial"]) == (True, 2)
    assert admitted["ticket"]["holder_name"] == "Wong Siu Ming"
    assert list(CheckIn.objects.values_list("serial", "duplicate")) == [(2, False)]


def test_a_recipient_with_a_phone_gets_the_credential_at_once(client, show, wallet, friend):
    friend_phone = register_wallet(friend)
    transfer = offer(client, show, friend.email).json()

    act(client, friend, transfer["id"], "accept")

    credential = IssuedCredential.objects.get(ticket=show.tickets[0], revoked_at__isnull=True)
    assert (credential.serial, credential.device_id) == (2, friend_phone.device.pk)
    items = call(client, friend, "/api/tickets/wallet", method="get").json()["tickets"]
    assert [(i["serial"], i["credential"]["serial"]) for i in items] == [
        (show.tickets[0].serial, 2)]


def test_real_name_ticket_carries_the_recipients_verified_name(client, friend):
    show = make_show(personalised=True)
    staff = gate_staff_of(show.event.organizer)
    register_wallet(show.fan)
    transfer = offer(client, show, friend.email).json()
    friend_phone = register_wallet(friend)

    act(client, friend, transfer["id"], "accept")

    answer = scan(client, staff, show.performance, friend_phone.code(show.tickets[0]))
    assert answer["ok"] is True
    assert (answer["ticket"]["holder_name"], answer["ticket"]["holder_hint"]) == (
        "Wong Siu Ming", holder_hint("Wong Siu Ming"))
    friend.refresh_from_db()
    assert friend.legal_name_locked_at is not None


# --- decline, cancel, expiry -----------------------------------------------------------------

def test_decline_keeps_the_ticket_with_the_sender(
        client, show, wallet, friend, mailoutbox, django_capture_on_commit_callbacks):
    before = snapshot(show.tickets[0])
    transfer = offer(client, show, friend.email).json()

    with django_capture_on_commit_callbacks(execute=True):
        response = act(client, friend, transfer["id"], "decline")

    assert (response.status_code, response.json()["state"]) == (200, "declined")
    assert snapshot(show.tickets[0]) == before
    assert [(m.to, m.subject) for m in mailoutbox] == [
        ([show.fan.email], f"Your ticket offer for {show.event.title} was declined")]
    assert act(client, friend, transfer["id"], "accept").json()["code"] == "transfer_closed"


def test_sender_cancels_and_the_recipient_can_no_longer_accept(client, show, wallet, friend):
    before = snapshot(show.tickets[0])
    transfer = offer(client, show, friend.email).json()

    cancelled = act(client, show.fan, transfer["id"], "cancel")
    late = act(client, friend, transfer["id"], "accept")

    assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled")
    assert (late.status_code, late.json()["code"]) == (409, "transfer_closed")
    assert late.json()["message"] == "This transfer was cancelled."
    assert snapshot(show.tickets[0]) == before
    assert call(client, friend, "/api/tickets/transfers/incoming", method="get").json() == []


def test_offer_expires_after_48_hours_or_when_the_show_starts(client, friend):
    soon = make_show(starts_in=timedelta(hours=5))
    later = make_show(starts_in=timedelta(days=5))
    now = clock.now().replace(microsecond=0)

    with clock.frozen(now):
        a = offer(client, soon, friend.email).json()
        b = offer(client, later, friend.email).json()

    assert Transfer.objects.get(pk=a["id"]).expires_at == soon.performance.starts_at
    assert Transfer.objects.get(pk=b["id"]).expires_at == now + timedelta(hours=48)


def test_accepting_after_expiry_is_refused_and_closes_the_offer(
        client, friend, mailoutbox, django_capture_on_commit_callbacks):
    show = make_show(starts_in=timedelta(days=5))
    before = snapshot(show.tickets[0])
    transfer = offer(client, show, friend.email).json()

    with clock.frozen(clock.now() + timedelta(hours=49)), \
            django_capture_on_commit_callbacks(execute=True):
        response = act(client, friend, transfer["id"], "accept")

    assert (response.status_code, response.json()["code"]) == (409, "transfer_closed")
    assert response.json()["message"] == "This transfer offer has expired."
    assert Transfer.objects.get().state == "expired"
    assert snapshot(show.tickets[0]) == before
    assert [m.subject for m in mailoutbox] == [
        f"Your ticket offer for {show.event.title} expired"]


def test_the_sweep_expires_old_offers_once_and_the_ticket_can_be_offered_again(
        client, friend):
    show = make_show(starts_in=timedelta(days=5))
    transfer = offer(client, show, friend.email).json()
    later = clock.now() + timedelta(hours=48, seconds=1)

    assert tickets.expire_transfers(now=later) == 1
    assert tickets.expire_transfers(now=later) == 0
    with clock.frozen(later):
        again = offer(client, show, friend.email)

    assert Transfer.objects.get(pk=transfer["id"]).state == "expired"
    assert (again.status_code, again.json()["state"]) == (201, "pending")


# --- refusals: each leaves everything as it was ----------------------------------------------

def _refused(client, show, response, status, code):
    assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    assert not Transfer.objects.filter(ticket=show.tickets[0], state="pending").exists()


def test_refused_when_the_organizer_does_not_allow_transfers(client, show, wallet, friend):
    policy = tickets.policy_for_event(show.event)
    tickets.update_policy(event=show.event, default_gate_group="MAIN", zone_gate_groups={},
                          reentry_allowed=False, totp_fallback=False, printed_fallback=False,
                          valid_from_minutes_before=policy.valid_from_minutes_before,
                          valid_until_minutes_after=policy.valid_until_minutes_after,
                          transfers_allowed=False, actor=None, now=clock.now())
    before = snapshot(show.tickets[0])

    response = offer(client, show, friend.email)

    _refused(client, show, response, 409, "not_transferable")
    assert response.json()["message"] == ("The organizer does not allow ticket transfers for "
                                           "this event.")
    assert snapshot(show.tickets[0]) == before


def test_refused_once_the_ticket_was_admitted(client, show, wallet, friend):
    staff = gate_staff_of(show.event.organizer)
    assert scan(client, staff, show.performance, wallet.code(show.tickets[0]))["ok"] is True
    before = snapshot(show.tickets[0])

    response = offer(client, show, friend.email)

    _refused(client, show, response, 409, "not_transferable")
    assert response.json()["message"] == "This ticket has already been used at the gate."
    assert snapshot(show.tickets[0]) == before


def test_refused_once_the_show_has_started(client, show, friend):
    before = snapshot(show.tickets[0])

    with clock.frozen(show.performance.starts_at + timedelta(minutes=1)):
        response = offer(client, show, friend.email)

    _refused(client, show, response, 409, "not_transferable")
    assert response.json()["message"] == "Transfers close when the doors open."
    assert snapshot(show.tickets[0]) == before


def test_recipient_cannot_pass_it_on_beyond_the_per_ticket_limit(client, show, friend):
    third = buyer(email="third@example.com")
    first = offer(client, show, friend.email).json()
    act(client, friend, first["id"], "accept")
    before = snapshot(show.tickets[0])

    response = offer(client, show, third.email, sender=friend)

    _refused(client, show, response, 409, "not_transferable")
    assert response.json()["message"] == ("This ticket has already been transferred as often "
                                           "as the event allows (1).")
    assert snapshot(show.tickets[0]) == before


def test_refunding_a_ticket_closes_its_open_offer(client, show, friend):
    transfer = offer(client, show, friend.email).json()

    tickets.cancel_tickets(tickets=Ticket.objects.filter(pk=show.tickets[0].pk),
                           now=clock.now())

    closed = Transfer.objects.get()
    assert (closed.state, closed.close_reason) == ("cancelled", "ticket_cancelled")
    assert AuditEntry.objects.filter(action="transfer.cancelled",
                                     object_id=str(transfer["id"])).count() == 1
    assert act(client, friend, transfer["id"], "accept").json()["code"] == "transfer_closed"


def test_refused_for_a_cancelled_ticket(client, show, friend):
    tickets.cancel_tickets(tickets=Ticket.objects.filter(pk=show.tickets[0].pk),
                           now=clock.now())

    response = offer(client, show, friend.email)

    _refused(client, show, response, 409, "not_transferable")


def test_refused_to_the_senders_own_address_and_to_nonsense(client, show):
    own = offer(client, show, show.fan.email.upper())
    bad = offer(client, show, "not-an-address")

    _refused(client, show, own, 400, "invalid_recipient")
    _refused(client, show, bad, 400, "invalid_email")
    assert bad.json()["fields"] == {"email": ["Enter a valid email address."]}
    assert Transfer.objects.count() == 0


def test_a_second_offer_of_the_same_ticket_is_refused_while_one_is_open(client, show, friend):
    first = offer(client, show, friend.email).json()

    second = offer(client, show, "someone@example.com")

    assert (second.status_code, second.json()["code"]) == (409, "transfer_pending")
    assert list(Transfer.objects.values_list("pk", "to_email")) == [
        (first["id"], "friend@example.com")]


def test_someone_elses_ticket_looks_missing(client, show, friend):
    response = offer(client, show, "x@example.com", sender=friend)

    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert Transfer.objects.count() == 0


def test_an_offer_made_unusable_by_admission_is_closed_when_accepted(
        client, show, wallet, friend):
    staff = gate_staff_of(show.event.organizer)
    transfer = offer(client, show, friend.email).json()
    scan(client, staff, show.performance, wallet.code(show.tickets[0]))  # sender went in
    before = snapshot(show.tickets[0])

    response = act(client, friend, transfer["id"], "accept")

    assert (response.status_code, response.json()["code"]) == (409, "not_transferable")
    assert Transfer.objects.get().state == "cancelled"
    assert snapshot(show.tickets[0]) == before


# --- who may accept ----------------------------------------------------------------------------

def test_an_unknown_address_gets_the_same_answer_and_no_email(
        client, show, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = offer(client, show, "nobody-yet@example.com")

    assert (response.status_code, response.json()["message"]) == (201, NEUTRAL)
    assert mailoutbox == []
    # The friend signs up with that address before the offer expires, and takes it.
    late_friend = buyer(email="nobody-yet@example.com", legal_name="Lee Ka Yan")
    accepted = act(client, late_friend, response.json()["id"], "accept")
    assert accepted.json()["state"] == "accepted"
    assert Ticket.objects.get(pk=show.tickets[0].pk).holder_user_id == late_friend.pk


def test_an_unverified_recipient_is_told_to_verify_and_the_offer_stays_open(client, show):
    unverified = buyer(email="half@example.com", phone_verified_at=None)
    before = snapshot(show.tickets[0])
    transfer = offer(client, show, unverified.email).json()

    response = act(client, unverified, transfer["id"], "accept")

    assert (response.status_code, response.json()["code"]) == (403, "recipient_unverified")
    assert Transfer.objects.get().state == "pending"
    assert snapshot(show.tickets[0]) == before


def test_only_the_addressee_can_accept_or_decline_and_only_the_sender_cancel(
        client, show, friend):
    stranger = buyer(email="stranger@example.com")
    transfer = offer(client, show, friend.email).json()

    answers = [act(client, stranger, transfer["id"], "accept"),
               act(client, show.fan, transfer["id"], "accept"),
               act(client, stranger, transfer["id"], "decline"),
               act(client, friend, transfer["id"], "cancel"),
               act(client, friend, 2**70, "accept")]

    assert [(r.status_code, r.json()["code"]) for r in answers] == [(404, "not_found")] * 5
    assert Transfer.objects.get().state == "pending"


def test_accepting_twice_changes_nothing_the_second_time(client, show, friend):
    transfer = offer(client, show, friend.email).json()
    act(client, friend, transfer["id"], "accept")
    after_first = snapshot(show.tickets[0])

    again = act(client, friend, transfer["id"], "accept")

    assert (again.status_code, again.json()["code"]) == (409, "transfer_closed")
    assert snapshot(show.tickets[0]) == after_first


# --- the per-person limit applies to the recipient ---------------------------------------------

def test_recipient_at_the_per_person_limit_cannot_accept(client, friend):
    show = make_show(n_tickets=1)
    show.event.__class__.objects.filter(pk=show.event.pk).update(per_person_limit=2)
    buy(friend, show.performance, show.seats[5:7])  # the friend already has 2
    before = snapshot(show.tickets[0])
    transfer = offer(client, show, friend.email).json()

    response = act(client, friend, transfer["id"], "accept")

    assert (response.status_code, response.json()["code"]) == (409, "limit_reached")
    assert response.json()["message"] == ("You can have at most 2 tickets for this "
                                          "performance; you already have 2.")
    assert Transfer.objects.get().state == "pending"
    assert snapshot(show.tickets[0]) == before


def test_recipient_below_the_limit_can_accept_up_to_it(client, friend):
    show = make_show(n_tickets=2)
    show.event.__class__.objects.filter(pk=show.event.pk).update(per_person_limit=2)
    buy(friend, show.performance, show.seats[5:6])
    first = offer(client, show, friend.email, ticket=show.tickets[0]).json()
    second = offer(client, show, friend.email, ticket=show.tickets[1]).json()

    ok = act(client, friend, first["id"], "accept")
    over = act(client, friend, second["id"], "accept")

    assert ok.json()["state"] == "accepted"
    assert over.json()["code"] == "limit_reached"
    assert Ticket.objects.get(pk=show.tickets[1].pk).holder_user_id == show.fan.pk


def test_no_more_offers_to_one_address_than_one_person_may_hold(client, friend):
    show = make_show(n_tickets=3)
    show.event.__class__.objects.filter(pk=show.event.pk).update(per_person_limit=2)
    for t in show.tickets[:2]:
        assert offer(client, show, friend.email, ticket=t).status_code == 201

    third = offer(client, show, friend.email, ticket=show.tickets[2])

    assert (third.status_code, third.json()["code"]) == (409, "limit_reached")
    assert Transfer.objects.filter(ticket=show.tickets[2]).count() == 0


# --- risk telemetry ----------------------------------------------------------------------------

def test_the_offer_is_recorded_for_the_risk_model(
        client, show, friend, settings, django_capture_on_commit_callbacks):
    from smarttickets.risk.models import RiskEvent

    settings.RISK_TELEMETRY_ENABLED = True
    with django_capture_on_commit_callbacks(execute=True):
        transfer = offer(client, show, friend.email).json()

    event = RiskEvent.objects.get(type="ticket_transfer")
    assert (event.account_id, event.data) == (
        show.fan.pk, {"ticket_id": str(show.tickets[0].pk), "to_account": str(friend.pk)})
    assert event.source_key == f"transfer:{transfer['id']}"


def test_a_telemetry_failure_does_not_break_the_transfer(
        client, show, friend, settings, monkeypatch, django_capture_on_commit_callbacks):
    from smarttickets.risk import services as risk_services
    from smarttickets.risk import telemetry
    from smarttickets.risk.models import RiskEvent

    def broken(**kwargs):
        raise RuntimeError("risk store down")

    settings.RISK_TELEMETRY_ENABLED = True
    monkeypatch.setattr(risk_services, "record_event", broken)
    monkeypatch.setattr(telemetry, "record_ticket_transfer",
                        lambda *a, **k: broken())  # even a hook that raises past its guard
    with django_capture_on_commit_callbacks(execute=True):
        response = offer(client, show, friend.email)

    assert (response.status_code, response.json()["state"]) == (201, "pending")
    assert Transfer.objects.get().state == "pending"
    assert not RiskEvent.objects.exists()


def test_received_tickets_count_for_the_holder_and_given_tickets_still_count_for_the_buyer(
        client, show, friend):
    from smarttickets.booking.services import units_counted_for

    perf = show.tickets[0].performance_id
    bought = units_counted_for(user_id=show.fan.pk, performance_id=perf, now=clock.now())
    assert units_counted_for(user_id=friend.pk, performance_id=perf, now=clock.now()) == 0

    transfer_id = offer(client, show, friend.email).json()["id"]
    assert act(client, friend, transfer_id, "accept").status_code == 200

    # the friend's allowance now includes the ticket; the buyer's purchase still counts
    assert units_counted_for(user_id=friend.pk, performance_id=perf, now=clock.now()) == 1
    assert units_counted_for(user_id=show.fan.pk, performance_id=perf, now=clock.now()) == bought


def test_the_expire_transfers_command_closes_overdue_offers(client, show, friend):
    from io import StringIO

    from django.core.management import call_command

    transfer_id = offer(client, show, friend.email).json()["id"]
    Transfer.objects.filter(pk=transfer_id).update(expires_at=clock.now() - timedelta(minutes=1))
    out = StringIO()
    call_command("tickets", "expire-transfers", stdout=out)
    assert out.getvalue().strip() == "expired 1 transfer offer(s)"
    assert Transfer.objects.get(pk=transfer_id).state == "expired"
