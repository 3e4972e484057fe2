"""Plumbing shared by the flows: run ids, the warehouse lock, run artifacts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.logging import get_run_logger

from connectors import warehouse
from connectors.config import Settings, redact
from connectors.errors import EXIT_STEP_FAILED, EXIT_TESTS_FAILED, RoiError
from connectors.reports import ReportDataError, roi_artifact_rows
from flows.reporting import FLOW_STREAM, RunSummary, collect_run_summary, markdown_summary
from flows.settings import database_path, default_model, open_warehouse

# Scheduled runs wait this long for a running writer before giving up
# (the deployment concurrency limit already queues them).
DEFAULT_LOCK_WAIT_SECONDS = 600


class PipelineStepError(RoiError):
    """A step or a data test failed; `result` holds the run's summary (what ran, what was skipped).
    Exit code 4 when data tests failed (publishing skipped), 1 when a step failed."""

    def __init__(self, message: str, result: dict[str, Any], fix: str | None = None) -> None:
        super().__init__(message, fix)
        self.result = result

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        failed_step = self.result.get("failed_steps")
        return EXIT_TESTS_FAILED if self.result.get("tests_failed") and not failed_step else EXIT_STEP_FAILED


def failure_cause(state: Any) -> str:
    """One line saying why a task ended in ``state``: the exception's type and first line, secrets removed."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as raised:  # a state whose result cannot be read still has its message
        exc = raised
    if isinstance(exc, BaseException):
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        cause = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    else:
        cause = state.message or state.name
    return redact(cause)


