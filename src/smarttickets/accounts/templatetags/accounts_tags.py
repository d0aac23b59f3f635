"""Template filters for account pages: ``{% load accounts_tags %}``."""

from __future__ import annotations

import math
from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def minutes(value: timedelta | None) -> int:
    """Whole minutes, rounded up (a 30-minute lockout never reads as "29")."""
    if not value:
        return 0
    return max(1, math.ceil(value.total_seconds() / 60))
