"""Read-only views of a run for artifacts, the CLI and the demo: what the ops tables and marts already say.

Nothing here computes a business number; it selects rows the connectors and models wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from connectors.errors import NotBuiltYetError

ROI_DIMENSIONS = {
    "channel": ("roi_by_channel", ["channel"]),
    "source": ("roi_by_source", ["channel", "source"]),
    "campaign": ("roi_by_campaign", ["channel", "source", "medium", "campaign"]),
}
# What the export and the demo show per row, in this order: (mart column, header). Both ROI bases side by
# side: on revenue ((revenue - cost) / cost) and on gross margin ((margin - cost) / cost, n/a when unknown).
ROI_COLUMNS = [
    ("cost", "investment"),
    ("revenue", "revenue"),
    ("gross_margin", "margin"),
    ("margin_source", "margin_source"),
    ("roi_on_revenue", "roi_on_revenue"),
    ("roi_on_margin", "roi_on_margin"),
    ("roas", "roas"),
    ("cost_per_euro_of_revenue", "cost_per_euro_of_revenue"),
    ("won_deals", "won_deals"),
    ("leads", "leads"),
]
# Headers by kind, for formatting (spreadsheet number formats, terminal tables).
MONEY_HEADERS = frozenset({"investment", "revenue", "margin"})
PERCENT_HEADERS = frozenset({"roi_on_revenue", "roi_on_margin"})
MULTIPLE_HEADERS = frozenset({"roas", "cost_per_euro_of_revenue"})
NOT_AVAILABLE = "n/a"  # how an unknown figure is shown (never as 0)


# ops.sync_runs' stream for the row that records a whole flow run (the other rows are its streams).
FLOW_STREAM = "(flow)"

# Shown when the configured model is not among the built ones (first one present wins).
FALLBACK_MODELS = ("markov", "linear", "last_touch")


@dataclass
class RunSummary:
    run_id: str
    streams: list[dict[str, Any]] = field(default_factory=list)
    rejects: dict[str, int] = field(default_factory=dict)
    publish: list[dict[str, Any]] = field(default_factory=list)
    tests_failed: list[str] = field(default_factory=list)
    tests_passed: int = 0
    published_skipped_reason: str | None = None

    @property
    def total_rows(self) -> int:
        return sum(int(s.get("rows") or 0) for s in self.streams)

    @property
    def records_published(self) -> int:
        return sum(int(p.get("sent") or 0) for p in self.publish)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchall()
    return bool(found[0][0])


def _run_rows(con: duckdb.DuckDBPyConnection, ops_table: str, sql: str, run_id: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` (one ``?`` for the run id); none when ops.<ops_table> was never created."""
    return _rows(con, sql, [run_id]) if table_exists(con, "ops", ops_table) else []


def collect_run_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> RunSummary:
    summary = RunSummary(run_id=run_id)
    summary.streams = _run_rows(
        con,
        "sync_runs",
        "select stream, kind, rows, calls, retries, status, error from ops.sync_runs "
        "where run_id = ? and stream <> '(flow)' order by started_at, stream",
        run_id,
    )
    rejects = _run_rows(
        con,
        "rejects",
        "select source, count(*) as n from ops.rejects where run_id = ? group by source order by source",
        run_id,
    )
    summary.rejects = {r["source"]: int(r["n"]) for r in rejects}
    summary.publish = _run_rows(
        con,
        "publish_log",
        "select object_type, property, desired, changed, sent, failed, skipped from ops.publish_log "
        "where run_id = ? order by object_type, property",
        run_id,
    )
    return summary


def roi_rows(
    con: duckdb.DuckDBPyConnection, by: str = "channel", model: str | None = None
) -> list[dict[str, Any]]:
    """All-time rows (month IS NULL) of roi_by_<by> for one attribution model, biggest revenue first."""
    if by not in ROI_DIMENSIONS:
        raise ValueError(f"--by must be one of {', '.join(ROI_DIMENSIONS)}, not {by!r}")
    table, keys = ROI_DIMENSIONS[by]
    if not table_exists(con, "main", table):
        raise NotBuiltYetError(f"The mart {table} does not exist yet: run `roi run` (or `roi demo`) first.")
    models = attribution_models(con)
    if model is not None and model not in models:
        raise NotBuiltYetError(
            f"Unknown attribution model {model!r}; the warehouse has: {', '.join(models) or 'none'}."
        )
    columns = ", ".join(keys + [c for c, _ in ROI_COLUMNS])
    where = "month is null" + (" and attribution_model = ?" if model else "")
    order = ", ".join(keys)
    return _rows(
        con,
        f"select attribution_model, {columns} from main.{table} where {where} "
        f"order by attribution_model, revenue desc nulls last, {order}",
        [model] if model else [],
    )


def attribution_models(con: duckdb.DuckDBPyConnection) -> list[str]:
    if not table_exists(con, "main", "roi_by_channel"):
        return []
    return [
        r[0]
        for r in con.execute(
            "select distinct attribution_model from main.roi_by_channel order by 1"
        ).fetchall()
    ]


def resolve_model(con: duckdb.DuckDBPyConnection, wanted: str | None) -> str | None:
    """`wanted` if the marts have it, else the first fallback model they have (None when no marts yet)."""
    models = attribution_models(con)
    if wanted in models:
        return wanted
    return next((m for m in FALLBACK_MODELS if m in models), models[0] if models else None)


def as_text(value: Any) -> str:
    """Exact text for a cell: Decimals keep their digits, NULL is empty."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def markdown_summary(summary: RunSummary, *, flow: str, db_path: str | Path) -> str:
    lines = [f"# {flow} run `{summary.run_id}`", "", f"Warehouse: `{db_path}`", ""]
    lines += ["## Extract", "", "| stream | rows | calls | retries | status |", "|---|---:|---:|---:|---|"]
    for s in summary.streams:
        lines.append(
            f"| {s['stream']} | {s.get('rows') or 0} | {s.get('calls') or 0} | {s.get('retries') or 0} "
            f"| {s.get('status') or ''} |"
        )
    if not summary.streams:
        lines.append("| (no stream ran) | | | | |")
    lines += ["", f"Total rows: **{summary.total_rows}**", "", "## Rejects", ""]
    if summary.rejects:
        lines += [f"- {source}: {n}" for source, n in summary.rejects.items()]
        lines.append("\nDetails: `roi status` or `select * from ops.rejects where run_id = '...'`.")
    else:
        lines.append("None.")
    lines += [
        "",
        "## Data tests",
        "",
        f"Passed: {summary.tests_passed}. Failed: {len(summary.tests_failed)}.",
    ]
    lines += [f"- FAILED `{name}`" for name in summary.tests_failed]
    lines += ["", "## Publish", ""]
    if summary.published_skipped_reason:
        lines.append(f"**SKIPPED**: {summary.published_skipped_reason}")
    elif summary.publish:
        lines += [
            "| object | property | desired | changed | sent | failed | skipped |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for p in summary.publish:
            lines.append(
                f"| {p['object_type']} | {p['property']} | {p['desired']} | {p['changed']} | {p['sent']} "
                f"| {p['failed']} | {p['skipped']} |"
            )
        lines.append(f"\nProperty values published: **{summary.records_published}**")
    else:
        lines.append("Nothing published in this run.")
    return "\n".join(lines) + "\n"
