"""Reads for the wallet, transfers, the scanner and the check-in report; ``access_*`` helpers
answer "missing" and "not yours" alike."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from smarttickets.core.exceptions import NotFound
from smarttickets.events.access import organizers_for_user
from smarttickets.events.models import Event, Organizer, Performance
from smarttickets.tickets import keys, offline, services
from smarttickets.tickets.models import CheckIn, Device, IssuedCredential, Ticket, Transfer

SCAN = "can_scan_tickets"
REPORTS = "can_view_reports"


def tickets_of_user(*, user, include_cancelled: bool = False) -> QuerySet[Ticket]:
    """Tickets ``user`` holds now: bought and kept, or received by transfer."""
    tickets = (Ticket.objects.filter(holder_user_id=user.pk)
               .select_related("performance__event__venue", "zone", "seat__section", "order")
               .order_by("performance__starts_at", "performance_id", "pk"))
    if not include_cancelled:
        tickets = tickets.filter(state=Ticket.State.VALID)
    return tickets


def access_ticket_by_user(user, serial: str) -> Ticket:
    """The user's own ticket by its public serial; anyone else's looks missing."""
    ticket = (tickets_of_user(user=user, include_cancelled=True)
              .filter(serial=str(serial)[:20]).first())
    if ticket is None:
        raise NotFound(_("Ticket not found."))
    return ticket


# --- transfers -------------------------------------------------------------------------------

def _transfers() -> QuerySet[Transfer]:
    return Transfer.objects.select_related(
        "ticket__performance__event__venue", "ticket__zone", "ticket__seat__section",
        "from_user", "to_user")


def incoming_transfers(*, user, now: datetime) -> QuerySet[Transfer]:
    """Open offers addressed to ``user``'s address, once they have proved they own it."""
    if not getattr(user, "email_verified", False):
        return Transfer.objects.none()
    return (_transfers().filter(to_email=user.email.lower(), state=Transfer.State.PENDING,
                                expires_at__gt=now)
            .order_by("expires_at", "pk"))


def outgoing_transfers(*, user, now: datetime, include_closed: bool = False
                       ) -> QuerySet[Transfer]:
    """``user``'s offers: the open ones, or with ``include_closed`` every one, newest first.
    Offers past their expiry count as closed even before the sweep marks them."""
    transfers = _transfers().filter(from_user_id=user.pk)
    if not include_closed:
        transfers = transfers.filter(state=Transfer.State.PENDING, expires_at__gt=now)
    return transfers.order_by("-created_at", "-pk")


def received_transfers(*, user) -> QuerySet[Transfer]:
    return _transfers().filter(to_user_id=user.pk).order_by("-closed_at", "-pk")


def pending_by_ticket(*, user, now: datetime) -> dict[int, Transfer]:
    """The open offer of each of ``user``'s tickets, for the wallet."""
    return {t.ticket_id: t for t in Transfer.objects.filter(
        from_user_id=user.pk, state=Transfer.State.PENDING, expires_at__gt=now)}


def transfer_counts(ticket_ids) -> dict[int, int]:
    """How many times each ticket has changed hands."""
    return dict(Transfer.objects.filter(ticket_id__in=list(ticket_ids),
                                        state=Transfer.State.ACCEPTED)
                .values_list("ticket_id").annotate(n=Count("pk")).order_by())


def access_transfer_for_recipient(user, transfer_id) -> Transfer:
    """An offer addressed to ``user`` (who must have proved they own the address); anyone
    else's looks missing."""
    if getattr(user, "email_verified", False):
        try:
            return _transfers().get(pk=_row_id(transfer_id), to_email=user.email.lower())
        except (Transfer.DoesNotExist, TypeError, ValueError):
            pass
    raise NotFound(_("Transfer not found."))


def access_transfer_for_sender(user, transfer_id) -> Transfer:
    """An offer ``user`` made; anyone else's looks missing."""
    try:
        return _transfers().get(pk=_row_id(transfer_id), from_user_id=user.pk)
    except (Transfer.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("Transfer not found.")) from None


def _row_id(value) -> int:
    number = int(value)
    if not 0 < number < 2**63:  # beyond a bigint the database would fail, not answer
        raise ValueError(value)
    return number


