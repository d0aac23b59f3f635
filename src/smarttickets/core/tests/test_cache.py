"""The Redis cache backend keeps one client per pool and still behaves as Django's."""

import uuid

import pytest
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from smarttickets.core.cache import RedisCache


@pytest.mark.redis
def test_one_client_per_pool_and_the_cache_works_as_djangos(redis_url):
    prefix = f"st-test-cache-{uuid.uuid4().hex}"
    ours = RedisCache(redis_url, {"KEY_PREFIX": prefix})
    theirs = DjangoRedisCache(redis_url, {"KEY_PREFIX": prefix})
    try:
        assert ours._cache.get_client(write=True) is ours._cache.get_client(write=False)
        assert ours.add("k", {"n": 1}, 30) is True
        assert ours.add("k", {"n": 2}, 30) is False
        assert theirs.get("k") == {"n": 1}  # same keys, same serialisation
        assert ours.add("n", 0, 30) is True
        assert ours.incr("n") == 1 and theirs.incr("n") == 2
        ours.set_many({"a": 1, "b": "zwei"}, 30)
        assert theirs.get_many(["a", "b"]) == {"a": 1, "b": "zwei"}
        assert ours.delete("a") is True and ours.get("a") is None
    finally:
        theirs.delete_many(["k", "n", "a", "b"])

