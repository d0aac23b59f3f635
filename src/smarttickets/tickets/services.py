"""Tickets: issuing and cancelling them (called by booking inside its transactions), their
signed credentials, fans' wallet devices, transfers between fans, gate scans and the merge of
offline scanners' logs."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from smarttickets.booking.models import HoldItem, Order
from smarttickets.core.audit import log_action
from smarttickets.core.exceptions import DomainError, InvalidInput, NotFound
from smarttickets.core.locking import lock_in_order, retry_on_contention
from smarttickets.events.models import Event, Performance
from smarttickets.tickets import codes, keys, offline, totp, transfers
from smarttickets.tickets.credential import (
    U16_MAX,
    Credential,
    EntryPolicy,
    SignedCredential,
    holder_hint,
)
from smarttickets.tickets.exceptions import (
    FallbackDisabled,
    InvalidDeviceKey,
    InvalidRecipient,
    InvalidUpload,
    NonceReused,
    NotTransferable,
    ReauthRequired,
    RecipientUnverified,
    SerialExhausted,
    TransferClosed,
    TransferLimitReached,
    TransferPending,
)
from smarttickets.tickets.models import (
    CheckIn,
    Device,
    IssuedCredential,
    Ticket,
    TicketingPolicy,
    Transfer,
)

SERIAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# Refusals that mean "this ticket is already in": stored as flagged duplicate attempts.
DUPLICATE_REASONS = frozenset({"already_admitted", "already_inside"})
TIER_DISABLED = "tier_disabled"
TIER_DISABLED_MESSAGE = gettext_noop(
    "This event does not accept this kind of code: ask for the live ticket on the fan's phone.")


def new_serial() -> str:
    """T + 11 random symbols (55 bits): unguessable, unique by constraint."""
    return "T" + "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(11))


# --- policy ----------------------------------------------------------------------------------

def policy_for_event(event: Event | int) -> TicketingPolicy:
    """The event's ticketing policy, created with the defaults when it has none yet."""
    event_id = event if isinstance(event, int) else event.pk
    policy = TicketingPolicy.objects.filter(event_id=event_id).first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            return TicketingPolicy.objects.create(event_id=event_id)
    except IntegrityError:  # created by a concurrent request
        return TicketingPolicy.objects.get(event_id=event_id)


def update_policy(*, event: Event, default_gate_group: str, zone_gate_groups: dict[str, str],
                  reentry_allowed: bool, totp_fallback: bool, printed_fallback: bool,
                  valid_from_minutes_before: int, valid_until_minutes_after: int, actor: Any,
                  now: datetime, transfers_allowed: bool | None = None,
                  max_transfers_per_ticket: int | None = None) -> TicketingPolicy:
    """Change how the event's tickets are checked. Credentials issued from now on carry the
    new gate groups and entry policy; fans' wallets pick them up on their next re-issue.
    Transfer settings left as None keep their current values; offers already made are
    checked against the new ones when they are accepted."""
    policy_for_event(event)
    with transaction.atomic():
        policy = TicketingPolicy.objects.select_for_update().get(event=event)
        before = _policy_data(policy)
        policy.default_gate_group = default_gate_group
        policy.zone_gate_groups = {str(k): v for k, v in zone_gate_groups.items() if v}
        policy.reentry_allowed = reentry_allowed
        policy.totp_fallback = totp_fallback
        policy.printed_fallback = printed_fallback
        policy.valid_from_minutes_before = valid_from_minutes_before
        policy.valid_until_minutes_after = valid_until_minutes_after
        if transfers_allowed is not None:
            policy.transfers_allowed = transfers_allowed
        if max_transfers_per_ticket is not None:
            policy.max_transfers_per_ticket = max_transfers_per_ticket
        policy.updated_at = now
        policy.save()
        log_action(action="ticketing_policy.updated", obj=policy, actor=actor, now=now,
                   data={"before": before, "after": _policy_data(policy)})
    return policy


def _policy_data(policy: TicketingPolicy) -> dict[str, Any]:
    return {"default_gate_group": policy.default_gate_group,
            "zone_gate_groups": policy.zone_gate_groups,
            "reentry_allowed": policy.reentry_allowed, "totp_fallback": policy.totp_fallback,
            "printed_fallback": policy.printed_fallback,
            "valid_from_minutes_before": policy.valid_from_minutes_before,
            "valid_until_minutes_after": policy.valid_until_minutes_after,
            "transfers_allowed": policy.transfers_allowed,
            "max_transfers_per_ticket": policy.max_transfers_per_ticket}


def validity_window(performance: Performance, policy: TicketingPolicy) -> tuple[int, int]:
    """Unix seconds [not_before, not_after) during which the ticket's codes admit."""
    opens = performance.starts_at - timedelta(minutes=policy.valid_from_minutes_before)
    if performance.doors_open_at is not None:
        opens = min(opens, performance.doors_open_at)
    closes = performance.starts_at + timedelta(minutes=policy.valid_until_minutes_after)
    if performance.ends_at is not None:
        closes = max(closes, performance.ends_at)
    return int(opens.timestamp()), int(closes.timestamp())


# --- credentials -----------------------------------------------------------------------------

