"""Risk checkpoints in the running platform: the hold, checkout start and lottery entry gates.

Booking, payments and lottery call one gate before their own service (no transaction open, no
lock held). The gate asks ``decide`` and turns its answer into "go on" or a ``RiskRefused`` error
with a stable code: ``risk_challenge`` (pass the step-up, then retry), ``risk_review`` (staff look
first), ``risk_blocked`` and ``risk_cancelled``. Review is applied at checkout: a hold is allowed,
paying for it waits until a reviewer releases the account for that event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _

from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError
from smarttickets.risk.decisions import AccountActivity, decide
from smarttickets.risk.models import Decision, ReviewCase
from smarttickets.risk.telemetry import client_ip, device_of

logger = logging.getLogger(__name__)

# An allowed hold decision is reused this long per account and event: a fan clicking twice,
# or a seat map retried after "sold out", does not score twice in an on-sale.
HOLD_DECISION_CACHE_SECONDS = 30


class RiskRefused(DomainError):
    status = 403
    code = "risk_refused"

    def __init__(self, message: str, *, decision: Decision | None = None,
                 case: ReviewCase | None = None, url: str = "") -> None:
        super().__init__(message)
        self.decision = decision
        self.case = case
        self.url = url

    def as_dict(self) -> dict[str, Any]:
        body = super().as_dict()
        if self.url:
            body["url"] = self.url
        return body


class RiskChallenge(RiskRefused):
    code = "risk_challenge"


class RiskReviewPending(RiskRefused):
    code = "risk_review"


class RiskBlocked(RiskRefused):
    code = "risk_blocked"


class RiskCancelled(RiskRefused):
    code = "risk_cancelled"


@dataclass(frozen=True)
class Attempt:
    """What the caller is trying: plain values, so risk never imports the caller's models."""

    account_id: int
    event_id: Any
    performance_id: Any = ""
    quantity: int = 0
    object_type: str = ""
    object_id: Any = ""
    ip: str | None = None
    device: str | None = None


def enabled() -> bool:
    """``RISK_GATES_ENABLED``; off by default only in other apps' test runs."""
    return bool(getattr(settings, "RISK_GATES_ENABLED", not getattr(settings, "TESTING", False)))


def _gate_key(account_id: int) -> str:
    return f"risk:gate:v1:{account_id}"


def _case_url(case: ReviewCase | None) -> str:
    return reverse("risk:case", args=[case.pk]) if case is not None else reverse("risk:status")


def _open_case(account_id: int, event_id: Any) -> ReviewCase | None:
    event_pk = int(event_id) if str(event_id).isdigit() else None
    return (ReviewCase.objects.filter(account_id=account_id, event_id=event_pk)
            .order_by("-updated_at", "-id").first())


def _refuse(decision: Decision, attempt: Attempt) -> None:
    outcome = decision.decision
    if outcome == "allow":
        return
    if outcome == "challenge":
        raise RiskChallenge(_("Please confirm it is you before you continue: we will text a "
                              "code to your verified mobile number."), decision=decision,
                            url=reverse("risk:stepup"))
    case = _open_case(attempt.account_id, attempt.event_id)
    url = _case_url(case)
    if outcome == "review":
        raise RiskReviewPending(_("Your purchase needs a quick check by our team before you "
                                  "can pay. You can tell us more on your case page."),
                                decision=decision, case=case, url=url)
    raise RiskBlocked(_("We cannot sell tickets to this account. If you think this is a "
                        "mistake, tell us on your case page."), decision=decision, case=case,
                      url=url)


def check(*, attempt: Attempt, checkpoint: str, now: datetime | None = None) -> Decision | None:
    """Decide at a checkpoint and raise ``RiskRefused`` unless the caller may go on.

    Hold: review lets the hold through (checkout waits), an allow is cached briefly.
    Checkout: an open case for the event waits for review; a cancelled one refuses.
    Returns the decision (``None`` when a cached hold decision was reused).
    """
    if not enabled():
        return None
    now = now or clock.now()
    event_key = str(attempt.event_id)
    if checkpoint == "hold":
        cached = cache.get(_gate_key(attempt.account_id)) or {}
        if cached.get(event_key, 0) > now.timestamp():
            return None
    decision = decide(activity=AccountActivity(
        account_id=attempt.account_id, event_id=event_key,
        performance_id=str(attempt.performance_id or ""), ip=attempt.ip, device=attempt.device,
        quantity=int(attempt.quantity or 0), object_type=attempt.object_type,
        object_id=str(attempt.object_id or "")), checkpoint=checkpoint, now=now)
    if checkpoint == "hold":
        if decision.decision in ("allow", "review"):
            if decision.decision == "allow":
                cached = cache.get(_gate_key(attempt.account_id)) or {}
                cached[event_key] = now.timestamp() + HOLD_DECISION_CACHE_SECONDS
                cache.set(_gate_key(attempt.account_id), cached, HOLD_DECISION_CACHE_SECONDS)
            return decision
        _refuse(decision, attempt)
    if checkpoint == "checkout" and decision.decision == "allow" \
            and decision.override not in ("cleared_by_review",):
        case = _open_case(attempt.account_id, attempt.event_id)
        if case is not None and case.state == ReviewCase.State.OPEN:
            raise RiskReviewPending(_("Your purchase is waiting for a check by our team. We "
                                      "will email you when you can pay."), decision=decision,
                                    case=case, url=_case_url(case))
        if case is not None and case.state == ReviewCase.State.CANCELLED:
            raise RiskCancelled(_("Our team could not approve this purchase. You can tell us "
                                  "more on your case page."), decision=decision, case=case,
                                url=_case_url(case))
    _refuse(decision, attempt)
    return decision


def attempt_from_request(request: HttpRequest, **fields: Any) -> Attempt:
    return Attempt(account_id=request.user.pk if getattr(request, "auth", None) is None
                   else request.auth.pk, ip=client_ip(request), device=device_of(request),
                   **fields)


def web_check(request: HttpRequest, *, checkpoint: str, back: str,
              **fields: Any) -> HttpResponse | None:
    """For page views: ``None`` to go on, or the redirect that explains the refusal.

    A challenge leads to the step-up page, which returns to ``back`` once passed; review,
    block and cancel lead to the fan's case page, where they can appeal.
    """
    from django.contrib import messages

    try:
        check(attempt=attempt_from_request(request, **fields), checkpoint=checkpoint)
    except RiskChallenge as exc:
        messages.warning(request, str(exc.message))
        nxt = back if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) \
            else "/"
        return redirect(f"{exc.url}?{urlencode({'next': nxt})}")
    except RiskRefused as exc:
        messages.error(request, str(exc.message))
        return redirect(exc.url)
    return None
