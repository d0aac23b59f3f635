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
        self._clients: dict[int, object] = {}
        self._lock = threading.Lock()

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            with self._lock:
                client = self._clients.get(index)
                if client is None:
                    if index not in self._pools:  # as Django's _get_connection_pool, by index
                        self._pools[index] = self._pool_class.from_url(
                            self._servers[index], **self._pool_options)
                    client = self._client(connection_pool=self._pools[index])
                    self._clients[index] = client
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