def credential_for(ticket: Ticket, *, serial: int, device_public_key: bytes | None,
                   policy: TicketingPolicy) -> Credential:
    """The facts a scanner needs, as the issuer will sign them (kid is set by the keyring)."""
    performance = ticket.performance
    event = performance.event
    not_before, not_after = validity_window(performance, policy)
    return Credential(
        kid=0, ticket_id=ticket.pk, event_id=event.pk, performance_id=performance.pk,
        serial=serial, not_before=not_before, not_after=not_after,
        gate_group=policy.gate_group_for(ticket.zone_id),
        holder_hint=holder_hint(ticket.holder_name) if event.personalised else "",
        entry_policy=EntryPolicy.REENTRY if policy.reentry_allowed else EntryPolicy.SINGLE,
        device_public_key=device_public_key)


def _store(ticket: Ticket, *, kind: str, serial: int, device: Device | None,
           signed: SignedCredential, now: datetime) -> IssuedCredential:
    return IssuedCredential.objects.create(
        ticket=ticket, kind=kind, serial=serial, device=device,
        kid=int.from_bytes(signed.data[2:4], "big"), data=signed.data,
        signature=signed.signature, issued_at=now)


def _bump_serial(ticket: Ticket, serial: int, now: datetime) -> None:
    """Make ``serial`` the ticket's generation; every older credential is revoked."""
    if serial > U16_MAX:
        raise SerialExhausted(_("This ticket has been re-issued too often. Contact support."))
    if serial != ticket.credential_serial:
        IssuedCredential.objects.filter(ticket=ticket, serial__lt=serial,
                                        revoked_at__isnull=True).update(revoked_at=now)
        ticket.credential_serial = serial
        ticket.save(update_fields=["credential_serial"])


def _issue_device_credential(ticket: Ticket, device: Device, policy: TicketingPolicy,
                             now: datetime) -> IssuedCredential:
    """Bind ``ticket`` to ``device``. Must be called inside a transaction holding the ticket
    row lock. A ticket already bound to another device moves to a new serial."""
    current = (IssuedCredential.objects
               .filter(ticket=ticket, kind=IssuedCredential.Kind.DEVICE,
                       serial=ticket.credential_serial).first())
    if current is not None and current.device_id == device.pk and current.revoked_at is None:
        return current
    serial = ticket.credential_serial + 1 if current is not None or not ticket.credential_serial \
        else ticket.credential_serial
    _bump_serial(ticket, serial, now)
    signed = keys.get_keyring().issue(credential_for(
        ticket, serial=serial, device_public_key=device.public_key_bytes, policy=policy))
    credential = _store(ticket, kind=IssuedCredential.Kind.DEVICE, serial=serial,
                        device=device, signed=signed, now=now)
    log_action(action="ticket.credential_issued", obj=ticket, now=now,
               data={"serial": serial, "device": device.pk, "kid": credential.kid})
    return credential


def active_device(user: Any) -> Device | None:
    return Device.objects.filter(user_id=user.pk, revoked_at__isnull=True).first()


def issue_tickets(*, order: Order, items: Iterable[HoldItem], now: datetime) -> list[Ticket]:
    """One ticket per held unit, carrying its holder's name, bound to the buyer's wallet
    device when there is one. Must be called inside the transaction that marks ``order``
    paid."""
    tickets = [Ticket(serial=new_serial(), order=order, holder_user_id=order.buyer_id,
                      performance_id=order.performance_id,
                      zone_id=item.zone_id, seat_id=item.seat_id,
                      holder_name=item.holder_name or order.buyer.legal_name,
                      price=item.price, currency=order.currency, issued_at=now)
               for item in items]
    Ticket.objects.bulk_create(tickets)
    if not all(t.pk for t in tickets):  # backends without RETURNING ids
        tickets = list(Ticket.objects.filter(order=order, issued_at=now).order_by("pk"))
    for ticket in tickets:
        log_action(action="ticket.issued", obj=ticket, now=now,
                   data={"order": order.code, "seat_id": ticket.seat_id})
    device = active_device(order.buyer)
    if device is not None and tickets:
        policy = policy_for_event(order.performance.event_id)
        for ticket in Ticket.objects.filter(pk__in=[t.pk for t in tickets]).select_related(
                "performance__event").order_by("pk"):
            _issue_device_credential(ticket, device, policy, now)
    return tickets


def cancel_tickets(*, tickets: QuerySet[Ticket], now: datetime) -> list[Ticket]:
    """Cancel the valid ones among ``tickets`` and revoke their credentials; returns those
    this call cancelled (each ticket is cancelled exactly once, whoever else is trying)."""
    cancelled = []
    for ticket in tickets.filter(state=Ticket.State.VALID).order_by("pk"):
        if Ticket.objects.filter(pk=ticket.pk, state=Ticket.State.VALID).update(
                state=Ticket.State.CANCELLED, cancelled_at=now):
            ticket.state = Ticket.State.CANCELLED
            ticket.cancelled_at = now
            IssuedCredential.objects.filter(ticket=ticket, revoked_at__isnull=True).update(
                revoked_at=now)
            # An offer of a refunded ticket can never be accepted.
            for transfer in Transfer.objects.select_for_update().filter(
                    ticket=ticket, state=Transfer.State.PENDING):
                _close_transfer(transfer, state=Transfer.State.CANCELLED,
                                reason="ticket_cancelled", actor=None, now=now)
            log_action(action="ticket.cancelled", obj=ticket, now=now)
            cancelled.append(ticket)
    return cancelled


