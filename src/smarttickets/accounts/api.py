"""Account API under /api/accounts/: who am I and how far is my identity verified."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from smarttickets.accounts.api_auth import API_AUTH
from smarttickets.accounts.permissions import is_gate_staff, is_organizer_staff
from smarttickets.accounts.phone import mask_phone
from smarttickets.accounts.selectors import verification_state

router = Router(tags=["accounts"])


class VerificationOut(Schema):
    email: bool
    phone: bool
    legal_name: bool
    identity: bool


class MeOut(Schema):
    id: int
    email: str
    legal_name: str
    phone: str
    preferred_language: str
    pending_email: str
    verification: VerificationOut
    organizer_staff: bool
    gate_staff: bool


@router.get("/me", response=MeOut, auth=API_AUTH, url_name="accounts_me",
            summary="The signed-in user")
def me(request: HttpRequest):
    """Works with a session cookie or ``Authorization: Bearer st_…``. The phone number is
    masked; ``verification.identity`` is what buying tickets and entering lotteries need."""
    user = request.auth
    state = verification_state(user)
    return {
        "id": user.pk,
        "email": user.email,
        "legal_name": user.legal_name,
        "phone": mask_phone(user.phone),
        "preferred_language": user.preferred_language,
        "pending_email": state.pending_email,
        "verification": state.as_dict(),
        "organizer_staff": is_organizer_staff(user),
        "gate_staff": is_gate_staff(user),
    }
