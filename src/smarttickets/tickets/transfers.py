"""Ticket transfers' rules, emails and risk telemetry; the writers are in tickets.services."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django_tasks import task

from smarttickets.booking.models import Entitlement, Hold
from smarttickets.events.models import Performance
from smarttickets.tickets.models import CheckIn, Ticket, TicketingPolicy, Transfer

logger = logging.getLogger(__name__)

DEFAULT_TTL_HOURS = 48
EMAIL_KINDS = ("offered", "accepted", "declined", "cancelled", "expired")


def ttl() -> timedelta:
    """How long an offer waits for the recipient (``TICKET_TRANSFER_HOURS``, default 48)."""
    return timedelta(hours=int(getattr(settings, "TICKET_TRANSFER_HOURS", DEFAULT_TTL_HOURS)))


def deadline(performance: Performance) -> datetime:
    """Transfers close when the doors open (or the show starts, without a doors time): at the
    gate a ticket must not be changing hands between two phones."""
    if performance.doors_open_at is not None:
        return min(performance.doors_open_at, performance.starts_at)
    return performance.starts_at


def expiry_for(performance: Performance, now: datetime) -> datetime:
    return min(now + ttl(), deadline(performance))


def offer_message() -> str:
    """The same answer for every address: it must not tell who has an account."""
    return _("If that address belongs to a SmartTickets account, its owner gets an email and "
             "can accept the ticket until the offer expires. Otherwise ask them to sign up "
             "with exactly this address and verify their identity before then.")


def normalise_email(value: str) -> str:
    return (value or "").strip().lower()


def was_admitted(ticket: Ticket) -> bool:
    return CheckIn.objects.filter(ticket=ticket, duplicate=False,
                                  direction=CheckIn.Direction.ENTRY).exists()


def refusal(ticket: Ticket, policy: TicketingPolicy, now: datetime) -> str | None:
    """Why ``ticket`` cannot change hands now (a message for people), or None.

    Checked when the offer is made and again, under the ticket's row lock, on acceptance."""
    performance = ticket.performance
    if ticket.state != Ticket.State.VALID:
        return _("This ticket is no longer valid.")
    if not policy.transfers_allowed:
        return _("The organizer does not allow ticket transfers for this event.")
    if performance.cancelled:
        return _("This performance has been cancelled.")
    if now >= deadline(performance):
        return _("Transfers close when the doors open.")
    if was_admitted(ticket):
        return _("This ticket has already been used at the gate.")
    done = Transfer.objects.filter(ticket=ticket, state=Transfer.State.ACCEPTED).count()
    if done >= policy.max_transfers_per_ticket:
        if policy.max_transfers_per_ticket == 0:
            return _("The organizer does not allow ticket transfers for this event.")
        return _("This ticket has already been transferred as often as the event allows "
                 "(%(n)d).") % {"n": policy.max_transfers_per_ticket}
    return None


def units_counted_for(*, user_id: int, performance_id: int, now: datetime) -> int:
    """What counts against the event's per-person limit for an account: valid tickets it
    holds or bought (a ticket passed on still counts for its buyer), live holds and open
    purchase entitlements."""
    tickets = (Ticket.objects.filter(performance_id=performance_id, state=Ticket.State.VALID)
               .filter(Q(holder_user_id=user_id) | Q(order__buyer_id=user_id)).count())
    holds = Hold.objects.filter(user_id=user_id, performance_id=performance_id,
                                state=Hold.State.LIVE, expires_at__gt=now
                                ).aggregate(n=Sum("quantity"))["n"] or 0
    entitlements = Entitlement.objects.filter(
        user_id=user_id, performance_id=performance_id, state=Entitlement.State.OPEN,
        expires_at__gt=now).aggregate(n=Sum("quantity"))["n"] or 0
    return tickets + holds + entitlements


def pending_offers_to(*, email: str, performance_id: int, now: datetime) -> int:
    return Transfer.objects.filter(to_email=email, performance_id=performance_id,
                                   state=Transfer.State.PENDING, expires_at__gt=now).count()


# --- emails ----------------------------------------------------------------------------------