def reissue_ticket(*, ticket: Ticket, device: Device | None, reason: str, actor: Any,
                   now: datetime) -> Ticket:
    """A new serial for ``ticket`` (a transfer, or support replacing a lost phone): every
    older credential stops admitting once scanners refresh their revocation list. With a
    ``device``, the new holder's wallet gets the new credential at once."""
    with transaction.atomic():
        ticket = (Ticket.objects.select_for_update(of=("self",))
                  .select_related("performance__event").get(pk=ticket.pk))
        _bump_serial(ticket, ticket.credential_serial + 1, now)
        if device is not None:
            policy = policy_for_event(ticket.performance.event_id)
            _issue_device_credential(ticket, device, policy, now)
        log_action(action="ticket.reissued", obj=ticket, actor=actor, now=now,
                   data={"reason": reason, "serial": ticket.credential_serial})
    return ticket


# --- transfers -------------------------------------------------------------------------------

def _lock_user(user_id: int) -> None:
    """Serialise one account's per-person limit checks, as booking does. NO KEY: rows that
    merely reference the user (audit entries, holds) are not blocked by it."""
    from smarttickets.accounts.models import User

    list(User.objects.select_for_update(no_key=True).filter(pk=user_id).values_list("pk"))


def _locked_ticket(ticket_id: int) -> Ticket:
    return (Ticket.objects.select_for_update(of=("self",))
            .select_related("performance__event").get(pk=ticket_id))


def _close_transfer(transfer: Transfer, *, state: str, reason: str, actor: Any,
                    now: datetime) -> Transfer:
    """Must be called while holding the transfer's row lock, on a pending transfer."""
    transfer.state = state
    transfer.closed_at = now
    transfer.close_reason = reason
    transfer.save(update_fields=["state", "closed_at", "close_reason"])
    log_action(action=f"transfer.{state}", obj=transfer, actor=actor, now=now,
               data={"ticket": transfer.ticket_id, "reason": reason})
    return transfer


def _closed_message(transfer: Transfer) -> str:
    return {
        Transfer.State.ACCEPTED: _("This transfer has already been accepted."),
        Transfer.State.DECLINED: _("This transfer was declined."),
        Transfer.State.CANCELLED: _("This transfer was cancelled."),
        Transfer.State.EXPIRED: _("This transfer offer has expired."),
    }.get(transfer.state, _("This transfer is no longer open."))


@retry_on_contention()
def start_transfer(*, ticket: Ticket, sender: Any, to_email: str, now: datetime) -> Transfer:
    """Offer ``ticket`` to whoever holds a verified account at ``to_email``; nothing moves until
    they accept. The answer is the same whether or not the address has an account (only
    addresses with one are emailed), so the form cannot be used to find out who has one.
    Transfers are free: there is no price to set."""
    email = transfers.normalise_email(to_email)
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(_("Enter a valid email address."), code="invalid_email",
                           fields={"email": [_("Enter a valid email address.")]}) from None
    if email == transfers.normalise_email(sender.email):
        raise InvalidRecipient(_("This ticket is already yours: enter the email address of "
                                 "the person you are giving it to."),
                               fields={"email": [_("Enter someone else's address.")]})
    with transaction.atomic():
        _lock_user(sender.pk)
        ticket = _locked_ticket(ticket.pk)
        if ticket.holder_user_id != sender.pk:
            raise NotFound(_("Ticket not found."))
        policy = policy_for_event(ticket.performance.event_id)
        reason = transfers.refusal(ticket, policy, now)
        if reason:
            raise NotTransferable(reason)
        pending = Transfer.objects.filter(ticket=ticket, state=Transfer.State.PENDING).first()
        if pending is not None:
            if pending.expires_at > now:
                raise TransferPending(_("This ticket is already offered to someone. Cancel "
                                        "that offer first."))
            _close_transfer(pending, state=Transfer.State.EXPIRED, reason="expired",
                            actor=None, now=now)
            transfers.email_on_commit(pending, "expired")
        limit = ticket.performance.event.per_person_limit
        if transfers.pending_offers_to(email=email, performance_id=ticket.performance_id,
                                       now=now) + 1 > limit:
            raise TransferLimitReached(
                _("That address already has %(n)d tickets offered for this performance, the "
                  "most one person may hold.") % {"n": limit})
        transfer = Transfer.objects.create(
            ticket=ticket, performance_id=ticket.performance_id, from_user=sender,
            to_email=email, created_at=now,
            expires_at=transfers.expiry_for(ticket.performance, now))
        log_action(action="transfer.offered", obj=transfer, actor=sender, now=now,
                   data={"ticket": ticket.pk, "serial": ticket.serial, "to_email": email,
                         "expires_at": transfer.expires_at.isoformat()})
        transfers.email_on_commit(transfer, "offered")
    return transfer


def _check_addressee(transfer: Transfer, recipient: Any) -> None:
    if not (recipient.email_verified
            and transfers.normalise_email(recipient.email) == transfer.to_email):
        raise NotFound(_("Transfer not found."))


