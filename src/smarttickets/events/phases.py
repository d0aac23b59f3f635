"""Sales phases of a performance: which dates each mode needs, their order, and where ``now`` is.

Plain functions over plain data (no ORM) so the rules are the same for forms, API and publishing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from django.utils.translation import gettext as _

FIRST_COME = "first_come"
LOTTERY = "lottery"

FIRST_COME_FIELDS = ("onsale_starts_at", "onsale_ends_at")
LOTTERY_FIELDS = ("entry_opens_at", "entry_closes_at", "draw_at", "purchase_opens_at",
                  "purchase_closes_at")


@dataclass(frozen=True, slots=True)
class PhaseDates:
    sale_mode: str
    starts_at: datetime | None
    doors_open_at: datetime | None = None
    ends_at: datetime | None = None
    onsale_starts_at: datetime | None = None
    onsale_ends_at: datetime | None = None
    entry_opens_at: datetime | None = None
    entry_closes_at: datetime | None = None
    draw_at: datetime | None = None
    purchase_opens_at: datetime | None = None
    purchase_closes_at: datetime | None = None

    @classmethod
    def of(cls, obj) -> PhaseDates:
        """Read the dates from anything with the same attribute names (e.g. a Performance)."""
        return cls(**{f.name: getattr(obj, f.name, None) for f in fields(cls)})


def phase_problems(d: PhaseDates) -> dict[str, str]:
    """Field name → what is wrong. Empty when the dates make a valid sales phase."""
    problems: dict[str, str] = {}
    for f in fields(PhaseDates):
        value = getattr(d, f.name)
        if isinstance(value, datetime) and value.tzinfo is None:
            problems[f.name] = _("A time zone is required.")
    if problems:
        return problems
    if d.starts_at is None:
        problems["starts_at"] = _("Enter when the performance starts.")
        return problems
    if d.doors_open_at and d.doors_open_at > d.starts_at:
        problems["doors_open_at"] = _("Doors must open before the performance starts.")
    if d.ends_at and d.ends_at <= d.starts_at:
        problems["ends_at"] = _("The performance must end after it starts.")

    if d.sale_mode == FIRST_COME:
        if d.onsale_starts_at is None:
            problems["onsale_starts_at"] = _("Enter when tickets go on sale.")
        elif d.onsale_starts_at >= d.starts_at:
            problems["onsale_starts_at"] = _("Sales must start before the performance.")
        if d.onsale_ends_at and d.onsale_starts_at and d.onsale_ends_at <= d.onsale_starts_at:
            problems["onsale_ends_at"] = _("Sales must end after they start.")
        elif d.onsale_ends_at and d.onsale_ends_at > (d.ends_at or d.starts_at):
            problems["onsale_ends_at"] = _("Sales must end by the end of the performance.")
    elif d.sale_mode == LOTTERY:
        order = [
            ("entry_opens_at", _("Enter when lottery entry opens.")),
            ("entry_closes_at", _("Enter when lottery entry closes.")),
            ("draw_at", _("Enter the draw time.")),
            ("purchase_opens_at", _("Enter when winners can start buying.")),
            ("purchase_closes_at", _("Enter when the winners' purchase window closes.")),
        ]
        for name, missing in order:
            if getattr(d, name) is None:
                problems[name] = missing
        if problems:
            return problems
        if d.entry_closes_at <= d.entry_opens_at:
            problems["entry_closes_at"] = _("Entry must close after it opens.")
        if d.draw_at < d.entry_closes_at:
            problems["draw_at"] = _("The draw must be at or after entry closes.")
        if d.purchase_opens_at < d.draw_at:
            problems["purchase_opens_at"] = _("Winners can buy only after the draw.")
        if d.purchase_closes_at <= d.purchase_opens_at:
            problems["purchase_closes_at"] = _("The purchase window must close after it opens.")
        elif d.purchase_closes_at > d.starts_at:
            problems["purchase_closes_at"] = _("The purchase window must close before the "
                                               "performance starts.")
    else:
        problems["sale_mode"] = _("Choose first come or lottery.")
    return problems


# Where a performance is in its sales phase at a moment.
NOT_SCHEDULED = "not_scheduled"
SALE_UPCOMING = "sale_upcoming"
ON_SALE = "on_sale"
SALE_ENDED = "sale_ended"
ENTRY_UPCOMING = "entry_upcoming"
ENTRY_OPEN = "entry_open"
AWAITING_DRAW = "awaiting_draw"
DRAWN = "drawn"
WINNERS_PURCHASE = "winners_purchase"
PAST = "past"


def phase_status(d: PhaseDates, now: datetime) -> str:
    if d.starts_at is not None and now >= d.starts_at:
        return PAST
    if phase_problems(d):
        return NOT_SCHEDULED
    if d.sale_mode == FIRST_COME:
        if now < d.onsale_starts_at:
            return SALE_UPCOMING
        if now < (d.onsale_ends_at or d.ends_at or d.starts_at):
            return ON_SALE
        return SALE_ENDED
    if now < d.entry_opens_at:
        return ENTRY_UPCOMING
    if now < d.entry_closes_at:
        return ENTRY_OPEN
    if now < d.draw_at:
        return AWAITING_DRAW
    if now < d.purchase_opens_at:
        return DRAWN
    if now < d.purchase_closes_at:
        return WINNERS_PURCHASE
    return SALE_ENDED


def status_label(status: str) -> str:
    return {
        NOT_SCHEDULED: _("Sales not scheduled"),
        SALE_UPCOMING: _("On sale soon"),
        ON_SALE: _("On sale now"),
        SALE_ENDED: _("Sales closed"),
        ENTRY_UPCOMING: _("Lottery opens soon"),
        ENTRY_OPEN: _("Lottery entry open"),
        AWAITING_DRAW: _("Lottery closed, draw pending"),
        DRAWN: _("Lottery drawn"),
        WINNERS_PURCHASE: _("Winners buying now"),
        PAST: _("Past"),
    }[status]


def next_sale_moment(d: PhaseDates, now: datetime) -> datetime | None:
    """When the public next needs to act: sales or lottery entry opening in the future."""
    moment = d.onsale_starts_at if d.sale_mode == FIRST_COME else d.entry_opens_at
    return moment if moment and moment > now else None
