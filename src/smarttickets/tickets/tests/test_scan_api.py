"""POST /api/tickets/scan: the happy path, every refusal (nothing admitted), replay by nonce,
re-entry, fallback tiers and who may scan."""

import dataclasses
import secrets
from datetime import timedelta

import base45
import pytest

from smarttickets.core import clock
from smarttickets.events.tests.factories import OrganizerFactory
from smarttickets.tickets import codes, keys, totp
from smarttickets.tickets import services as tickets
from smarttickets.tickets.credential import Credential, sign_credential
from smarttickets.tickets.keys import Keyring
from smarttickets.tickets.models import CheckIn
from smarttickets.tickets.tests.conftest import gate_staff_of, register_wallet

pytestmark = pytest.mark.django_db
URL = "/api/tickets/scan"


def scan(client, staff, performance, code, *, gate=None, direction="entry", nonce=None):
    client.force_login(staff)
    return client.post(URL, {"code": code, "performance_id": performance.pk, "gate": gate,
                             "direction": direction, "nonce": nonce or secrets.token_hex(16),
                             "scanner_id": "north-1"}, content_type="application/json")


def test_live_code_admits_once_and_records_the_checkin(client, show, wallet, gate_staff):
    ticket = show.tickets[0]

    response = scan(client, gate_staff, show.performance, wallet.code(ticket), gate="MAIN")

    body = response.json()
    assert response.status_code == 200
    assert body["ok"] is True and body["reason_code"] == "ok"
    assert body["message"] == "Admit."
    assert body["ticket"]["holder_name"] == "Chan Tai Man"
    assert body["ticket"]["seat"] == "Stalls A, row A, seat 1"
    assert body["ticket"]["gate_group"] == "MAIN"
    checkin = CheckIn.objects.get()
    assert (checkin.ticket_id, checkin.direction, checkin.duplicate, checkin.gate,
            checkin.scanner_id, checkin.source) == (ticket.pk, "entry", False, "MAIN",
                                                    "north-1", "online")


def test_same_code_scanned_twice_is_refused_and_flagged(client, show, wallet, gate_staff):
    code = wallet.code(show.tickets[0])
    scan(client, gate_staff, show.performance, code)

    body = scan(client, gate_staff, show.performance, code).json()

    assert body["ok"] is False and body["reason_code"] == "already_admitted"
    assert body["first_admission"]["scanner"] == "north-1"
    assert CheckIn.objects.filter(duplicate=False).count() == 1
    assert CheckIn.objects.filter(duplicate=True, reason_code="already_admitted").count() == 1


def test_retry_with_the_same_nonce_answers_the_same_and_records_nothing_new(
        client, show, wallet, gate_staff):
    code = wallet.code(show.tickets[0])
    nonce = secrets.token_hex(16)
    first = scan(client, gate_staff, show.performance, code, nonce=nonce).json()

    again = scan(client, gate_staff, show.performance, code, nonce=nonce).json()

    assert first["ok"] is True and again["ok"] is True and again["replayed"] is True
    assert CheckIn.objects.count() == 1


def _tamper(code: str, index: int) -> str:
    body = bytearray(base45.b45decode(code[4:]))
    body[index] ^= 0x01
    return "ST1:" + base45.b45encode(bytes(body)).decode()


def _refusal_cases(show, wallet):
    ticket = show.tickets[0]
    now = clock.now()
    good = wallet.code(ticket)
    cred = wallet.credential(ticket)
    other_ring = Keyring.generate()
    forged_cred = dataclasses.replace(
        Credential(kid=0, ticket_id=ticket.pk, event_id=show.event.pk,
                   performance_id=show.performance.pk, serial=1,
                   not_before=int(now.timestamp()) - 60, not_after=int(now.timestamp()) + 3600,
                   gate_group="MAIN", device_public_key=wallet.public_key),
        kid=keys.get_keyring().current.kid ^ 1)
    forged = sign_credential(forged_cred, other_ring.current.private_key)
    step = codes.step_at(now.timestamp())
    return {
        "malformed": "hello world",
        "truncated": "ST1:" + base45.b45encode(base45.b45decode(good[4:])[:-20]).decode(),
        "unknown_key": codes.make_code(forged.data, forged.signature, wallet.private_key, step),
        "bad_issuer_signature": _tamper(good, 10),  # a byte of the ticket id
        "bad_device_signature": _tamper(good, len(bytes(cred.data)) + 64 + 3),  # the step
        "code_too_old": wallet.code(ticket, at=now - timedelta(seconds=45)),
        "code_from_future": wallet.code(ticket, at=now + timedelta(seconds=45)),
    }


