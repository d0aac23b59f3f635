"""The client's address behind the deployment's trusted proxies."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from smarttickets.core.net import client_ip


def request(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_proxies_the_peer_is_the_client_and_the_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request("198.51.100.7", "1.2.3.4")) == "198.51.100.7"


@pytest.mark.parametrize(("hops", "forwarded", "expected"), [
    # one router: it appended the client's address; what the client sent before is ignored
    (1, "203.0.113.9", "203.0.113.9"),
    (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),
    (1, "6.6.6.6,203.0.113.9:51234", "203.0.113.9"),
    (1, "[2001:db8::5]:443", "2001:db8::5"),
    (1, "2001:db8::5", "2001:db8::5"),
    # CDN then router: the CDN appended the client, the router appended the CDN
    (2, "6.6.6.6, 203.0.113.9, 192.0.2.44", "203.0.113.9"),
    # a request that skipped the CDN: the left-most entry a trusted proxy wrote
    (2, "203.0.113.9", "203.0.113.9"),
    # garbage where the client should be: fall back to the peer
    (1, "6.6.6.6, not-an-ip", "10.0.0.2"),
    # no header at all: the peer
    (1, None, "10.0.0.2"),
])
def test_behind_proxies_the_client_is_what_the_outermost_trusted_proxy_saw(settings, hops,
                                                                           forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    assert client_ip(request("10.0.0.2", forwarded)) == expected