def seat_text(ticket: Ticket) -> str:
    if ticket.seat_id is None:
        return _("General admission")
    seat = ticket.seat
    return _("%(section)s, row %(row)s, seat %(number)s") % {
        "section": seat.section.name, "row": seat.row, "number": seat.number}


def wallet_payload(*, user, now: datetime) -> dict[str, Any]:
    """Everything the wallet page needs to draw codes offline: per ticket the credential and
    its issuer signature (public, they are in every QR), never anything that lets someone
    without the device's private key make a code."""
    device = services.active_device(user)
    tickets = list(tickets_of_user(user=user).filter(
        performance__starts_at__gte=now - timedelta(days=1)))
    credentials: dict[int, IssuedCredential] = {}
    if device is not None:
        for cred in IssuedCredential.objects.filter(
                ticket__in=tickets, device=device, kind=IssuedCredential.Kind.DEVICE,
                revoked_at__isnull=True):
            credentials[cred.ticket_id] = cred
    policies: dict[int, Any] = {}
    items = []
    for ticket in tickets:
        event = ticket.performance.event
        policy = policies.get(event.pk) or policies.setdefault(
            event.pk, services.policy_for_event(event))
        cred = credentials.get(ticket.pk)
        items.append({
            "id": ticket.pk, "serial": ticket.serial, "event": event.title,
            "starts_at": ticket.performance.starts_at.isoformat(),
            "venue": event.venue.name, "zone": ticket.zone.name, "seat": seat_text(ticket),
            "holder_name": ticket.holder_name, "personalised": event.personalised,
            "gate_group": policy.gate_group_for(ticket.zone_id),
            "credential": None if cred is None else {
                "serial": cred.serial, "kid": cred.kid, "data": cred.data_b64,
                "signature": cred.signature_b64},
            "fallbacks": {"totp": policy.totp_fallback, "printed": policy.printed_fallback},
        })
    return {"server_time_ms": int(now.timestamp() * 1000),
            "device": None if device is None else {
                "public_key": device.public_key, "label": device.label,
                "registered_at": device.registered_at.isoformat()},
            "tickets": items}


# --- scanning permissions --------------------------------------------------------------------

def scan_organizers(user) -> QuerySet[Organizer]:
    """Organizers whose gates ``user`` may scan at: staff with "scan tickets", or gate staff
    on the organizer's team."""
    condition = Q(pk__in=organizers_for_user(user, SCAN).values("pk"))
    if getattr(user, "is_authenticated", False) and user.is_active and user.is_gate_staff:
        condition |= Q(pk__in=Organizer.objects.filter(memberships__user=user).values("pk"))
    return Organizer.objects.filter(condition)


def can_scan(user) -> bool:
    return scan_organizers(user).exists()


def scannable_performances(*, user, now: datetime) -> QuerySet[Performance]:
    return (Performance.objects.filter(event__organizer__in=scan_organizers(user),
                                       cancelled=False,
                                       starts_at__gte=now - timedelta(days=1))
            .select_related("event__venue").order_by("starts_at"))


def access_performance_for_scanning(user, performance_id) -> Performance:
    try:
        return (Performance.objects.select_related("event__venue", "event__organizer")
                .get(pk=int(performance_id), event__organizer__in=scan_organizers(user)))
    except (Performance.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("Performance not found.")) from None


def access_event_for_scanning(user, event_id) -> Event:
    try:
        return (Event.objects.select_related("organizer")
                .get(pk=int(event_id), organizer__in=scan_organizers(user)))
    except (Event.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("Event not found.")) from None


def access_event_for_report(user, event_id) -> Event:
    """Reports: staff with "view reports" or "scan tickets" (and gate staff) of the event's
    organizer."""
    allowed = (Q(organizer__in=organizers_for_user(user, REPORTS).values("pk"))
               | Q(organizer__in=scan_organizers(user).values("pk")))
    try:
        return (Event.objects.select_related("organizer", "venue")
                .filter(allowed).get(pk=int(event_id)))
    except (Event.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("Event not found.")) from None


