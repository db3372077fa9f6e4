"""A local server speaking OPA's REST Data API, evaluating with OPA's Go engine underneath.

It follows the documented API: ``POST /v1/data/{path}`` with ``{"input": ...}`` answers
``{"result": ...}``, or ``{}`` when the document is undefined; ``?provenance=true`` adds a
``provenance`` object (the policies count as one bundle whose revision is the content hash);
errors answer ``{"code", "message"}``; ``GET /health`` answers 200 ``{}``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from opa_bindings import OpaError, OpaUndefinedError

from gateway.policy.bundle import build_engine, read_source


class FakeOpa:
    def __init__(self, paths: list[Path]) -> None:
        source = read_source(paths)
        self.engine = build_engine(source)
        self.revision = source.revision
        #: Seconds to wait before answering a data query (to test client timeouts).
        self.delay_s = 0.0
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _data(self, request: web.Request) -> web.Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError as exc:
            return web.json_response(
                {"code": "invalid_parameter", "message": f"body contains malformed input document: {exc}"},
                status=400,
            )
        self.requests.append({"path": request.match_info["path"], "query": dict(request.query), "body": body})
        path = request.match_info["path"].strip("/").replace("/", ".")
        try:
            result = self.engine.eval_document(path, body.get("input"))
        except OpaUndefinedError:
            return web.json_response({})
        except OpaError as exc:
            return web.json_response({"code": "internal_error", "message": exc.message}, status=500)
        response: dict[str, Any] = {"result": result}
        if request.query.get("provenance", "").lower() == "true":
            response["provenance"] = {"version": "fake", "bundles": {"policies": {"revision": self.revision}}}
        return web.json_response(response, dumps=json.dumps)

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/data/{path:.*}", self._data)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self.engine.close()
