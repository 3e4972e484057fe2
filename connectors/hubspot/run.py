"""What every extract stream shares: its result, the run's context, and its ops run record."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb

from connectors import warehouse as wh
from connectors.config import Settings, redact
from connectors.hubspot.client import CallStats, HubSpotCaller


@dataclass
class StreamResult:
    stream: str
    mode: str
    rows: int = 0
    calls: int = 0
    retries: int = 0
    rejects: int = 0
    associations: int = 0
    deleted: int = 0  # records HubSpot purged, removed from the warehouse
    seconds: float = 0.0
    status: str = "running"
    error: str | None = None
    cursor: str | None = None


@dataclass
class StreamContext:
    settings: Settings
    client: Any
    call: HubSpotCaller
    con: duckdb.DuckDBPyConnection
    run_id: str
    mode: str
    modified_between: tuple[date, date] | None
    assoc_pool: ThreadPoolExecutor
    on_page: Callable[[str, int], None] | None
    # Commits touch shared association tables: one at a time (DuckDB would refuse conflicting deletes).
    commit_lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def recorded_run(
    ctx: StreamContext,
    result: StreamResult,
    con: duckdb.DuckDBPyConnection,
    stats: CallStats,
    on_failure: Callable[[], None] | None = None,
) -> Iterator[wh.RunRecord]:
    """One stream's ops run record around its body: status, redacted error, call counts and timing land in
    ``result`` and ops.runs whatever happens, and the stream's cursor ``con`` is closed at the end."""
    started = time.monotonic()
    run = wh.start_run(con, ctx.run_id, "hubspot_extract", result.stream)
    try:
        yield run
        result.status = "success"
    except BaseException as exc:
        if on_failure is not None:
            on_failure()
        result.status, result.error = "failed", redact(f"{type(exc).__name__}: {exc}", ctx.settings)
        raise
    finally:
        result.calls, result.retries, result.seconds = stats.calls, stats.retries, time.monotonic() - started
        run.rows, run.calls, run.retries = result.rows, stats.calls, stats.retries
        try:
            wh.finish_run(con, run, result.status, result.error)
        finally:
            con.close()
