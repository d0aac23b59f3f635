"""Device registration and moves, credentials on issue, the offline bundle, the upload and
merge of four offline scanners, the concurrency of two gates, and the organizer pages."""

import secrets
import threading
from datetime import timedelta

import pytest
from django.db import connection

from smarttickets.core import clock
from smarttickets.core.models import AuditEntry
from smarttickets.tickets import codes, offline
from smarttickets.tickets import services as tickets
from smarttickets.tickets.models import CheckIn, Device, IssuedCredential
from smarttickets.tickets.tests.conftest import buy, gate_staff_of, register_wallet

pytestmark = pytest.mark.django_db


def raw_public_key() -> str:
    import base64

    from cryptography.hazmat.primitives import serialization

    key, _ = codes.new_device_key()
    raw = key.public_key().public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    return base64.b64encode(raw).decode()


def test_registering_a_device_binds_every_ticket(client, show):
    client.force_login(show.fan)

    response = client.post("/api/tickets/devices", {"public_key": raw_public_key(),
                                                     "label": "Pixel"},
                           content_type="application/json")

    assert response.status_code == 200
    device = Device.objects.get(user=show.fan)
    cred = IssuedCredential.objects.get(ticket=show.tickets[0])
    assert (cred.serial, cred.device_id, cred.kind, cred.revoked_at) == (1, device.pk,
                                                                         "device", None)
    wallet = client.get("/api/tickets/wallet").json()
    assert wallet["device"]["public_key"] == device.public_key
    assert wallet["tickets"][0]["credential"]["serial"] == 1
    assert AuditEntry.objects.filter(action="device.registered").count() == 1


def test_moving_needs_the_password_and_revokes_the_old_codes(client, show, wallet):
    client.force_login(show.fan)
    new_key = raw_public_key()

    refused = client.post("/api/tickets/devices", {"public_key": new_key},
                          content_type="application/json")

    assert refused.status_code == 403 and refused.json()["code"] == "reauth_required"
    assert Device.objects.filter(user=show.fan).count() == 1
    assert IssuedCredential.objects.filter(ticket=show.tickets[0]).count() == 1

    moved = client.post("/api/tickets/devices", {"public_key": new_key,
                                                 "password": "correct-horse-battery"},
                        content_type="application/json")

    assert moved.status_code == 200
    old = IssuedCredential.objects.get(ticket=show.tickets[0], serial=1)
    new = IssuedCredential.objects.get(ticket=show.tickets[0], serial=2)
    assert old.revoked_at is not None and new.revoked_at is None
    assert Device.objects.get(pk=wallet.device.pk).revoked_at is not None
    show.tickets[0].refresh_from_db()
    assert show.tickets[0].credential_serial == 2


def test_wrong_password_changes_nothing(client, show, wallet):
    client.force_login(show.fan)

    response = client.post("/api/tickets/devices", {"public_key": raw_public_key(),
                                                    "password": "wrong"},
                           content_type="application/json")

    assert response.status_code == 403
    assert Device.objects.filter(user=show.fan, revoked_at__isnull=True).get() == wallet.device


def test_re_registering_the_same_key_is_a_no_op(show, wallet):
    again = tickets.register_device(user=show.fan, public_key=wallet.public_key, label="",
                                    password=None, now=clock.now())

    assert again == wallet.device
    assert IssuedCredential.objects.filter(ticket=show.tickets[0]).count() == 1


@pytest.mark.parametrize("key", ["AAAA", "not base64!", "A" * 44])
def test_invalid_device_keys_are_refused(client, show, key):
    client.force_login(show.fan)

    response = client.post("/api/tickets/devices", {"public_key": key},
                           content_type="application/json")

    assert response.status_code == 400 and response.json()["code"] == "invalid_device_key"
    assert Device.objects.count() == 0


def test_tickets_bought_after_registration_are_bound_at_once(show, wallet):
    more = buy(show.fan, show.performance, show.seats[3:4])

    cred = IssuedCredential.objects.get(ticket=more[0])

    assert cred.device == wallet.device and cred.serial == 1
    parsed = codes.parse_code(wallet.code(more[0]))
    assert parsed.credential.device_public_key == wallet.public_key
    assert parsed.credential.gate_group == "MAIN"


def test_bundle_has_keys_revocations_and_no_secrets(client, show, wallet, gate_staff):
    register_wallet(show.fan, password="correct-horse-battery")  # ticket 0 → serial 2
    client.force_login(gate_staff)

    bundle = client.get("/api/tickets/scanner/bundle",
                        {"performance": show.performance.pk}).json()

    assert bundle["event_id"] == show.event.pk
    assert [k["kty"] for k in bundle["keys"]["keys"]] == ["OKP"]
    assert "d" not in bundle["keys"]["keys"][0]
    assert bundle["revocations"]["superseded"] == [[show.tickets[0].pk, 2]]
    assert bundle["revocations"]["revoked"] == []


def entry(ticket, scanner, at_ms, direction="entry"):
    return {"nonce": secrets.token_hex(16), "scanner": scanner, "ticket": ticket.pk,
            "serial": 1, "direction": direction, "at_ms": at_ms, "policy": "single",
            "tier": "device"}


def upload(client, event, scanner, entries):
    return client.post("/api/tickets/scanner/upload?gate=NORTH",
                       {"format": offline.UPLOAD_FORMAT, "scanner_id": scanner,
                        "event_id": event.pk, "entries": entries},
                       content_type="application/json")


