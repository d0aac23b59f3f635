"""Template helpers shared by every app: ``{% load st %}``."""

from django import template

from smarttickets.core.money import format_money

register = template.Library()


@register.filter
def money(amount, currency="HKD"):
    if amount is None or amount == "":
        return ""
    return format_money(amount, currency)
