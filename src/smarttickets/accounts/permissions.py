"""Who may do what in the account area. Roles: every user is a fan; organizer staff are
``events.Membership`` rows (read through the reverse relation, so accounts imports nothing from
events); gate staff carry ``User.is_gate_staff``."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from smarttickets.accounts.models import User


def is_organizer_staff(user: User) -> bool:
    return bool(user.is_authenticated and user.memberships.exists())


def is_gate_staff(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_gate_staff)


def can_manage_api_tokens(user: User) -> bool:
    return bool(user.is_active and is_organizer_staff(user))


def role_labels(user: User) -> list[str]:
    """Human names of the user's roles, for the profile page."""
    roles = [str(_("Fan"))]
    if is_organizer_staff(user):
        roles.append(str(_("Organizer staff")))
    if is_gate_staff(user):
        roles.append(str(_("Gate staff")))
    if user.is_staff:
        roles.append(str(_("Platform staff")))
    return roles
