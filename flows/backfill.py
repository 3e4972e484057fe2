"""`backfill(start, end, streams)`: re-load a past date range in chunks, then rebuild the models.

Each chunk (GA4 days, HubSpot records created/modified in the chunk) is committed by the connectors;
when a chunk is done the flow records it in ops.sync_state under `backfill:<start>:<end>:<streams>`, so
re-running the same backfill after a crash starts at the first unfinished chunk instead of day one.
Publishing happens only when asked.
Chunks are tasks inside one flow run, not subflows: a sync subflow costs ~1 s of heartbeat join each.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger

from connectors import warehouse
from flows.alerts import on_flow_failure
from flows.common import (
    DEFAULT_LOCK_WAIT_SECONDS,
    PipelineStepError,
    build_outcome,
    failure_cause,
    flow_result,
    new_run_id,
    recorded_flow_run,
)
from flows.concurrency import portal_slot
from flows.locking import warehouse_lock
from flows.settings import database_path, load_settings, open_warehouse, validate_settings
from flows.tasks import (
    build_models_step,
    extract_ga4_step,
    extract_hubspot_step,
    load_spend_step,
    publish_step,
)

DEFAULT_CHUNK_DAYS = 7
# In-process observers of chunk progress (the CLI's progress bar): called with (done, total, chunk_end).
CHUNK_LISTENERS: list[Callable[[int, int, date], None]] = []
MAX_RANGE_DAYS = 3 * 366  # GA4 keeps 14 months by default; a longer range is most likely a typo


class BackfillStream(StrEnum):
    hubspot = "hubspot"
    ga4 = "ga4"
    spend = "spend"


ALL_STREAMS = [s.value for s in BackfillStream]


def chunk_range(start: date, end: date, chunk_days: int) -> list[tuple[date, date]]:
    """Inclusive [start, end] cut into consecutive inclusive chunks of at most chunk_days."""
    chunks, cursor = [], start
    while cursor <= end:
        chunk_end = min(cursor + timedelta(days=chunk_days - 1), end)
        chunks.append((cursor, chunk_end))
        cursor = chunk_end + timedelta(days=1)
    return chunks


def validate_window(start: date, end: date, chunk_days: int) -> None:
    if end < start:
        raise ValueError(f"backfill end {end} is before start {start}: pass --start <= --end.")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValueError(f"backfill range {start}..{end} is longer than {MAX_RANGE_DAYS} days: split it.")
    if end > datetime.now(UTC).date():
        raise ValueError(f"backfill end {end} is in the future: nothing to load after today.")
    if chunk_days < 1:
        raise ValueError(f"chunk_days must be >= 1, not {chunk_days}.")


def _progress_stream(start: date, end: date, streams: list[str]) -> str:
    return f"backfill:{start.isoformat()}:{end.isoformat()}:{'+'.join(sorted(streams))}"


def _done_until(db_path: Path, stream: str) -> date | None:
    """Last chunk end already committed by an earlier attempt of this same backfill."""
    with open_warehouse(db_path, read_only=False) as con:
        cursor = warehouse.get_cursor(con, stream)
    return date.fromisoformat(cursor.value) if cursor and cursor.value else None


def _mark_done(db_path: Path, stream: str, chunk_end: date) -> None:
    with open_warehouse(db_path, read_only=False) as con, warehouse.transaction(con):
        warehouse.set_cursor(con, stream, warehouse.Cursor(value=chunk_end.isoformat()))


def _clear_progress(db_path: Path, stream: str) -> None:
    """The backfill finished: a later run of the same window is a deliberate re-load, not a resume."""
    with open_warehouse(db_path, read_only=False) as con:
        warehouse.clear_cursor(con, stream)


@flow(
    name="backfill",
    description="Re-load a past date range in resumable chunks, rebuild models, publish if asked.",
    on_failure=[on_flow_failure],
)
def backfill(
    start: date,
    end: date,
    portal: str | None = None,
    streams: list[BackfillStream] | None = None,
    publish: bool = False,
    chunk_days: int = DEFAULT_CHUNK_DAYS,
    config_path: str | None = None,
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
    extra_data_tests: str | None = None,
    confirm_spend_removal: bool = False,
) -> dict[str, Any]:
    """Load [start, end] (inclusive, property time zone) of `portal` (default: the only one) for `streams`
    (default: hubspot, ga4, spend).
    `confirm_spend_removal` loads a spend sheet that removes more spend than [spend] max_removed_share."""
    logger = get_run_logger()
    validate_window(start, end, chunk_days)
    wanted = sorted({BackfillStream(s).value for s in streams}) if streams else ALL_STREAMS
    settings = load_settings(config_path, portal)
    validate_settings(
        settings, needs=tuple(s for s in wanted if s != "spend"), extra_data_tests=extra_data_tests
    )
    db_path = database_path(settings)
    run_id = new_run_id("backfill")
    progress_key = _progress_stream(start, end, wanted)

    with (
        # The file lock first: when it is taken, its note names the run holding it.
        warehouse_lock(db_path, run_id=run_id, wait_seconds=lock_wait_seconds),
        portal_slot(settings, wait_seconds=lock_wait_seconds),
        recorded_flow_run(db_path, run_id, "backfill"),
    ):
        chunks = chunk_range(start, end, chunk_days)
        done_until = _done_until(db_path, progress_key)
        todo = [c for c in chunks if done_until is None or c[1] > done_until]
        if done_until:
            logger.info(
                "Resuming %s after %s: %d of %d chunks left", progress_key, done_until, len(todo), len(chunks)
            )
        progress_id = create_progress_artifact(
            progress=100.0 * (len(chunks) - len(todo)) / len(chunks), key="backfill-progress"
        )
        quota_stop = None
        for index, (chunk_start, chunk_end) in enumerate(todo, start=len(chunks) - len(todo) + 1):
            if "ga4" in wanted:
                ga4 = extract_ga4_step(config_path, run_id, start=chunk_start, end=chunk_end, portal=portal)
                if not ga4.complete:
                    # GA4's quota ran out: this chunk is not done; the same backfill resumes it later.
                    quota_stop = (
                        f"GA4 quota spent in chunk {chunk_start}..{chunk_end}; run the same backfill again"
                    )
                    logger.warning("BACKFILL PAUSED: %s.", quota_stop)
                    break
            if "hubspot" in wanted:
                extract_hubspot_step(
                    config_path, run_id, modified_between=(chunk_start, chunk_end), portal=portal
                )
            _mark_done(db_path, progress_key, chunk_end)
            update_progress_artifact(artifact_id=progress_id, progress=100.0 * index / len(chunks))
            for listener in CHUNK_LISTENERS:
                listener(index, len(chunks), chunk_end)
            logger.info("Chunk %d/%d done: %s..%s", index, len(chunks), chunk_start, chunk_end)
        spend_problem = None
        if "spend" in wanted:
            spend_state = load_spend_step(
                config_path, run_id, confirm_removal=confirm_spend_removal, portal=portal, return_state=True
            )
            if not spend_state.is_completed():
                spend_problem = f"spend sheet not loaded ({failure_cause(spend_state)})"
                logger.error("%s", spend_problem)

        tests = build_outcome(
            build_models_step(config_path, run_id, extra_data_tests=extra_data_tests, portal=portal)
        )
        skipped_reason = None
        if not publish:
            skipped_reason = "not requested (backfill publishes only with publish=True / --publish)."
        elif quota_stop or spend_problem:
            skipped_reason = f"the backfill is incomplete: {quota_stop or spend_problem}."
            logger.error("PUBLISH SKIPPED: %s", skipped_reason)
        elif tests[1]:
            skipped_reason = f"{len(tests[1])} data test(s) failed: {', '.join(tests[1])}."
            logger.error("PUBLISH SKIPPED: %s", skipped_reason)
        else:
            publish_step(config_path, run_id, portal=portal)
        if quota_stop is None:
            _clear_progress(db_path, progress_key)
        result = flow_result(
            settings,
            run_id,
            "backfill",
            tests=tests,
            publish_skipped_reason=skipped_reason,
            chunks=len(chunks),
            chunks_run=len(todo),
            complete=quota_stop is None,
        )
        if spend_problem:
            result["failed_steps"] = ["spend"]
            raise PipelineStepError(
                f"backfill run {run_id}: {spend_problem}",
                result,
                fix="fix the sheet (or confirm its removals with --confirm-spend-removal), then run again",
            )
        if tests[1]:
            raise PipelineStepError(
                f"backfill run {run_id}: data tests failed: {', '.join(tests[1])}", result
            )
    return result