@pytest.mark.parametrize("case", ["malformed", "truncated", "unknown_key",
                                  "bad_issuer_signature", "bad_device_signature",
                                  "code_too_old", "code_from_future"])
def test_refusals_admit_nothing(client, show, wallet, gate_staff, case):
    code = _refusal_cases(show, wallet)[case]

    response = scan(client, gate_staff, show.performance, code)

    body = response.json()
    assert response.status_code == 200
    assert body["ok"] is False and body["reason_code"] == case
    assert CheckIn.objects.count() == 0


def test_device_signature_made_for_another_ticket_is_refused(client, gate_staff_show2):
    show, wallet, staff = gate_staff_show2
    cred_a = wallet.credential(show.tickets[0])
    cred_b = wallet.credential(show.tickets[1])
    step = codes.step_at(clock.now().timestamp())
    # The device signed ticket A; the code claims it for ticket B.
    sig_for_a = codes.sign_device(wallet.private_key, bytes(cred_a.data), step)
    body = bytes(cred_b.data) + bytes(cred_b.signature) + step.to_bytes(4, "big") + sig_for_a
    code = "ST1:" + base45.b45encode(body).decode()

    answer = scan(client, staff, show.performance, code).json()

    assert answer["reason_code"] == "bad_device_signature"
    assert CheckIn.objects.count() == 0


@pytest.fixture
def gate_staff_show2():
    from smarttickets.tickets.tests.conftest import make_show

    show = make_show(n_tickets=2)
    return show, register_wallet(show.fan), gate_staff_of(show.event.organizer)


def test_skewed_scanner_clock_refuses_two_steps_off(client, show, wallet, gate_staff):
    code = wallet.code(show.tickets[0])
    with clock.frozen(clock.now() + timedelta(seconds=31)):
        body = scan(client, gate_staff, show.performance, code).json()

    assert body["reason_code"] == "code_too_old"
    assert CheckIn.objects.count() == 0


def test_one_step_of_skew_is_tolerated(client, show, wallet, gate_staff):
    code = wallet.code(show.tickets[0], at=clock.now() - timedelta(seconds=15))

    body = scan(client, gate_staff, show.performance, code).json()

    assert body["ok"] is True


def test_old_device_code_is_refused_after_moving_to_a_new_phone(client, show, wallet,
                                                                gate_staff):
    old_code = wallet.code(show.tickets[0])
    new_phone = register_wallet(show.fan, password="correct-horse-battery")

    refused = scan(client, gate_staff, show.performance, old_code).json()
    admitted = scan(client, gate_staff, show.performance, new_phone.code(show.tickets[0])).json()

    assert refused["reason_code"] == "superseded"
    assert admitted["ok"] is True and admitted["ticket"]["credential_serial"] == 2
    assert CheckIn.objects.filter(duplicate=False).count() == 1


def test_cancelled_ticket_is_refused(client, show, wallet, gate_staff):
    from smarttickets.booking import services as booking

    code = wallet.code(show.tickets[0])
    booking.record_refund(order_id=show.tickets[0].order_id, ticket_ids=None, actor=None,
                          reason="refund", now=clock.now())

    body = scan(client, gate_staff, show.performance, code).json()

    assert body["reason_code"] == "revoked"
    assert CheckIn.objects.count() == 0


def test_wrong_gate_and_not_yet_valid(client, show, wallet, gate_staff):
    code = wallet.code(show.tickets[0])

    wrong_gate = scan(client, gate_staff, show.performance, code, gate="NORTH").json()
    with clock.frozen(clock.now() - timedelta(hours=8)):
        early = scan(client, gate_staff, show.performance,
                     wallet.code(show.tickets[0])).json()

    assert wrong_gate["reason_code"] == "wrong_gate"
    assert early["reason_code"] == "not_yet_valid"
    assert CheckIn.objects.count() == 0


