"""Pages: the fan's wallet (installable, works offline), ticket transfers, the printable
fallback ticket, the gate scanner, and the organizer's check-in report and ticketing policy."""

from __future__ import annotations

import functools
import json
from itertools import groupby

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError, NotFound
from smarttickets.events import access
from smarttickets.tickets import charts, offline, selectors, services, totp, transfers
from smarttickets.tickets.forms import PolicyForm, TransferForm
from smarttickets.tickets.models import IssuedCredential, Transfer

SW_CACHE_VERSION = "wallet-v1"


def _not_found_is_404(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(str(exc)) from exc
    return wrapper


@login_required
def wallet(request: HttpRequest) -> HttpResponse:
    show_all = request.GET.get("show") == "all"
    now = clock.now()
    tickets = list(selectors.tickets_of_user(user=request.user, include_cancelled=show_all))
    pending = selectors.pending_by_ticket(user=request.user, now=now)
    passed_on = selectors.transfer_counts(t.pk for t in tickets)
    policies: dict[int, object] = {}
    for t in tickets:
        event_id = t.performance.event_id
        policy = policies.get(event_id) or policies.setdefault(
            event_id, services.policy_for_event(event_id))
        t.pending_transfer = pending.get(t.pk)
        # Cheap checks only; the transfer page explains any other reason.
        t.can_offer = (t.is_valid and policy.transfers_allowed
                       and passed_on.get(t.pk, 0) < policy.max_transfers_per_ticket
                       and now < transfers.deadline(t.performance))
    groups = [(performance, list(items))
              for performance, items in groupby(tickets, key=lambda t: t.performance)]
    return render(request, "tickets/wallet.html", {
        "groups": groups, "show_all": show_all,
        "wallet_data": selectors.wallet_payload(user=request.user, now=now),
        "incoming_count": selectors.incoming_transfers(user=request.user, now=now).count(),
        "user_key": f"u{request.user.pk}"})


@login_required
@_not_found_is_404
@require_http_methods(["GET", "POST"])
def transfer_start(request: HttpRequest, serial: str) -> HttpResponse:
    """The transfer form: who gets the ticket, and what giving it away means."""
    ticket = selectors.access_ticket_by_user(request.user, serial)
    now = clock.now()
    form = TransferForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            transfer = services.start_transfer(ticket=ticket, sender=request.user,
                                               to_email=form.cleaned_data["email"], now=now)
        except DomainError as exc:
            if "email" in exc.fields:
                form.add_error("email", exc.fields["email"])
            else:
                form.add_error(None, exc.message)
        else:
            transfers.record_offer_telemetry(request, transfer)
            messages.success(request, transfers.offer_message())
            return redirect("tickets:transfers")
    policy = services.policy_for_event(ticket.performance.event_id)
    done = ticket.transfers.filter(state=Transfer.State.ACCEPTED).count()
    return render(request, "tickets/transfer_start.html", {
        "ticket": ticket, "seat": selectors.seat_text(ticket), "form": form,
        "refusal": transfers.refusal(ticket, policy, now),
        "pending": selectors.pending_by_ticket(user=request.user, now=now).get(ticket.pk),
        "expires_at": transfers.expiry_for(ticket.performance, now),
        "passes_left": max(policy.max_transfers_per_ticket - done - 1, 0),
        "personalised": ticket.performance.event.personalised},
        status=422 if request.method == "POST" else 200)


@login_required
def transfers_page(request: HttpRequest) -> HttpResponse:
    """Offers to me (accept or decline), my open offers (cancel) and what happened before."""
    now = clock.now()
    history = [("sent", t) for t in selectors.outgoing_transfers(
        user=request.user, now=now, include_closed=True).exclude(
        state=Transfer.State.PENDING, expires_at__gt=now)[:20]]
    history += [("received", t) for t in selectors.received_transfers(user=request.user)[:20]]
    history.sort(key=lambda item: item[1].closed_at or item[1].expires_at, reverse=True)
    return render(request, "tickets/transfers.html", {
        "incoming": list(selectors.incoming_transfers(user=request.user, now=now)),
        "outgoing": list(selectors.outgoing_transfers(user=request.user, now=now)),
        "history": history[:20], "now": now})


def _transfer_action(request: HttpRequest, action, success: str, target: str):
    try:
        action()
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("tickets:transfers")
    messages.success(request, success)
    return redirect(target)


@login_required
@require_POST
def transfer_accept(request: HttpRequest, transfer_id: int) -> HttpResponse:
    def accept():
        transfer = selectors.access_transfer_for_recipient(request.user, transfer_id)
        services.accept_transfer(transfer=transfer, recipient=request.user, now=clock.now())
    return _transfer_action(request, accept, _("The ticket is yours now: it is in My tickets."),
                            "tickets:wallet")


@login_required
@require_POST
def transfer_decline(request: HttpRequest, transfer_id: int) -> HttpResponse:
    def decline():
        transfer = selectors.access_transfer_for_recipient(request.user, transfer_id)
        services.decline_transfer(transfer=transfer, recipient=request.user, now=clock.now())
    return _transfer_action(request, decline, _("Declined. The ticket stays with the sender."),
                            "tickets:transfers")


@login_required
@require_POST
def transfer_cancel(request: HttpRequest, transfer_id: int) -> HttpResponse:
    def cancel():
        transfer = selectors.access_transfer_for_sender(request.user, transfer_id)
        services.cancel_transfer(transfer=transfer, sender=request.user, now=clock.now())
    return _transfer_action(request, cancel,
                            _("Transfer cancelled. The ticket and its code stay yours."),
                            "tickets:wallet")


def manifest(request: HttpRequest) -> JsonResponse:
    """The web app manifest that makes the wallet installable."""
    return JsonResponse({
        "name": _("SmartTickets wallet"), "short_name": _("Tickets"),
        "start_url": reverse("tickets:wallet"), "scope": reverse("tickets:wallet"),
        "display": "standalone", "background_color": "#10122b", "theme_color": "#10122b",
        "icons": [{"src": static("tickets/icon.svg"), "sizes": "any",
                   "type": "image/svg+xml", "purpose": "any"}],
    }, content_type="application/manifest+json")


@never_cache
def service_worker(request: HttpRequest) -> HttpResponse:
    """Served under /tickets/ so its scope covers the wallet page."""
    precache = [static(p) for p in (
        "smarttickets/app.css", "smarttickets/app.js", "tickets/tickets.css",
        "tickets/wallet.js", "tickets/icon.svg", "tickets/vendor/qrcode.js",
        "tickets/vendor/base45.js")]
    body = render(request, "tickets/sw.js", {
        "version": SW_CACHE_VERSION, "precache": json.dumps(precache),
        "wallet_url": json.dumps(reverse("tickets:wallet")),
        "credentials_url": json.dumps(reverse("api:wallet")),
        "time_url": json.dumps(reverse("api:server_time")),
    }, content_type="text/javascript").content
    return HttpResponse(body, content_type="text/javascript")


@login_required
@_not_found_is_404
@require_http_methods(["GET", "POST"])
def printable(request: HttpRequest, serial: str) -> HttpResponse:
    """The weaker printed fallback: shown only when the event's policy offers it."""
    ticket = selectors.access_ticket_by_user(request.user, serial)
    policy = services.policy_for_event(ticket.performance.event_id)
    if not policy.printed_fallback:
        raise Http404(_("Printable tickets are not offered for this event."))
    credential = None
    if request.method == "POST":
        try:
            credential = services.issue_printed_credential(ticket=ticket, actor=request.user,
                                                           now=clock.now())
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("tickets:wallet")
    else:
        credential = IssuedCredential.objects.filter(
            ticket=ticket, kind=IssuedCredential.Kind.PRINTED,
            serial=ticket.credential_serial, revoked_at__isnull=True).first()
    code = qr_svg = None
    if credential is not None:
        from smarttickets.tickets.credential import SignedCredential

        code = totp.printed_code(SignedCredential(bytes(credential.data),
                                                  bytes(credential.signature)))
        qr_svg = segno.make(code, error="m", mode="alphanumeric", boost_error=False).svg_inline(
            scale=4, border=4, title=_("Printed ticket code"))
    return render(request, "tickets/printable.html", {
        "ticket": ticket, "credential": credential, "code": code, "qr_svg": qr_svg,
        "seat": selectors.seat_text(ticket)})


@login_required
@_not_found_is_404
def scanner(request: HttpRequest) -> HttpResponse:
    """Gate staff pick a performance, gate and direction, then scan."""
    if not selectors.can_scan(request.user):
        return render(request, "tickets/scanner_no_access.html", status=403)
    performances = list(selectors.scannable_performances(user=request.user, now=clock.now()))
    performance_id = request.GET.get("performance")
    if not performance_id:
        return render(request, "tickets/scanner_setup.html", {"performances": performances})
    performance = selectors.access_performance_for_scanning(request.user, performance_id)
    policy = services.policy_for_event(performance.event_id)
    gate = request.GET.get("gate", "")
    if gate and gate not in policy.gate_groups:
        gate = ""
    direction = "exit" if request.GET.get("direction") == "exit" and policy.reentry_allowed \
        else "entry"
    config = {"performance_id": performance.pk, "event_id": performance.event_id,
              "gate": gate, "direction": direction,
              "scan_url": reverse("api:scan"), "bundle_url": reverse("api:scanner_bundle"),
              "upload_url": reverse("api:scanner_upload"), "time_url": reverse("api:server_time"),
              "scanner_prefix": f"web-{request.user.pk}"}
    return render(request, "tickets/scanner.html", {
        "performance": performance, "policy": policy, "gate": gate, "direction": direction,
        "config": config, "performances": performances, "scanner_text": _scanner_text()})


def _scanner_text() -> dict:
    reasons = {code: _(message) for code, message in offline.REASONS.items()}
    reasons[services.TIER_DISABLED] = _(services.TIER_DISABLED_MESSAGE)
    reasons["no_bundle"] = _("Offline and no key set loaded yet: connect once before the "
                             "doors open.")
    reasons["offline_unsupported"] = _("This browser cannot check codes offline. Reconnect "
                                       "or use another device.")
    return {
        "reasons": reasons, "online": _("Online"), "offline": _("Offline"),
        "pending": _("%(n)s scans waiting to upload"), "admit": _("Admit"),
        "exit": _("Exit recorded"), "refused": _("Refused"),
        "id_check": _("ID check required"), "holder": _("Holder"),
        "hint": _("Holder hint"), "seat": _("Seat"), "zone": _("Zone"), "gate": _("Gate"),
        "ticket": _("Ticket"), "first": _("First admitted"),
        "checked_offline": _("Checked offline"), "no_camera": _("No camera available"),
        "uploaded": _("Uploaded %(new)s new scans; %(dups)s duplicates in this event."),
        "nothing": _("Nothing to upload."), "upload_failed": _("Upload failed; will retry."),
    }


@login_required
@_not_found_is_404
def checkins(request: HttpRequest, event_id: int) -> HttpResponse:
    event = selectors.access_event_for_report(request.user, event_id)
    try:
        performance_id = int(request.GET.get("performance", "0"))
    except ValueError:
        performance_id = 0
    report = selectors.checkin_report(event=event, performance_id=performance_id)
    tz = timezone.get_current_timezone()
    labels = [b.astimezone(tz).strftime("%H:%M") for b in report.buckets]
    chart = charts.stacked_bars_svg(
        labels=labels, series=report.series,
        title=_("Admissions per gate, every %(n)d minutes") % {"n": report.bucket_minutes})
    can_manage = access.organizers_for_user(request.user).filter(pk=event.organizer_id).exists()
    return render(request, "tickets/checkins.html", {
        "event": event, "report": report, "chart": chart, "can_manage": can_manage,
        "can_scan": selectors.scan_organizers(request.user).filter(
            pk=event.organizer_id).exists()})


@login_required
@_not_found_is_404
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest, event_id: int) -> HttpResponse:
    event = access.access_event_by_user(request.user, event_id)
    policy = services.policy_for_event(event)
    zones = list(event.price_zones.order_by("sort_order", "pk"))
    form = PolicyForm(request.POST or None, instance=policy, zones=zones)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.update_policy(
            event=event, default_gate_group=data["default_gate_group"],
            zone_gate_groups=data["zone_gate_groups"],
            reentry_allowed=data["reentry_allowed"], totp_fallback=data["totp_fallback"],
            printed_fallback=data["printed_fallback"],
            valid_from_minutes_before=data["valid_from_minutes_before"],
            valid_until_minutes_after=data["valid_until_minutes_after"],
            transfers_allowed=data["transfers_allowed"],
            max_transfers_per_ticket=data["max_transfers_per_ticket"],
            actor=request.user, now=clock.now())
        messages.success(request, _("Gate and ticket settings saved."))
        return redirect("tickets:policy", event_id=event.pk)
    return render(request, "tickets/policy.html", {"event": event, "form": form})
