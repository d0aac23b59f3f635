"""Telemetry from Django's auth signals (login success and failure) and from new accounts.

Only telemetry, and forgetting cached risk policies when one changes: nothing here changes
state another part of the platform depends on.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils.crypto import salted_hmac

from smarttickets.risk import telemetry


def identity_hash(value: str) -> str | None:
    """Salted per deployment (SECRET_KEY): equal normalised values give equal hashes."""
    normalised = " ".join((value or "").lower().split())
    if not normalised:
        return None
    return salted_hmac("smarttickets.risk.identity", normalised,
                       algorithm="sha256").hexdigest()[:32]


def on_login(sender, request, user, **kwargs) -> None:
    if request is not None:
        telemetry.record(request, user, "login", {"success": True})


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    if request is None:
        return
    email = (credentials or {}).get("username") or (credentials or {}).get("email") or ""
    user = get_user_model().objects.filter(email=str(email).strip().lower()).first()
    if user is None:
        return
    request.risk_login_failed_user = user
    telemetry.record(request, user, "login", {"success": False})


def on_user_saved(sender, instance, created, raw=False, **kwargs) -> None:
    request = telemetry.current_request.get()
    if not created or raw or request is None:
        return
    match = getattr(request, "resolver_match", None)
    if match is None or match.view_name != "accounts:register":
        return  # staff or scripts creating accounts are not a sign-up
    request.risk_signup_user = instance
    fields = {"email_domain": instance.email.rsplit("@", 1)[-1].lower(),
              "phone_country": None, "name_hash": identity_hash(instance.legal_name),
              "address_hash": None}
    # After the sign-up transaction: telemetry never runs inside the caller's transaction.
    transaction.on_commit(lambda: telemetry.record(request, instance, "signup", fields))


def on_policy_changed(sender, instance, **kwargs) -> None:
    """A saved or deleted policy applies at once in this process and, through the shared
    cache, within seconds in the others (decisions.POLICY_LOCAL_SECONDS)."""
    from django.core.cache import cache

    from smarttickets.risk.decisions import forget_policy
    from smarttickets.risk.services import policy_cache_key

    cache.delete(policy_cache_key(instance.event_id))
    forget_policy(instance.event_id)


def connect() -> None:
    from smarttickets.risk.models import RiskPolicy

    post_save.connect(on_policy_changed, sender=RiskPolicy, dispatch_uid="risk.policy_saved")
    post_delete.connect(on_policy_changed, sender=RiskPolicy, dispatch_uid="risk.policy_deleted")
    user_logged_in.connect(on_login, dispatch_uid="risk.login")
    user_login_failed.connect(on_login_failed, dispatch_uid="risk.login_failed")
    post_save.connect(on_user_saved, sender=get_user_model(), dispatch_uid="risk.signup")
