"""Reads for account pages and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from smarttickets.accounts.models import ApiToken, PhoneVerification, User
from smarttickets.core.exceptions import NotFound


@dataclass(frozen=True, slots=True)
class VerificationState:
    email: bool
    phone: bool
    legal_name: bool
    identity: bool
    pending_email: str

    def as_dict(self) -> dict[str, bool]:
        return {"email": self.email, "phone": self.phone, "legal_name": self.legal_name,
                "identity": self.identity}


def verification_state(user: User) -> VerificationState:
    return VerificationState(email=user.email_verified, phone=user.phone_verified,
                             legal_name=bool(user.legal_name.strip()),
                             identity=user.identity_verified, pending_email=user.pending_email)


def open_phone_challenge(*, user: User, now: datetime) -> PhoneVerification | None:
    """The code the user can still type in for their current number, if any."""
    if not user.phone or user.phone_verified:
        return None
    challenge = (PhoneVerification.objects
                 .filter(user=user, phone=user.phone, verified_at__isnull=True,
                         superseded_at__isnull=True).order_by("-created_at", "-id").first())
    if challenge is None or challenge.expires_at <= now:
        return None
    return challenge if challenge.attempts_left else None


def api_tokens_for(user: User) -> QuerySet[ApiToken]:
    """Active tokens first, newest first; revoked ones stay listed for the record."""
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at", "-id")


def access_api_token(*, user: User, token_id: int, for_update: bool = False) -> ApiToken:
    """The user's own token; someone else's looks exactly like a missing one."""
    queryset = ApiToken.objects.filter(user=user, pk=token_id)
    if for_update:
        queryset = queryset.select_for_update()
    token = queryset.first()
    if token is None:
        raise NotFound(_("No such API token."))
    return token
