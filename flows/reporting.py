"""Read-only views of a run for artifacts, the CLI and the demo: what the ops tables and marts already say.

Nothing here computes a business number; it selects rows the connectors and models wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
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
    tests_warned: list[str] = field(default_factory=list)
    published_skipped_reason: str | None = None
    ga4: Ga4Status | None = None

    @property
    def total_rows(self) -> int:
        return sum(int(s.get("rows") or 0) for s in self.streams)

    @property
    def records_published(self) -> int:
        return sum(int(p.get("sent") or 0) for p in self.publish)


# --- GA4 restrictions: cost availability and traffic not tied to a contact ---------------------------------

DEFAULT_UNTIED_WINDOW_DAYS = 30
SHARE_PLACES = Decimal("0.0001")


@dataclass
class CostStatus:
    """The latest GA4 answer on Google Ads cost (ops.ga4_capabilities)."""

    available: bool
    reason: str | None
    checked_at: datetime
    unavailable_since: datetime | None  # first check of the current run of "unavailable" answers
    was_available_before: bool = False  # unavailable now, but GA4 served cost at an earlier check


@dataclass
class UntiedTraffic:
    """GA4 sessions and purchase revenue not tied to a CRM contact, over the last `window_days` of data."""

    window_days: int
    first_day: date
    last_day: date
    sessions: int
    untied_sessions: int
    revenue: Decimal
    untied_revenue: Decimal
    untied_sessions_by_cause: dict[str, int]  # not_set, other, withheld
    days_thresholded: int
    days_with_other_row: int
    days_without_contact_report: int
    sessions_warn_share: Decimal | None = None
    revenue_warn_share: Decimal | None = None

    @property
    def untied_sessions_share(self) -> Decimal | None:
        return _share(Decimal(self.untied_sessions), Decimal(self.sessions))

    @property
    def untied_revenue_share(self) -> Decimal | None:
        return _share(self.untied_revenue, self.revenue)


@dataclass
class Ga4Status:
    cost: CostStatus | None  # None: cost never checked (no GA4 run yet, or cost report not asked for)
    untied: UntiedTraffic | None  # None: no GA4 traffic loaded yet

    def as_dict(self) -> dict[str, Any]:
        untied = None
        if self.untied is not None:
            untied = {
                **self.untied.__dict__,
                "untied_sessions_share": self.untied.untied_sessions_share,
                "untied_revenue_share": self.untied.untied_revenue_share,
            }
        return {"cost": None if self.cost is None else dict(self.cost.__dict__), "untied": untied}

    def figures(self) -> dict[str, dict[str, Any]]:
        """`roi status` figures (name -> value, level ok|warn, note). Ad cost unavailable is a warning only
        when GA4 served it before (a lost Google Ads link); a property that never had it is just that. An
        untied share warns above the same thresholds as the data test ga4_untied_share."""
        found: dict[str, dict[str, Any]] = {}
        if self.cost is not None:
            if self.cost.available:
                found["GA4 ad cost"] = {"value": "read from GA4", "level": "ok"}
            else:
                since = self.cost.unavailable_since or self.cost.checked_at
                found["GA4 ad cost"] = {
                    "value": f"from the spend sheet since {since:%Y-%m-%d}",
                    "level": "warn" if self.cost.was_available_before else "ok",
                    "note": self.cost.reason,
                }
        u = self.untied
        if u is not None:
            causes = ", ".join(f"{name} {n:,}" for name, n in u.untied_sessions_by_cause.items())
            for label, part, whole, limit, note in (
                ("sessions", Decimal(u.untied_sessions), Decimal(u.sessions), u.sessions_warn_share, causes),
                (
                    "revenue",
                    u.untied_revenue,
                    u.revenue,
                    u.revenue_warn_share,
                    f"{u.untied_revenue:,.2f} of {u.revenue:,.2f}",
                ),
            ):
                share = _share(part, whole)
                above = share is not None and limit is not None and share > limit
                found[f"GA4 {label} not tied to a contact"] = {
                    "value": _pct(part, whole),
                    "level": "warn" if above else "ok",
                    "note": f"{u.first_day}..{u.last_day}: {note}"
                    + (f"; above the {limit * 100:.0f} % warning" if above else ""),
                }
        return found

    def lines(self) -> list[str]:
        """Plain sentences for the terminal and the run summary."""
        out = []
        if self.cost is None:
            out.append("GA4 ad cost: not checked yet.")
        elif self.cost.available:
            out.append("GA4 ad cost: read from GA4 (Google Ads linked).")
        else:
            since = self.cost.unavailable_since or self.cost.checked_at
            out.append(
                f"GA4 ad cost: UNAVAILABLE since {since:%Y-%m-%d}; the spend sheet covers it. "
                f"{self.cost.reason}"
            )
        u = self.untied
        if u is None:
            out.append("GA4 traffic not tied to a contact: no GA4 traffic loaded yet.")
            return out
        causes = ", ".join(f"{name} {n:,}" for name, n in u.untied_sessions_by_cause.items())
        out.append(
            f"GA4 traffic not tied to a contact ({u.first_day} to {u.last_day}): "
            f"sessions {_pct(Decimal(u.untied_sessions), Decimal(u.sessions))} "
            f"({u.untied_sessions:,} of {u.sessions:,}: {causes}), "
            f"revenue {_pct(u.untied_revenue, u.revenue)} ({u.untied_revenue:,.2f} of {u.revenue:,.2f})."
        )
        notes = []
        if u.days_thresholded:
            notes.append(f"{u.days_thresholded} day(s) thresholded by GA4")
        if u.days_with_other_row:
            notes.append(f"{u.days_with_other_row} day(s) with an (other) row")
        if u.days_without_contact_report:
            notes.append(f"{u.days_without_contact_report} day(s) without the contact report")
        if notes:
            out.append("GA4 restrictions seen: " + "; ".join(notes) + ".")
        return out


def _share(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    return (part / whole).quantize(SHARE_PLACES, rounding=ROUND_HALF_UP)


def _pct(part: Decimal, whole: Decimal) -> str:
    """A percentage to 0.1, rounded once from the exact ratio."""
    if not whole:
        return "n/a"
    return f"{(part * 100 / whole).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} %"


def _param(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    if not table_exists(con, "main", "cfg_params"):
        return None
    found = con.execute("select value from main.cfg_params where name = ?", [name]).fetchall()
    return found[0][0] if found else None


def ga4_cost_status(con: duckdb.DuckDBPyConnection) -> CostStatus | None:
    if not table_exists(con, "ops", "ga4_capabilities"):
        return None
    checks = con.execute(
        "select available, reason, checked_at from ops.ga4_capabilities "
        "where capability = 'advertiser_cost' order by checked_at desc"
    ).fetchall()
    if not checks:
        return None
    available, reason, checked_at = checks[0]
    since, before = None, False
    if not available:
        since = checked_at
        for was_available, _, at in checks[1:]:
            if was_available:
                before = True
                break
            since = at
    return CostStatus(bool(available), reason, checked_at, since, before)


def ga4_untied_traffic(
    con: duckdb.DuckDBPyConnection, window_days: int | None = None
) -> UntiedTraffic | None:
    """Untied sessions and revenue over the last `window_days` days of GA4 data (default: the window the last
    build's data test used, [ga4] untied_window_days), from the mart ga4_contact_coverage."""
    if not table_exists(con, "main", "ga4_contact_coverage"):
        return None
    if window_days is None:
        window_days = int(_param(con, "ga4_untied_window_days") or DEFAULT_UNTIED_WINDOW_DAYS)
    row = _rows(
        con,
        """
        with recent as (
            select * from main.ga4_contact_coverage
            where session_date > (select max(session_date) from main.ga4_contact_coverage) - ?::integer
        )
        select
            min(session_date) as first_day, max(session_date) as last_day,
            sum(sessions) as sessions, sum(untied_sessions) as untied_sessions,
            sum(not_set_sessions) as not_set, sum(other_sessions) as other,
            sum(withheld_sessions) as withheld,
            sum(revenue) as revenue, sum(untied_revenue) as untied_revenue,
            count(*) filter (where is_thresholded) as days_thresholded,
            count(*) filter (where has_other_row) as days_with_other_row,
            count(*) filter (where not contact_report_loaded) as days_without_contact_report
        from recent
        """,
        [window_days],
    )[0]
    if row["first_day"] is None:
        return None
    warn_sessions, warn_revenue = (
        _param(con, "ga4_untied_sessions_warn_share"),
        _param(con, "ga4_untied_revenue_warn_share"),
    )
    return UntiedTraffic(
        window_days=window_days,
        first_day=row["first_day"],
        last_day=row["last_day"],
        sessions=int(row["sessions"] or 0),
        untied_sessions=int(row["untied_sessions"] or 0),
        revenue=Decimal(row["revenue"] or 0),
        untied_revenue=Decimal(row["untied_revenue"] or 0),
        untied_sessions_by_cause={
            "not_set": int(row["not_set"] or 0),
            "other": int(row["other"] or 0),
            "withheld": int(row["withheld"] or 0),
        },
        days_thresholded=int(row["days_thresholded"]),
        days_with_other_row=int(row["days_with_other_row"]),
        days_without_contact_report=int(row["days_without_contact_report"]),
        sessions_warn_share=Decimal(warn_sessions) if warn_sessions else None,
        revenue_warn_share=Decimal(warn_revenue) if warn_revenue else None,
    )


def ga4_status(con: duckdb.DuckDBPyConnection, window_days: int | None = None) -> Ga4Status:
    """What GA4 could not give: whether ad cost comes from GA4, and the traffic not tied to a contact."""
    return Ga4Status(ga4_cost_status(con), ga4_untied_traffic(con, window_days))


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
    summary.ga4 = ga4_status(con)
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
    lines += [f"- WARNING `{name}` (does not block publish)" for name in summary.tests_warned]
    if summary.ga4 is not None:
        lines += ["", "## GA4 restrictions", ""]
        lines += [f"- {line}" for line in summary.ga4.lines()]
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
