"""What `roi status` tells, read from the warehouse: the last run and why it ended so, the last success, how
old each source's data is against its ``[freshness]`` thresholds, and what went wrong since the last success.

Nothing here computes a business number: it selects rows the flows and connectors wrote (ops.* and raw.*).
``freshness_problems`` is shared by `roi status --check` and the flows' freshness notification.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from rich.console import RenderableType
from rich.text import Text

from connectors.config import FreshnessThreshold, Settings
from flows.locking import lock_path_for, read_lock_holder
from flows.reporting import FLOW_STREAM, ga4_status, table_exists
from flows.terminal import Column, cell_text, format_int, format_when, key_values, table

OK, WARN, ERROR = "ok", "warn", "error"
RUNNING = "running"


@dataclass
class RunInfo:
    run_id: str
    kind: str
    status: str  # success | failed | running | interrupted
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


@dataclass
class SourceFreshness:
    source: str  # hubspot | ga4 | spend
    label: str  # what is measured, for people
    reference: datetime | date | None  # the moment the age is counted from
    age: timedelta | None
    warn_after: timedelta | None
    error_after: timedelta | None
    level: str  # ok | warn | error

    @property
    def problem(self) -> str | None:
        """One line for --check and notifications when the level is not ok."""
        if self.level == OK:
            return None
        if self.reference is None:
            return f"{self.source}: no data loaded yet ({self.label})"
        limit = self.error_after if self.level == ERROR else self.warn_after
        return (
            f"{self.source}: {self.label} is {describe_age(self.age, in_days=self.in_days)} old "
            f"({self.level} after {describe_age(limit)}; last: {cell_text(self.reference)})"
        )

    @property
    def in_days(self) -> bool:
        """GA4 and spend data are dated by day: their age is a whole number of days."""
        return not isinstance(self.reference, datetime) and self.reference is not None


@dataclass
class StatusReport:
    warehouse: str
    clock: str  # "now", or what data ages are counted from (the sandbox data set's day)
    last_run: RunInfo | None
    last_success: RunInfo | None
    freshness: list[SourceFreshness]
    rejects_since_success: dict[str, int]
    failed_publishes_since_success: int
    recent_runs: list[RunInfo]
    latest_rejects: list[dict[str, Any]]
    failed_publishes: list[dict[str, Any]]
    row_counts: dict[str, int]
    cursors: list[dict[str, Any]]
    # Figures other areas add (GA4 untied share of sessions, ...): name -> {"value", "level", "note"}.
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """What makes `roi status --check` fail: a failed or interrupted last run, data past its error age."""
        found = []
        if self.last_run is None:
            found.append("no pipeline run recorded in this warehouse yet")
        elif self.last_run.status in ("failed", "interrupted"):
            found.append(
                f"last run {self.last_run.run_id} {self.last_run.status}"
                + (f": {self.last_run.error}" if self.last_run.error else "")
            )
        found += [f.problem for f in self.freshness if f.level == ERROR and f.problem]
        found += [
            f"{name}: {figure.get('note') or figure.get('value')}"
            for name, figure in self.figures.items()
            if figure.get("level") == ERROR
        ]
        return found

    def warnings(self) -> list[str]:
        found = [f.problem for f in self.freshness if f.level == WARN and f.problem]
        found += [
            f"{name}: {figure.get('note') or figure.get('value')}"
            for name, figure in self.figures.items()
            if figure.get("level") == WARN
        ]
        return found

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["problems"] = self.problems()
        document["warnings"] = self.warnings()
        for item in document["freshness"]:
            for key in ("age", "warn_after", "error_after"):
                item[f"{key}_seconds"] = None if item[key] is None else int(item.pop(key).total_seconds())
                item.pop(key, None)
        return document


def describe_age(age: timedelta | None, *, in_days: bool = False) -> str:
    """A duration as people say it: 8 s, 45 min, 5 h, 3 days (``in_days``: always days: day-based data)."""
    if age is None:
        return "unknown"
    seconds = max(int(age.total_seconds()), 0)
    if in_days:
        days = seconds // 86400
        return f"{days} day" if days == 1 else f"{days} days"
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Any:
    return con.execute(sql, params or []).fetchone()[0]


def _is_locked(db_path: Path) -> bool:
    """True while a writer holds the warehouse lock (a 'running' row is then really running)."""
    import fcntl

    path = lock_path_for(db_path)
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


def flow_runs(con: duckdb.DuckDBPyConnection, db_path: Path, *, limit: int) -> list[RunInfo]:
    """The last ``limit`` pipeline runs (one row per flow run, newest first); a 'running' row whose writer is
    gone is reported as interrupted."""
    if not table_exists(con, "ops", "sync_runs"):
        return []
    rows = _rows(
        con,
        "select run_id, kind, status, started_at, finished_at, error from ops.sync_runs "
        "where stream = ? order by started_at desc limit ?",
        [FLOW_STREAM, limit],
    )
    holder = read_lock_holder(db_path).get("run_id") if _is_locked(db_path) else None
    runs = []
    for row in rows:
        info = RunInfo(**row)
        if info.status == RUNNING and info.run_id != holder:
            info.status = "interrupted"
            info.error = info.error or "the process ended before recording an outcome (killed or crashed)"
        runs.append(info)
    return runs


def _last_success(con: duckdb.DuckDBPyConnection) -> RunInfo | None:
    if not table_exists(con, "ops", "sync_runs"):
        return None
    rows = _rows(
        con,
        "select run_id, kind, status, started_at, finished_at, error from ops.sync_runs "
        "where stream = ? and status = 'success' and kind in ('nightly', 'backfill') "
        "order by finished_at desc limit 1",
        [FLOW_STREAM],
    )
    return RunInfo(**rows[0]) if rows else None


def _level(age: timedelta | None, threshold: FreshnessThreshold) -> str:
    if age is None:
        return ERROR if threshold.error_after else (WARN if threshold.warn_after else OK)
    if threshold.error_after is not None and age > threshold.error_after:
        return ERROR
    if threshold.warn_after is not None and age > threshold.warn_after:
        return WARN
    return OK


def source_freshness(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, now: datetime, today: date
) -> list[SourceFreshness]:
    """Age of each source against [freshness]: HubSpot since its last successful extract (a quiet portal
    changes nothing for days, so record dates would cry wolf); GA4 and spend since the last day their data
    covers (a broken tag or a spend sheet nobody filled keeps loading "successfully" with nothing new)."""
    found = []
    hubspot_done = None
    if table_exists(con, "ops", "sync_runs"):
        hubspot_done = _scalar(
            con,
            "select max(finished_at) from ops.sync_runs where stream like 'hubspot%' and status = 'success'",
        )
    hubspot_age = (now - hubspot_done) if hubspot_done else None
    found.append(
        SourceFreshness(
            "hubspot",
            "last successful HubSpot extract",
            hubspot_done,
            hubspot_age,
            settings.freshness.hubspot.warn_after,
            settings.freshness.hubspot.error_after,
            _level(hubspot_age, settings.freshness.hubspot),
        )
    )
    for source, label, raw_table, column in (
        ("ga4", "last day with GA4 traffic", "ga4_traffic_daily", "date"),
        ("spend", "last day covered by the spend sheet", "marketing_spend", "period_end"),
    ):
        threshold: FreshnessThreshold = getattr(settings.freshness, source)
        last_day = (
            _scalar(con, f"select max({column}) from raw.{raw_table}")
            if table_exists(con, "raw", raw_table)
            else None
        )
        if isinstance(last_day, datetime):
            last_day = last_day.date()
        age = timedelta(days=(today - last_day).days) if last_day else None
        found.append(
            SourceFreshness(
                source,
                label,
                last_day,
                age,
                threshold.warn_after,
                threshold.error_after,
                _level(age, threshold),
            )
        )
    return found


def collect_status(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    db_path: Path,
    *,
    last: int = 5,
    now: datetime | None = None,
    today: date | None = None,
    clock: str = "now",
) -> StatusReport:
    now = now or datetime.now(UTC)
    today = today or now.date()
    runs = flow_runs(con, db_path, limit=max(last, 1))
    success = _last_success(con)
    since = success.started_at if success else None
    rejects_since: dict[str, int] = {}
    failed_since = 0
    if table_exists(con, "ops", "rejects"):
        rejects_since = {
            r["source"]: int(r["n"])
            for r in _rows(
                con,
                "select source, count(*) as n from ops.rejects where ? is null or rejected_at >= ? "
                "group by source order by source",
                [since, since],
            )
        }
    if table_exists(con, "ops", "publish_failures"):
        failed_since = int(
            _scalar(
                con,
                "select count(*) from ops.publish_failures where ? is null or failed_at >= ?",
                [since, since],
            )
        )
    latest_rejects = (
        _rows(
            con,
            "select source, coalesce(record_id, 'line ' || line::varchar, '') as at, field, reason, "
            "rejected_at from ops.rejects order by rejected_at desc, source, line, record_id limit 10",
        )
        if table_exists(con, "ops", "rejects")
        else []
    )
    failed_publishes = (
        _rows(
            con,
            "select object_type, record_id, status, reason, failed_at from ops.publish_failures "
            "order by failed_at desc limit 10",
        )
        if table_exists(con, "ops", "publish_failures")
        else []
    )
    row_counts = {
        f"raw.{name}": int(_scalar(con, f'select count(*) from raw."{name}"'))
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' order by 1"
        ).fetchall()
    }
    cursors = (
        _rows(con, "select stream, cursor_value, updated_at from ops.sync_state order by stream")
        if table_exists(con, "ops", "sync_state")
        else []
    )
    return StatusReport(
        warehouse=str(db_path),
        clock=clock,
        last_run=runs[0] if runs else None,
        last_success=success,
        freshness=source_freshness(con, settings, now=now, today=today),
        rejects_since_success=rejects_since,
        failed_publishes_since_success=failed_since,
        recent_runs=runs,
        latest_rejects=latest_rejects,
        failed_publishes=failed_publishes,
        row_counts=row_counts,
        cursors=cursors,
        figures=ga4_status(con).figures(),
    )


# ----------------------------------------------------------------------------------------------------------
# What people see (80 columns). `--json` uses StatusReport.as_json instead.

RUN_COLUMNS = (
    Column("run_id", "run", priority=0),
    Column("status", "status", priority=0),
    Column("started_at", "started", kind="when", priority=1),
    Column("took", "took", priority=2),
)
FRESHNESS_COLUMNS = (
    Column("source", "source"),
    Column("last", "last data / extract"),
    Column("age", "age"),
    Column("warn", "warn", priority=2),
    Column("error", "error", priority=2),
    Column("level", "status"),
)
REJECT_COLUMNS = (
    Column("source", "source"),
    Column("at", "record/line", priority=2),
    Column("field", "field", priority=1),
    Column("reason", "reason", wrap=True, max_width=56),
)
FAILED_PUBLISH_COLUMNS = (
    Column("object_type", "object"),
    Column("record_id", "record"),
    Column("status", "HTTP", priority=2),
    Column("reason", "reason", wrap=True, max_width=48),
    Column("failed_at", "when", kind="when", priority=1),
)
LEVEL_STYLE = {OK: "green", WARN: "yellow", ERROR: "bold red"}


def _run_lines(label: str, run: RunInfo, now: datetime) -> list[tuple[str, str]]:
    ago = describe_age(now - run.started_at) + " ago" if run.started_at else "?"
    took = f", took {describe_age(run.duration)}" if run.duration else ""
    lines = [
        (label, f"{run.status.upper()}  {run.run_id}"),
        ("", f"{format_when(run.started_at)}, {ago}{took}"),
    ]
    if run.error:
        lines.append(("", run.error))
    return lines


def render(report: StatusReport, *, now: datetime, show_all: bool = False) -> list[RenderableType]:
    """The status as a few blocks, most important first: last run, last success, freshness, problems."""
    blocks: list[RenderableType] = [Text(f"Warehouse {report.warehouse}")]
    if report.clock != "now":
        blocks.append(Text(f"(data ages counted from {report.clock})"))
    pairs: list[tuple[str, str]] = []
    if report.last_run is None:
        pairs.append(("Last run", "none recorded yet: run `roi run` (or `roi demo`)"))
    else:
        pairs += _run_lines("Last run", report.last_run, now)
    if report.last_success is None:
        pairs.append(("Last success", "never"))
    elif report.last_run is None or report.last_success.run_id != report.last_run.run_id:
        pairs += _run_lines("Last success", report.last_success, now)
    else:
        pairs.append(("Last success", "that run"))
    rejects = sum(report.rejects_since_success.values())
    by_source = ", ".join(f"{s} {format_int(n)}" for s, n in report.rejects_since_success.items())
    pairs.append(
        (
            "Since then" if report.last_success else "All runs",
            f"{format_int(rejects)} rejected rows"
            + (f" ({by_source})" if by_source else "")
            + f", {format_int(report.failed_publishes_since_success)} failed publishes",
        )
    )
    blocks.append(key_values(pairs))
    fresh_rows = [
        {
            "source": f.source,
            "last": f.reference,
            "age": describe_age(f.age, in_days=f.in_days) if f.reference else "no data",
            "warn": describe_age(f.warn_after) if f.warn_after else "off",
            "error": describe_age(f.error_after) if f.error_after else "off",
            "level": f.level.upper(),
        }
        for f in report.freshness
    ]
    blocks.append(table(fresh_rows, FRESHNESS_COLUMNS, title="Freshness ([freshness] in roi.toml)"))
    if report.figures:
        blocks.append(
            key_values(
                [
                    (
                        name,
                        "  ".join(
                            str(figure.get(k, "")) for k in ("value", "level", "note") if figure.get(k)
                        ),
                    )
                    for name, figure in report.figures.items()
                ],
                title="Figures",
            )
        )
    problems, warnings = report.problems(), report.warnings()
    if problems or warnings:
        blocks.append(
            key_values([("ERROR", p) for p in problems] + [("WARN", w) for w in warnings], title="Attention")
        )
    run_rows = [
        {
            "run_id": r.run_id,
            "status": r.status,
            "started_at": r.started_at,
            "took": describe_age(r.duration) if r.duration else "",
        }
        for r in report.recent_runs
    ]
    blocks.append(table(run_rows, RUN_COLUMNS, title=f"Recent runs (last {len(run_rows)})"))
    reasons = [(r.run_id, r.error) for r in report.recent_runs[1:] if r.error]
    if reasons:
        blocks.append(key_values(reasons, title="Why those runs failed"))
    blocks.append(table(report.latest_rejects, REJECT_COLUMNS, title="Latest rejected rows (ops.rejects)"))
    if report.failed_publishes:
        blocks.append(
            table(report.failed_publishes, FAILED_PUBLISH_COLUMNS, title="Failed publishes (latest)")
        )
    if show_all:
        counts = [{"table": name, "rows": n} for name, n in report.row_counts.items()]
        blocks.append(table(counts, (Column("table", "raw table"), Column("rows", "rows", kind="int"))))
        blocks.append(
            table(
                report.cursors,
                (
                    Column("stream", "stream"),
                    Column("cursor_value", "cursor", wrap=True, max_width=40),
                    Column("updated_at", "updated", kind="when", priority=1),
                ),
                title="Cursors (ops.sync_state)",
            )
        )
    return blocks
