"""Who is asking: client address and device id, for the velocity limits."""

from __future__ import annotations

from django.http import HttpRequest

DEVICE_COOKIE = "st_device"


def client_ip(request: HttpRequest) -> str | None:
    # Behind a proxy, SecurityMiddleware/the proxy set REMOTE_ADDR; we never trust raw headers.
    return request.META.get("REMOTE_ADDR") or None


def device_id(request: HttpRequest) -> str:
    """A random per-browser cookie, or the X-Device-Id header of app and API clients."""
    return (request.headers.get("X-Device-Id") or request.COOKIES.get(DEVICE_COOKIE) or "")[:64]
