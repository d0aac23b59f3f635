"""Payments API (mounted at /api/payments/): start paying for an order."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from ninja import Router, Schema

from smarttickets.accounts.api_auth import API_AUTH
from smarttickets.core import clock
from smarttickets.core.idempotency import idempotent
from smarttickets.payments import selectors, services
from smarttickets.risk import gates as risk_gates

router = Router(tags=["payments"])


class CheckoutOut(Schema):
    order: str
    provider: str
    redirect_url: str
    expires_at: str | None


class ErrorOut(Schema):
    code: str
    message: str


@router.post("/orders/{code}/checkout", auth=API_AUTH,
             response={200: CheckoutOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 502: ErrorOut,
                       503: ErrorOut},
             url_name="payments_checkout", summary="Start (or resume) paying for an order")
@idempotent
def checkout(request: HttpRequest, code: str):
    """Returns the provider page to send the buyer to. Calling it again while the session is
    open returns the same page; send an ``Idempotency-Key`` header to make retries safe."""
    order = selectors.access_order_by_buyer(code=code, user=request.auth)
    return_url = request.build_absolute_uri(reverse("payments:return", args=[order.code]))
    risk_gates.check(attempt=risk_gates.attempt_from_request(
        request, event_id=order.performance.event_id, performance_id=order.performance_id,
        quantity=order.hold.quantity, object_type="booking.order", object_id=order.pk),
        checkpoint="checkout")
    url = services.start_checkout(order=order, return_url=return_url, now=clock.now())
    payment = selectors.latest_payment(order=order)
    if url.startswith("/"):
        url = request.build_absolute_uri(url)
    return {"order": order.code, "provider": payment.provider if payment else "",
            "redirect_url": url,
            "expires_at": payment.expires_at.isoformat() if payment and payment.expires_at
            else None}
