"""Lottery API at /api/lottery/: public lottery records, entering, withdrawing, my entries and
receipts. Errors are {code, message} like the rest of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from smarttickets.accounts.api_auth import API_AUTH
from smarttickets.booking.client import client_ip, device_id
from smarttickets.core import clock
from smarttickets.core.exceptions import NotFound
from smarttickets.lottery import selectors, services
from smarttickets.lottery.models import Entry, Lottery

router = Router(tags=["lottery"])
AUTH = API_AUTH


class Error(Schema):
    code: str
    message: str


class LotteryOut(Schema):
    lottery_id: str
    performance_id: int
    zone_id: int
    zone: str
    state: str
    capacity: int
    flagged_policy: str
    beacon_kind: str
    seed_commitment: str
    seed_committed_at: datetime
    commitment: dict[str, Any] | None
    commitment_hash: str
    signature: dict[str, Any] | None
    result: dict[str, Any] | None
    counts: dict[str, int]


def _lottery_out(lottery: Lottery) -> dict[str, Any]:
    return {
        "lottery_id": lottery.public_id, "performance_id": lottery.performance_id,
        "zone_id": lottery.zone_id, "zone": lottery.zone.name, "state": lottery.state,
        "capacity": (lottery.commitment or {}).get("capacity", lottery.capacity),
        "flagged_policy": lottery.flagged_policy, "beacon_kind": lottery.beacon_kind,
        "seed_commitment": lottery.seed_commitment,
        "seed_committed_at": lottery.seed_committed_at, "commitment": lottery.commitment,
        "commitment_hash": lottery.commitment_hash, "signature": lottery.signature,
        "result": lottery.result, "counts": selectors.counts(lottery=lottery),
    }


class EntryIn(Schema):
    lottery_id: str = Field(..., max_length=40)
    quantity: int = Field(..., ge=1, le=50)
    companions: list[str] = Field(default_factory=list, max_length=50,
                                  description="Companions' legal names (real-name events).")


class EntryOut(Schema):
    entry_id: str
    lottery_id: str
    performance_id: int
    quantity: int
    companions: list[str]
    state: str
    status: str
    status_label: str
    waitlist_position: int | None
    entitlement_id: int | None
    created_at: datetime


def _entry_out(entry: Entry) -> dict[str, Any]:
    status = selectors.entry_status(entry=entry, now=clock.now())
    return {
        "entry_id": entry.entry_id, "lottery_id": entry.lottery.public_id,
        "performance_id": entry.performance_id, "quantity": entry.quantity,
        "companions": entry.companions, "state": entry.state, "status": status.code,
        "status_label": str(status.label), "waitlist_position": status.position,
        "entitlement_id": entry.entitlement_id, "created_at": entry.created_at,
    }


@router.get("/performances/{performance_id}", response={200: list[LotteryOut], 404: Error})
def performance_lotteries(request: HttpRequest, performance_id: int):
    """The lotteries (one per price zone) of a lottery performance, with their public record."""
    performance = selectors.access_lottery_performance(performance_id=performance_id,
                                                       now=clock.now())
    return [_lottery_out(lot) for lot in selectors.lotteries_of(performance=performance)]


@router.get("/lotteries/{lottery_id}", response={200: LotteryOut, 404: Error})
def lottery_record(request: HttpRequest, lottery_id: str):
    return _lottery_out(selectors.access_lottery(public_id=lottery_id))


@router.post("/entries", auth=AUTH, response={201: EntryOut, 400: Error, 403: Error,
                                              404: Error, 409: Error})
def create_entry(request: HttpRequest, payload: EntryIn):
    """Enter a lottery. Refused (409) outside the window or for a second entry of the same
    person; 400 for a quantity over the limit or missing companions' names."""
    lottery = selectors.access_lottery(public_id=payload.lottery_id)
    entry = services.enter(lottery=lottery, user=request.auth, quantity=payload.quantity,
                           companions=payload.companions, now=clock.now(),
                           ip=client_ip(request), device=device_id(request),
                           user_agent=request.headers.get("User-Agent", ""))
    entry.lottery = lottery
    return Status(201, _entry_out(entry))


@router.get("/entries", auth=AUTH, response=list[EntryOut])
def my_entries(request: HttpRequest):
    return [_entry_out(e) for e in selectors.entries_of_user(user=request.auth)[:200]]


@router.get("/entries/{entry_id}", auth=AUTH, response={200: EntryOut, 404: Error})
def entry_detail(request: HttpRequest, entry_id: str):
    return _entry_out(selectors.access_entry_by_user(entry_id=entry_id, user=request.auth))


@router.post("/entries/{entry_id}/withdraw", auth=AUTH,
             response={200: EntryOut, 404: Error, 409: Error})
def withdraw_entry(request: HttpRequest, entry_id: str):
    entry = selectors.access_entry_by_user(entry_id=entry_id, user=request.auth)
    entry = services.withdraw(entry=entry, user=request.auth, now=clock.now())
    return _entry_out(entry)


@router.get("/entries/{entry_id}/receipt", auth=AUTH, response={200: dict, 404: Error})
def entry_receipt(request: HttpRequest, entry_id: str):
    """Leaf bytes and RFC 6962 inclusion proof, once entries are committed."""
    entry = selectors.access_entry_by_user(entry_id=entry_id, user=request.auth)
    receipt = selectors.receipt_for(entry=entry)
    if receipt is None:
        raise NotFound(_("No receipt yet: entries are not committed."))
    return receipt
