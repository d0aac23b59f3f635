"""Domain errors: a stable machine ``code``, a translatable ``message`` and an HTTP status.

Services raise them; the API turns them into ``{"code": ..., "message": ...}`` and views into
form errors or messages.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 fields: dict[str, Any] | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.fields = fields or {}

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": str(self.message)}
        if self.fields:
            body["fields"] = {k: [str(m) for m in v] if isinstance(v, list) else str(v)
                              for k, v in self.fields.items()}
        return body


class InvalidInput(DomainError):
    code = "invalid"
    status = 400


class NotFound(DomainError):
    """Also used for 'not yours': missing and forbidden look the same from outside."""

    code = "not_found"
    status = 404


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class Conflict(DomainError):
    code = "conflict"
    status = 409


class LimitReached(DomainError):
    code = "limit_reached"
    status = 429


class Busy(DomainError):
    """Contention we could not resolve within a bounded retry; the client should retry."""

    code = "busy"
    status = 503
