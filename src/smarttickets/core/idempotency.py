"""Idempotency-Key for API POSTs: a replay returns the stored response, never a second effect.

A row per (user, key) stores the request fingerprint and, once the first request finished, its
response. The same key with a different request is refused (422 ``idempotency_key_reused``); a
duplicate that arrives while the first is still running gets 409 with Retry-After (the approach
of pretix's api/middleware.py). Only successful and client-error responses are stored: a 5xx or a
409/429/503 means "try again", so those release the key.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from smarttickets.core import clock

HEADER = "HTTP_IDEMPOTENCY_KEY"
MAX_KEY_LENGTH = 128
# A request still "in flight" after this long is assumed dead (worker killed) and may be retried.
STALE_AFTER = timedelta(minutes=5)
RETRYABLE_STATUSES = {409, 429, 503}


class IdempotencyKey(models.Model):
    """One client request identified by (user, Idempotency-Key) and the response it got."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    key = models.CharField(max_length=MAX_KEY_LENGTH)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    response_content_type = models.CharField(max_length=100, blank=True)

    class Meta:
        app_label = "core"
        verbose_name = gettext_lazy("idempotency key")
        constraints = [models.UniqueConstraint(fields=["user", "key"],
                                               name="idempotency_unique_user_key")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"


def request_fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.path.encode())
    digest.update(b"\0")
    digest.update(request.body or b"")
    return digest.hexdigest()


def _error(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"code": code, "message": message}, status=status)
    if status == 409:
        response["Retry-After"] = "1"
    return response


def _replay(row: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(row.response_body, status=row.response_status,
                            content_type=row.response_content_type or "application/json")
    response["Idempotent-Replayed"] = "true"
    return response


def _claim(*, user_id: int, key: str, request: HttpRequest) -> tuple[IdempotencyKey | None,
                                                                     HttpResponse | None]:
    """Insert the in-flight row, or answer from the existing one. The unique constraint is the
    lock: of two concurrent first requests exactly one insert succeeds."""
    fingerprint = request_fingerprint(request)
    now = clock.now()
    try:
        with transaction.atomic():
            row = IdempotencyKey.objects.create(
                user_id=user_id, key=key, method=request.method, path=request.path[:500],
                request_hash=fingerprint, created_at=now)
        return row, None
    except IntegrityError:
        pass
    existing = IdempotencyKey.objects.filter(user_id=user_id, key=key).first()
    if existing is None:  # the first request failed and released the key in between
        return _claim(user_id=user_id, key=key, request=request)
    if existing.request_hash != fingerprint:
        return None, _error(422, "idempotency_key_reused",
                            _("This Idempotency-Key was already used for a different request."))
    if existing.response_status is None:
        if now - existing.created_at < STALE_AFTER:
            return None, _error(409, "idempotency_in_flight",
                                _("A request with this Idempotency-Key is still being "
                                  "processed. Retry shortly."))
        # The first attempt died without answering; take the key over.
        taken = IdempotencyKey.objects.filter(pk=existing.pk, response_status__isnull=True,
                                              created_at=existing.created_at).update(
            created_at=now)
        if not taken:
            return None, _error(409, "idempotency_in_flight",
                                _("A request with this Idempotency-Key is still being "
                                  "processed. Retry shortly."))
        existing.created_at = now
        return existing, None
    return None, _replay(existing)


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for django-ninja operations (put it under the ``@router.post``).

    Without an Idempotency-Key header the view runs normally. With one, the first response is
    stored and replayed for retries. The view must return an HttpResponse or data that ninja
    serialises; domain errors raised by the view are rendered by the API's handlers and stored
    too, so a retried refusal answers the same.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        key = request.META.get(HEADER, "").strip()
        user = getattr(request, "auth", None) or getattr(request, "user", None)
        if not key or user is None or not getattr(user, "is_authenticated", False):
            return view(request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            return _error(422, "invalid_idempotency_key",
                          _("The Idempotency-Key header must be at most %(n)d characters.")
                          % {"n": MAX_KEY_LENGTH})
        row, answer = _claim(user_id=user.pk, key=key, request=request)
        if answer is not None:
            return answer
        assert row is not None
        try:
            result = view(request, *args, **kwargs)
            response = _as_response(request, result)
        except Exception as exc:
            response = _domain_response(request, exc)
            if response is None:
                IdempotencyKey.objects.filter(pk=row.pk).delete()
                raise
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES:
            IdempotencyKey.objects.filter(pk=row.pk).delete()
            return response
        IdempotencyKey.objects.filter(pk=row.pk).update(
            completed_at=clock.now(), response_status=response.status_code,
            response_body=response.content.decode("utf-8", errors="replace"),
            response_content_type=response.get("Content-Type", "application/json"))
        return response

    # Resolve string annotations (``from __future__ import annotations``) against the view's
    # own module: ninja would otherwise look them up in this one.
    wrapper.__signature__ = inspect.signature(view, eval_str=True)  # type: ignore[attr-defined]
    return wrapper


def _as_response(request: HttpRequest, result: Any) -> HttpResponse:
    if isinstance(result, HttpResponse):
        return result
    from ninja import Status

    from smarttickets.api import api  # the API module imports routers, which import us

    status = 200
    if isinstance(result, Status):
        status, result = result.status_code, result.value
    elif isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], int):
        status, result = result
    return api.create_response(request, _jsonable(result), status=status)


def _jsonable(data: Any) -> Any:
    from ninja.responses import NinjaJSONEncoder

    return json.loads(json.dumps(data, cls=NinjaJSONEncoder))


def _domain_response(request: HttpRequest, exc: Exception) -> HttpResponse | None:
    from smarttickets.core.exceptions import DomainError

    if not isinstance(exc, DomainError):
        return None
    response = JsonResponse(exc.as_dict(), status=exc.status)
    if exc.status in RETRYABLE_STATUSES:
        response["Retry-After"] = "1"
    return response
