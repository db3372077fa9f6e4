"""Admin REST for teams: create, list, get, update (name and metadata)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.admin.security import (
    ADMIN_PREFIX,
    AdminServices,
    admin_endpoint,
    json_response,
    page_body,
    parse_body,
    query_int,
)


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    metadata: dict[str, Any] = {}


class TeamUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    metadata: dict[str, Any] | None = None


def team_routes(services: AdminServices) -> list[BaseRoute]:
    store, invalidator = services.store, services.invalidator

    async def create(request: Request, actor: str) -> Response:
        body = await parse_body(request, TeamCreate)
        return json_response(
            (await store.create_team(actor, name=body.name, metadata=body.metadata)).as_dict(), 201
        )

    async def list_teams(request: Request, actor: str) -> Response:
        page = await store.list_teams(
            limit=query_int(request, "limit", 50, 1, 200), cursor=request.query_params.get("cursor")
        )
        return json_response(page_body([t.as_dict() for t in page.items], page.next_cursor))

    async def get(request: Request, actor: str) -> Response:
        return json_response((await store.get_team(request.path_params["team_id"])).as_dict())

    async def patch(request: Request, actor: str) -> Response:
        body = await parse_body(request, TeamUpdate)
        changes = {f: getattr(body, f) for f in body.model_fields_set if getattr(body, f) is not None}
        view = await store.update_team(actor, request.path_params["team_id"], **changes)
        # Team name and metadata are part of every member key's principal.
        await invalidator.invalidate(None)
        return json_response(view.as_dict())

    base = f"{ADMIN_PREFIX}/teams"
    return [
        Route(base, admin_endpoint(services, create), methods=["POST"]),
        Route(base, admin_endpoint(services, list_teams), methods=["GET"]),
        Route(base + "/{team_id}", admin_endpoint(services, get), methods=["GET"]),
        Route(base + "/{team_id}", admin_endpoint(services, patch), methods=["PATCH"]),
    ]
