"""Admin REST for gateway keys: create (secret shown once), list/search, get, update, revoke, rotate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
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
from gateway.errors import InvalidRequestError

MAX_GRACE_PERIOD_S = 30 * 24 * 3600


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    team: str | None = Field(None, min_length=1, max_length=200)
    user: str | None = Field(None, min_length=1, max_length=200)
    metadata: dict[str, Any] = {}
    expires_at: AwareDatetime | None = None
    expires_in_s: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyCreate:
        if self.expires_at is not None and self.expires_in_s is not None:
            raise ValueError("give expires_at or expires_in_s, not both")
        return self

    def expiry(self) -> datetime | None:
        if self.expires_in_s is not None:
            return datetime.now(UTC) + timedelta(seconds=self.expires_in_s)
        return self.expires_at


class KeyUpdate(_Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None
    #: ``null`` removes the expiry.
    expires_at: AwareDatetime | None = None


class KeyRotate(_Body):
    #: How long the old key keeps working (0: stops at once).
    grace_period_s: int = Field(0, ge=0, le=MAX_GRACE_PERIOD_S)


def key_routes(services: AdminServices) -> list[BaseRoute]:
    store, invalidator = services.store, services.invalidator

    async def create(request: Request, actor: str) -> Response:
        body = await parse_body(request, KeyCreate)
        view, issued = await store.create_key(
            actor,
            name=body.name,
            team=body.team,
            user=body.user,
            metadata=body.metadata,
            expires_at=body.expiry(),
        )
        # The only response that ever carries a key's secret.
        return json_response({**view.as_dict(), "key": issued.plaintext.reveal()}, status=201)

    async def list_keys(request: Request, actor: str) -> Response:
        params = request.query_params
        page = await store.list_keys(
            name=params.get("name"),
            team=params.get("team"),
            user=params.get("user"),
            include_revoked=params.get("include_revoked", "true").lower() != "false",
            limit=query_int(request, "limit", 50, 1, 200),
            cursor=params.get("cursor"),
        )
        return json_response(page_body([v.as_dict() for v in page.items], page.next_cursor))

    async def get(request: Request, actor: str) -> Response:
        return json_response((await store.get_key(request.path_params["key_id"])).as_dict())

    async def patch(request: Request, actor: str) -> Response:
        body = await parse_body(request, KeyUpdate)
        changes = {field: getattr(body, field) for field in body.model_fields_set}
        for field in ("name", "metadata"):
            if field in changes and changes[field] is None:
                raise InvalidRequestError(f"{field} cannot be null", param=field)
        view = await store.update_key(actor, request.path_params["key_id"], **changes)
        await invalidator.invalidate([view.key_hash])
        return json_response(view.as_dict())

    async def revoke(request: Request, actor: str) -> Response:
        view = await store.revoke_key(actor, request.path_params["key_id"])
        await invalidator.invalidate([view.key_hash])
        return json_response(view.as_dict())

    async def rotate(request: Request, actor: str) -> Response:
        body = await parse_body(request, KeyRotate)
        new, old, issued = await store.rotate_key(actor, request.path_params["key_id"], body.grace_period_s)
        await invalidator.invalidate([old.key_hash])
        return json_response(
            {**new.as_dict(), "key": issued.plaintext.reveal(), "rotated": old.as_dict()}, 201
        )

    base = f"{ADMIN_PREFIX}/keys"
    return [
        Route(base, admin_endpoint(services, create), methods=["POST"]),
        Route(base, admin_endpoint(services, list_keys), methods=["GET"]),
        Route(base + "/{key_id}", admin_endpoint(services, get), methods=["GET"]),
        Route(base + "/{key_id}", admin_endpoint(services, patch), methods=["PATCH"]),
        Route(base + "/{key_id}/revoke", admin_endpoint(services, revoke), methods=["POST"]),
        Route(base + "/{key_id}/rotate", admin_endpoint(services, rotate), methods=["POST"]),
    ]
