"""Tickets API at /api/tickets/: my tickets and wallet credentials, device registration,
transfers to other fans, the gate scan, and the offline scanner's bundle and upload."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from smarttickets.accounts.api_auth import API_AUTH
from smarttickets.core import clock
from smarttickets.tickets import selectors, services, transfers
from smarttickets.tickets.exceptions import InvalidDeviceKey, InvalidUpload
from smarttickets.tickets.models import Transfer

router = Router(tags=["tickets"])
AUTH = API_AUTH
NONCE_PATTERN = r"^[0-9a-f]{32}$"
SCANNER_PATTERN = r"^[0-9A-Za-z._:-]{1,64}$"


class TicketOut(Schema):
    id: int
    serial: str
    state: str
    order_code: str
    performance_id: int
    event_title: str
    starts_at: datetime
    venue: str
    zone: str
    seat_id: int | None
    seat_label: str | None
    holder_name: str
    price: Decimal
    currency: str


@router.get("/mine", auth=AUTH, response=list[TicketOut],
            summary="My tickets (valid ones; ?include_cancelled=true for all)")
def my_tickets(request: HttpRequest, include_cancelled: bool = False):
    return [{"id": t.pk, "serial": t.serial, "state": t.state, "order_code": t.order.code,
             "performance_id": t.performance_id, "event_title": t.performance.event.title,
             "starts_at": t.performance.starts_at, "venue": t.performance.event.venue.name,
             "zone": t.zone.name, "seat_id": t.seat_id,
             "seat_label": t.seat.label if t.seat else None, "holder_name": t.holder_name,
             "price": t.price, "currency": t.currency}
            for t in selectors.tickets_of_user(user=request.auth,
                                               include_cancelled=include_cancelled)]


@router.get("/time", auth=None, url_name="server_time", summary="The server's clock, for wallets and scanners")
def server_time(request: HttpRequest):
    return {"server_time_ms": int(clock.now().timestamp() * 1000)}


@router.get("/wallet", auth=AUTH, url_name="wallet",
            summary="My wallet: device and per-ticket credentials for drawing codes offline")
def wallet(request: HttpRequest):
    return selectors.wallet_payload(user=request.auth, now=clock.now())


class DeviceIn(Schema):
    public_key: str = Field(..., max_length=200, description="P-256 public key, raw (65 "
                            "bytes) or compressed (33 bytes), base64 or base64url")
    label: str = Field("", max_length=100)
    password: str | None = Field(None, max_length=200, description="Needed to move tickets "
                                 "from another device")


@router.post("/devices", auth=AUTH, url_name="register_device", summary="Register this device's key; binds my tickets")
def register_device(request: HttpRequest, payload: DeviceIn):
    raw = _b64(payload.public_key)
    device = services.register_device(user=request.auth, public_key=raw, label=payload.label,
                                       password=payload.password, now=clock.now())
    return {"device_id": device.pk, "public_key": device.public_key,
            "registered_at": device.registered_at.isoformat()}


def _b64(text: str) -> bytes:
    text = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDeviceKey(_("The device key must be base64.")) from None


@router.post("/tickets/{serial}/wallet-pass", auth=AUTH, url_name="wallet_pass",
             summary="Export the weaker TOTP wallet-pass code (when the event allows it)")
def wallet_pass(request: HttpRequest, serial: str):
    ticket = selectors.access_ticket_by_user(request.auth, serial)
    export = services.export_totp_pass(ticket=ticket, actor=request.auth, now=clock.now())
    return {"ticket_id": ticket.pk, "serial": export.serial, "secret": export.secret,
            "barcode_pattern": export.pattern, "algorithm": "SHA1", "digits": 8,
            "period": 15,
            "warning": _("Weaker than the live ticket: anyone you share the pass with can "
                         "use it, so the gate checks your photo ID.")}


# --- transfers -------------------------------------------------------------------------------

class TransferIn(Schema):
    email: str = Field(..., max_length=254, description="The recipient's account email")


class TransferTicketOut(Schema):
    serial: str
    event_title: str
    performance_id: int
    starts_at: datetime
    venue: str
    zone: str
    seat: str


class TransferOut(Schema):
    id: int
    state: str
    ticket: TransferTicketOut
    from_name: str
    to_email: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    credential_serial: int | None


class TransferOfferOut(TransferOut):
    message: str


def transfer_out(transfer: Transfer) -> dict[str, Any]:
    ticket = transfer.ticket
    performance = ticket.performance
    return {"id": transfer.pk, "state": transfer.state,
            "ticket": {"serial": ticket.serial, "event_title": performance.event.title,
                       "performance_id": performance.pk, "starts_at": performance.starts_at,
                       "venue": performance.event.venue.name, "zone": ticket.zone.name,
                       "seat": selectors.seat_text(ticket)},
            "from_name": transfer.from_user.legal_name or transfer.from_user.email,
            "to_email": transfer.to_email, "created_at": transfer.created_at,
            "expires_at": transfer.expires_at, "closed_at": transfer.closed_at,
            "credential_serial": transfer.credential_serial}


@router.post("/tickets/{serial}/transfer", auth=AUTH, url_name="transfer_ticket",
             response={201: TransferOfferOut},
             summary="Offer my ticket to another fan (free; they must accept)")
def transfer_ticket(request: HttpRequest, serial: str, payload: TransferIn):
    ticket = selectors.access_ticket_by_user(request.auth, serial)
    transfer = services.start_transfer(ticket=ticket, sender=request.auth,
                                       to_email=payload.email, now=clock.now())
    transfers.record_offer_telemetry(request, transfer)
    transfer = selectors.access_transfer_for_sender(request.auth, transfer.pk)
    return Status(201, {**transfer_out(transfer), "message": transfers.offer_message()})


@router.get("/transfers/incoming", auth=AUTH, url_name="transfers_incoming",
            response=list[TransferOut], summary="Open transfer offers addressed to me")
def transfers_incoming(request: HttpRequest):
    return [transfer_out(t)
            for t in selectors.incoming_transfers(user=request.auth, now=clock.now())]


@router.get("/transfers/outgoing", auth=AUTH, url_name="transfers_outgoing",
            response=list[TransferOut],
            summary="My transfer offers (open ones; ?include_closed=true for all)")
def transfers_outgoing(request: HttpRequest, include_closed: bool = False):
    return [transfer_out(t) for t in selectors.outgoing_transfers(
        user=request.auth, now=clock.now(), include_closed=include_closed)]


@router.post("/transfers/{transfer_id}/accept", auth=AUTH, url_name="transfer_accept",
             response=TransferOut, summary="Accept a ticket offered to me")
def transfer_accept(request: HttpRequest, transfer_id: int):
    transfer = selectors.access_transfer_for_recipient(request.auth, transfer_id)
    transfer = services.accept_transfer(transfer=transfer, recipient=request.auth,
                                        now=clock.now())
    return transfer_out(selectors.access_transfer_for_recipient(request.auth, transfer.pk))


@router.post("/transfers/{transfer_id}/decline", auth=AUTH, url_name="transfer_decline",
             response=TransferOut, summary="Decline a ticket offered to me")
def transfer_decline(request: HttpRequest, transfer_id: int):
    transfer = selectors.access_transfer_for_recipient(request.auth, transfer_id)
    transfer = services.decline_transfer(transfer=transfer, recipient=request.auth,
                                         now=clock.now())
    return transfer_out(selectors.access_transfer_for_recipient(request.auth, transfer.pk))


@router.post("/transfers/{transfer_id}/cancel", auth=AUTH, url_name="transfer_cancel",
             response=TransferOut, summary="Withdraw my pending offer")
def transfer_cancel(request: HttpRequest, transfer_id: int):
    transfer = selectors.access_transfer_for_sender(request.auth, transfer_id)
    transfer = services.cancel_transfer(transfer=transfer, sender=request.auth,
                                        now=clock.now())
    return transfer_out(selectors.access_transfer_for_sender(request.auth, transfer.pk))


class ScanIn(Schema):
    code: str = Field(..., max_length=2000)
    performance_id: int
    gate: str | None = Field(None, max_length=16, description="Gate group; empty for all")
    direction: str = Field("entry", pattern=r"^(entry|exit)$")
    nonce: str = Field(..., pattern=NONCE_PATTERN, description="Random per scan (128-bit "
                       "hex); a retry with the same nonce answers the same")
    scanner_id: str = Field("web", pattern=SCANNER_PATTERN)


@router.post("/scan", auth=AUTH, url_name="scan", summary="Check a code at the gate and record the admission")
def scan(request: HttpRequest, payload: ScanIn):
    performance = selectors.access_performance_for_scanning(request.auth,
                                                            payload.performance_id)
    outcome = services.scan_code(code=payload.code, performance=performance,
                                 gate=payload.gate or None, direction=payload.direction,
                                 nonce=payload.nonce, scanner_id=payload.scanner_id,
                                 scanner=request.auth, now=clock.now())
    return scan_answer(outcome, personalised=performance.event.personalised)


def scan_answer(outcome: services.ScanOutcome, *, personalised: bool) -> dict[str, Any]:
    result = outcome.result
    ticket = outcome.ticket
    first = outcome.first_admission
    return {
        "ok": result.ok, "reason_code": result.reason_code, "message": _(result.message),
        "id_check_required": result.id_check_required,
        "direction": result.direction.value, "tier": result.tier.value if result.tier else None,
        "replayed": outcome.replayed,
        "ticket": None if ticket is None else {
            "id": ticket.pk, "serial": ticket.serial, "holder_name": ticket.holder_name,
            "holder_hint": result.holder_hint, "personalised": personalised,
            "zone": ticket.zone.name, "seat": selectors.seat_text(ticket),
            "gate_group": result.gate_group, "credential_serial": result.serial},
        "first_admission": None if first is None else {
            "at": first.scanned_at.isoformat(), "gate": first.gate,
            "scanner": first.scanner_id},
    }


@router.get("/scanner/bundle", auth=AUTH, url_name="scanner_bundle",
            summary="Keys, revocations and presence for an offline scanner")
def scanner_bundle(request: HttpRequest, performance: int):
    perf = selectors.access_performance_for_scanning(request.auth, performance)
    return selectors.scanner_bundle(performance=perf, now=clock.now())


@router.post("/scanner/upload", auth=AUTH, url_name="scanner_upload",
             summary="Upload an offline scanner's admission log (smarttickets.admissions/1)")
def scanner_upload(request: HttpRequest, gate: str = ""):
    try:
        document = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InvalidUpload(_("The upload is not valid JSON.")) from None
    event_id = document.get("event_id") if isinstance(document, dict) else None
    event = selectors.access_event_for_scanning(request.auth, event_id)
    outcome = services.upload_admissions(event=event, document=document, gate=gate[:16],
                                         uploader=request.auth, now=clock.now())
    merge = outcome.merge
    return {
        "received": outcome.received, "new": outcome.new, "already_had": outcome.already_had,
        "admitted_tickets": len(merge.first_admissions),
        "duplicates": [{"ticket": d.ticket_id, "kept": d.kept.to_json(),
                        "refused": [e.to_json() for e in d.refused]}
                       for d in merge.duplicates],
        "conflicts": [{"nonce": c.nonce, "kept": c.kept.to_json(),
                       "dropped": [e.to_json() for e in c.dropped]}
                      for c in outcome.conflicts],
        "presence": {str(t): p.value for t, p in merge.presence.items()},
    }
