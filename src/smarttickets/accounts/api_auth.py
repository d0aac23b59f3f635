"""Bearer-token authentication for the API: ``Authorization: Bearer st_…``."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from smarttickets.accounts.models import ApiToken, User
from smarttickets.core import clock

# last_used_at is for people ("used 3 minutes ago"), not for security: write it at most once a
# minute per token. A write per request was a commit (a WAL flush) on every API call.
LAST_USED_EVERY_S = 60


def create_api_token(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Make a token; the plain key is returned once and never stored."""
    key = "st_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=key[:10],
                                    key_hash=ApiToken.hash_key(key), created_at=clock.now())
    return token, key


class TokenAuth(HttpBearer):
    def authenticate(self, request, token: str):
        try:
            api_token = ApiToken.objects.select_related("user").get(
                key_hash=ApiToken.hash_key(token), revoked_at__isnull=True
            )
        except ApiToken.DoesNotExist:
            return None
        if not api_token.user.is_active:
            return None
        if cache.add(f"apitoken:used:{api_token.pk}", 1, timeout=LAST_USED_EVERY_S):
            ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=clock.now())
        request.user = api_token.user
        return api_token.user


token_auth = TokenAuth()


class SessionCookieAuth(SessionAuth):
    """Session auth that stays out of the way when there is no session cookie: ninja's own
    checks CSRF first, so a bad bearer token from an API client (no cookies) was answered 403
    "CSRF check Failed" in production instead of 401."""

    def _get_key(self, request: HttpRequest) -> str | None:
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return None
        return super()._get_key(request)


session_auth = SessionCookieAuth()
# Every API endpoint that needs a user: a bearer token, or the browser's session (with CSRF).
API_AUTH = [token_auth, session_auth]
