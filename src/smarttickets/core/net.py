"""The client's address behind a known number of reverse proxies.

``REMOTE_ADDR`` is the client only when nothing sits in front of the app server. Behind a
platform's router (Heroku, Render, Fly: one hop) or a CDN and a router (two hops) it is the
nearest proxy's address, so every fan would share one address: per-IP velocity limits would
throttle the whole audience and the risk model would see one giant IP cluster.

``TRUSTED_PROXY_COUNT`` says how many proxies the deployment has (0, the default: none). Each
proxy appends the address it received the request from to ``X-Forwarded-For``, so the client
is the address the outermost trusted proxy appended: counting from the right of
``X-Forwarded-For`` followed by ``REMOTE_ADDR``. Entries further left were written by the client
and are ignored (anyone can send ``X-Forwarded-For: 1.2.3.4``). A header shorter than the
proxy count (a request that came by another way) yields its left-most entry, which a trusted
proxy wrote; an address that does not parse yields ``REMOTE_ADDR``.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _address(text: str) -> str | None:
    """A bare IPv4 or IPv6 address from an X-Forwarded-For entry (ports and brackets removed)."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # 203.0.113.9:443
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    hops = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if hops <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    chain = [entry for entry in forwarded.split(",") if entry.strip()] if forwarded else []
    chain.append(remote or "")
    entry = chain[-(hops + 1)] if len(chain) > hops else chain[0]
    return _address(entry) or remote
