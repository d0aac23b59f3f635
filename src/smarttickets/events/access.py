"""``access_*`` helpers: the only way to fetch organizer-owned objects for a user.

Missing and "not yours" raise the same ``NotFound``, so ids of other organizers' objects leak
nothing. Django superusers may act for every organizer.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from smarttickets.core.exceptions import NotFound
from smarttickets.events.models import (
    Event,
    Membership,
    Organizer,
    Performance,
    PriceZone,
    Venue,
)

MANAGE = "can_manage_events"


def _check_perm(perm: str) -> None:
    if perm not in Membership.PERMISSIONS:
        raise ValueError(f"unknown organizer permission: {perm}")


def organizers_for_user(user, perm: str = MANAGE) -> QuerySet[Organizer]:
    """Organizers on whose staff ``user`` has ``perm``."""
    _check_perm(perm)
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Organizer.objects.none()
    if user.is_superuser:
        return Organizer.objects.all()
    return Organizer.objects.filter(memberships__user=user, **{f"memberships__{perm}": True})


def _not_found(what: str) -> NotFound:
    return NotFound(_("%(what)s not found.") % {"what": what})


def access_organizer_by_user(user, organizer_id, perm: str = MANAGE) -> Organizer:
    try:
        return organizers_for_user(user, perm).get(pk=int(organizer_id))
    except (Organizer.DoesNotExist, TypeError, ValueError):
        raise _not_found(_("Organizer")) from None


def access_event_by_user(user, event_id, perm: str = MANAGE) -> Event:
    try:
        return (Event.objects.select_related("organizer", "venue")
                .get(pk=int(event_id), organizer__in=organizers_for_user(user, perm)))
    except (Event.DoesNotExist, TypeError, ValueError):
        raise _not_found(_("Event")) from None


def access_venue_by_user(user, venue_id, perm: str = MANAGE) -> Venue:
    try:
        return (Venue.objects.select_related("organizer")
                .get(pk=int(venue_id), organizer__in=organizers_for_user(user, perm)))
    except (Venue.DoesNotExist, TypeError, ValueError):
        raise _not_found(_("Venue")) from None


def access_performance_by_user(user, performance_id, perm: str = MANAGE) -> Performance:
    try:
        return (Performance.objects.select_related("event__organizer", "event__venue")
                .get(pk=int(performance_id),
                     event__organizer__in=organizers_for_user(user, perm)))
    except (Performance.DoesNotExist, TypeError, ValueError):
        raise _not_found(_("Performance")) from None


def access_price_zone_by_user(user, zone_id, perm: str = MANAGE) -> PriceZone:
    try:
        return (PriceZone.objects.select_related("event__organizer", "event__venue")
                .get(pk=int(zone_id), event__organizer__in=organizers_for_user(user, perm)))
    except (PriceZone.DoesNotExist, TypeError, ValueError):
        raise _not_found(_("Price zone")) from None


def can_preview(user, event: Event) -> bool:
    """Staff of the event's organizer (any permission) and Django staff may see drafts."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff or user.is_superuser:
        return True
    return Membership.objects.filter(user=user, organizer_id=event.organizer_id).exists()
