"""Background work for lotteries: entrant emails (English or Traditional Chinese) and the tick.

Tasks take primary keys, re-fetch, and either render mail or call a service.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django_tasks import task

from smarttickets.core import clock

logger = logging.getLogger(__name__)

# Per-entry mail chosen for each bulk step, by the entry's outcome.
DRAWN_KINDS = {"won": "won", "waitlisted": "waitlisted"}


def _language(user: Any) -> str:
    code = (getattr(user, "preferred_language", "") or "").lower()
    return code if code in {lang for lang, _n in settings.LANGUAGES} else settings.LANGUAGE_CODE


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def deliver(*, entry: Any, kind: str, extra: dict[str, Any] | None = None) -> None:
    """Render ``lottery/email/<kind>`` in the entrant's language and send it."""
    from smarttickets.lottery import selectors

    lottery = entry.lottery
    with translation.override(_language(entry.user)):
        context = {
            "entry": entry, "lottery": lottery, "performance": lottery.performance,
            "event": lottery.performance.event, "zone": lottery.zone,
            "entry_url": _absolute(reverse("lottery:entry", args=[entry.entry_id])),
            "draw_url": _absolute(reverse("lottery:draw", args=[lottery.public_id])),
            "buy_url": _absolute(reverse("booking:performance", args=[lottery.performance_id])),
            "status": selectors.entry_status(entry=entry, now=clock.now()),
            **(extra or {}),
        }
        subject = " ".join(render_to_string(f"lottery/email/{kind}_subject.txt",
                                            context).split())
        body = render_to_string(f"lottery/email/{kind}.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [entry.user.email])
    except Exception:
        # The state change has committed; the entrant still sees it on "My lottery entries".
        logger.exception("could not send lottery %s mail for entry %s", kind, entry.entry_id)


@task()
def send_entry_email(*, entry_pk: int, kind: str) -> None:
    from smarttickets.lottery.models import Entry

    entry = (Entry.objects.select_related("user", "lottery__performance__event", "lottery__zone",
                                          "entitlement").filter(pk=entry_pk).first())
    if entry is not None:
        deliver(entry=entry, kind=kind)


@task()
def send_lottery_emails(*, lottery_pk: int, kind: str) -> int:
    """One mail per entrant after a lottery-wide step: ``committed`` (receipt with inclusion
    proof), ``drawn`` (won or waiting list) and ``finished`` (not selected)."""
    from smarttickets.lottery import draw
    from smarttickets.lottery.models import Entry, Lottery

    lottery = Lottery.objects.select_related("performance__event", "zone").filter(
        pk=lottery_pk).first()
    if lottery is None:
        return 0
    entries = (Entry.objects.filter(lottery=lottery, state=Entry.State.ACTIVE)
               .select_related("user", "entitlement").order_by("pk"))
    tree = published = None
    if kind == "committed":
        published = draw.load_entries(lottery.entries_document.encode())
        tree = draw.make_tree(lottery.public_id, published)
    elif kind == "finished":
        entries = entries.filter(outcome=Entry.Outcome.NOT_SELECTED)
    sent = 0
    for entry in entries.iterator(chunk_size=500):
        entry.lottery = lottery
        if kind == "committed":
            receipt = draw.receipt(lottery.public_id, published, entry.entry_id, tree)
            deliver(entry=entry, kind="receipt", extra={"receipt": receipt})
        elif kind == "drawn":
            mail = DRAWN_KINDS.get(entry.outcome)
            if mail is None:
                continue
            deliver(entry=entry, kind=mail)
        else:
            deliver(entry=entry, kind="not_selected")
        sent += 1
    return sent


@task()
def tick_task() -> dict[str, int]:
    """Advance due lotteries; schedule it every minute (or run `smarttickets lottery tick`)."""
    from smarttickets.lottery.services import tick

    return tick(now=clock.now())
