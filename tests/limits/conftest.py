"""Fixtures: an injectable clock, both backends, a SQLite spend store, a private redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.limits.backend import LimitBackend
from gateway.limits.memory import MemoryBackend
from gateway.limits.models import LimitSpend
from gateway.limits.redis_backend import RedisBackend

SHARED_REDIS = "redis://127.0.0.1:6379/0"


class FakeClock:
    """Unix time that only moves when a test says so."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    # 2026-11-27 12:00:00 UTC
    return FakeClock(1_795_780_800.0)


async def _delete_prefix(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"test-limits:{uuid.uuid4().hex[:12]}:"
    yield prefix
    await _delete_prefix(SHARED_REDIS, prefix)


def make_backend(kind: str, prefix: str, url: str = SHARED_REDIS) -> LimitBackend:
    if kind == "memory":
        return MemoryBackend()
    return RedisBackend.from_url(url, prefix=prefix, timeout_s=1.0)


@pytest.fixture(params=["memory", "redis"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'spend.db'}")
    async with eng.begin() as conn:
        await conn.run_sync(LimitSpend.__table__.create)
    yield eng
    await eng.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test's own, without persistence, that can be stopped and restarted."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is required for these tests"
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self._workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.05):
                    return
            except OSError:
                if self._proc.poll() is not None:
                    raise RuntimeError("redis-server exited at start") from None
                time.sleep(0.025)
        raise RuntimeError("redis-server did not start listening")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
