"""Signed, expiring tokens for email links.

The issue time travels inside the signed payload and is checked against the ``now`` the caller
passes in, so expiry follows the project clock. Each purpose has its own salt: a verification
link can never be replayed as an email-change link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core import signing
from django.utils.translation import gettext_lazy as _

from smarttickets.core.exceptions import DomainError

EMAIL_VERIFICATION_SALT = "smarttickets.accounts.verify-email"
EMAIL_CHANGE_SALT = "smarttickets.accounts.change-email"
EMAIL_LINK_MAX_AGE = timedelta(days=3)


class InvalidLink(DomainError):
    code = "invalid_link"
    status = 400


class ExpiredLink(DomainError):
    code = "expired_link"
    status = 400


@dataclass(frozen=True, slots=True)
class LinkPayload:
    user_id: int
    data: dict[str, Any]
    issued_at: datetime


def make_token(*, salt: str, user_id: int, data: dict[str, Any], now: datetime) -> str:
    return signing.dumps({"u": user_id, "t": int(now.timestamp()), **data}, salt=salt,
                         compress=True)


def read_token(*, salt: str, token: str, now: datetime,
               max_age: timedelta = EMAIL_LINK_MAX_AGE) -> LinkPayload:
    """Return the payload or raise ``InvalidLink`` (tampered) / ``ExpiredLink`` (too old)."""
    try:
        raw = signing.loads(token, salt=salt)
        user_id = int(raw.pop("u"))
        issued = datetime.fromtimestamp(int(raw.pop("t")), tz=now.tzinfo)
    except (signing.BadSignature, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidLink(_("This link is not valid. Please check you copied all of it.")) from exc
    if now - issued > max_age:
        raise ExpiredLink(_("This link has expired. Please ask for a new one."))
    return LinkPayload(user_id=user_id, data=raw, issued_at=issued)
