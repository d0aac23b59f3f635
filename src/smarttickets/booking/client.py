"""Who is asking: client address and device id, for the velocity limits."""

from __future__ import annotations

from django.http import HttpRequest

from smarttickets.core.net import client_ip

__all__ = ["DEVICE_COOKIE", "client_ip", "device_id"]

DEVICE_COOKIE = "st_device"


def device_id(request: HttpRequest) -> str:
    """A random per-browser cookie, or the X-Device-Id header of app and API clients."""
    return (request.headers.get("X-Device-Id") or request.COOKIES.get(DEVICE_COOKIE) or "")[:64]
