"""Risk pages: the step-up check, a fan's case and appeal, and the staff review queue.

Thin: parse, authorize (``access_*``), call one service, render or redirect.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from smarttickets.accounts.phone import display_phone
from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError, NotFound
from smarttickets.risk import selectors, services
from smarttickets.risk.forms import AppealForm, QueueFilterForm, StepUpCodeForm, VerdictForm
from smarttickets.risk.models import ReviewCase, StepUpChallenge


def _not_found(func):
    """Domain NotFound → 404 page (same for missing and not yours)."""

    def wrapper(request, *args, **kwargs):
        try:
            return func(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(str(exc.message)) from exc

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                   require_https=request.is_secure()):
        return target
    return "/"


def _add_errors(form, exc: DomainError, default_field: str | None = None) -> None:
    placed = False
    for name, errors in exc.fields.items():
        if name in form.fields:
            for error in errors if isinstance(errors, list) else [errors]:
                form.add_error(name, error)
            placed = True
    if not placed:
        form.add_error(default_field, str(exc.message))


# --- the step-up check ---------------------------------------------------------------------

@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def stepup(request: HttpRequest) -> HttpResponse:
    """Send a code to the verified phone, check it, then go back to where the fan was."""
    user = request.user
    now = clock.now()
    nxt = _safe_next(request)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    form = StepUpCodeForm(request.POST if action == "verify" else None)
    if action == "send":
        try:
            services.start_stepup(account=user, now=now)
        except DomainError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(request, _("We sent a code to %(phone)s.")
                             % {"phone": display_phone(user.phone)})
        return redirect(f"{request.path}?next={nxt}")
    if action == "verify" and form.is_valid():
        try:
            services.check_stepup(account=user, code=form.cleaned_data["code"], now=now)
        except DomainError as exc:
            _add_errors(form, exc, default_field="code")
        else:
            messages.success(request, _("Thank you, you can continue."))
            return redirect(nxt)
    pending = (StepUpChallenge.objects.filter(account=user, passed_at__isnull=True,
                                              expires_at__gt=now)
               .order_by("-created_at").first())
    state = selectors.risk_state(account_id=user.pk)
    return render(request, "risk/stepup.html", {
        "form": form, "pending": pending, "next": nxt,
        "phone_display": display_phone(user.phone) if user.phone_verified else "",
        "passed_until": state.stepup_until if state and state.stepup_until
        and state.stepup_until > now else None,
    }, status=400 if request.method == "POST" else 200)


# --- a fan's cases and appeals -------------------------------------------------------------

@login_required
@never_cache
def status(request: HttpRequest) -> HttpResponse:
    cases = selectors.cases_of_account(user=request.user).order_by("-updated_at", "-id")[:50]
    state = selectors.risk_state(account_id=request.user.pk)
    return render(request, "risk/status.html", {"cases": cases, "state": state})


@login_required
@never_cache
@_not_found
@require_http_methods(["GET", "POST"])
def case(request: HttpRequest, case_id: int) -> HttpResponse:
    item = selectors.access_case_by_owner(user=request.user, case_id=case_id)
    form = AppealForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.submit_appeal(account=request.user, case=item,
                                   text=form.cleaned_data["text"], now=clock.now())
        except DomainError as exc:
            _add_errors(form, exc, default_field="text")
        else:
            messages.success(request, _("Thank you. A reviewer will read your message."))
            return redirect("risk:case", case_id=item.pk)
    return render(request, "risk/case.html", {
        "case": item, "form": form, "appeals": list(item.appeals.all()),
        "can_appeal": item.appeals.count() < services.MAX_APPEALS_PER_CASE,
    }, status=400 if request.method == "POST" else 200)


# --- the staff review queue ----------------------------------------------------------------

def _reviewer_only(request: HttpRequest) -> None:
    if not (request.user.is_superuser or selectors.can_review(request.user)):
        raise Http404


@login_required
@never_cache
def review_queue(request: HttpRequest) -> HttpResponse:
    _reviewer_only(request)
    form = QueueFilterForm(request.GET or None)
    state = "open"
    event_id = None
    if form.is_valid():
        state = form.cleaned_data["state"] or "open"
        event_id = form.cleaned_data["event"]
    cases = selectors.review_queue(user=request.user, state=state, event_id=event_id)
    page = Paginator(cases, 25).get_page(request.GET.get("page"))
    return render(request, "risk/review_queue.html", {
        "form": form, "page": page, "state": state,
        "counts": selectors.queue_counts(user=request.user),
    })


@login_required
@never_cache
@_not_found
def review_case(request: HttpRequest, case_id: int, form: VerdictForm | None = None
                ) -> HttpResponse:
    item = selectors.access_case_by_reviewer(user=request.user, case_id=case_id)
    from smarttickets.core.models import AuditEntry

    audit = (AuditEntry.objects.filter(object_type="risk.reviewcase", object_id=str(item.pk))
             .select_related("actor").order_by("created_at", "id"))
    return render(request, "risk/review_case.html", {
        "case": item, "form": form or VerdictForm(),
        "decisions": selectors.decisions_of(account_id=item.account_id),
        "appeals": list(item.appeals.all()),
        "ring": selectors.ring_of(account_id=item.account_id),
        "state": selectors.risk_state(account_id=item.account_id),
        "audit": audit, "is_open": item.state == ReviewCase.State.OPEN,
    }, status=400 if form is not None else 200)


@login_required
@require_POST
@_not_found
def review_verdict(request: HttpRequest, case_id: int) -> HttpResponse:
    item = selectors.access_case_by_reviewer(user=request.user, case_id=case_id)
    form = VerdictForm(request.POST)
    if not form.is_valid():
        return review_case(request, case_id, form=form)
    try:
        services.resolve_case(case=item, action=form.cleaned_data["action"],
                              reviewer=request.user, note=form.cleaned_data["note"],
                              now=clock.now())
    except DomainError as exc:
        _add_errors(form, exc)
        return review_case(request, case_id, form=form)
    messages.success(request, {
        "release": _("Released. The account can buy for this event."),
        "cancel": _("Cancelled. The account cannot pay for this event."),
        "ban": _("Banned. The account is refused at every checkpoint."),
    }[form.cleaned_data["action"]])
    return redirect("risk:review_queue")
