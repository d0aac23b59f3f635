"""Bearer-token authentication for the API: ``Authorization: Bearer st_…``."""

from __future__ import annotations

import secrets

from django.core.cache import cache
from ninja.security import HttpBearer

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
