"""Text messages: one small provider interface, chosen by ``settings.SMS_BACKEND``.

A real provider is a subclass of ``BaseSMSBackend`` that implements ``send_messages``; point
``SMS_BACKEND`` at its dotted path. The bundled backends print, append to a file, or keep
messages in memory for tests, in the manner of Django's email backends.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from django.conf import settings
from django.utils.module_loading import import_string

from smarttickets.core import clock

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SMSMessage:
    to: str  # E.164, e.g. "+85291234567"
    body: str
    created_at: datetime = field(default_factory=clock.now)


class SMSDeliveryError(Exception):
    """The provider refused or could not take the message."""


class BaseSMSBackend:
    """Subclass and implement ``send_messages``; raise ``SMSDeliveryError`` on failure."""

    def __init__(self, **options) -> None:
        self.options = options

    def send_messages(self, messages: list[SMSMessage]) -> int:
        """Send every message; return how many were accepted by the provider."""
        raise NotImplementedError

    def send(self, *, to: str, body: str) -> int:
        return self.send_messages([SMSMessage(to=to, body=body)])


class ConsoleSMSBackend(BaseSMSBackend):
    """Development: print each message to stdout (or the given stream) and log it."""

    def __init__(self, *, stream: TextIO | None = None, **options) -> None:
        super().__init__(**options)
        self.stream = stream

    def send_messages(self, messages: list[SMSMessage]) -> int:
        stream = self.stream or sys.stdout
        for message in messages:
            stream.write(f"SMS to {message.to}: {message.body}\n")
            stream.flush()
            logger.info("SMS to %s (%d characters)", message.to, len(message.body))
        return len(messages)


class FileSMSBackend(BaseSMSBackend):
    """Append each message as one JSON line to ``<SMS_FILE_PATH>/messages.jsonl``."""

    _lock = threading.Lock()

    def __init__(self, *, file_path: str | None = None, **options) -> None:
        super().__init__(**options)
        self.directory = Path(file_path or settings.SMS_FILE_PATH)

    @property
    def path(self) -> Path:
        return self.directory / "messages.jsonl"

    def send_messages(self, messages: list[SMSMessage]) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = "".join(
            json.dumps({"to": m.to, "body": m.body, "created_at": m.created_at.isoformat()},
                       ensure_ascii=False) + "\n"
            for m in messages
        )
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(lines)
        return len(messages)


# Shared by every LocmemSMSBackend instance, like django.core.mail.outbox.
outbox: list[SMSMessage] = []


class LocmemSMSBackend(BaseSMSBackend):
    """Tests: keep messages in ``smarttickets.accounts.sms.outbox``."""

    outbox = outbox

    def send_messages(self, messages: list[SMSMessage]) -> int:
        outbox.extend(messages)
        return len(messages)


def get_backend(path: str | None = None, **options) -> BaseSMSBackend:
    backend_class = import_string(path or settings.SMS_BACKEND)
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseSMSBackend)):
        raise TypeError(f"{backend_class!r} is not an SMS backend")
    return backend_class(**options)


def send_sms(*, to: str, body: str) -> int:
    return get_backend().send(to=to, body=body)
