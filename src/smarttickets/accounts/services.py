"""Account use cases: the only code that writes users, phone codes and API tokens."""

from __future__ import annotations

import contextlib
import secrets
from datetime import datetime, timedelta

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from smarttickets.accounts import emails, sms, tokens
from smarttickets.accounts.api_auth import create_api_token
from smarttickets.accounts.exceptions import (
    AlreadyVerified,
    CodeExpired,
    CodeInvalid,
    InvalidLink,
    LegalNameLocked,
    NoActiveCode,
    PhoneTaken,
    Throttled,
    TooManyAttempts,
)
from smarttickets.accounts.models import ApiToken, PhoneVerification, User
from smarttickets.accounts.permissions import can_manage_api_tokens
from smarttickets.accounts.phone import PhoneNumberError, normalise_phone
from smarttickets.accounts.selectors import access_api_token
from smarttickets.core.audit import log_action
from smarttickets.core.exceptions import Forbidden, InvalidInput, LimitReached

EMAIL_RESEND_COOLDOWN = timedelta(seconds=60)
PHONE_CODE_TTL = PhoneVerification.TTL
PHONE_CODE_MAX_ATTEMPTS = PhoneVerification.MAX_ATTEMPTS
PHONE_RESEND_COOLDOWN = timedelta(seconds=60)
PHONE_CODES_PER_HOUR = 5
MAX_ACTIVE_API_TOKENS = 20


# --- helpers -------------------------------------------------------------------------------