@retry_on_contention()
def accept_transfer(*, transfer: Transfer, recipient: Any, now: datetime) -> Transfer:
    """The recipient takes the ticket. In one transaction it moves to their account, carries
    their verified legal name, and gets a new credential serial: every older code, a
    screenshot of the sender's included, is refused at the gate as superseded. With a wallet
    device the recipient's phone gets the new credential at once. Both are emailed on commit.

    An offer that can no longer succeed (expired, ticket used or cancelled, transfers turned
    off) is closed and the refusal raised; one the recipient cannot take yet (identity not
    verified, per-person limit) stays open."""
    from smarttickets.accounts.models import User

    refused: DomainError | None = None
    with transaction.atomic():
        _lock_user(recipient.pk)
        recipient = User.objects.get(pk=recipient.pk)
        ticket = _locked_ticket(transfer.ticket_id)
        transfer = Transfer.objects.select_for_update().get(pk=transfer.pk)
        _check_addressee(transfer, recipient)
        if not transfer.is_pending:
            raise TransferClosed(_closed_message(transfer))
        reason = None
        if transfer.expires_at > now:
            reason = transfers.refusal(ticket, policy_for_event(ticket.performance.event_id),
                                       now)
            if reason is None and ticket.holder_user_id != transfer.from_user_id:
                reason = _("The sender no longer holds this ticket.")
        if transfer.expires_at <= now:
            _close_transfer(transfer, state=Transfer.State.EXPIRED, reason="expired",
                            actor=None, now=now)
            transfers.email_on_commit(transfer, "expired")
            refused = TransferClosed(_closed_message(transfer))
        elif reason is not None:
            _close_transfer(transfer, state=Transfer.State.CANCELLED,
                            reason="not_transferable", actor=recipient, now=now)
            refused = NotTransferable(reason)
        else:
            _accept(transfer=transfer, ticket=ticket, recipient=recipient, now=now)
    if refused is not None:
        raise refused
    return transfer


def _accept(*, transfer: Transfer, ticket: Ticket, recipient: Any, now: datetime) -> None:
    """Must be called inside accept_transfer's transaction, holding the recipient's, the
    ticket's and the transfer's row locks."""
    from smarttickets.accounts.models import User

    if recipient.pk == transfer.from_user_id:
        raise InvalidRecipient(_("This ticket is already yours."))
    if not recipient.identity_verified:
        raise RecipientUnverified(_("Accepting a ticket needs a verified identity: confirm "
                                    "your email address and mobile number and enter your "
                                    "legal name in your profile, then accept again."))
    event = ticket.performance.event
    have = transfers.units_counted_for(user_id=recipient.pk,
                                       performance_id=ticket.performance_id, now=now)
    if have + 1 > event.per_person_limit:
        raise TransferLimitReached(
            _("You can have at most %(limit)d tickets for this performance; you already have "
              "%(have)d.") % {"limit": event.per_person_limit, "have": have})
    before = {"holder_user": ticket.holder_user_id, "holder_name": ticket.holder_name,
              "serial": ticket.credential_serial}
    # The name printed on the ticket (and, on real-name events, checked against photo ID at
    # the gate) is the new holder's verified legal name.
    ticket.holder_user = recipient
    ticket.holder_name = recipient.legal_name.strip()[:200]
    ticket.save(update_fields=["holder_user", "holder_name"])
    if event.personalised and recipient.legal_name_locked_at is None:
        # Tickets now carry this name; later changes go through support (as after a purchase).
        User.objects.filter(pk=recipient.pk).update(legal_name_locked_at=now)
    ticket = reissue_ticket(ticket=ticket, device=active_device(recipient), reason="transfer",
                            actor=recipient, now=now)
    transfer.state = Transfer.State.ACCEPTED
    transfer.to_user = recipient
    transfer.closed_at = now
    transfer.close_reason = "accepted"
    transfer.credential_serial = ticket.credential_serial
    transfer.save(update_fields=["state", "to_user", "closed_at", "close_reason",
                                 "credential_serial"])
    log_action(action="ticket.transferred", obj=ticket, actor=recipient, now=now,
               data={"transfer": transfer.pk, "before": before,
                     "after": {"holder_user": recipient.pk, "holder_name": ticket.holder_name,
                               "serial": ticket.credential_serial}})
    log_action(action="transfer.accepted", obj=transfer, actor=recipient, now=now,
               data={"ticket": ticket.pk, "serial": ticket.credential_serial})
    transfers.email_on_commit(transfer, "accepted")


def _end_transfer(*, transfer: Transfer, state: str, reason: str, actor: Any,
                  now: datetime, email: str) -> Transfer:
    refused: DomainError | None = None
    with transaction.atomic():
        transfer = Transfer.objects.select_for_update().get(pk=transfer.pk)
        if not transfer.is_pending:
            raise TransferClosed(_closed_message(transfer))
        if transfer.expires_at <= now:
            _close_transfer(transfer, state=Transfer.State.EXPIRED, reason="expired",
                            actor=None, now=now)
            transfers.email_on_commit(transfer, "expired")
            refused = TransferClosed(_closed_message(transfer))
        else:
            _close_transfer(transfer, state=state, reason=reason, actor=actor, now=now)
            transfers.email_on_commit(transfer, email)
    if refused is not None:
        raise refused
    return transfer


@retry_on_contention()
def decline_transfer(*, transfer: Transfer, recipient: Any, now: datetime) -> Transfer:
    """The recipient says no; the ticket stays with the sender, who is emailed."""
    _check_addressee(transfer, recipient)
    return _end_transfer(transfer=transfer, state=Transfer.State.DECLINED,
                         reason="declined", actor=recipient, now=now, email="declined")


