"""Account errors: each has a stable ``code`` for the API and a translatable message."""

from __future__ import annotations

from smarttickets.accounts.tokens import ExpiredLink, InvalidLink
from smarttickets.core.exceptions import Conflict, DomainError, InvalidInput, LimitReached

__all__ = [
    "AlreadyVerified",
    "CodeExpired",
    "CodeInvalid",
    "ExpiredLink",
    "InvalidInput",
    "InvalidLink",
    "LegalNameLocked",
    "NoActiveCode",
    "PhoneTaken",
    "Throttled",
    "TooManyAttempts",
]


class Throttled(LimitReached):
    """Asked too often; ``retry_after`` says in how many seconds to try again."""

    code = "throttled"

    def __init__(self, message, *, retry_after: int, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, int(retry_after))


class AlreadyVerified(Conflict):
    code = "already_verified"


class PhoneTaken(Conflict):
    code = "phone_taken"


class LegalNameLocked(Conflict):
    code = "legal_name_locked"


class NoActiveCode(DomainError):
    code = "no_active_code"
    status = 400


class CodeExpired(DomainError):
    code = "code_expired"
    status = 400


class CodeInvalid(DomainError):
    code = "code_invalid"
    status = 400


class TooManyAttempts(LimitReached):
    code = "too_many_attempts"