def new_run_id(kind: str) -> str:
    """Sortable, unique, readable: nightly-20261123T020000Z-1a2b3c4d."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{kind}-{stamp}-{uuid.uuid4().hex[:8]}"


@contextmanager
def recorded_flow_run(db_path: Path, run_id: str, kind: str) -> Iterator[None]:
    """One ops.sync_runs row for the whole flow run (stream "(flow)"), so `roi status` lists runs."""
    with open_warehouse(db_path, read_only=False) as con:
        record = warehouse.start_run(con, run_id, kind, FLOW_STREAM)
    try:
        yield
    except BaseException as exc:
        with open_warehouse(db_path, read_only=False) as con:
            warehouse.finish_run(con, record, status="failed", error=redact(f"{type(exc).__name__}: {exc}"))
        raise
    with open_warehouse(db_path, read_only=False) as con:
        warehouse.finish_run(con, record, status="success")


SHOWN_SPANS = 3  # a first run may leave months pending: name a few spans, then count the days


def _days(spans: list[tuple[date, date]]) -> str:
    shown = ", ".join(f"{start}..{end}" if start != end else f"{start}" for start, end in spans[:SHOWN_SPANS])
    more = f" and {len(spans) - SHOWN_SPANS} more span(s)" if len(spans) > SHOWN_SPANS else ""
    total = sum((end - start).days + 1 for start, end in spans)
    return f"{shown}{more} ({total} day{'s' if total != 1 else ''})"


def extract_gaps(db_path: Path, states: dict[str, Any]) -> dict[str, str]:
    """What each source's extract left undone in this run, by source, from the extract task states and the
    warehouse's sync state: the cause first (for a failed task), then the days or records missing.

    An extract is incomplete when its task failed, or when it finished without all its data (a GA4 quota stop:
    `GA4ExtractResult.complete` is False). A skipped optional report or a property that cannot serve cost is
    not incompleteness (TEAM-NOTES, issue 10); rejected rows are not either (they are in ops.rejects).
    """
    from connectors import ga4

    gaps: dict[str, str] = {}
    with open_warehouse(db_path, read_only=False) as con:
        for source, state in states.items():
            failed = not state.is_completed()
            cause = failure_cause(state) if failed else None
            if source == "ga4":
                outcome = None if failed else state.result()
                if failed:
                    pending = ga4.pending_spans(con)
                elif not outcome.complete:
                    pending = outcome.pending
                else:
                    continue
                missing = "; ".join(f"{report} missing {_days(spans)}" for report, spans in pending.items())
                if failed:
                    gaps[source] = f"{cause}; GA4 {missing}" if missing else str(cause)
                else:
                    gaps[source] = (
                        f"GA4 {missing or 'data missing'}: {outcome.stopped_reason or 'stopped early'}"
                    )
            elif failed and source == "hubspot":
                since = [
                    f"{stream} since {cursor}"
                    for stream, cursor in con.execute(
                        "SELECT stream, cursor_value FROM ops.sync_state WHERE stream LIKE 'hubspot_%' "
                        "AND cursor_value IS NOT NULL ORDER BY stream"
                    ).fetchall()
                    if stream in str(cause)
                ]
                gaps[source] = f"{cause}; changes {', '.join(since)} not loaded" if since else str(cause)
            elif failed and source == "spend":
                gaps[source] = f"{cause}; the spend loaded before is unchanged"
            elif failed:
                gaps[source] = str(cause)
    return gaps


class DataTestOutcome(NamedTuple):
    """What the data tests said: how many passed, the blocking failures, the warn-only tests that fired."""

    passed: int
    failed: list[str]
    warned: list[str] = []  # noqa: RUF012 (a NamedTuple default, never mutated)


def build_outcome(build_result: Any) -> DataTestOutcome:
    """(tests passed, names of failed data tests, names of warnings) from models.runner.BuildResult."""
    if build_result is None:
        return DataTestOutcome(0, [])
    tests = list(getattr(build_result, "tests", []) or [])
    warned = [t.name for t in tests if getattr(t, "warns", False)]
    failed = [
        getattr(t, "name", str(t))
        for t in tests
        if not getattr(t, "passed", True) and not getattr(t, "warns", False)
    ]
    return DataTestOutcome(len(tests) - len(failed) - len(warned), failed, warned)


def publish_artifacts(
    db_path: str | Path,
    run_id: str,
    *,
    flow: str,
    default_model: str | None,
    language: str = "fr",
    tests: tuple = DataTestOutcome(0, []),
    publish_skipped_reason: str | None = None,
) -> RunSummary:
    """Markdown summary of the run + table artifact of ROI by channel for the default model, numbers formatted
    as in the report (12 345,67 € ; +12,5 %)."""
    logger = get_run_logger()
    with open_warehouse(db_path, read_only=False) as con:
        summary = collect_run_summary(con, run_id)
        outcome = DataTestOutcome(*tests)
        summary.tests_passed, summary.tests_failed, summary.tests_warned = outcome
        summary.published_skipped_reason = publish_skipped_reason
        try:
            model, roi = roi_artifact_rows(con, default_model, language)
        except ReportDataError as exc:
            logger.warning("No ROI table artifact: %s", exc)
            model, roi = None, []
        if model is not None and model != default_model:
            logger.warning("Model %r is not in the marts; the ROI artifact shows %r.", default_model, model)
    create_markdown_artifact(
        key=f"{flow}-summary",
        markdown=markdown_summary(summary, flow=flow, db_path=db_path),
        description=f"{flow} run {run_id}",
    )
    if roi:
        create_table_artifact(
            key="roi-by-channel",
            table=roi,
            description=f"ROI by channel, all time, model {model} (run {run_id})",
        )
    return summary


def ga4_figures(summary: RunSummary) -> dict[str, Any]:
    """GA4 restrictions as flat result fields: is ad cost read from GA4, the shares not tied to a contact."""
    status = summary.ga4
    cost = status.cost if status else None
    untied = status.untied if status else None
    return {
        "ga4_cost_available": None if cost is None else cost.available,
        "ga4_untied_sessions_share": None if untied is None else untied.untied_sessions_share,
        "ga4_untied_revenue_share": None if untied is None else untied.untied_revenue_share,
    }


def flow_result(
    settings: Settings,
    run_id: str,
    flow: str,
    *,
    tests: tuple,
    publish_skipped_reason: str | None,
    **counts: Any,
) -> dict[str, Any]:
    """Publish the run's artifacts and return what a pipeline flow returns: its run id, the flow's own
    ``counts``, then the run's totals (rows, rejects, failed tests, published values, why not published)."""
    summary = publish_artifacts(
        database_path(settings),
        run_id,
        flow=flow,
        default_model=default_model(settings),
        language=settings.report.language,
        tests=tests,
        publish_skipped_reason=publish_skipped_reason,
    )
    return {
        "run_id": run_id,
        **counts,
        "rows": summary.total_rows,
        "rejects": summary.rejects,
        "tests_failed": summary.tests_failed,
        "tests_warned": summary.tests_warned,
        **ga4_figures(summary),
        "published": summary.records_published,
        "publish_skipped": publish_skipped_reason,
    }
