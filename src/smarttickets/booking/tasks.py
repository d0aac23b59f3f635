"""Background work for booking: the order confirmation email and hold housekeeping."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import translation
from django_tasks import task

from smarttickets.core import clock


@task()
def send_order_confirmation(*, order_id: int) -> None:
    """Queued on commit of the payment; re-fetches the order and mails it in the buyer's
    language (English or Traditional Chinese)."""
    from smarttickets.booking.models import Order

    order = (Order.objects.select_related("buyer", "performance__event__venue")
             .filter(pk=order_id).first())
    if order is None:
        return
    language = order.buyer.preferred_language if order.buyer.preferred_language in (
        "en", "zh-hant") else "en"
    with translation.override(language):
        context = {"order": order, "tickets": list(order.tickets.select_related(
            "zone", "seat__section").order_by("pk")), "site_url": settings.SITE_URL}
        subject = render_to_string("booking/email/confirmation_subject.txt", context).strip()
        body = render_to_string("booking/email/confirmation.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [order.buyer.email])


@task()
def expire_holds_task() -> int:
    from smarttickets.booking.services import expire_holds

    return expire_holds(now=clock.now())
