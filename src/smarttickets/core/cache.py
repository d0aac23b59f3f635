"""Django's Redis cache backend, keeping one Redis client per connection pool.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache call;
redis-py 8 fills ~170 response callbacks in each, ~0.3 ms of CPU here — more than the round
trip it wraps, on every rate-limit check, risk gate lookup and session read. A ``redis.Redis``
holds no connection of its own (its pool does, and the pool is fork-safe), so one per pool,
shared by threads, behaves the same. Use as ``"BACKEND": "smarttickets.core.cache.RedisCache"``.
"""

from __future__ import annotations

import threading

from django.core.cache.backends import redis as django_redis


class ReusingRedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}  # by id of the pool (pools live as long)
        self._lock = threading.Lock()

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            with self._lock:
                client = self._clients.setdefault(id(pool),
                                                  self._client(connection_pool=pool))
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