def test_reentry_policy_allows_exit_and_return(client, show, gate_staff):
    tickets.update_policy(event=show.event, default_gate_group="MAIN", zone_gate_groups={},
                          reentry_allowed=True, totp_fallback=False, printed_fallback=False,
                          valid_from_minutes_before=360, valid_until_minutes_after=480,
                          actor=None, now=clock.now())
    phone = register_wallet(show.fan)
    ticket = show.tickets[0]

    answers = [scan(client, gate_staff, show.performance, phone.code(ticket),
                    direction=d).json()["reason_code"]
               for d in ("entry", "entry", "exit", "exit", "entry")]

    assert answers == ["ok", "already_inside", "ok_exit", "not_inside", "ok"]
    assert list(CheckIn.objects.filter(duplicate=False).values_list("direction", flat=True)) \
        == ["entry", "exit", "entry"]


def test_printed_fallback_is_refused_unless_the_policy_allows_it(client, show, gate_staff):
    tickets.update_policy(event=show.event, default_gate_group="MAIN", zone_gate_groups={},
                          reentry_allowed=False, totp_fallback=False, printed_fallback=True,
                          valid_from_minutes_before=360, valid_until_minutes_after=480,
                          actor=None, now=clock.now())
    printed = tickets.issue_printed_credential(ticket=show.tickets[0], actor=None,
                                               now=clock.now())
    code = codes.make_printed_code(bytes(printed.data), bytes(printed.signature))

    accepted = scan(client, gate_staff, show.performance, code).json()

    assert accepted["ok"] is True and accepted["reason_code"] == "ok_check_id"
    assert accepted["id_check_required"] is True
    tickets.update_policy(event=show.event, default_gate_group="MAIN", zone_gate_groups={},
                          reentry_allowed=False, totp_fallback=False, printed_fallback=False,
                          valid_from_minutes_before=360, valid_until_minutes_after=480,
                          actor=None, now=clock.now())
    refused = scan(client, gate_staff, show.performance, code).json()
    assert refused["reason_code"] == "tier_disabled"
    assert CheckIn.objects.count() == 1


def test_totp_wallet_pass_admits_with_id_check(client, show, gate_staff):
    tickets.update_policy(event=show.event, default_gate_group="MAIN", zone_gate_groups={},
                          reentry_allowed=False, totp_fallback=True, printed_fallback=False,
                          valid_from_minutes_before=360, valid_until_minutes_after=480,
                          actor=None, now=clock.now())
    client.force_login(show.fan)
    export = client.post(f"/api/tickets/tickets/{show.tickets[0].serial}/wallet-pass").json()
    code = totp.make_totp_code(ticket_id=show.tickets[0].pk, serial=export["serial"],
                               secret=export["secret"], at_unix=clock.now().timestamp())

    body = scan(client, gate_staff, show.performance, code).json()

    assert body["reason_code"] == "ok_check_id" and body["tier"] == "totp"
    assert CheckIn.objects.get().tier == "totp"


def test_totp_export_is_refused_when_the_policy_is_off(client, show):
    client.force_login(show.fan)

    response = client.post(f"/api/tickets/tickets/{show.tickets[0].serial}/wallet-pass")

    assert response.status_code == 403 and response.json()["code"] == "fallback_disabled"


def test_fans_cannot_scan(client, show, wallet):
    response = scan(client, show.fan, show.performance, wallet.code(show.tickets[0]))

    assert response.status_code == 404
    assert CheckIn.objects.count() == 0


def test_another_organizers_gate_staff_cannot_scan(client, show, wallet):
    stranger = gate_staff_of(OrganizerFactory())
    stranger.is_gate_staff = True
    stranger.save(update_fields=["is_gate_staff"])

    response = scan(client, stranger, show.performance, wallet.code(show.tickets[0]))

    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert CheckIn.objects.count() == 0


def test_bad_input_is_a_422_naming_the_field(client, show, gate_staff):
    client.force_login(gate_staff)

    response = client.post(URL, {"code": "x", "performance_id": show.performance.pk,
                                 "nonce": "not-hex"}, content_type="application/json")

    assert response.status_code == 422
    assert "nonce" in response.json()["fields"]
    assert CheckIn.objects.count() == 0
