"""Lottery pages: enter, my entries and receipts, the public draw record and its downloads, and
the organizer's step-by-step pages. Thin: parse, authorize, call one service, render."""

from __future__ import annotations

import json
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from smarttickets.booking.client import client_ip, device_id
from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError, NotFound
from smarttickets.lottery import beacon as beacons
from smarttickets.lottery import draw, selectors, services
from smarttickets.lottery.forms import (
    BeaconForm,
    ConfirmForm,
    DrawForm,
    EntryForm,
    ReviewForm,
    SettingsForm,
)
from smarttickets.lottery.models import Entry, Lottery


def _not_found(func):
    """Domain NotFound → 404 (the same for missing and not yours)."""

    @wraps(func)
    def wrapper(request, *args, **kwargs):
        try:
            return func(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(str(exc)) from exc

    return wrapper


def _entry_form(request: HttpRequest, performance, lotteries, data=None) -> EntryForm:
    event = performance.event
    return EntryForm(data, lotteries=lotteries, limit=event.per_person_limit,
                     personalised=event.personalised)


# --- fans ----------------------------------------------------------------------------------

@_not_found
def performance_page(request: HttpRequest, performance_id: int, form: EntryForm | None = None
                     ) -> HttpResponse:
    now = clock.now()
    performance = selectors.access_lottery_performance(performance_id=performance_id, now=now)
    lotteries = selectors.lotteries_of(performance=performance)
    entry = selectors.live_entry_for(user=request.user, performance=performance)
    window_open = services.entry_window_open(performance=performance, now=now)
    return render(request, "lottery/performance.html", {
        "performance": performance, "event": performance.event,
        "venue": performance.event.venue, "lotteries": lotteries,
        "form": form or _entry_form(request, performance, lotteries),
        "entry": entry,
        "entry_status": selectors.entry_status(entry=entry, now=now) if entry else None,
        "window_open": window_open,
        "entry_upcoming": performance.entry_opens_at and now < performance.entry_opens_at,
        "identity_ok": request.user.is_authenticated and request.user.identity_verified,
        "policy": lotteries[0].flagged_policy if lotteries else "",
    }, status=422 if form is not None else 200)


@login_required
@require_POST
@_not_found
def enter_view(request: HttpRequest, performance_id: int) -> HttpResponse:
    now = clock.now()
    performance = selectors.access_lottery_performance(performance_id=performance_id, now=now)
    lotteries = selectors.lotteries_of(performance=performance)
    form = _entry_form(request, performance, lotteries, request.POST)
    if not form.is_valid():
        return performance_page(request, performance_id, form=form)
    lottery = next(lot for lot in lotteries if lot.public_id == form.cleaned_data["lottery"])
    try:
        entry = services.enter(
            lottery=lottery, user=request.user, quantity=form.cleaned_data["quantity"],
            companions=form.companions(), now=now, ip=client_ip(request),
            device=device_id(request), session=request.session.session_key or "",
            user_agent=request.headers.get("User-Agent", ""))
    except DomainError as exc:
        for field, errors in exc.fields.items():
            target = field if field in form.fields else None
            for error in errors if isinstance(errors, list) else [errors]:
                form.add_error(target, error)
        if not exc.fields:
            form.add_error(None, str(exc.message))
        return performance_page(request, performance_id, form=form)
    messages.success(request, _("You are entered. We have emailed you a confirmation."))
    return redirect("lottery:entry", entry_id=entry.entry_id)


@login_required
@_not_found
def entry_page(request: HttpRequest, entry_id: str) -> HttpResponse:
    now = clock.now()
    entry = selectors.access_entry_by_user(entry_id=entry_id, user=request.user)
    lottery = entry.lottery
    receipt = selectors.receipt_for(entry=entry)
    status = selectors.entry_status(entry=entry, now=now)
    return render(request, "lottery/entry.html", {
        "entry": entry, "lottery": lottery, "performance": lottery.performance,
        "event": lottery.performance.event, "status": status, "receipt": receipt,
        "receipt_json": json.dumps(receipt, indent=2) if receipt else "",
        "can_withdraw": (entry.state == Entry.State.ACTIVE
                         and lottery.state == Lottery.State.OPEN
                         and services.entry_window_open(performance=lottery.performance,
                                                        now=now)),
    })


@login_required
@require_POST
@_not_found
def withdraw_view(request: HttpRequest, entry_id: str) -> HttpResponse:
    entry = selectors.access_entry_by_user(entry_id=entry_id, user=request.user)
    try:
        services.withdraw(entry=entry, user=request.user, now=clock.now())
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect("lottery:entry", entry_id=entry.entry_id)
    messages.success(request, _("Your entry was withdrawn."))
    return redirect("lottery:performance", performance_id=entry.performance_id)


@login_required
def my_entries(request: HttpRequest) -> HttpResponse:
    now = clock.now()
    page = Paginator(selectors.entries_of_user(user=request.user), 20).get_page(
        request.GET.get("page"))
    rows = [{"entry": e, "status": selectors.entry_status(entry=e, now=now)} for e in page]
    return render(request, "lottery/my_entries.html", {"page": page, "rows": rows})


# --- the public record ---------------------------------------------------------------------

@_not_found
def draw_page(request: HttpRequest, public_id: str) -> HttpResponse:
    lottery = selectors.access_lottery(public_id=public_id)
    summary = selectors.allocation_summary(lottery=lottery)
    return render(request, "lottery/draw.html", {
        "lottery": lottery, "performance": lottery.performance,
        "event": lottery.performance.event, "counts": selectors.counts(lottery=lottery),
        "key": selectors.public_key_info(),
        "commitment_json": json.dumps(lottery.commitment, indent=2, ensure_ascii=False)
        if lottery.commitment else "",
        "summary": summary,
        "chart": selectors.allocation_chart(summary) if summary else [],
        "verifier_sha256": selectors.draw_source_sha256(),
        "beacon": (lottery.commitment or {}).get("beacon"),
    })


def _download(body: bytes, filename: str, content_type: str = "application/json") -> HttpResponse:
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Access-Control-Allow-Origin"] = "*"
    return response


@_not_found
def commitment_json(request: HttpRequest, public_id: str) -> HttpResponse:
    lottery = selectors.access_lottery(public_id=public_id)
    if lottery.commitment is None:
        raise Http404
    return _download(draw.canonical_bytes(lottery.commitment) + b"\n",
                     f"{lottery.public_id}.commitment.json")


@_not_found
def signature_json(request: HttpRequest, public_id: str) -> HttpResponse:
    lottery = selectors.access_lottery(public_id=public_id)
    if lottery.signature is None:
        raise Http404
    return _download(json.dumps(lottery.signature, indent=2).encode() + b"\n",
                     f"{lottery.public_id}.signature.json")


@_not_found
def entries_json(request: HttpRequest, public_id: str) -> HttpResponse:
    lottery = selectors.access_lottery(public_id=public_id)
    if not lottery.entries_document:
        raise Http404
    return _download(lottery.entries_document.encode(), f"{lottery.public_id}.entries.json")


@_not_found
def result_json(request: HttpRequest, public_id: str) -> HttpResponse:
    lottery = selectors.access_lottery(public_id=public_id)
    if lottery.result is None:
        raise Http404
    return _download(draw.dump_result(lottery.result), f"{lottery.public_id}.result.json")


def verifier_py(request: HttpRequest) -> HttpResponse:
    return _download(selectors.draw_source(), "verify_draw.py", "text/x-python")


def public_key(request: HttpRequest) -> HttpResponse:
    info = selectors.public_key_info()
    return _download(info["pem"].encode(), "smarttickets-lottery-key.pem",
                     "application/x-pem-file")


@_not_found
def receipt_check(request: HttpRequest, entry_id: str) -> JsonResponse:
    """Server-side recompute of an entrant's inclusion proof (the page also checks in JS)."""
    entry = selectors.access_entry_by_user(entry_id=entry_id, user=request.user)
    receipt = selectors.receipt_for(entry=entry)
    if receipt is None:
        raise Http404
    root = entry.lottery.commitment["entries_root"]
    return JsonResponse({"entries_root": root,
                         "included": draw.verify_receipt(receipt, root),
                         "leaf": receipt["leaf"]})


# --- organizer -----------------------------------------------------------------------------

@login_required
def organizer_index(request: HttpRequest) -> HttpResponse:
    performances = list(selectors.staff_lottery_performances(user=request.user))
    if not performances and not selectors.organizers_for_user(request.user,
                                                              selectors.RUN).exists():
        raise Http404
    return render(request, "lottery/organizer/index.html", {"performances": performances})


@login_required
@_not_found
def organizer_performance(request: HttpRequest, performance_id: int) -> HttpResponse:
    now = clock.now()
    performance = selectors.access_performance_by_staff(performance_id=performance_id,
                                                        user=request.user, now=now)
    lotteries = selectors.lotteries_of(performance=performance)
    return render(request, "lottery/organizer/performance.html", {
        "performance": performance, "event": performance.event, "lotteries": lotteries,
        "now": now})


def _organizer_context(request: HttpRequest, lottery: Lottery, **forms) -> dict:
    now = clock.now()
    lottery.refresh_from_db()
    summary = selectors.allocation_summary(lottery=lottery)
    settings_initial = {"capacity": lottery.capacity, "flagged_policy": lottery.flagged_policy,
                        "beacon_kind": lottery.beacon_kind,
                        "beacon_source": lottery.beacon_source,
                        "beacon_draw": lottery.beacon_draw, "offer_hours": lottery.offer_hours}
    beacon = (lottery.commitment or {}).get("beacon")
    return {
        "lottery": lottery, "performance": lottery.performance,
        "event": lottery.performance.event, "now": now,
        "counts": selectors.counts(lottery=lottery),
        "flagged": selectors.flagged_entries(lottery=lottery)[:200],
        "settings_form": forms.get("settings") or SettingsForm(initial=settings_initial),
        "close_form": forms.get("close") or ConfirmForm(prefix="close"),
        "open_form": forms.get("open") or ConfirmForm(prefix="open"),
        "beacon_form": forms.get("beacon") or BeaconForm(),
        "draw_form": forms.get("draw") or DrawForm(prefix="draw"),
        "purchase_form": forms.get("purchase") or ConfirmForm(prefix="purchase"),
        "beacon": beacon,
        "drand_url": _drand_url(beacon),
        "beacon_due": _beacon_due(beacon),
        "summary": summary,
        "offers": selectors.offers(lottery=lottery, now=now) if lottery.allocation else [],
        "pending_reviews": services.pending_reviews(lottery=lottery),
        "seed_hint": lottery.seed_commitment,
    }


def _drand_url(beacon) -> str:
    if beacon and beacon.get("round"):
        return (f"https://api.drand.sh/{beacons.QUICKNET.chain_hash}/public/"
                f"{beacon['round']}")
    return ""


def _beacon_due(beacon) -> object:
    if beacon and beacon.get("round"):
        return beacons.QUICKNET.round_time(beacon["round"])
    return None


@login_required
@_not_found
def organizer_lottery(request: HttpRequest, lottery_id: int) -> HttpResponse:
    lottery = selectors.access_lottery_by_staff(lottery_id=lottery_id, user=request.user)
    return render(request, "lottery/organizer/lottery.html", _organizer_context(request, lottery))


def _fail(request: HttpRequest, lottery: Lottery, key: str, form, exc: DomainError
          ) -> HttpResponse:
    for field, errors in exc.fields.items():
        for error in errors if isinstance(errors, list) else [errors]:
            form.add_error(field if field in form.fields else None, error)
    if not exc.fields:
        form.add_error(None, str(exc.message))
    return render(request, "lottery/organizer/lottery.html",
                  _organizer_context(request, lottery, **{key: form}), status=422)


@login_required
@require_POST
@_not_found
def organizer_action(request: HttpRequest, lottery_id: int, action: str) -> HttpResponse:
    lottery = selectors.access_lottery_by_staff(lottery_id=lottery_id, user=request.user)
    now = clock.now()
    user = request.user
    forms = {
        "settings": lambda: SettingsForm(request.POST),
        "open": lambda: ConfirmForm(request.POST, prefix="open"),
        "close": lambda: ConfirmForm(request.POST, prefix="close"),
        "beacon": lambda: BeaconForm(request.POST),
        "draw": lambda: DrawForm(request.POST, prefix="draw"),
        "purchase": lambda: ConfirmForm(request.POST, prefix="purchase"),
    }
    if action not in forms:
        raise Http404
    form = forms[action]()
    if not form.is_valid():
        return render(request, "lottery/organizer/lottery.html",
                      _organizer_context(request, lottery, **{action: form}), status=422)
    data = form.cleaned_data
    try:
        if action == "settings":
            services.update_settings(lottery=lottery, actor=user, now=now,
                                     values=services.LotterySettings(**data))
            message = _("Lottery settings saved.")
        elif action == "open":
            services.open_lottery(lottery=lottery, actor=user, now=now)
            message = _("Entries are open.")
        elif action == "close":
            services.close_and_commit(lottery=lottery, actor=user, now=now)
            message = _("Entries closed; the signed commitment is published.")
        elif action == "beacon":
            services.enter_beacon(lottery=lottery, actor=user, evidence=data["evidence"],
                                  now=now)
            message = _("Beacon value verified and recorded.")
        elif action == "draw":
            services.run_draw(lottery=lottery, actor=user, now=now, seed_hex=data["seed"] or None)
            message = _("The draw is done and its result is published.")
        else:
            services.start_purchase(lottery=lottery, actor=user, now=now)
            message = _("The purchase window is open; winners' seats are reserved.")
    except DomainError as exc:
        return _fail(request, lottery, action, form, exc)
    messages.success(request, message)
    return redirect("lottery:organizer_lottery", lottery_id=lottery.pk)


@login_required
@require_POST
@_not_found
def organizer_review(request: HttpRequest, lottery_id: int) -> HttpResponse:
    lottery = selectors.access_lottery_by_staff(lottery_id=lottery_id, user=request.user)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose include or exclude."))
        return redirect("lottery:organizer_lottery", lottery_id=lottery.pk)
    entry = selectors.access_entry_by_staff(entry_id=form.cleaned_data["entry"],
                                            user=request.user)
    if entry.lottery_id != lottery.pk:
        raise Http404
    try:
        services.review_entry(entry=entry, actor=request.user,
                              include=form.cleaned_data["decision"] == "include",
                              now=clock.now())
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Review saved."))
    return redirect(reverse("lottery:organizer_lottery", args=[lottery.pk]) + "#review")
