"""Reads for risk pages: the review queue, a case with its ring, and ``access_*`` helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from smarttickets.core.exceptions import NotFound
from smarttickets.events.access import organizers_for_user
from smarttickets.risk import decisions
from smarttickets.risk.models import AccountRiskState, Decision, ReviewCase

REVIEW_PERM = "can_review_risk"
MAX_RING_NODES = 40


def can_review(user) -> bool:
    return organizers_for_user(user, REVIEW_PERM).exists()


def reviewable_cases(user) -> QuerySet[ReviewCase]:
    """Cases of events whose organizer lets ``user`` review risk (superusers: all cases)."""
    qs = ReviewCase.objects.select_related("account", "event", "decision")
    if getattr(user, "is_superuser", False) and user.is_active:
        return qs
    return qs.filter(event__organizer__in=organizers_for_user(user, REVIEW_PERM))


def review_queue(*, user, state: str = "open", event_id: int | None = None
                 ) -> QuerySet[ReviewCase]:
    qs = reviewable_cases(user).annotate(n_appeals=Count("appeals"))
    if state in ReviewCase.State.values:
        qs = qs.filter(state=state)
    if event_id is not None:
        qs = qs.filter(event_id=event_id)
    return qs.order_by("-decision__score", "-updated_at", "-id")


def queue_counts(*, user) -> dict[str, int]:
    rows = reviewable_cases(user).values("state").annotate(n=Count("id"))
    return {row["state"]: row["n"] for row in rows}


def access_case_by_reviewer(*, user, case_id) -> ReviewCase:
    try:
        return reviewable_cases(user).get(pk=int(case_id))
    except (ReviewCase.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("Case not found.")) from None


def access_case_by_owner(*, user, case_id) -> ReviewCase:
    try:
        return (ReviewCase.objects.select_related("event", "decision")
                .get(pk=int(case_id), account=user))
    except (ReviewCase.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("Case not found.")) from None


def cases_of_account(*, user) -> QuerySet[ReviewCase]:
    return ReviewCase.objects.filter(account=user).select_related("event", "decision")


def decisions_of(*, account_id: int, limit: int = 20) -> list[Decision]:
    return list(Decision.objects.filter(account_id=account_id).order_by("-created_at", "-id")
                [:limit])


def risk_state(*, account_id: int) -> AccountRiskState | None:
    return AccountRiskState.objects.filter(pk=account_id).first()


# --- the ring around an account --------------------------------------------------------------

KIND_LABELS = {"card": gettext_lazy("payment card"), "device": gettext_lazy("device"),
               "addr": gettext_lazy("address"), "name": gettext_lazy("name"),
               "ipo": gettext_lazy("purchase IP"), "xfer": gettext_lazy("ticket transfer")}


@dataclass
class RingNode:
    account_id: int
    label: str
    email: str
    tickets: int
    is_subject: bool
    banned: bool
    x: float = 0.0
    y: float = 0.0
    shared: set[str] = field(default_factory=set)

    @property
    def shared_labels(self) -> list[str]:
        return sorted(str(KIND_LABELS.get(k, k)) for k in self.shared)


@dataclass
class RingEdge:
    a: int
    b: int
    kinds: list[str]


@dataclass
class Ring:
    nodes: list[RingNode]
    edges: list[RingEdge]
    truncated: bool
    size: int = 360

    @property
    def kinds(self) -> list[tuple[str, str]]:
        used = sorted({k for e in self.edges for k in e.kinds})
        return [(k, str(KIND_LABELS.get(k, k))) for k in used]

    def node(self, account_id: int) -> RingNode:
        return next(n for n in self.nodes if n.account_id == account_id)

    def lines(self) -> list[dict]:
        out = []
        for edge in self.edges:
            a, b = self.node(edge.a), self.node(edge.b)
            out.append({"x1": a.x, "y1": a.y, "x2": b.x, "y2": b.y, "kind": edge.kinds[0],
                        "title": ", ".join(str(KIND_LABELS.get(k, k)) for k in edge.kinds)})
        return out


def mask_email(email: str) -> str:
    local, _sep, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"


def ring_of(*, account_id: int) -> Ring:
    """Accounts tied to ``account_id`` by real ties (two steps), laid out on a circle.

    A circle, not a force layout: deterministic, readable at 40 nodes, and the table beside it
    carries the same facts for screen readers.
    """
    from smarttickets.accounts.models import User

    links, tickets, _ips, _counts = decisions.neighbourhood(account_id)
    me = str(account_id)
    ids = [me, *sorted((a for a in links if a != me), key=int)]
    truncated = len(ids) > MAX_RING_NODES
    ids = ids[:MAX_RING_NODES]
    users = {u.pk: u for u in User.objects.filter(pk__in=[int(a) for a in ids])
             .select_related("risk_state")}
    by_ident: dict[tuple[str, str], list[str]] = {}
    for account in ids:
        for ident in links.get(account, ()):
            if ident[0] in KIND_LABELS:
                by_ident.setdefault(ident, []).append(account)
    edges: dict[tuple[int, int], set[str]] = {}
    shared: dict[int, set[str]] = {}
    for (kind, _value), holders in by_ident.items():
        if len(holders) < 2:
            continue
        for i, a in enumerate(holders):
            shared.setdefault(int(a), set()).add(kind)
            for b in holders[i + 1:]:
                key = (min(int(a), int(b)), max(int(a), int(b)))
                edges.setdefault(key, set()).add(kind)
    nodes = []
    size = 360
    centre, radius = size / 2, size / 2 - 40
    others = len(ids) - 1
    for i, account in enumerate(ids):
        user = users.get(int(account))
        state = getattr(user, "risk_state", None) if user else None
        node = RingNode(account_id=int(account), label=f"#{account}",
                        email=mask_email(user.email) if user else "",
                        tickets=tickets.get(account, 0), is_subject=account == me,
                        banned=bool(state and state.banned_at),
                        shared=shared.get(int(account), set()))
        if account == me:
            node.x, node.y = centre, centre
        else:
            angle = 2 * math.pi * (i - 1) / max(others, 1) - math.pi / 2
            node.x = round(centre + radius * math.cos(angle), 1)
            node.y = round(centre + radius * math.sin(angle), 1)
        nodes.append(node)
    return Ring(nodes=nodes, size=size, truncated=truncated,
                edges=[RingEdge(a=a, b=b, kinds=sorted(k)) for (a, b), k in sorted(edges.items())])


def fan_cases_needing_attention(*, user) -> QuerySet[ReviewCase]:
    return cases_of_account(user=user).filter(
        Q(state=ReviewCase.State.OPEN) | Q(state__in=[ReviewCase.State.BANNED,
                                                      ReviewCase.State.CANCELLED]))
