"""Payment errors: each has a stable code, a translatable message and an HTTP status."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from smarttickets.core.exceptions import Conflict, DomainError


class WebhookRejected(DomainError):
    """A webhook we refuse: nothing was changed. The provider sees 400 and the code."""

    code = "webhook_rejected"
    status = 400


class ProviderError(DomainError):
    """The provider could not be reached or refused a call; safe to retry later."""

    code = "provider_error"
    status = 502

    def __init__(self, message=None, **kwargs) -> None:
        super().__init__(message or _("The payment provider is not available right now. "
                                      "Please try again in a moment."), **kwargs)


class CheckoutNotAllowed(Conflict):
    code = "checkout_not_allowed"


class RefundNotAllowed(Conflict):
    code = "refund_not_allowed"