@retry_on_contention()
def cancel_transfer(*, transfer: Transfer, sender: Any, now: datetime) -> Transfer:
    """The sender withdraws a pending offer; the ticket and its code stay as they were."""
    if transfer.from_user_id != sender.pk:
        raise NotFound(_("Transfer not found."))
    return _end_transfer(transfer=transfer, state=Transfer.State.CANCELLED,
                         reason="sender_cancelled", actor=sender, now=now, email="cancelled")


def expire_transfers(*, now: datetime, batch: int = 500) -> int:
    """Close offers whose time is up and tell their senders. Reads treat them as expired
    already; this makes it so in the database and sends the emails. Returns how many."""
    ids = list(Transfer.objects.filter(state=Transfer.State.PENDING, expires_at__lte=now)
               .order_by("expires_at", "pk").values_list("pk", flat=True)[:batch])
    done = 0
    for transfer_id in ids:
        with transaction.atomic():
            transfer = (Transfer.objects.select_for_update()
                        .filter(pk=transfer_id, state=Transfer.State.PENDING,
                                expires_at__lte=now).first())
            if transfer is None:  # accepted, cancelled or expired meanwhile
                continue
            _close_transfer(transfer, state=Transfer.State.EXPIRED, reason="expired",
                            actor=None, now=now)
            transfers.email_on_commit(transfer, "expired")
            done += 1
    return done


# --- devices ---------------------------------------------------------------------------------

def compress_public_key(raw: bytes) -> bytes:
    """Accept WebCrypto's raw export (65 bytes, 04‖X‖Y) or a compressed point (33 bytes) and
    return the compressed form, after checking it is a point on P-256."""
    if len(raw) not in (33, 65) or raw[0] not in ((2, 3) if len(raw) == 33 else (4,)):
        raise InvalidDeviceKey(_("The device key must be a P-256 public key (33 or 65 "
                                 "bytes)."))
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise InvalidDeviceKey(_("The device key is not a point on the P-256 curve.")) \
            from None
    return codes.compressed_public_key(key)


def wallet_tickets(user: Any, now: datetime) -> QuerySet[Ticket]:
    """Valid tickets a wallet should carry: those whose show has not long finished."""
    return (Ticket.objects.filter(holder_user_id=user.pk, state=Ticket.State.VALID,
                                  performance__starts_at__gte=now - timedelta(days=1))
            .select_related("performance__event").order_by("pk"))


@retry_on_contention()
def register_device(*, user: Any, public_key: bytes, label: str, password: str | None,
                    now: datetime) -> Device:
    """Make ``public_key`` the user's wallet device and bind their tickets to it.

    Re-registering the active key is a no-op that fills in missing credentials. Replacing
    another active device (moving phones) needs the account password: it re-issues every
    ticket with serial + 1, which revokes the codes of the old device.
    """
    key_hex = compress_public_key(public_key).hex()
    with transaction.atomic():
        from smarttickets.accounts.models import User

        lock_in_order(User.objects.filter(pk=user.pk))  # one registration per user at a time
        current = active_device(user)
        moved_from = None
        if current is not None and current.public_key == key_hex:
            device = current
        else:
            if current is not None:
                if not password or not user.check_password(password):
                    raise ReauthRequired(_("Your tickets are on another device. Enter your "
                                           "password to move them to this one."))
                current.revoked_at = now
                current.save(update_fields=["revoked_at"])
                moved_from = current.pk
            device = Device.objects.create(user=user, public_key=key_hex,
                                           label=label[:100], registered_at=now)
            log_action(action="device.moved" if moved_from else "device.registered",
                       obj=device, actor=user, now=now,
                       data={"previous_device": moved_from, "label": label[:100]})
        tickets = list(wallet_tickets(user, now).select_for_update(of=("self",)))
        policies: dict[int, TicketingPolicy] = {}
        for ticket in tickets:
            event_id = ticket.performance.event_id
            policy = policies.get(event_id) or policies.setdefault(
                event_id, policy_for_event(event_id))
            _issue_device_credential(ticket, device, policy, now)
    return device


# --- fallback tiers --------------------------------------------------------------------------

def issue_printed_credential(*, ticket: Ticket, actor: Any, now: datetime) -> IssuedCredential:
    """The printable static code (weaker: admits only with an ID check), when the event's
    policy allows it. The same one is returned until the ticket is re-issued."""
    with transaction.atomic():
        ticket = (Ticket.objects.select_for_update(of=("self",))
                  .select_related("performance__event").get(pk=ticket.pk))
        policy = policy_for_event(ticket.performance.event_id)
        if not policy.printed_fallback:
            raise FallbackDisabled(_("Printable tickets are not offered for this event."))
        if ticket.state != Ticket.State.VALID:
            raise FallbackDisabled(_("This ticket is no longer valid."))
        serial = max(ticket.credential_serial, 1)
        existing = IssuedCredential.objects.filter(
            ticket=ticket, kind=IssuedCredential.Kind.PRINTED, serial=serial,
            revoked_at__isnull=True).first()
        if existing is not None:
            return existing
        _bump_serial(ticket, serial, now)
        signed = keys.get_keyring().issue(credential_for(ticket, serial=serial,
                                                         device_public_key=None,
                                                         policy=policy))
        credential = _store(ticket, kind=IssuedCredential.Kind.PRINTED, serial=serial,
                            device=None, signed=signed, now=now)
        log_action(action="ticket.printed_issued", obj=ticket, actor=actor, now=now,
                   data={"serial": serial})
    return credential