def test_four_offline_scanners_merge_first_admission_stands(client):
    from smarttickets.tickets.tests.conftest import make_show

    show = make_show(n_tickets=3)
    staff = gate_staff_of(show.event.organizer)
    client.force_login(staff)
    t = int(clock.now().timestamp() * 1000)
    a, b, c = show.tickets
    logs = {
        "north-1": [entry(a, "north-1", t + 1000), entry(b, "north-1", t + 5000)],
        "north-2": [entry(a, "north-2", t + 2000)],  # a again, later: duplicate
        "south-1": [entry(b, "south-1", t + 4000), entry(c, "south-1", t + 9000)],
        "south-2": [entry(c, "south-2", t + 8000)],  # c first here, though uploaded last
    }

    answers = [upload(client, show.event, s, e).json() for s, e in logs.items()]
    replay = upload(client, show.event, "north-1", logs["north-1"]).json()

    assert [x["new"] for x in answers] == [2, 1, 2, 1]
    assert replay["new"] == 0 and replay["already_had"] == 2
    kept = {d["ticket"]: d["kept"]["scanner"] for d in answers[-1]["duplicates"]}
    assert kept == {a.pk: "north-1", b.pk: "south-1", c.pk: "south-2"}
    assert CheckIn.objects.count() == 6
    assert sorted(CheckIn.objects.filter(duplicate=True).values_list("scanner_id", flat=True)) \
        == ["north-1", "north-2", "south-1"]
    report = client.get(f"/tickets/organizer/events/{show.event.pk}/checkins/")
    assert report.status_code == 200
    html = report.content.decode()
    assert "duplicate attempts" in html and "<svg" in html and a.serial in html


def test_bad_upload_names_the_field_and_stores_nothing(client, show, gate_staff):
    client.force_login(gate_staff)
    bad = entry(show.tickets[0], "north-1", 1)
    bad["nonce"] = "xyz"

    response = upload(client, show.event, "north-1", [entry(show.tickets[0], "n", 1), bad])

    assert response.status_code == 422
    assert response.json()["message"] == \
        "entries[1].nonce: must be 32 lowercase hexadecimal characters"
    assert CheckIn.objects.count() == 0


def test_upload_for_another_events_ticket_is_refused(client, show, gate_staff):
    from smarttickets.tickets.tests.conftest import make_show

    other = make_show()
    client.force_login(gate_staff)

    response = upload(client, show.event, "north-1", [entry(other.tickets[0], "north-1", 1)])

    assert response.status_code == 422 and "entries[0].ticket" in response.json()["message"]
    assert CheckIn.objects.count() == 0


def test_policy_page_needs_manage_permission_and_saves(client, show, gate_staff):
    from smarttickets.events.tests.factories import staff_of

    client.force_login(gate_staff)
    assert client.get(f"/tickets/organizer/events/{show.event.pk}/gates/").status_code == 404
    manager = staff_of(show.event.organizer)
    client.force_login(manager)

    response = client.post(f"/tickets/organizer/events/{show.event.pk}/gates/", {
        "default_gate_group": "north", "reentry_allowed": "on",
        "valid_from_minutes_before": "120", "valid_until_minutes_after": "300"})

    assert response.status_code == 302
    policy = tickets.policy_for_event(show.event)
    assert (policy.default_gate_group, policy.reentry_allowed, policy.totp_fallback) == (
        "NORTH", True, False)


def test_wallet_page_shows_live_code_slots_and_manifest(client, show, wallet):
    client.force_login(show.fan)

    html = client.get("/tickets/").content.decode()

    assert f'data-ticket-id="{show.tickets[0].pk}"' in html
    assert 'rel="manifest"' in html and "wallet-data" in html
    sw = client.get("/tickets/sw.js")
    assert sw.status_code == 200 and sw["Content-Type"] == "text/javascript"
    assert client.get("/tickets/manifest.webmanifest").json()["scope"] == "/tickets/"


def test_scanner_page_for_staff_only(client, show, gate_staff):
    client.force_login(show.fan)
    assert client.get("/tickets/scan/").status_code == 403
    client.force_login(gate_staff)

    page = client.get("/tickets/scan/", {"performance": show.performance.pk, "gate": "MAIN"})

    assert page.status_code == 200 and "scanner-config" in page.content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_gates_scanning_the_same_code_at_once_admit_once():
    from smarttickets.tickets.tests.conftest import make_show

    show = make_show()
    wallet = register_wallet(show.fan)
    staff = gate_staff_of(show.event.organizer)
    code = wallet.code(show.tickets[0])
    barrier = threading.Barrier(2)
    answers = []

    def gate(name):
        try:
            barrier.wait()
            outcome = tickets.scan_code(code=code, performance=show.performance, gate=None,
                                        direction="entry", nonce=secrets.token_hex(16),
                                        scanner_id=name, scanner=staff, now=clock.now())
            answers.append(outcome.result.reason_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=gate, args=(n,)) for n in ("north-1", "south-1")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert sorted(answers) == ["already_admitted", "ok"]
    assert CheckIn.objects.filter(duplicate=False).count() == 1


def test_expired_window_after_show(client, show, wallet, gate_staff):
    code_later = wallet.code(show.tickets[0], at=clock.now() + timedelta(hours=10))
    with clock.frozen(clock.now() + timedelta(hours=10)):
        client.force_login(gate_staff)
        body = client.post("/api/tickets/scan", {
            "code": code_later, "performance_id": show.performance.pk,
            "nonce": secrets.token_hex(16)}, content_type="application/json").json()

    assert body["reason_code"] == "expired"
    assert CheckIn.objects.count() == 0
