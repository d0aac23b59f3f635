"""django-axes hook: count failures per lower-cased address, as logins are case-insensitive.

Enable with ``AXES_USERNAME_CALLABLE = "smarttickets.accounts.axes.lockout_username"``.
"""

from __future__ import annotations


def lockout_username(request, credentials: dict | None) -> str:
    source = credentials if credentials and "username" in credentials else request.POST
    return (source.get("username") or "").strip().lower()