def totp_master_key() -> bytes:
    """TICKET_TOTP_KEY (at least 32 characters); outside production, derived from SECRET_KEY."""
    configured = getattr(settings, "TICKET_TOTP_KEY", None)
    if configured:
        if len(configured) < 32:
            raise ImproperlyConfigured("TICKET_TOTP_KEY must be at least 32 characters")
        return configured.encode()
    if getattr(settings, "PRODUCTION", False):
        raise ImproperlyConfigured("TICKET_TOTP_KEY must be set in production")
    return hmac.new(settings.SECRET_KEY.encode(), b"smarttickets/totp-master",
                    hashlib.sha256).digest()


@dataclass(frozen=True)
class TotpExport:
    ticket: Ticket
    serial: int
    secret: str
    pattern: str


def export_totp_pass(*, ticket: Ticket, actor: Any, now: datetime) -> TotpExport:
    """The wallet-pass fallback (weaker: the pass can be shared; admits with an ID check)."""
    with transaction.atomic():
        ticket = (Ticket.objects.select_for_update(of=("self",))
                  .select_related("performance__event").get(pk=ticket.pk))
        if not policy_for_event(ticket.performance.event_id).totp_fallback:
            raise FallbackDisabled(_("Wallet-pass codes are not offered for this event."))
        if ticket.state != Ticket.State.VALID:
            raise FallbackDisabled(_("This ticket is no longer valid."))
        _bump_serial(ticket, max(ticket.credential_serial, 1), now)
        log_action(action="ticket.totp_exported", obj=ticket, actor=actor, now=now,
                   data={"serial": ticket.credential_serial})
    serial = ticket.credential_serial
    secret = totp.derive_totp_secret(totp_master_key(), ticket_id=ticket.pk, serial=serial)
    return TotpExport(ticket=ticket, serial=serial, secret=secret,
                      pattern=totp.totp_pattern(ticket.pk, serial))


# --- scanning --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScanOutcome:
    result: offline.ScanResult
    ticket: Ticket | None = None
    checkin: CheckIn | None = None
    first_admission: CheckIn | None = None
    replayed: bool = False


def revocations_for(ticket_ids: Iterable[int]) -> offline.RevocationList:
    rows = Ticket.objects.filter(pk__in=list(ticket_ids)).values_list("pk", "state",
                                                                       "credential_serial")
    return offline.RevocationList(
        min_serial={pk: serial for pk, _state, serial in rows if serial > 1},
        revoked=frozenset(pk for pk, state, _serial in rows if state != Ticket.State.VALID))


def presence_of(ticket_id: int) -> offline.Presence:
    """Where the ticket is now, from its last admission or exit (duplicates don't count)."""
    last = (CheckIn.objects.filter(ticket_id=ticket_id, duplicate=False)
            .order_by("-scanned_at", "-id").values_list("direction", flat=True).first())
    if last is None:
        return offline.Presence.NEVER
    return offline.Presence.INSIDE if last == CheckIn.Direction.ENTRY \
        else offline.Presence.OUTSIDE


def _first_admission(ticket_id: int) -> CheckIn | None:
    return (CheckIn.objects.filter(ticket_id=ticket_id, duplicate=False,
                                   direction=CheckIn.Direction.ENTRY)
            .order_by("scanned_at", "id").first())


def _replay(checkin: CheckIn) -> ScanOutcome:
    reason = checkin.reason_code
    ok = reason in offline.OK_REASONS
    result = offline.ScanResult(
        ok=ok, reason_code=reason, message=offline.REASONS.get(reason, reason),
        direction=offline.Direction(checkin.direction), tier=offline.Tier(checkin.tier),
        id_check_required=reason == "ok_check_id", ticket_id=checkin.ticket_id,
        performance_id=checkin.performance_id, serial=checkin.serial)
    return ScanOutcome(result=result, ticket=checkin.ticket, checkin=checkin,
                       first_admission=None if ok else _first_admission(checkin.ticket_id),
                       replayed=True)


def _totp_lookup(policy: TicketingPolicy):
    def lookup(ticket_id: int) -> totp.TotpTicket | None:
        ticket = (Ticket.objects.select_related("performance__event")
                  .filter(pk=ticket_id).first())
        if ticket is None or ticket.credential_serial < 1:
            return None
        cred = credential_for(ticket, serial=ticket.credential_serial, device_public_key=None,
                              policy=policy)
        secret = totp.derive_totp_secret(totp_master_key(), ticket_id=ticket.pk,
                                         serial=ticket.credential_serial)
        return totp.TotpTicket(credential=cred, secret=secret)
    return lookup


def _ticket_id_hint(code_text: str) -> int | None:
    """The ticket a code claims to be, before any signature check (for loading its state)."""
    if code_text.startswith(totp.TOTP_PREFIX):
        head = code_text[len(totp.TOTP_PREFIX):].split(":", 1)[0]
        return int(head) if head.isdigit() and len(head) <= 10 else None
    try:
        return codes.parse_code(code_text).credential.ticket_id
    except codes.CodeFormatError:
        return None


