"""Payment providers by name: ``get_provider("sandbox")`` or the configured default."""

from __future__ import annotations

from django.utils.translation import gettext as _

from smarttickets.payments import conf
from smarttickets.payments.exceptions import ProviderError
from smarttickets.payments.providers.base import PaymentProvider


def get_provider(name: str | None = None) -> PaymentProvider:
    name = name or conf.provider_name()
    if name == "sandbox":
        from smarttickets.payments.providers.sandbox import SandboxProvider

        return SandboxProvider()
    if name == "stripe":
        from smarttickets.payments.providers.stripe_provider import StripeProvider

        return StripeProvider()
    raise ProviderError(_("This payment provider is not configured."),
                        code="provider_not_configured", status=503)
