"""Payment pages: start checkout, the return page, refunds, webhooks and the sandbox's pages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError, NotFound
from smarttickets.core.money import format_money, from_minor, to_minor
from smarttickets.payments import conf, selectors, services
from smarttickets.payments.forms import CardForm, ChallengeForm, RefundForm
from smarttickets.payments.models import Payment, Refund, SandboxSession
from smarttickets.payments.providers import sandbox
from smarttickets.risk import gates as risk_gates
from smarttickets.risk import telemetry as risk_telemetry


def _url(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _buyer_order(request: HttpRequest, code: str):
    try:
        return selectors.access_order_by_buyer(code=code, user=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@login_required
@require_POST
def start(request: HttpRequest, code: str) -> HttpResponse:
    order = _buyer_order(request, code)
    return_url = request.build_absolute_uri(reverse("payments:return", args=[order.code]))
    refused = risk_gates.web_check(
        request, checkpoint="checkout", back=reverse("booking:order", args=[order.code]),
        event_id=order.performance.event_id, performance_id=order.performance_id,
        quantity=order.hold.quantity, object_type="booking.order", object_id=order.pk)
    if refused is not None:
        return refused
    try:
        url = services.start_checkout(order=order, return_url=return_url, now=clock.now())
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("payments:return", code=order.code)
    return redirect(url)


@login_required
@never_cache
@require_http_methods(["GET", "HEAD"])
def payment_return(request: HttpRequest, code: str) -> HttpResponse:
    order = _buyer_order(request, code)
    now = clock.now()
    payment = services.sync_checkout(order=order, now=now)
    order.refresh_from_db()
    if payment is not None and payment.state != Payment.State.OPEN:
        risk_telemetry.record_payment(
            request, request.user, payment_id=payment.pk, order_id=order.pk,
            amount_minor=to_minor(payment.amount, payment.currency), currency=payment.currency,
            card_fp=payment.card_fingerprint, success=payment.state in Payment.CHARGED_STATES,
            decline_code=payment.decline_code)
    refunds = list(selectors.refunds_of_order(order=order).filter(kind=Refund.Kind.AUTOMATIC))
    auto_refund = refunds[0] if refunds else None
    if order.state == order.State.PAID:
        outcome = "paid"
    elif auto_refund is not None:
        outcome = "refunded"
    elif payment is not None and payment.review_reason == "amount_mismatch":
        outcome = "review"
    elif payment is not None and payment.state in (Payment.State.FAILED,
                                                   Payment.State.EXPIRED):
        outcome = "failed"
    elif order.state == order.State.PENDING and order.expires_at > now:
        outcome = "cancelled" if request.GET.get("cancelled") or payment is None else "processing"
    else:
        outcome = "closed"
    context = {
        "order": order, "payment": payment, "outcome": outcome, "auto_refund": auto_refund,
        "event": order.performance.event,
        "can_retry": order.state == order.State.PENDING and order.expires_at > now,
        "decline_message": decline_message(payment.decline_code if payment else ""),
        "wallet_url": _url("tickets:wallet"),
        "order_url": _url("booking:order", order.code),
        "performance_url": _url("booking:performance", order.performance_id),
    }
    return render(request, "payments/return.html", context)


def decline_message(code: str) -> str:
    return {
        "generic_decline": _("Your card was declined by your bank."),
        "insufficient_funds": _("Your card has insufficient funds."),
        "authentication_failed": _("The card verification (one-time code) failed."),
        "expired": _("The payment session ended before the payment was completed."),
    }.get(code, _("The payment did not go through."))


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def refund(request: HttpRequest, code: str) -> HttpResponse:
    try:
        order = selectors.access_order_for_refund(code=code, user=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    tickets = selectors.refundable_tickets(order=order)
    payment = selectors.charged_payment(order=order)
    form = RefundForm(request.POST or None, tickets=tickets)
    context = {"order": order, "payment": payment, "tickets": tickets, "form": form,
               "event": order.performance.event,
               "refunds": selectors.refunds_of_order(order=order),
               "order_url": _url("booking:organizer_order", order.code)}
    if request.method == "POST" and form.is_valid():
        ticket_ids = form.ticket_ids()
        chosen = tickets if ticket_ids is None else [t for t in tickets if t.pk in ticket_ids]
        if request.POST.get("confirm") != "yes":
            amount = (payment.refundable if payment and (ticket_ids is None
                                                         or len(chosen) == len(tickets))
                      else sum(t.price for t in chosen))
            return render(request, "payments/refund_confirm.html",
                          {**context, "chosen": chosen, "amount": amount,
                           "ticket_ids": ticket_ids})
        try:
            done = services.refund(order=order, ticket_ids=ticket_ids, actor=request.user,
                                   reason=form.cleaned_data["reason"], now=clock.now())
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("payments:refund", code=order.code)
        messages.success(request, _("Refunded %(amount)s. The buyer has been emailed.")
                         % {"amount": format_money(done.amount, done.currency)})
        return redirect("payments:refund", code=order.code)
    status = 400 if request.method == "POST" else 200
    return render(request, "payments/refund.html", context, status=status)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str) -> JsonResponse:
    if provider not in conf.PROVIDERS:
        return JsonResponse({"code": "not_found", "message": _("Not found.")}, status=404)
    response = services.receive_webhook(provider_name=provider, body=request.body,
                                        headers=request.headers, now=clock.now())
    return JsonResponse(response.body, status=response.status)


# --- the sandbox provider's hosted pages (a separate service in spirit) ----------------------


def _sandbox_context(session: SandboxSession) -> dict:
    return {"session": session, "amount": from_minor(session.amount_minor, session.currency),
            "test_cards": TEST_CARD_ROWS}


TEST_CARD_ROWS = [
    ("4242 4242 4242 4242", "success"),
    ("4000 0000 0000 0002", "generic_decline"),
    ("4000 0000 0000 9995", "insufficient_funds"),
    ("4000 0000 0000 3220", "challenge"),
]


def _closed(request: HttpRequest, session: SandboxSession) -> HttpResponse:
    state = sandbox.effective_state(session, clock.now())
    return render(request, "payments/sandbox/closed.html",
                  {**_sandbox_context(session), "state": state},
                  status=410 if state == SandboxSession.State.EXPIRED else 200)


@sensitive_post_parameters("number", "cvc", "expiry")
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def sandbox_checkout(request: HttpRequest, session_id: str) -> HttpResponse:
    session = get_object_or_404(SandboxSession, public_id=session_id)
    now = clock.now()
    try:
        sandbox.get_open_session(public_id=session_id, now=now)
    except sandbox.SessionClosed:
        return _closed(request, session)
    if session.state == SandboxSession.State.CHALLENGE:
        return redirect("payments:sandbox_challenge", session_id=session_id)
    form = CardForm(request.POST or None, today=now.date())
    if request.method == "POST" and form.is_valid():
        try:
            session = sandbox.pay(public_id=session_id, card=form.card(), now=now)
        except sandbox.SessionClosed:
            session.refresh_from_db()
            return _closed(request, session)
        if session.state == SandboxSession.State.CHALLENGE:
            return redirect("payments:sandbox_challenge", session_id=session_id)
        return redirect(session.return_url)
    status = 400 if request.method == "POST" else 200
    return render(request, "payments/sandbox/checkout.html",
                  {**_sandbox_context(session), "form": form}, status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def sandbox_challenge(request: HttpRequest, session_id: str) -> HttpResponse:
    session = get_object_or_404(SandboxSession, public_id=session_id)
    now = clock.now()
    try:
        sandbox.get_open_session(public_id=session_id, now=now)
    except sandbox.SessionClosed:
        return _closed(request, session)
    if session.state != SandboxSession.State.CHALLENGE:
        return redirect("payments:sandbox_checkout", session_id=session_id)
    form = ChallengeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            session = sandbox.answer_challenge(public_id=session_id,
                                               code=form.cleaned_data["code"], now=now)
        except sandbox.SessionClosed:
            session.refresh_from_db()
            return _closed(request, session)
        return redirect(session.return_url)
    status = 400 if request.method == "POST" else 200
    return render(request, "payments/sandbox/challenge.html",
                  {**_sandbox_context(session), "form": form}, status=status)
