"""``GET /admin/v1/usage``: chargeback reports over the usage rollups, as JSON or CSV.

Query parameters: ``group_by`` (comma-separated: key, team, user, model, provider, deployment,
tag:<name>), ``from`` and ``to`` (ISO dates or date-times, UTC; a bare ``to`` date includes that
day), ``granularity`` (hour, day, month; default day) and ``format`` (json, csv; default json).
Authentication is applied by the admin router around every ``/admin`` route.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import InvalidRequestError
from gateway.usage.reports import ReportError, parse_bounds, report_csv, usage_report

USAGE_PATH = "/admin/v1/usage"


def usage_routes(engine: AsyncEngine) -> list[Route]:
    async def report(request: Request) -> Response:
        params = request.query_params
        try:
            output = params.get("format", "json")
            if output not in ("json", "csv"):
                raise ReportError(f"format: must be json or csv, not {output!r}")
            group_by = [g for g in params.get("group_by", "").split(",") if g.strip()]
            start, end = parse_bounds(params.get("from"), params.get("to"))
            granularity = params.get("granularity", "day")
            rows = await usage_report(engine, group_by, start, end, granularity)
        except ReportError as exc:
            param = str(exc).split(":", 1)[0]
            error = InvalidRequestError(str(exc), param=param)
            return Response(error.body_bytes(), status_code=error.status, media_type="application/json")
        if output == "csv":
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            return Response(
                report_csv(rows, group_by),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="usage-{stamp}.csv"'},
            )
        body = {
            "object": "usage_report",
            "group_by": group_by,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "granularity": granularity,
            "data": rows,
        }
        return Response(orjson.dumps(body), media_type="application/json")

    return [Route(USAGE_PATH, report, methods=["GET"], name="admin_usage_report")]
