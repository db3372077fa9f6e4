"""The only code that calls providers: one pooled aiohttp session behind a tiny transport seam.

aiohttp rather than httpx on this path because it was measured: httpx's default transport costs
about 5x the CPU per request (see docs/performance.md and bench/). Tests and embedders can swap
in any object with the ``UpstreamTransport`` shape instead of patching.

aiohttp exceptions are translated into the gateway's error tree here and nowhere else.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import yarl

from gateway.errors import UpstreamTimeoutError, UpstreamUnreachableError
from gateway.providers.base import UpstreamRequest
from gateway.tls.upstream import tls_failure


@dataclass(slots=True)
class Timeouts:
    total_s: float
    connect_s: float


class UpstreamResponse(Protocol):
    status: int
    headers: dict[str, str]

    async def read(self) -> bytes: ...

    def iter_chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class UpstreamTransport(Protocol):
    async def send(
        self,
        request: UpstreamRequest,
        timeouts: Timeouts,
        *,
        deployment: str,
        ssl_context: ssl.SSLContext | None,
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class _AiohttpResponse:
    __slots__ = ("_deployment", "_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, deployment: str) -> None:
        self._response = response
        self._deployment = deployment
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.headers.items()}

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"deployment {self._deployment!r} timed out sending its answer"
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachableError(
                f"deployment {self._deployment!r} broke the connection: {type(exc).__name__}"
            ) from None
        finally:
            self._response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise UpstreamTimeoutError(f"deployment {self._deployment!r} timed out mid-stream") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachableError(
                f"deployment {self._deployment!r} broke the stream: {type(exc).__name__}"
            ) from None
        finally:
            self._response.release()

    def close(self) -> None:
        self._response.close()


class AiohttpTransport:
    """One ``ClientSession`` and connection pool shared by every deployment."""

    def __init__(self, *, limit: int = 1000, limit_per_host: int = 0) -> None:
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily so it binds to the running loop (the lifespan's, not import time's).
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                ttl_dns_cache=300,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                # A proxy must not carry one client's upstream cookies into another's calls
                # (and skipping the jar saves work on every response).
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(
        self,
        request: UpstreamRequest,
        timeouts: Timeouts,
        *,
        deployment: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> UpstreamResponse:
        session = self._get_session()
        timeout = aiohttp.ClientTimeout(total=timeouts.total_s, sock_connect=timeouts.connect_s)
        try:
            response = await session.request(
                request.method,
                # Already encoded by the translator (and signed that way for SigV4): keep as is.
                yarl.URL(request.url, encoded=True),
                headers=request.headers,
                data=request.body,
                timeout=timeout,
                ssl=ssl_context if ssl_context is not None else True,
                allow_redirects=False,
            )
        except TimeoutError:
            raise UpstreamTimeoutError(f"deployment {deployment!r} did not answer in time") from None
        except aiohttp.ClientError as exc:
            # A certificate that does not verify is a clear 502 naming the deployment, never
            # a silent retry without verification.
            tls_error = tls_failure(exc, deployment)
            if tls_error is not None:
                raise tls_error from None
            raise UpstreamUnreachableError(
                f"deployment {deployment!r} is unreachable: {type(exc).__name__}"
            ) from None
        return _AiohttpResponse(response, deployment)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            # aiohttp recommends a short sleep so SSL transports finish closing.
            await asyncio.sleep(0)
            self._session = None
