"""opa-python-client's ``AsyncOpaClient`` over an ``UpstreamTLS`` context.

The stock client builds its SSL context once from the system store (``ssl=True``, ``cert=``): no
private CA, no minimum version, no rotation. Every call of the client goes through its
``_request``, so passing ``ssl=tls.context()`` there gives each call the current context, and
aiohttp's pool (keyed by context) opens new connections after a rotation. Pinned to the
``_init_session`` / ``_request`` seams of opa-python-client 3.x; the tests exercise both.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
from opa_client.opa_async import AsyncOpaClient  # type: ignore[import-untyped]

from gateway.tls.upstream import UpstreamTLS


class TLSAsyncOpaClient(AsyncOpaClient):  # type: ignore[misc]
    def __init__(self, *args: Any, tls: UpstreamTLS, **kwargs: Any) -> None:
        kwargs["ssl"] = True
        kwargs.pop("cert", None)  # the client certificate comes from ``tls``
        super().__init__(*args, **kwargs)
        self._tls = tls

    async def _init_session(self) -> None:
        self._connector = aiohttp.TCPConnector(ssl=self._tls.context())
        self._session = aiohttp.ClientSession(
            headers=self.headers,
            connector=self._connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )

    def _request(
        self, method: str, url: str, **kwargs: Any
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        kwargs["ssl"] = self._tls.context()
        request: AbstractAsyncContextManager[aiohttp.ClientResponse] = super()._request(method, url, **kwargs)
        return request
