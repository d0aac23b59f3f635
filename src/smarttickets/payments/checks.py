"""System checks: a misconfigured provider is reported at startup, not at the first sale."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register

from smarttickets.payments import conf


@register()
def check_payment_provider(app_configs, **kwargs):
    problems = []
    name = conf.provider_name()
    if name not in conf.PROVIDERS:
        problems.append(Error(f"PAYMENT_PROVIDER must be one of {', '.join(conf.PROVIDERS)}",
                              id="payments.E001"))
    if name == "stripe" and not (conf.stripe_secret_key() and conf.stripe_webhook_secret()):
        problems.append(Error("PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY and "
                              "STRIPE_WEBHOOK_SECRET", id="payments.E002"))
    if name == "sandbox" and getattr(settings, "PRODUCTION", False):
        problems.append(Warning("The sandbox provider takes no real money; set "
                                "PAYMENT_PROVIDER=stripe for a real sale", id="payments.W001"))
    return problems