def _normalise_email(value: str) -> str:
    email = (value or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidInput(_("Enter a valid email address."),
                           fields={"email": [_("Enter a valid email address.")]}) from exc
    return email


def _locked_user(user: User) -> User:
    """Re-read ``user`` with its row locked; callers must be inside a transaction."""
    return User.objects.select_for_update().get(pk=user.pk)


def _check_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(_("Choose a stronger password."),
                           fields={"password": list(exc.messages)}) from exc


def _throttle_message(seconds: int) -> str:
    minutes = -(-seconds // 60)
    if seconds < 120:
        return ngettext("Please wait %(n)d second before asking again.",
                        "Please wait %(n)d seconds before asking again.", seconds) % {"n": seconds}
    return ngettext("Please wait %(n)d minute before asking again.",
                    "Please wait %(n)d minutes before asking again.", minutes) % {"n": minutes}


def _queue_verification_email(user: User, *, now: datetime) -> None:
    token = tokens.make_token(salt=tokens.EMAIL_VERIFICATION_SALT, user_id=user.pk,
                              data={"e": user.email}, now=now)
    emails.send_email_on_commit(
        to=user.email, template="verify_email", language=user.preferred_language,
        context={"user_name": user.legal_name, "link": emails.absolute_url(
            "accounts:verify_email", token=token),
            "valid_days": tokens.EMAIL_LINK_MAX_AGE.days},
    )


# --- registration and email verification ---------------------------------------------------

@transaction.atomic
def register_user(*, email: str, password: str, legal_name: str = "", language: str,
                  accepted_terms: bool, now: datetime) -> User | None:
    """Create an account and mail its verification link.

    Returns ``None`` when the address already has an account: its owner gets a note instead, so
    the sign-up form never tells a stranger which addresses are registered.
    """
    if not accepted_terms:
        raise InvalidInput(_("You must accept the terms to create an account."),
                           fields={"accept_terms": [_("You must accept the terms.")]})
    email = _normalise_email(email)
    legal_name = _clean_legal_name(legal_name, required=False)
    user = User(email=email, legal_name=legal_name, date_joined=now,
                preferred_language=emails.language_for(language),
                email_verification_sent_at=now)
    _check_password(password, user)
    existing = User.objects.filter(email=email).first()
    if existing is None:
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # a concurrent sign-up with the same address won
            existing = User.objects.get(email=email)
    if existing is not None:
        emails.send_email_on_commit(
            to=existing.email, template="already_registered",
            language=existing.preferred_language,
            context={"login_link": emails.absolute_url("accounts:login"),
                     "reset_link": emails.absolute_url("accounts:password_reset")})
        log_action(action="accounts.user.register_existing", obj=existing, now=now)
        return None
    log_action(action="accounts.user.registered", obj=user, actor=user, now=now,
               data={"language": user.preferred_language})
    _queue_verification_email(user, now=now)
    return user


@transaction.atomic
def send_email_verification(*, user: User, now: datetime) -> User:
    """Mail a fresh verification link, at most once a minute."""
    user = _locked_user(user)
    if user.email_verified:
        raise AlreadyVerified(_("Your email address is already verified."))
    last = user.email_verification_sent_at
    if last is not None and now - last < EMAIL_RESEND_COOLDOWN:
        wait = int((EMAIL_RESEND_COOLDOWN - (now - last)).total_seconds()) + 1
        raise Throttled(_throttle_message(wait), retry_after=wait)
    user.email_verification_sent_at = now
    user.save(update_fields=["email_verification_sent_at"])
    log_action(action="accounts.email.verification_sent", obj=user, actor=user, now=now)
    _queue_verification_email(user, now=now)
    return user


def resend_verification_by_email(*, email: str, now: datetime) -> None:
    """Logged-out resend: does the same visible thing whether or not the address exists."""
    user = User.objects.filter(email=(email or "").strip().lower(), is_active=True,
                               email_verified_at__isnull=True).first()
    if user is None:
        return
    with contextlib.suppress(AlreadyVerified, Throttled):
        send_email_verification(user=user, now=now)


@transaction.atomic
def verify_email(*, token: str, now: datetime) -> User:
    """Mark the address in ``token`` verified.

    A link stops working once used, once the account's address has changed, or after
    ``EMAIL_LINK_MAX_AGE``.
    """
    payload = tokens.read_token(salt=tokens.EMAIL_VERIFICATION_SALT, token=token, now=now)
    user = User.objects.select_for_update().filter(pk=payload.user_id, is_active=True).first()
    if user is None or user.email != payload.data.get("e"):
        raise InvalidLink(_("This link is no longer valid: the account's email address has "
                            "changed. Ask for a new link."))
    if user.email_verified:
        raise AlreadyVerified(_("This link has already been used: your email address is "
                                "verified."))
    user.email_verified_at = now
    user.save(update_fields=["email_verified_at"])
    log_action(action="accounts.email.verified", obj=user, actor=user, now=now,
               data={"email": user.email})
    return user


# --- email change --------------------------------------------------------------------------

@transaction.atomic
def request_email_change(*, user: User, new_email: str, now: datetime) -> User:
    """Remember ``new_email`` and mail a confirmation link to it; nothing changes until then."""
    new_email = _normalise_email(new_email)
    user = _locked_user(user)
    if new_email == user.email:
        raise InvalidInput(_("That is already your email address."),
                           fields={"email": [_("That is already your email address.")]})
    if User.objects.filter(email=new_email).exclude(pk=user.pk).exists():
        raise InvalidInput(_("Another account uses that email address."),
                           fields={"email": [_("Another account uses that email address.")]})
    last = user.email_verification_sent_at
    # Only a previous change request throttles: a fresh sign-up may fix a typo at once.
    if user.pending_email and last is not None and now - last < EMAIL_RESEND_COOLDOWN:
        wait = int((EMAIL_RESEND_COOLDOWN - (now - last)).total_seconds()) + 1
        raise Throttled(_throttle_message(wait), retry_after=wait)
    user.pending_email = new_email
    user.email_verification_sent_at = now
    user.save(update_fields=["pending_email", "email_verification_sent_at"])
    log_action(action="accounts.email.change_requested", obj=user, actor=user, now=now,
               data={"old": user.email, "new": new_email})
    token = tokens.make_token(salt=tokens.EMAIL_CHANGE_SALT, user_id=user.pk,
                              data={"o": user.email, "n": new_email}, now=now)
    emails.send_email_on_commit(
        to=new_email, template="email_change_verify", language=user.preferred_language,
        context={"user_name": user.legal_name, "old_email": user.email, "new_email": new_email,
                 "link": emails.absolute_url("accounts:email_change_confirm", token=token),
                 "valid_days": tokens.EMAIL_LINK_MAX_AGE.days})
    return user


@transaction.atomic
def cancel_email_change(*, user: User, now: datetime) -> User:
    user = _locked_user(user)
    if user.pending_email:
        log_action(action="accounts.email.change_cancelled", obj=user, actor=user, now=now,
                   data={"new": user.pending_email})
        user.pending_email = ""
        user.save(update_fields=["pending_email"])
    return user


@transaction.atomic
def confirm_email_change(*, token: str, now: datetime) -> User:
    """Switch to the new address from ``token``; the old address is told it happened."""
    payload = tokens.read_token(salt=tokens.EMAIL_CHANGE_SALT, token=token, now=now)
    old, new = payload.data.get("o"), payload.data.get("n")
    user = User.objects.select_for_update().filter(pk=payload.user_id, is_active=True).first()
    if user is None or not new or user.email != old or user.pending_email != new:
        raise InvalidLink(_("This link is no longer valid: it was used, cancelled or replaced "
                            "by a newer request."))
    if User.objects.filter(email=new).exclude(pk=user.pk).exists():
        raise InvalidLink(_("Another account now uses that email address."))
    user.email = new
    user.pending_email = ""
    user.email_verified_at = now
    try:
        with transaction.atomic():
            user.save(update_fields=["email", "pending_email", "email_verified_at"])
    except IntegrityError as exc:
        raise InvalidLink(_("Another account now uses that email address.")) from exc
    log_action(action="accounts.email.changed", obj=user, actor=user, now=now,
               data={"old": old, "new": new})
    emails.send_email_on_commit(
        to=old, template="email_changed_notice", language=user.preferred_language,
        context={"user_name": user.legal_name, "old_email": old, "new_email": new,
                 "reset_link": emails.absolute_url("accounts:password_reset")})
    return user


# --- password ------------------------------------------------------------------------------

@transaction.atomic
def set_user_password(*, user: User, password: str, reason: str, now: datetime) -> User:
    """Set a new password (``reason``: ``change`` or ``reset``).

    A completed reset proves the user reads the account's mailbox, so it also verifies it.
    """
    _check_password(password, user)
    locked = _locked_user(user)
    locked.set_password(password)
    fields = ["password"]
    if reason == "reset" and not locked.email_verified:
        locked.email_verified_at = now
        fields.append("email_verified_at")
    locked.save(update_fields=fields)
    user.password = locked.password
    user.email_verified_at = locked.email_verified_at
    log_action(action=f"accounts.password.{reason}", obj=locked, actor=locked, now=now)
    return user


# --- profile and legal name ----------------------------------------------------------------

def _clean_legal_name(value: str, *, required: bool) -> str:
    name = " ".join((value or "").split())
    if not name:
        if required:
            raise InvalidInput(_("Enter your legal name."),
                               fields={"legal_name": [_("Enter your legal name.")]})
        return ""
    if len(name) > 200:
        raise InvalidInput(_("The legal name is too long."),
                           fields={"legal_name": [_("Use at most 200 characters.")]})
    if any(ch.isdigit() for ch in name) or not any(ch.isalpha() for ch in name):
        message = _("Enter your name as it appears on your identity document.")
        raise InvalidInput(message, fields={"legal_name": [message]})
    return name


@transaction.atomic
def update_profile(*, user: User, legal_name: str, preferred_language: str, actor: User,
                   now: datetime) -> User:
    """Save name and language. A name printed on tickets cannot change here (staff can)."""
    legal_name = _clean_legal_name(legal_name, required=True)
    language = emails.language_for(preferred_language)
    locked = _locked_user(user)
    changes: dict[str, dict[str, str]] = {}
    if legal_name != locked.legal_name:
        if locked.legal_name_locked and not actor.is_staff:
            message = _("Your legal name is printed on tickets you hold, so it can only be "
                        "changed by our support team.")
            raise LegalNameLocked(message, fields={"legal_name": [message]})
        changes["legal_name"] = {"old": locked.legal_name, "new": legal_name}
        locked.legal_name = legal_name
    if language != locked.preferred_language:
        changes["preferred_language"] = {"old": locked.preferred_language, "new": language}
        locked.preferred_language = language
    if changes:
        locked.save(update_fields=list(changes))
        log_action(action="accounts.profile.updated", obj=locked, actor=actor, now=now,
                   data={"changes": changes, "identity_verified": locked.identity_verified,
                         "legal_name_locked": locked.legal_name_locked})
    return locked


@transaction.atomic
def lock_legal_name(*, user: User, now: datetime, reason: str) -> User:
    """Freeze the legal name once it is on a ticket (called by booking). Idempotent."""
    locked = _locked_user(user)
    if locked.legal_name_locked_at is None:
        locked.legal_name_locked_at = now
        locked.save(update_fields=["legal_name_locked_at"])
        log_action(action="accounts.legal_name.locked", obj=locked, now=now,
                   data={"reason": reason, "legal_name": locked.legal_name})
    return locked


# --- phone verification --------------------------------------------------------------------

def _code_hash(*, user_id: int, phone: str, code: str) -> str:
    # Keyed with SECRET_KEY: a leaked table alone does not let anyone try the 10⁶ codes offline.
    return salted_hmac("smarttickets.accounts.phone-code", f"{user_id}:{phone}:{code}",
                       algorithm="sha256").hexdigest()


def _check_phone_throttle(*, user: User, phone: str, now: datetime) -> None:
    recent = PhoneVerification.objects.filter(created_at__gt=now - timedelta(hours=1))
    for scope in (recent.filter(user=user), recent.filter(phone=phone)):
        sent = list(scope.order_by("-created_at").values_list("created_at", flat=True)
                    [:PHONE_CODES_PER_HOUR])
        if sent and now - sent[0] < PHONE_RESEND_COOLDOWN:
            wait = int((PHONE_RESEND_COOLDOWN - (now - sent[0])).total_seconds()) + 1
            raise Throttled(_throttle_message(wait), retry_after=wait)
        if len(sent) >= PHONE_CODES_PER_HOUR:
            wait = int((sent[-1] + timedelta(hours=1) - now).total_seconds()) + 1
            raise Throttled(_throttle_message(wait), retry_after=wait)


def _parse_phone(raw: str) -> str:
    try:
        return normalise_phone(raw)
    except PhoneNumberError as exc:
        message = {
            "not_mobile": _("This looks like a landline. Enter a mobile number that can "
                            "receive text messages."),
        }.get(exc.reason, _("Enter a valid mobile number, e.g. 9123 4567 or +852 9123 4567."))
        raise InvalidInput(message, fields={"phone": [message]}) from exc


@transaction.atomic
def start_phone_verification(*, user: User, phone: str, now: datetime) -> PhoneVerification:
    """Send a 6-digit code to ``phone``. A new number replaces (and un-verifies) the old one."""
    number = _parse_phone(phone)
    locked = _locked_user(user)
    if number == locked.phone and locked.phone_verified:
        raise AlreadyVerified(_("This number is already verified."))
    if User.objects.filter(phone=number, phone_verified_at__isnull=False).exclude(
            pk=locked.pk).exists():
        message = _("This number is verified on another account.")
        raise PhoneTaken(message, fields={"phone": [message]})
    _check_phone_throttle(user=locked, phone=number, now=now)
    if number != locked.phone:
        log_action(action="accounts.phone.changed", obj=locked, actor=locked, now=now,
                   data={"old": locked.phone, "new": number,
                         "was_verified": locked.phone_verified})
        locked.phone = number
        locked.phone_verified_at = None
        locked.save(update_fields=["phone", "phone_verified_at"])
    PhoneVerification.objects.filter(user=locked, verified_at__isnull=True,
                                     superseded_at__isnull=True).update(superseded_at=now)
    code = f"{secrets.randbelow(10**6):06d}"
    challenge = PhoneVerification.objects.create(
        user=locked, phone=number, code_hash=_code_hash(user_id=locked.pk, phone=number,
                                                        code=code),
        created_at=now, expires_at=now + PHONE_CODE_TTL)
    log_action(action="accounts.phone.code_sent", obj=locked, actor=locked, now=now,
               data={"phone": number, "challenge": challenge.pk})
    with translation.override(emails.language_for(locked.preferred_language)):
        body = _("%(code)s is your SmartTickets verification code. It expires in %(minutes)d "
                 "minutes. Never share it with anyone.") % {
            "code": code, "minutes": int(PHONE_CODE_TTL.total_seconds() // 60)}
    transaction.on_commit(lambda: _deliver_sms(to=number, body=body))
    user.phone, user.phone_verified_at = locked.phone, locked.phone_verified_at
    return challenge


def _deliver_sms(*, to: str, body: str) -> None:
    try:
        sms.send_sms(to=to, body=body)
    except Exception:
        # The code is stored; the user can ask for a new one after the cooldown.
        sms.logger.exception("could not send SMS to %s", to)


def verify_phone(*, user: User, code: str, now: datetime) -> User:
    """Check ``code`` against the newest challenge for the user's number.

    Every attempt is counted and committed even when the code is wrong; after
    ``PHONE_CODE_MAX_ATTEMPTS`` the challenge is dead and a new code must be requested.
    """
    code = "".join((code or "").split())
    error: Exception | None = None
    with transaction.atomic():
        locked = _locked_user(user)
        challenge = (PhoneVerification.objects.select_for_update()
                     .filter(user=locked, phone=locked.phone, verified_at__isnull=True,
                             superseded_at__isnull=True).order_by("-created_at", "-id").first())
        if not locked.phone or challenge is None:
            error = NoActiveCode(_("There is no code waiting to be checked. Ask for a new "
                                   "code."))
        elif challenge.attempts >= PHONE_CODE_MAX_ATTEMPTS:
            error = TooManyAttempts(_("Too many wrong codes. Ask for a new code."))
        elif now >= challenge.expires_at:
            error = CodeExpired(_("This code has expired. Ask for a new code."))
        else:
            challenge.attempts += 1
            good = len(code) == 6 and code.isdigit() and constant_time_compare(
                challenge.code_hash, _code_hash(user_id=locked.pk, phone=challenge.phone,
                                                code=code))
            if not good:
                challenge.save(update_fields=["attempts"])
                left = PHONE_CODE_MAX_ATTEMPTS - challenge.attempts
                log_action(action="accounts.phone.code_rejected", obj=locked, actor=locked,
                           now=now, data={"challenge": challenge.pk, "attempts_left": left})
                error = (TooManyAttempts(_("Too many wrong codes. Ask for a new code."))
                         if left == 0 else CodeInvalid(ngettext(
                             "That code is not right. You have %(n)d more try.",
                             "That code is not right. You have %(n)d more tries.", left)
                             % {"n": left}))
            elif User.objects.filter(phone=challenge.phone, phone_verified_at__isnull=False
                                     ).exclude(pk=locked.pk).exists():
                error = PhoneTaken(_("This number is verified on another account."))
            else:
                challenge.verified_at = now
                challenge.save(update_fields=["attempts", "verified_at"])
                locked.phone_verified_at = now
                locked.save(update_fields=["phone_verified_at"])
                log_action(action="accounts.phone.verified", obj=locked, actor=locked,
                           now=now, data={"phone": locked.phone})
    # Raised outside the block so the counted attempt is committed, not rolled back.
    if error is not None:
        raise error
    user.phone, user.phone_verified_at = locked.phone, locked.phone_verified_at
    return user


# --- API tokens ----------------------------------------------------------------------------

@transaction.atomic
def issue_api_token(*, user: User, name: str, now: datetime) -> tuple[ApiToken, str]:
    """Create a token for organizer staff; the plain key is returned once, never stored."""
    if not can_manage_api_tokens(user):
        raise Forbidden(_("API tokens are available to organizer staff."))
    name = " ".join((name or "").split())
    if not name or len(name) > 100:
        message = _("Give the token a name of at most 100 characters.")
        raise InvalidInput(message, fields={"name": [message]})
    _locked_user(user)  # serialises the count below per user
    active = ApiToken.objects.filter(user=user, revoked_at__isnull=True).count()
    if active >= MAX_ACTIVE_API_TOKENS:
        raise LimitReached(_("You have %(n)d active tokens. Revoke one you no longer use.")
                           % {"n": active})
    token, key = create_api_token(user=user, name=name)
    log_action(action="accounts.api_token.created", obj=token, actor=user, now=now,
               data={"name": name, "prefix": token.prefix})
    return token, key


@transaction.atomic
def revoke_api_token(*, user: User, token_id: int, now: datetime) -> ApiToken:
    token = access_api_token(user=user, token_id=token_id, for_update=True)
    if token.revoked_at is None:
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
        log_action(action="accounts.api_token.revoked", obj=token, actor=user, now=now,
                   data={"name": token.name, "prefix": token.prefix})
    return token