def _language(user: Any) -> str:
    from smarttickets.accounts.emails import language_for

    return language_for(getattr(user, "preferred_language", None))


def _account_at(email: str):
    from smarttickets.accounts.models import User

    return User.objects.filter(email=email, is_active=True).first()


def _send(*, user: Any, template: str, transfer: Transfer) -> None:
    """``tickets/email/<template>_subject.txt`` and ``.txt`` in ``user``'s language."""
    ticket = transfer.ticket
    with translation.override(_language(user)):
        site = settings.SITE_URL.rstrip("/")
        context = {"transfer": transfer, "ticket": ticket, "performance": ticket.performance,
                   "event": ticket.performance.event, "sender": transfer.from_user,
                   "user": user, "site_url": site,
                   "transfers_url": site + reverse("tickets:transfers"),
                   "wallet_url": site + reverse("tickets:wallet")}
        subject = " ".join(render_to_string(f"tickets/email/{template}_subject.txt",
                                            context).split())
        body = render_to_string(f"tickets/email/{template}.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    except Exception:
        # The transfer has committed; the lists on the site show its state either way.
        logger.exception("could not send %s email for transfer %s", template, transfer.pk)


@task()
def send_transfer_email(*, transfer_id: int, kind: str) -> None:
    """Queued on commit of each transfer change; re-fetches the transfer and mails whoever it
    concerns. Offers are mailed only to addresses that have an account."""
    transfer = (Transfer.objects.select_related("ticket__performance__event__venue",
                                                "ticket__zone", "ticket__seat__section",
                                                "from_user", "to_user")
                .filter(pk=transfer_id).first())
    if transfer is None or kind not in EMAIL_KINDS:
        return
    if kind == "offered":
        recipient = _account_at(transfer.to_email)
        if recipient is not None and recipient.pk != transfer.from_user_id:
            _send(user=recipient, template="transfer_offered", transfer=transfer)
    elif kind == "accepted":
        _send(user=transfer.from_user, template="transfer_accepted_sender", transfer=transfer)
        if transfer.to_user is not None:
            _send(user=transfer.to_user, template="transfer_accepted_recipient",
                  transfer=transfer)
    elif kind == "cancelled":
        recipient = _account_at(transfer.to_email)
        if recipient is not None:
            _send(user=recipient, template="transfer_cancelled", transfer=transfer)
    else:
        _send(user=transfer.from_user, template=f"transfer_{kind}", transfer=transfer)


def email_on_commit(transfer: Transfer, kind: str) -> None:
    transaction.on_commit(lambda: send_transfer_email.enqueue(transfer_id=transfer.pk,
                                                              kind=kind))


@task()
def expire_transfers_task() -> int:
    from smarttickets.core import clock
    from smarttickets.tickets.services import expire_transfers

    return expire_transfers(now=clock.now())


# --- risk telemetry --------------------------------------------------------------------------

def recipient_ref(email: str) -> str:
    """The ``to_account`` of the risk event: the account id, or for an address without an
    account a keyed hash of it, so offers to one address still tie their senders together."""
    account = _account_at(email)
    if account is not None:
        return str(account.pk)
    return "e" + salted_hmac("smarttickets.tickets.transfer", email,
                             algorithm="sha256").hexdigest()[:31]


def record_offer_telemetry(request: Any, transfer: Transfer) -> None:
    """Record the risk model's ``ticket_transfer`` event {ticket_id, to_account} for an offer.

    It is the sender's act, so it is recorded with the sender's request (IP, device) when the
    offer is made, after the offer has committed. Telemetry never breaks a transfer: a missing
    risk app or any failure in it is logged and dropped."""

    def record() -> None:
        try:
            from smarttickets.risk import telemetry

            telemetry.record_ticket_transfer(request, transfer.from_user,
                                             ticket_id=transfer.ticket_id,
                                             to_account=recipient_ref(transfer.to_email),
                                             transfer_id=transfer.pk)
        except Exception:
            logger.warning("ticket_transfer telemetry dropped for transfer %s", transfer.pk,
                           exc_info=True)

    transaction.on_commit(record)
