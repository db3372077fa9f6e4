"""``gateway usage report``: the chargeback report in the terminal (table + cost bars), CSV or JSON.

gateway usage report -c gateway.yaml --group-by team,model --from 2026-11-01 --to 2026-11-30
gateway usage report --database-url postgresql://… --group-by tag:cost_center --granularity month
gateway usage report --group-by key --format csv > november.csv
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from gateway.errors import ConfigError
from gateway.usage.reports import (
    GRANULARITIES,
    ReportError,
    parse_bounds,
    parse_group_by,
    report_csv,
    usage_report,
)

BAR_WIDTH = 40
BAR_GROUPS = 20
PIPED_WIDTH = 140


def add_usage_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    usage = subparsers.add_parser("usage", help="usage and chargeback reports")
    commands = usage.add_subparsers(dest="usage_command", required=True)
    report = commands.add_parser("report", help="tokens, requests, cost and errors per group and period")
    report.add_argument(
        "--config",
        "-c",
        default=os.environ.get("GATEWAY_CONFIG"),
        help="config file (default: $GATEWAY_CONFIG)",
    )
    report.add_argument("--database-url", default=None, help="read this database instead of the config's")
    report.add_argument(
        "--group-by",
        default="",
        help="comma-separated: key, team, user, model, provider, deployment, tag:<name>",
    )
    report.add_argument(
        "--from", dest="start", default=None, help="ISO date or date-time, UTC (default: 30 days)"
    )
    report.add_argument(
        "--to", dest="end", default=None, help="ISO date (inclusive) or date-time (exclusive)"
    )
    report.add_argument("--granularity", choices=GRANULARITIES, default="day")
    report.add_argument("--format", dest="output", choices=("table", "csv", "json"), default="table")
    report.set_defaults(func=run_report)


def _engine(args: argparse.Namespace) -> Any:
    from gateway.db.engine import create_engine, engine_for_url, resolve_url

    if args.database_url:
        return engine_for_url(resolve_url(args.database_url, None))
    from gateway.config import load_config

    config = load_config(args.config)
    base_dir = Path(config.source).parent if config.source else None
    return create_engine(config.database, base_dir)


async def _report(args: argparse.Namespace, group_by: list[str]) -> list[dict[str, Any]]:
    start, end = parse_bounds(args.start, args.end)
    engine = _engine(args)
    try:
        return await usage_report(engine, group_by, start, end, args.granularity)
    finally:
        await engine.dispose()


def run_report(args: argparse.Namespace) -> int:
    group_by = [g.strip() for g in args.group_by.split(",") if g.strip()]
    try:
        parse_group_by(group_by)
        rows = asyncio.run(_report(args, group_by))
    except (ReportError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output == "csv":
        sys.stdout.write(report_csv(rows, group_by))
    elif args.output == "json":
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        # A terminal sets its own width; piped output (less, a file) gets room for every column.
        print_report(
            rows, group_by, Console(width=None if sys.stdout.isatty() else PIPED_WIDTH), args.granularity
        )
    return 0


def _group_label(row: dict[str, Any], names: list[str]) -> str:
    if not names:
        return "all"
    return " · ".join(str(row[name] if row[name] is not None else "—") for name in names)


def compact(value: float) -> str:
    """Counts for a terminal table: exact below 100,000, then 193.2k, 19.50M, 1.20B."""
    for size, suffix in ((1e9, "B"), (1e6, "M")):
        if abs(value) >= size:
            return f"{value / size:.2f}{suffix}"
    if abs(value) >= 100_000:
        return f"{value / 1e3:.1f}k"
    return f"{value:,.0f}"


def _cell(measure: str, value: float) -> str:
    return f"${value:,.2f}" if measure == "cost" else compact(value)


#: Columns of the terminal table (total tokens is prompt + completion: in CSV and JSON only).
TABLE_MEASURES = ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "cost")
COLUMN_TITLES = {
    "requests": "requests",
    "errors": "errors",
    "prompt_tokens": "prompt",
    "completion_tokens": "completion",
    "cached_tokens": "cached",
    "cost": "cost",
}


def print_report(
    rows: list[dict[str, Any]], group_by: list[str], console: Console, granularity: str = "day"
) -> None:
    """Table with totals (exact numbers: ``--format csv`` or ``json``), then cost bars per group."""
    names = parse_group_by(group_by).names
    table = Table(title="Usage", show_footer=bool(rows), box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("period", footer="total", no_wrap=True)
    for name in names:
        table.add_column(name, no_wrap=True)
    totals = {m: sum(row[m] for row in rows) for m in TABLE_MEASURES}
    for measure in TABLE_MEASURES:
        header = COLUMN_TITLES[measure]
        table.add_column(header, justify="right", footer=_cell(measure, totals[measure]), no_wrap=True)
    for row in rows:
        period = row["period"][:7] if granularity == "month" else row["period"].replace("T", " ")[:16]
        cells = [period, *(str(row[n]) if row[n] is not None else "—" for n in names)]
        cells += [_cell(m, row[m]) for m in TABLE_MEASURES]
        table.add_row(*cells)
    console.print(table)
    if not rows:
        console.print("no usage in this period")
        return

    cost_by_group: dict[str, float] = defaultdict(float)
    for row in rows:
        cost_by_group[_group_label(row, names)] += row["cost"]
    ranked = sorted(cost_by_group.items(), key=lambda item: item[1], reverse=True)[:BAR_GROUPS]
    top = ranked[0][1] or 1.0
    width = max(len(label) for label, _ in ranked)
    console.print(f"\ncost per {' · '.join(names) or 'period'} (top {len(ranked)})")
    for label, cost in ranked:
        eighths = round(cost / top * BAR_WIDTH * 8)
        bar = "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]
        console.print(f"{label:<{width}}  [cyan]{bar:<{BAR_WIDTH}}[/cyan]  ${cost:,.2f}", highlight=False)
