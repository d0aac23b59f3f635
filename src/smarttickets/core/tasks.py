"""Task helpers: queue background work only after the current transaction commits."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Enqueue a django-tasks task once the surrounding transaction has committed.

    Tasks receive primary keys, re-fetch their objects and call a service.
    """
    transaction.on_commit(lambda: task.enqueue(*args, **kwargs))
