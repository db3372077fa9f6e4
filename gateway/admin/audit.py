"""Admin REST for the audit trail: who did what to which key or team, and when (never secrets)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.admin.security import (
    ADMIN_PREFIX,
    AdminServices,
    admin_endpoint,
    json_response,
    page_body,
    query_int,
)


def audit_routes(services: AdminServices) -> list[BaseRoute]:
    async def list_audit(request: Request, actor: str) -> Response:
        page = await services.store.list_audit(
            target_id=request.query_params.get("target_id"),
            limit=query_int(request, "limit", 50, 1, 500),
            cursor=request.query_params.get("cursor"),
        )
        return json_response(page_body(page.items, page.next_cursor))

    return [Route(f"{ADMIN_PREFIX}/audit", admin_endpoint(services, list_audit), methods=["GET"])]
