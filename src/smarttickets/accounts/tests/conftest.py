"""Fixtures for account tests: SMS into memory, emails and SMS sent as on commit, a fixed clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from smarttickets.accounts import sms
from smarttickets.core import clock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def sms_outbox(settings):
    settings.SMS_BACKEND = "smarttickets.accounts.sms.LocmemSMSBackend"
    settings.SITE_URL = "https://tickets.example.com"
    sms.outbox.clear()
    yield sms.outbox
    sms.outbox.clear()


@pytest.fixture
def frozen_clock():
    """``frozen_clock.at(dt)`` moves the project clock; it starts at T0."""

    class Clock:
        def __init__(self):
            self._cm = None

        def at(self, when: datetime) -> datetime:
            if self._cm is not None:
                self._cm.__exit__(None, None, None)
            self._cm = clock.frozen(when)
            self._cm.__enter__()
            return when

        def stop(self):
            if self._cm is not None:
                self._cm.__exit__(None, None, None)
                self._cm = None

    c = Clock()
    c.at(T0)
    yield c
    c.stop()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (emails, SMS) as a real commit would: ``with on_commit(): ...``."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def link_from(message, path_prefix: str) -> str:
    """The site-relative path of the first link in ``message`` that starts with the prefix."""
    match = re.search(r"https://tickets\.example\.com(" + re.escape(path_prefix) + r"[^\s\"<]*)",
                      message.body)
    assert match, f"no {path_prefix} link in: {message.body}"
    return match.group(1)


def code_from(message) -> str:
    match = re.search(r"\b(\d{6})\b", message.body)
    assert match, message.body
    return match.group(1)
