"""Chargeback reports over the rollups: the function, the admin route and the CLI."""

from __future__ import annotations

import argparse
import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gateway.admin.usage import usage_routes
from gateway.usage.cli import add_usage_commands
from gateway.usage.records import UsageRecord
from gateway.usage.reports import ReportError, parse_bounds, plan_segments, usage_report
from gateway.usage.store import write_batch
from tests.usage.factories import expected_sums, make_pair

START = datetime(2026, 3, 30, tzinfo=UTC)
END = datetime(2026, 4, 3, tzinfo=UTC)


async def _load(engine: AsyncEngine, count: int = 300) -> list[UsageRecord]:
    pairs = [make_pair(i) for i in range(count)]  # 17 minutes apart: 30 March 22:00 to 3 April
    async with engine.begin() as c:
        await write_batch(c, pairs)
    return [u for u, _ in pairs]


def _measures(row: dict) -> dict:  # type: ignore[type-arg]
    return {k: row[k] for k in ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens")}


def _close(got: list[dict], expected: dict, key) -> None:  # type: ignore[no-untyped-def, type-arg]
    assert {key(row) for row in got} == set(expected)
    for row in got:
        want = expected[key(row)]
        assert _measures(row) == {k: int(v) for k, v in want.items() if k != "cost"}
        assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
        assert row["cost"] == pytest.approx(want["cost"])


async def test_day_by_team_and_model(engine: AsyncEngine) -> None:
    records = await _load(engine)
    in_range = [r for r in records if START <= r.time < END]
    got = await usage_report(engine, ["team", "model"], START, END, "day")
    expected = expected_sums(in_range, lambda r: [(r.time.date().isoformat(), r.team, r.model)])
    _close(got, expected, lambda row: (row["period"], row["team"], row["model"]))


async def test_month_by_tag_spans_month_boundary(engine: AsyncEngine) -> None:
    records = await _load(engine)
    got = await usage_report(engine, ["tag:cost_center"], START, END, "month")
    in_range = [r for r in records if START <= r.time < END and "cost_center" in r.tags]
    expected = expected_sums(in_range, lambda r: [(r.time.strftime("%Y-%m-01"), r.tags["cost_center"])])
    _close(got, expected, lambda row: (row["period"], row["tag:cost_center"]))
    assert {row["period"] for row in got} == {"2026-03-01", "2026-04-01"}


async def test_month_report_between_month_starts_reads_monthly_rollup(engine: AsyncEngine) -> None:
    records = await _load(engine)
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    got = await usage_report(engine, ["team"], start, end, "month")
    expected = expected_sums(records, lambda r: [(r.time.strftime("%Y-%m-01"), r.team)])
    _close(got, expected, lambda row: (row["period"], row["team"]))
    by_tag = await usage_report(engine, ["tag:cost_center", "provider"], start, end, "month")
    tagged = [r for r in records if "cost_center" in r.tags]
    expected = expected_sums(
        tagged, lambda r: [(r.time.strftime("%Y-%m-01"), r.tags["cost_center"], r.provider)]
    )
    _close(by_tag, expected, lambda row: (row["period"], row["tag:cost_center"], row["provider"]))
    # The same months summed from the hourly rollup (unaligned end) give the same numbers.
    hourly = await usage_report(engine, ["team"], start, end - timedelta(hours=1), "month")
    assert [_measures(r) for r in hourly] == [_measures(r) for r in got]


async def test_hour_granularity_and_unaligned_bounds(engine: AsyncEngine) -> None:
    records = await _load(engine)
    start, end = datetime(2026, 3, 31, 5, 0, tzinfo=UTC), datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
    got = await usage_report(engine, ["key"], start, end, "hour")
    in_range = [r for r in records if start <= r.time < end]
    expected = expected_sums(in_range, lambda r: [(r.time.replace(minute=0).isoformat(), r.key_id)])
    _close(got, expected, lambda row: (row["period"], row["key"]))
    # A day report with bounds inside days reads the hourly rollups and still sums right.
    by_day = await usage_report(engine, [], start, end, "day")
    assert by_day == [{"period": "2026-03-31", **{k: v for k, v in by_day[0].items() if k != "period"}}]
    assert by_day[0]["requests"] == len(in_range)


@pytest.mark.parametrize("granularity", ["day", "month"])
async def test_ragged_bounds_mix_hourly_daily_and_monthly_rollups(
    engine: AsyncEngine, granularity: str
) -> None:
    records = await _load(engine)
    start, end = datetime(2026, 3, 30, 23, 0, tzinfo=UTC), datetime(2026, 4, 2, 5, 0, tzinfo=UTC)
    got = await usage_report(engine, ["team"], start, end, granularity)
    fmt = "%Y-%m-%d" if granularity == "day" else "%Y-%m-01"
    expected = expected_sums(
        [r for r in records if start <= r.time < end], lambda r: [(r.time.strftime(fmt), r.team)]
    )
    _close(got, expected, lambda row: (row["period"], row["team"]))


@pytest.mark.parametrize(
    ("granularity", "start", "end", "plan"),
    [
        ("hour", "2026-03-01T00:00", "2026-04-01T00:00", [("hour", "2026-03-01T00:00", "2026-04-01T00:00")]),
        ("day", "2026-03-01T00:00", "2026-03-03T00:00", [("day", "2026-03-01T00:00", "2026-03-03T00:00")]),
        ("day", "2026-03-01T10:00", "2026-03-01T20:00", [("hour", "2026-03-01T10:00", "2026-03-01T20:00")]),
        (
            "day",
            "2026-03-01T10:00",
            "2026-03-04T02:00",
            [
                ("hour", "2026-03-01T10:00", "2026-03-02T00:00"),
                ("day", "2026-03-02T00:00", "2026-03-04T00:00"),
                ("hour", "2026-03-04T00:00", "2026-03-04T02:00"),
            ],
        ),
        (
            "month",
            "2026-01-20T06:00",
            "2026-04-03T00:00",
            [
                ("hour", "2026-01-20T06:00", "2026-01-21T00:00"),
                ("day", "2026-01-21T00:00", "2026-02-01T00:00"),
                ("month", "2026-02-01T00:00", "2026-04-01T00:00"),
                ("day", "2026-04-01T00:00", "2026-04-03T00:00"),
            ],
        ),
        (
            "month",
            "2026-01-01T00:00",
            "2027-01-01T00:00",
            [("month", "2026-01-01T00:00", "2027-01-01T00:00")],
        ),
    ],
)
def test_plan_reads_each_part_from_the_coarsest_rollup(
    granularity: str, start: str, end: str, plan: list[tuple[str, str, str]]
) -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    assert plan_segments(granularity, at(start), at(end)) == [(b, at(lo), at(hi)) for b, lo, hi in plan]


async def test_ungrouped_total_matches_records(engine: AsyncEngine) -> None:
    records = await _load(engine)
    got = await usage_report(engine, [], START, END, "month")
    assert sum(row["requests"] for row in got) == len([r for r in records if START <= r.time < END])
    assert sum(row["errors"] for row in got) == len(
        [r for r in records if START <= r.time < END and r.status >= 400]
    )


@pytest.mark.parametrize(
    ("group_by", "granularity", "message"),
    [
        (["colour"], "day", "unknown field"),
        (["tag:a", "tag:b"], "day", "at most one tag"),
        (["tag:"], "day", "needs a tag name"),
        (["team", "team"], "day", "twice"),
        (["team"], "week", "granularity"),
    ],
)
async def test_bad_parameters_are_refused(
    sqlite_engine: AsyncEngine, group_by: list[str], granularity: str, message: str
) -> None:
    with pytest.raises(ReportError, match=message):
        await usage_report(sqlite_engine, group_by, START, END, granularity)


def test_bounds_bare_to_date_includes_the_day() -> None:
    start, end = parse_bounds("2026-03-01", "2026-03-31")
    assert (start, end) == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    start, end = parse_bounds("2026-03-01T10:30:00+02:00", "2026-03-02T00:00:00Z")
    assert start == datetime(2026, 3, 1, 8, 30, tzinfo=UTC) and end == datetime(2026, 3, 2, tzinfo=UTC)
    with pytest.raises(ReportError, match="from"):
        parse_bounds("2026-03-02", "2026-03-01")
    with pytest.raises(ReportError, match="to"):
        parse_bounds(None, "yesterday")


async def test_admin_route_json_csv_and_errors(sqlite_engine: AsyncEngine) -> None:
    records = await _load(sqlite_engine)
    app = Starlette(routes=usage_routes(sqlite_engine))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        params = {"group_by": "team", "from": "2026-03-30", "to": "2026-04-02", "granularity": "month"}
        response = await client.get("/admin/v1/usage", params=params)
        assert response.status_code == 200
        body = response.json()
        assert body["from"] == "2026-03-30T00:00:00+00:00" and body["to"] == "2026-04-03T00:00:00+00:00"
        total = sum(row["requests"] for row in body["data"])
        assert total == len([r for r in records if START <= r.time < END])

        response = await client.get("/admin/v1/usage", params={**params, "format": "csv"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert list(rows[0]) == [
            "period", "team", "requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens",
            "total_tokens", "cost",
        ]  # fmt: skip
        assert sum(int(row["requests"]) for row in rows) == total

        for bad, param in (
            ({"group_by": "colour"}, "group_by"),
            ({"from": "soon"}, "from"),
            ({"granularity": "week"}, "granularity"),
            ({"format": "xml"}, "format"),
        ):
            response = await client.get("/admin/v1/usage", params=bad)
            assert response.status_code == 400, bad
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error" and error["param"] == param


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway")
    add_usage_commands(parser.add_subparsers(dest="command", required=True))
    return parser


async def test_cli_report_table_and_json(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from gateway.db.engine import engine_for_url
    from tests.usage.conftest import create_usage_tables

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    engine = engine_for_url(url)
    await create_usage_tables(engine)
    records = await _load(engine)
    await engine.dispose()
    common = ["usage", "report", "--database-url", url, "--from", "2026-03-30", "--to", "2026-04-02"]

    import asyncio

    args = _parser().parse_args([*common, "--group-by", "team", "--granularity", "month", "--format", "json"])
    assert await asyncio.to_thread(args.func, args) == 0
    rows = orjson.loads(capsys.readouterr().out)
    expected = expected_sums(
        [r for r in records if START <= r.time < END], lambda r: [(r.time.strftime("%Y-%m-01"), r.team)]
    )
    assert {(row["period"], row["team"]): row["requests"] for row in rows} == {
        k: v["requests"] for k, v in expected.items()
    }

    args = _parser().parse_args([*common, "--group-by", "team"])
    assert await asyncio.to_thread(args.func, args) == 0
    out = capsys.readouterr().out
    assert "research" in out and "cost per team" in out and "█" in out

    args = _parser().parse_args([*common, "--group-by", "colour"])
    assert await asyncio.to_thread(args.func, args) == 2
    assert "unknown field" in capsys.readouterr().err


async def test_periods_do_not_depend_on_postgres_session_time_zone(pg_url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    # Far east of UTC: a date cast to timestamptz lands on the previous UTC day there.
    engine = create_async_engine(pg_url, connect_args={"server_settings": {"timezone": "Pacific/Kiritimati"}})
    records = await _load(engine)
    in_range = [r for r in records if START <= r.time < END]
    for granularity, fmt in (("month", "%Y-%m-01"), ("day", "%Y-%m-%d")):
        got = await usage_report(engine, ["team"], START, END, granularity)
        expected = expected_sums(in_range, lambda r, f=fmt: [(r.time.strftime(f), r.team)])
        _close(got, expected, lambda row: (row["period"], row["team"]))
    unaligned = await usage_report(engine, [], START, datetime(2026, 4, 2, 12, tzinfo=UTC), "day")
    assert [row["period"] for row in unaligned] == ["2026-03-30", "2026-03-31", "2026-04-01", "2026-04-02"]
    await engine.dispose()
