"""Booking errors, each with a stable code for the API and a message people can act on."""

from __future__ import annotations

from typing import Any

from smarttickets.core.exceptions import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    LimitReached,
)


class SaleNotOpen(Conflict):
    code = "sale_not_open"


class SoldOut(Conflict):
    code = "sold_out"


class SeatsUnavailable(Conflict):
    """Some of the chosen seats were taken by someone else; ``seat_ids`` says which."""

    code = "seats_unavailable"

    def __init__(self, message: str, *, seat_ids: list[int]) -> None:
        self.seat_ids = sorted(seat_ids)
        super().__init__(message)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "seat_ids": self.seat_ids}


class InvalidSelection(InvalidInput):
    code = "invalid_selection"


class IdentityRequired(Forbidden):
    code = "identity_required"


class HoldNotLive(Conflict):
    code = "hold_not_live"


class PaymentMismatch(InvalidInput):
    code = "payment_mismatch"


class PaidAfterExpiry(DomainError):
    """The payment arrived after the hold's units were given back and they are gone now.

    The caller (payments) refunds in full.
    """

    code = "paid_after_expiry"
    status = 409


class BookingLimitReached(LimitReached):
    """A purchase limit refused the request; ``limit`` says which one."""

    def __init__(self, message: str, *, limit: str, status: int = 429) -> None:
        self.limit = limit
        super().__init__(message, status=status)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "limit": self.limit}
