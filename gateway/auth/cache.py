"""The in-memory key cache, its cross-replica invalidation, and batched last-used times.

Bounded staleness, documented in docs/keys.md: with Redis (``auth.redis_url``) every admin
change publishes the affected key hashes and every replica drops them at once; while the Redis
subscription is down the cache falls back to the short TTL. Without Redis the TTL itself
(<= 5 s) bounds how long a revoked key keeps working. Expiry is checked on every request
against the cached record, so it needs no invalidation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

import orjson

from gateway.auth.auth_types import LastUsedSink
from gateway.auth.config import MAX_REVOCATION_DELAY_S
from gateway.auth.models import utcnow
from gateway.auth.records import KeyRecord

log = logging.getLogger(__name__)

INVALIDATION_CHANNEL = "gateway:auth:invalidate"


class KeyCache:
    """LRU of key hash -> record (or None for an unknown key), each entry with a deadline."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, KeyRecord | None]] = OrderedDict()

    def get(self, key_hash: str) -> tuple[bool, KeyRecord | None]:
        entry = self._entries.get(key_hash)
        if entry is None:
            return False, None
        deadline, record = entry
        if deadline <= time.monotonic():
            del self._entries[key_hash]
            return False, None
        self._entries.move_to_end(key_hash)
        return True, record

    def put(self, key_hash: str, record: KeyRecord | None) -> None:
        # Unknown keys are remembered briefly only: a key created on another replica must work soon.
        ttl = self.ttl_s if record is not None else min(self.ttl_s, MAX_REVOCATION_DELAY_S)
        self._entries[key_hash] = (time.monotonic() + ttl, record)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def drop(self, key_hashes: list[str]) -> None:
        for key_hash in key_hashes:
            self._entries.pop(key_hash, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _redis_client(url: str) -> Any:
    # Imported only when Redis is configured: the embedded default never loads the client
    # (~9 MB of resident memory, measured).
    import redis.asyncio

    return redis.asyncio.Redis.from_url(url)


class KeyInvalidator:
    """Makes key changes visible: drops local entries and, with Redis, tells every replica."""

    def __init__(self, redis_url: str | None, local: KeyCache | None = None) -> None:
        self._redis = _redis_client(redis_url) if redis_url else None
        self._local = local

    async def invalidate(self, key_hashes: list[str] | None) -> None:
        """``None`` means every key (a team's metadata changed)."""
        if self._local is not None:
            self._local.clear() if key_hashes is None else self._local.drop(key_hashes)
        if self._redis is None:
            return
        message = orjson.dumps({"all": True} if key_hashes is None else {"keys": key_hashes})
        from redis.exceptions import RedisError

        try:
            await self._redis.publish(INVALIDATION_CHANNEL, message)
        except RedisError as exc:
            # The change is committed; other replicas catch up through their fallback TTL.
            log.warning("could not publish key invalidation to Redis: %s", type(exc).__name__)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


class InvalidationListener:
    """Subscribes to the invalidation channel; while unsubscribed the cache uses the short TTL."""

    def __init__(self, redis_url: str, cache: KeyCache, subscribed_ttl_s: float) -> None:
        self._redis = _redis_client(redis_url)
        self._cache = cache
        self._subscribed_ttl_s = subscribed_ttl_s
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    def start(self) -> None:
        self._cache.ttl_s = min(self._subscribed_ttl_s, MAX_REVOCATION_DELAY_S)
        self._task = asyncio.create_task(self._run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._redis.aclose()

    async def _run(self) -> None:
        from redis.exceptions import RedisError

        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(INVALIDATION_CHANNEL)
                    # Anything may have changed while we were not listening.
                    self._cache.clear()
                    self._cache.ttl_s = self._subscribed_ttl_s
                    self.subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._apply(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning(
                    "key invalidation subscription lost (%s); using the short cache TTL", type(exc).__name__
                )
            self.subscribed.clear()
            self._cache.ttl_s = min(self._subscribed_ttl_s, MAX_REVOCATION_DELAY_S)
            self._cache.clear()
            await asyncio.sleep(1.0)

    def _apply(self, data: bytes) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if message.get("all"):
            self._cache.clear()
        elif isinstance(message.get("keys"), list):
            self._cache.drop([k for k in message["keys"] if isinstance(k, str)])


class LastUsedRecorder:
    """Collects key uses in memory and writes ``last_used_at`` in batches, off the request path."""

    def __init__(self, sink: LastUsedSink, interval_s: float, flush_every_s: float = 5.0) -> None:
        self._sink = sink
        self._interval_s = interval_s
        self._flush_every_s = flush_every_s
        self._written: dict[str, float] = {}
        self._pending: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def note(self, key_id: str) -> None:
        now = time.monotonic()
        last = self._written.get(key_id)
        if last is not None and now - last < self._interval_s:
            return
        self._written[key_id] = now
        self._pending[key_id] = utcnow()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        try:
            await self._sink.record_last_used(pending)
        except Exception as exc:  # a database hiccup must not stop the loop; retry next round
            log.warning("could not write last_used_at (%s); will retry", type(exc).__name__)
            for key_id, at in pending.items():
                self._pending.setdefault(key_id, at)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    async def _run(self) -> None:

        while True:
            await asyncio.sleep(self._flush_every_s)
            if self._pending:
                await self.flush()