def verify_code(*, code: str, performance: Performance, gate: str | None, direction: str,
                now: datetime, policy: TicketingPolicy | None = None) -> offline.ScanResult:
    """Every check except the admission log, against the server's own keys, revocations and
    clock; the tiers the event's policy has turned off are refused."""
    policy = policy or policy_for_event(performance.event_id)
    ticket_id = _ticket_id_hint(code)
    revocations = revocations_for([ticket_id] if ticket_id is not None else [])
    clock_unix = now.timestamp()
    direction = offline.Direction(direction)
    if code.startswith(totp.TOTP_PREFIX):
        if not policy.totp_fallback:
            return _tier_disabled(direction)
        return totp.verify_totp_code(
            code, ticket_lookup=_totp_lookup(policy), revocations=revocations,
            scanner_clock_unix=clock_unix, event_id=performance.event_id, gate_group=gate,
            performance_id=performance.pk, direction=direction)
    result = offline.verify_scan(
        code, keyset=keys.get_keyring().keyset(), revocations=revocations,
        scanner_clock_unix=clock_unix, event_id=performance.event_id, gate_group=gate,
        performance_id=performance.pk, direction=direction)
    if result.ok and result.tier == offline.Tier.PRINTED and not policy.printed_fallback:
        return _tier_disabled(direction, result)
    return result


def _tier_disabled(direction: offline.Direction,
                   result: offline.ScanResult | None = None) -> offline.ScanResult:
    message = TIER_DISABLED_MESSAGE
    if result is None:
        return offline.ScanResult(ok=False, reason_code=TIER_DISABLED, message=message,
                                  direction=direction)
    return dataclasses.replace(result, ok=False, reason_code=TIER_DISABLED, message=message,
                               id_check_required=False)


@retry_on_contention()
def scan_code(*, code: str, performance: Performance, gate: str | None, direction: str,
              nonce: str, scanner_id: str, scanner: Any, now: datetime) -> ScanOutcome:
    """Check a scanned code at a gate and record the admission (or exit) atomically.

    The ticket row is locked while its admission log is read and written, so two gates
    scanning the same code at the same moment admit it once. ``nonce`` identifies the scan:
    a retry with the same nonce answers as the first attempt did and records nothing new.
    Refusals before the admission check record nothing; a refused second admission is stored
    as a flagged duplicate attempt.
    """
    existing = CheckIn.objects.select_related("ticket").filter(nonce=nonce).first()
    if existing is not None:
        if existing.performance_id != performance.pk:
            raise NonceReused(_("This scan id was already used for another performance."))
        return _replay(existing)
    policy = policy_for_event(performance.event_id)
    result = verify_code(code=code, performance=performance, gate=gate, direction=direction,
                         now=now, policy=policy)
    if not result.ok:
        ticket = None
        if result.ticket_id is not None and result.reason_code not in (
                "unknown_key", "bad_issuer_signature"):
            ticket = _ticket_for_answer(result.ticket_id)
        return ScanOutcome(result=result, ticket=ticket)
    try:
        return _admit(result=result, performance=performance, gate=gate, nonce=nonce,
                      scanner_id=scanner_id, scanner=scanner, now=now)
    except IntegrityError:  # the same nonce recorded by a concurrent retry
        existing = CheckIn.objects.select_related("ticket").filter(nonce=nonce).first()
        if existing is None:
            raise
        return _replay(existing)


def _admit(*, result: offline.ScanResult, performance: Performance, gate: str | None,
           nonce: str, scanner_id: str, scanner: Any, now: datetime) -> ScanOutcome:
    with transaction.atomic():
        ticket = (Ticket.objects.select_for_update(of=("self",))
                  .select_related("zone", "seat__section").filter(pk=result.ticket_id, performance=performance).first())
        if ticket is None:  # signed by us, so only a deleted ticket ends here
            return ScanOutcome(result=offline.refusal("unknown_ticket",
                                                      direction=result.direction))
        if ticket.state != Ticket.State.VALID:  # cancelled since the check above
            return ScanOutcome(result=dataclasses.replace(
                result, ok=False, reason_code="revoked", message=offline.REASONS["revoked"],
                id_check_required=False), ticket=ticket)
        presence = presence_of(ticket.pk)
        policy_value = result.entry_policy or EntryPolicy.SINGLE
        cred = dataclasses.replace(_stub_credential, ticket_id=ticket.pk,
                                   entry_policy=policy_value)
        reason = offline.check_admission(cred, result.direction, lambda _tid: presence)
        if reason:
            result = dataclasses.replace(result, ok=False, reason_code=reason,
                                         message=offline.REASONS[reason],
                                         id_check_required=False)
            if reason not in DUPLICATE_REASONS:
                return ScanOutcome(result=result, ticket=ticket)
        checkin = CheckIn.objects.create(
            ticket=ticket, performance_id=ticket.performance_id, serial=result.serial or 0,
            tier=(result.tier or offline.Tier.DEVICE).value,
            entry_policy="reentry" if policy_value == EntryPolicy.REENTRY else "single",
            scanner_id=scanner_id, gate=gate or "", direction=result.direction.value,
            scanned_at=now, nonce=nonce, source=CheckIn.Source.ONLINE,
            duplicate=not result.ok, reason_code=result.reason_code, scanned_by=scanner,
            recorded_at=now)
        log_action(action="ticket.scanned", obj=ticket, actor=scanner, now=now,
                   data={"result": result.reason_code, "gate": gate, "scanner": scanner_id,
                         "direction": result.direction.value, "nonce": nonce})
    return ScanOutcome(result=result, ticket=ticket, checkin=checkin,
                       first_admission=None if result.ok else _first_admission(ticket.pk))