def scanner_bundle(*, performance: Performance, now: datetime) -> dict[str, Any]:
    """What an offline scanner downloads: the issuer public keys, the revocation list, the
    gate groups and who is inside so far. No per-ticket secrets."""
    event = performance.event
    policy = services.policy_for_event(event)
    rows = Ticket.objects.filter(performance=performance).filter(
        Q(state=Ticket.State.CANCELLED) | Q(credential_serial__gt=1)).values_list(
        "pk", "state", "credential_serial")
    revocations = offline.RevocationList(
        min_serial={pk: s for pk, state, s in rows if state == Ticket.State.VALID and s > 1},
        revoked=frozenset(pk for pk, state, _s in rows if state != Ticket.State.VALID))
    presence = {}
    for ticket_id, direction in (CheckIn.objects
                                 .filter(performance=performance, duplicate=False)
                                 .order_by("scanned_at", "id")
                                 .values_list("ticket_id", "direction")):
        presence[str(ticket_id)] = "inside" if direction == "entry" else "outside"
    return {
        "format": "smarttickets.scanner-bundle/1",
        "event_id": event.pk, "performance_id": performance.pk, "event": event.title,
        "starts_at": performance.starts_at.isoformat(),
        "gate_groups": policy.gate_groups, "reentry_allowed": policy.reentry_allowed,
        "printed_allowed": policy.printed_fallback,
        "keys": keys.get_keyring().jwks(),
        "revocations": revocations.to_json(event_id=event.pk,
                                           generated_at=int(now.timestamp())),
        "presence": presence,
        "server_time_ms": int(now.timestamp() * 1000),
    }


# --- organizer report ------------------------------------------------------------------------

@dataclass
class CheckinReport:
    event: Event
    performances: list[Performance]
    performance: Performance | None
    valid_tickets: int = 0
    admitted: int = 0
    inside: int = 0
    duplicate_count: int = 0
    bucket_minutes: int = 15
    buckets: list[datetime] = field(default_factory=list)
    series: dict[str, list[int]] = field(default_factory=dict)  # gate → count per bucket
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    by_gate: list[tuple[str, int]] = field(default_factory=list)


def checkin_report(*, event: Event, performance_id: int | None = None,
                   bucket_minutes: int = 15) -> CheckinReport:
    performances = list(event.performances.order_by("starts_at"))
    performance = next((p for p in performances if p.pk == performance_id), None) \
        or (performances[0] if performances else None)
    report = CheckinReport(event=event, performances=performances, performance=performance,
                           bucket_minutes=bucket_minutes)
    if performance is None:
        return report
    report.valid_tickets = Ticket.objects.filter(performance=performance,
                                                 state=Ticket.State.VALID).count()
    checkins = list(CheckIn.objects.filter(performance=performance)
                    .select_related("ticket", "scanned_by").order_by("scanned_at", "id"))
    admissions = [c for c in checkins if not c.duplicate and c.direction == "entry"]
    report.admitted = len({c.ticket_id for c in admissions})
    last: dict[int, str] = {}
    for c in checkins:
        if not c.duplicate:
            last[c.ticket_id] = c.direction
    report.inside = sum(1 for d in last.values() if d == "entry")
    report.by_gate = sorted(Counter(c.gate or "—" for c in admissions).items())
    if admissions:
        width = timedelta(minutes=bucket_minutes)
        start = _floor(admissions[0].scanned_at, bucket_minutes)
        end = _floor(admissions[-1].scanned_at, bucket_minutes)
        n = int((end - start) / width) + 1
        report.buckets = [start + i * width for i in range(n)]
        series: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        for c in admissions:
            series[c.gate or "—"][int((c.scanned_at - start) / width)] += 1
        report.series = dict(sorted(series.items()))
    by_ticket: dict[int, list[CheckIn]] = defaultdict(list)
    for c in checkins:
        by_ticket[c.ticket_id].append(c)
    for ticket_id, rows in by_ticket.items():
        dups = [c for c in rows if c.duplicate]
        if not dups:
            continue
        kept = next((c for c in rows if not c.duplicate and c.direction == "entry"), None)
        report.duplicates.append({"ticket": rows[0].ticket, "ticket_id": ticket_id,
                                  "kept": kept, "attempts": dups})
    report.duplicate_count = sum(len(d["attempts"]) for d in report.duplicates)
    return report


def _floor(at: datetime, minutes: int) -> datetime:
    return at.replace(minute=at.minute - at.minute % minutes, second=0, microsecond=0)


def devices_of_user(user) -> QuerySet[Device]:
    return Device.objects.filter(user_id=user.pk).order_by("-registered_at")
