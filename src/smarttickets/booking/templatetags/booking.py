"""``{% load booking %}``: small display helpers for booking pages."""

from django import template

register = template.Library()

STATE_BADGES = {"pending": "badge-warning", "paid": "badge-success", "cancelled": "",
                "refunded": "badge-primary", "expired": "badge-danger", "valid": "badge-success",
                "live": "badge-warning", "purchased": "badge-success", "released": "",
                "used": "badge-success", "open": "badge-primary", "revoked": "badge-danger"}


@register.filter
def state_badge(state: str) -> str:
    return STATE_BADGES.get(state, "")