# check_admission reads only ticket_id and entry_policy from the credential.
_stub_credential = Credential(kid=0, ticket_id=0, event_id=0, performance_id=0, serial=1,
                              not_before=0, not_after=1)


def _ticket_for_answer(ticket_id: int) -> Ticket | None:
    return Ticket.objects.select_related("zone", "seat__section").filter(pk=ticket_id).first()


# --- offline scanners ------------------------------------------------------------------------

@dataclass(frozen=True)
class UploadOutcome:
    received: int
    new: int
    already_had: int
    merge: offline.MergeResult
    conflicts: tuple[offline.NonceConflict, ...]


def _entry_of(checkin: CheckIn) -> offline.AdmissionEntry:
    return offline.AdmissionEntry(
        nonce=checkin.nonce, scanner_id=checkin.scanner_id, ticket_id=checkin.ticket_id,
        serial=checkin.serial, direction=offline.Direction(checkin.direction),
        at_ms=round(checkin.scanned_at.timestamp() * 1000),
        entry_policy=EntryPolicy.REENTRY if checkin.entry_policy == "reentry"
        else EntryPolicy.SINGLE, tier=offline.Tier(checkin.tier))


@retry_on_contention()
def upload_admissions(*, event: Event, document: Any, gate: str, uploader: Any,
                      now: datetime) -> UploadOutcome:
    """Merge an offline scanner's admission log into the event's check-ins.

    Idempotent: entries are keyed by their nonce, so a re-upload adds nothing. After adding
    the new entries, the whole event's log is merged again (offline.merge_admission_logs):
    the first admission of each ticket stands and every later one is flagged a duplicate,
    whichever scanner uploaded first.
    """
    try:
        log = offline.AdmissionLog.from_upload(document)
    except offline.UploadFormatError as exc:
        raise InvalidUpload(str(exc)) from None
    if log.event_id != event.pk:
        raise InvalidUpload(_("event_id: this upload is for event %(got)s, not %(want)s.")
                            % {"got": log.event_id, "want": event.pk})
    entries = log.entries
    ticket_ids = {e.ticket_id for e in entries}
    known = dict(Ticket.objects.filter(pk__in=ticket_ids, performance__event=event)
                 .values_list("pk", "performance_id"))
    for index, entry in enumerate(entries):
        if entry.ticket_id not in known:
            raise InvalidUpload(_("entries[%(i)d].ticket: %(t)d is not a ticket of this event.")
                                % {"i": index, "t": entry.ticket_id})
    with transaction.atomic():
        # One merge per event at a time: the policy row is the event's check-in lock.
        policy_for_event(event)
        TicketingPolicy.objects.select_for_update().get(event=event)
        stored = {c.nonce: c for c in CheckIn.objects.filter(nonce__in=[e.nonce
                                                                         for e in entries])}
        conflicts = []
        fresh = []
        for entry in entries:
            had = stored.get(entry.nonce)
            if had is None:
                fresh.append(entry)
            elif _entry_of(had) != entry:
                conflicts.append(offline.NonceConflict(entry.nonce, _entry_of(had), (entry,)))
        CheckIn.objects.bulk_create([
            CheckIn(ticket_id=e.ticket_id, performance_id=known[e.ticket_id], serial=e.serial,
                    tier=e.tier.value,
                    entry_policy="reentry" if e.entry_policy == EntryPolicy.REENTRY
                    else "single", scanner_id=e.scanner_id, gate=gate[:16],
                    direction=e.direction.value,
                    scanned_at=datetime.fromtimestamp(e.at_ms / 1000, tz=UTC), nonce=e.nonce,
                    source=CheckIn.Source.OFFLINE, reason_code="ok", scanned_by=uploader,
                    recorded_at=now)
            for e in fresh])
        merge = _remerge(event)
        log_action(action="checkins.uploaded", obj=event, actor=uploader, now=now,
                   data={"scanner": log.scanner_id, "received": len(entries),
                         "new": len(fresh), "conflicts": len(conflicts),
                         "duplicates": len(merge.duplicates)})
    return UploadOutcome(received=len(entries), new=len(fresh),
                         already_had=len(entries) - len(fresh), merge=merge,
                         conflicts=tuple(conflicts))


def _remerge(event: Event) -> offline.MergeResult:
    """Re-run the merge over the event's accepted scans and store the duplicate flags.
    Online refusals stay flagged: those fans were turned away at the gate."""
    rows = list(CheckIn.objects.filter(performance__event=event,
                                       reason_code__in=offline.OK_REASONS))
    merge = offline.merge_admission_logs([[_entry_of(c) for c in rows]])
    admitted = {e.nonce for e in merge.admissions}
    exits = {e.nonce for e in merge.entries if e.direction == offline.Direction.EXIT} - {
        e.nonce for e in merge.stray_exits}
    for checkin in rows:
        duplicate = checkin.nonce not in admitted and checkin.nonce not in exits
        if checkin.duplicate != duplicate:
            checkin.duplicate = duplicate
            checkin.save(update_fields=["duplicate"])
    return merge
