"""Background work for payments: sandbox webhook delivery and refund notices to buyers."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.mail import send_mail
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django_tasks import task

from smarttickets.core import clock
from smarttickets.payments import conf

logger = logging.getLogger(__name__)


def backoff(attempt: int) -> timedelta:
    """10 s, 20 s, 40 s … capped at an hour, like providers space their retries."""
    return timedelta(seconds=min(10 * 2 ** (attempt - 1), 3600))


@task()
def deliver_sandbox_event(event_id: str, attempt: int = 1) -> int:
    """Serialise, sign and hand one sandbox event to the webhook handler; retry on failure.

    The handler is the same function the HTTP endpoint calls, so in-process delivery is
    verified exactly like a delivery from outside.
    """
    from smarttickets.payments.models import SandboxEvent
    from smarttickets.payments.providers.sandbox import signed_delivery
    from smarttickets.payments.services import receive_webhook

    event = SandboxEvent.objects.get(public_id=event_id)
    if event.delivered_at is not None:
        return 200
    now = clock.now()
    body, headers = signed_delivery(event, now)
    try:
        response = receive_webhook(provider_name="sandbox", body=body, headers=headers, now=now)
        status, error = response.status, str(response.body.get("code", ""))
    except Exception as exc:  # the endpoint crashing counts as a failed delivery, like a 500
        logger.exception("sandbox webhook %s crashed the handler", event_id)
        status, error = 500, type(exc).__name__
    SandboxEvent.objects.filter(pk=event.pk).update(
        attempts=F("attempts") + 1, last_status=status, last_error=error[:300],
        delivered_at=now if status < 300 else None)
    # 4xx means the handler refused the event for good; only server-side trouble is retried.
    if status >= 500 and attempt < conf.webhook_max_attempts():
        if deliver_sandbox_event.get_backend().supports_defer:
            deliver_sandbox_event.using(run_after=timezone.now() + backoff(attempt)).enqueue(
                event_id, attempt + 1)
        else:
            logger.warning("sandbox webhook %s failed (%s); the return page will re-fetch",
                           event_id, status)
    return status


@task()
def send_refund_notice(refund_id: int) -> None:
    """Tell the buyer that money is on its way back, in their language."""
    from smarttickets.payments.models import Refund

    refund = Refund.objects.select_related("payment__order__buyer",
                                           "payment__order__performance__event").get(pk=refund_id)
    order = refund.payment.order
    buyer = order.buyer
    with translation.override(getattr(buyer, "preferred_language", "") or "en"):
        context = {"refund": refund, "order": order, "payment": refund.payment,
                   "event": order.performance.event}
        subject = render_to_string("payments/email/refund_subject.txt", context).strip()
        body = render_to_string("payments/email/refund_body.txt", context)
    send_mail(subject, body, None, [buyer.email])
