"""The OpenAPI 3.1 document of the admin API, served at ``/admin/v1/openapi.json``.

Request schemas come from the same pydantic models that validate the bodies, so the document
cannot drift from what the endpoints accept; responses are described here by hand.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.admin.keys import KeyCreate, KeyRotate, KeyUpdate
from gateway.admin.security import ADMIN_PREFIX, json_response
from gateway.admin.teams import TeamCreate, TeamUpdate

_TIME = {"type": ["string", "null"], "format": "date-time"}
_NULLABLE_STR = {"type": ["string", "null"]}

_KEY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "prefix", "name", "metadata", "created_at", "revoked"],
    "properties": {
        "id": {"type": "string", "examples": ["key_3f2a9c0d1e4b5a6f"]},
        "object": {"const": "gateway.key"},
        "prefix": {
            "type": "string",
            "description": "Display prefix, e.g. gw-1a2b3c4d; not usable to authenticate.",
        },
        "name": {"type": "string"},
        "team": _NULLABLE_STR,
        "user": _NULLABLE_STR,
        "metadata": {
            "type": "object",
            "description": "Free-form; the policy sees it (merged over the team's).",
        },
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "expires_at": _TIME,
        "last_used_at": {**_TIME, "description": "Updated at most once a minute."},
        "revoked": {"type": "boolean"},
        "revoked_at": _TIME,
        "rotated_from": {**_NULLABLE_STR, "description": "Id of the key this one replaced."},
        "grace_until": {**_TIME, "description": "Set on a rotated-out key: it works until then."},
    },
}

_TEAM: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "name", "metadata", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "gateway.team"},
        "name": {"type": "string", "description": "What policies see as input.client.team."},
        "metadata": {"type": "object"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

_AUDIT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string", "description": "token:<hash prefix>, jwt:<issuer>:<sub> or cli:<user>."},
        "action": {"type": "string", "examples": ["key.create", "key.revoke", "team.update"]},
        "target_type": {"type": "string"},
        "target_id": _NULLABLE_STR,
        "details": {"type": "object"},
    },
}

_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": _NULLABLE_STR,
                "code": _NULLABLE_STR,
            },
        }
    },
}


def _list_of(ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["object", "data", "has_more", "next_cursor"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}},
            "has_more": {"type": "boolean"},
            "next_cursor": {**_NULLABLE_STR, "description": "Pass as ?cursor= for the next page."},
        },
    }


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _ok(ref: str, status: str = "200", what: str = "OK") -> dict[str, Any]:
    errors = {
        "400": {"description": "Invalid input", "content": _json("Error")},
        "401": {"description": "Missing or invalid admin credentials", "content": _json("Error")},
        "403": {"description": "Credentials without admin rights", "content": _json("Error")},
    }
    return {status: {"description": what, "content": _json(ref)}, **errors}


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": _json(ref)}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


_PATH_ID = [{"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_TEAM_ID = [
    {
        "name": "team_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "Id or name.",
    }
]
_PAGING = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
    },
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]
_NOT_FOUND = {"404": {"description": "Not found", "content": _json("Error")}}


def build_openapi() -> dict[str, Any]:
    p = ADMIN_PREFIX
    key_search = [
        {
            "name": "name",
            "in": "query",
            "schema": {"type": "string"},
            "description": "Substring, case-insensitive.",
        },
        {"name": "team", "in": "query", "schema": {"type": "string"}},
        {"name": "user", "in": "query", "schema": {"type": "string"}},
        {"name": "include_revoked", "in": "query", "schema": {"type": "boolean", "default": True}},
        *_PAGING,
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AI gateway admin API",
            "version": "1",
            "description": "Gateway keys, teams and the audit trail. Authenticate with an admin token or a "
            "JWT carrying the admin role: `Authorization: Bearer …`.",
        },
        "security": [{"bearer": []}],
        "paths": {
            f"{p}/keys": {
                "post": {
                    "operationId": "createKey",
                    "summary": "Create a key; the response's `key` is the secret, shown only this once.",
                    "requestBody": _body("KeyCreate"),
                    "responses": _ok("KeyCreated", "201", "Created"),
                },
                "get": {
                    "operationId": "listKeys",
                    "summary": "List and search keys, newest first.",
                    "parameters": key_search,
                    "responses": _ok("KeyList"),
                },
            },
            f"{p}/keys/{{key_id}}": {
                "parameters": _PATH_ID,
                "get": {"operationId": "getKey", "responses": {**_ok("Key"), **_NOT_FOUND}},
                "patch": {
                    "operationId": "updateKey",
                    "summary": "Change name, metadata or expiry (null removes it).",
                    "requestBody": _body("KeyUpdate"),
                    "responses": {**_ok("Key"), **_NOT_FOUND},
                },
            },
            f"{p}/keys/{{key_id}}/revoke": {
                "parameters": _PATH_ID,
                "post": {
                    "operationId": "revokeKey",
                    "summary": "Revoke a key; every replica refuses it within 5 seconds.",
                    "responses": {**_ok("Key"), **_NOT_FOUND},
                },
            },
            f"{p}/keys/{{key_id}}/rotate": {
                "parameters": _PATH_ID,
                "post": {
                    "operationId": "rotateKey",
                    "summary": "Issue a replacement key; the old one works for grace_period_s more.",
                    "requestBody": {"required": False, "content": _json("KeyRotate")},
                    "responses": {**_ok("KeyRotated", "201", "Created"), **_NOT_FOUND},
                },
            },
            f"{p}/teams": {
                "post": {
                    "operationId": "createTeam",
                    "requestBody": _body("TeamCreate"),
                    "responses": _ok("Team", "201", "Created"),
                },
                "get": {"operationId": "listTeams", "parameters": _PAGING, "responses": _ok("TeamList")},
            },
            f"{p}/teams/{{team_id}}": {
                "parameters": _TEAM_ID,
                "get": {"operationId": "getTeam", "responses": {**_ok("Team"), **_NOT_FOUND}},
                "patch": {
                    "operationId": "updateTeam",
                    "requestBody": _body("TeamUpdate"),
                    "responses": {**_ok("Team"), **_NOT_FOUND},
                },
            },
            f"{p}/audit": {
                "get": {
                    "operationId": "listAudit",
                    "parameters": [
                        {"name": "target_id", "in": "query", "schema": {"type": "string"}},
                        *_PAGING,
                    ],
                    "responses": _ok("AuditList"),
                }
            },
            f"{p}/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "security": [],
                    "responses": {
                        "200": {"description": "This document", "content": {"application/json": {}}}
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Key": _KEY,
                "KeyCreated": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Key"},
                        {"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}},
                    ]
                },
                "KeyRotated": {
                    "allOf": [
                        {"$ref": "#/components/schemas/KeyCreated"},
                        {"type": "object", "properties": {"rotated": {"$ref": "#/components/schemas/Key"}}},
                    ]
                },
                "KeyList": _list_of("Key"),
                "Team": _TEAM,
                "TeamList": _list_of("Team"),
                "AuditEntry": _AUDIT,
                "AuditList": _list_of("AuditEntry"),
                "Error": _ERROR,
                "KeyCreate": _schema(KeyCreate),
                "KeyUpdate": _schema(KeyUpdate),
                "KeyRotate": _schema(KeyRotate),
                "TeamCreate": _schema(TeamCreate),
                "TeamUpdate": _schema(TeamUpdate),
            },
        },
    }


def openapi_routes() -> list[BaseRoute]:
    document = build_openapi()

    async def serve(request: Request) -> Response:
        return json_response(document)

    return [Route(f"{ADMIN_PREFIX}/openapi.json", serve, methods=["GET"])]
