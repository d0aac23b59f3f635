"""Ticket and scanning errors, each with a stable code for the API."""

from __future__ import annotations

from smarttickets.core.exceptions import Conflict, DomainError, Forbidden, InvalidInput


class InvalidDeviceKey(InvalidInput):
    code = "invalid_device_key"


class ReauthRequired(Forbidden):
    """Moving tickets to another device needs the account password."""

    code = "reauth_required"


class FallbackDisabled(Forbidden):
    code = "fallback_disabled"


class InvalidUpload(DomainError):
    code = "invalid_upload"
    status = 422


class NonceReused(Conflict):
    code = "nonce_reused"


class SerialExhausted(InvalidInput):
    code = "serial_exhausted"


class NotTransferable(Conflict):
    """The event's policy, the ticket's state or the clock rules the transfer out."""

    code = "not_transferable"


class InvalidRecipient(InvalidInput):
    """The sender's own address. There is deliberately no "recipient not found": an offer to an
    unknown address is accepted like any other, or anyone holding a ticket could learn which
    addresses have accounts."""

    code = "invalid_recipient"


class RecipientUnverified(Forbidden):
    code = "recipient_unverified"


class TransferLimitReached(Conflict):
    code = "limit_reached"


class TransferClosed(Conflict):
    code = "transfer_closed"


class TransferPending(Conflict):
    code = "transfer_pending"
