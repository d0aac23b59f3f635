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
