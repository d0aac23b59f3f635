"""Payment settings, read with defaults so the embedded sandbox needs no configuration."""

from __future__ import annotations

import hashlib
import hmac
import os

from django.conf import settings

PROVIDERS = ("sandbox", "stripe")


def _derived(purpose: str) -> str:
    # Derived rather than random so every process of one deployment agrees without setup.
    return hmac.new(settings.SECRET_KEY.encode(), f"smarttickets.payments.{purpose}".encode(),
                    hashlib.sha256).hexdigest()


def _setting(name: str, default: str = "") -> str:
    value = getattr(settings, name, None)
    if value in (None, ""):
        value = os.environ.get(name, default)
    return value or default


def provider_name() -> str:
    """The provider new checkouts use; existing payments keep the one that made them."""
    return _setting("PAYMENT_PROVIDER", "sandbox")


def sandbox_webhook_secret() -> str:
    return _setting("PAYMENTS_SANDBOX_WEBHOOK_SECRET") or _derived("sandbox.webhook")


def sandbox_fingerprint_secret() -> str:
    return _setting("PAYMENTS_SANDBOX_FINGERPRINT_SECRET") or _derived("sandbox.fingerprint")


def stripe_secret_key() -> str:
    return _setting("STRIPE_SECRET_KEY")


def stripe_webhook_secret() -> str:
    return _setting("STRIPE_WEBHOOK_SECRET")


def stripe_publishable_key() -> str:
    return _setting("STRIPE_PUBLISHABLE_KEY")


def webhook_tolerance_seconds() -> int:
    return int(getattr(settings, "PAYMENTS_WEBHOOK_TOLERANCE_SECONDS", 300))


def webhook_max_attempts() -> int:
    """Sandbox webhook deliveries before giving up (only a real queue retries)."""
    return int(getattr(settings, "PAYMENTS_WEBHOOK_MAX_ATTEMPTS", 8))
