"""Cross-replica invalidation over Redis pub/sub, and the fallback TTL while unsubscribed."""

from __future__ import annotations

import asyncio

import pytest

from gateway.auth.cache import InvalidationListener, KeyCache, KeyInvalidator
from gateway.auth.config import MAX_REVOCATION_DELAY_S, AuthConfig

REDIS_URL = "redis://127.0.0.1:6379/0"


async def wait_until(predicate: object, within_s: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.mark.redis
async def test_a_change_published_on_one_replica_drops_the_key_on_the_others() -> None:
    replica_a, replica_b = KeyCache(60, 100), KeyCache(60, 100)
    listener_a = InvalidationListener(REDIS_URL, replica_a, 60)
    listener_b = InvalidationListener(REDIS_URL, replica_b, 60)
    publisher = KeyInvalidator(REDIS_URL)
    try:
        listener_a.start()
        listener_b.start()
        # Until subscribed, a replica must not trust long-lived entries.
        assert replica_a.ttl_s <= MAX_REVOCATION_DELAY_S
        await asyncio.wait_for(listener_a.subscribed.wait(), 3)
        await asyncio.wait_for(listener_b.subscribed.wait(), 3)
        assert replica_a.ttl_s == 60
        for cache in (replica_a, replica_b):
            cache.put("hash-1", None)
            cache.put("hash-2", None)
        await publisher.invalidate(["hash-1"])
        await wait_until(lambda: not replica_a.get("hash-1")[0] and not replica_b.get("hash-1")[0])
        assert replica_a.get("hash-2")[0] and replica_b.get("hash-2")[0]
        await publisher.invalidate(None)
        await wait_until(lambda: len(replica_a) == 0 and len(replica_b) == 0)
    finally:
        await publisher.aclose()
        await listener_a.aclose()
        await listener_b.aclose()


async def test_unreachable_redis_keeps_the_short_ttl() -> None:
    cache = KeyCache(60, 100)
    listener = InvalidationListener("redis://127.0.0.1:1/0", cache, 60)
    listener.start()
    await asyncio.sleep(0.2)
    assert not listener.subscribed.is_set()
    assert cache.ttl_s <= MAX_REVOCATION_DELAY_S
    await listener.aclose()


def test_long_ttl_without_redis_is_refused() -> None:
    with pytest.raises(ValueError, match="needs redis_url"):
        AuthConfig(cache_ttl_s=30)
    assert AuthConfig().effective_cache_ttl_s == MAX_REVOCATION_DELAY_S
    assert AuthConfig(redis_url=REDIS_URL).effective_cache_ttl_s == 60
