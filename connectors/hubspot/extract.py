"""HubSpot CRM extract (contacts, deals, line items, their associations, pipelines, property definitions,
the portal's account details).

dlt verified-sources style: one entry point ``extract_hubspot``; the pieces live in their own modules
(client and retries, declared streams, list and search paging, records -> Arrow, staging and commit).

How a stream is read:
- full (first run, or ``mode="full"``): the list endpoint, 100 per page, live then archived records; contacts
  are also searched downward by id at the same time until the two reads meet (``both_ends_pages``).
- incremental: search on the stream's cursor property from (saved cursor - overlap), ascending, 200 per page,
  beating the 10,000-result cap (search.py).
- Pages are staged in ``ops.stage_<stream>`` as they arrive (memory stays flat); at the end the staged rows,
  their associations, merge markings and the new cursor are committed in ONE transaction (staging.py). A run
  killed mid-stream leaves the warehouse as before that stream; the next run starts the stream again from the
  saved cursor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectors import warehouse as wh
from connectors.config import Settings, redact
from connectors.hubspot.associations import ASSOCIATION_BATCH_SIZE, association_rows
from connectors.hubspot.client import (
    CallStats,
    HubSpotCaller,
    HubSpotCallError,
    HubSpotError,
    make_client,
    portal_limiter,
)
from connectors.hubspot.deletions import SWEEP_STREAM, confirm_gone, mark_swept, purge_sweep, sweep_due
from connectors.hubspot.pages import both_ends_pages, list_pages, prefetch
from connectors.hubspot.records import records_to_arrow
from connectors.hubspot.reference import run_account_stream, run_pipelines_stream, run_properties_stream
from connectors.hubspot.run import StreamContext, StreamResult, recorded_run
from connectors.hubspot.search import search_pages, to_iso_utc
from connectors.hubspot.staging import (
    StageWriter,
    commit_object_stream,
    drop_stage,
    prepare_stage,
    stage_name,
)
from connectors.hubspot.streams import (
    ACCOUNT_STREAM,
    CONTACT_DEALS,
    CONTACTS,
    DEAL_LINE_ITEMS,
    DEALS,
    OBJECT_STREAMS,
    PIPELINES_STREAM,
    PROPERTIES_STREAM,
    AssociationStream,
    ObjectStream,
)
from connectors.ratelimit import PortalRateLimiter

log = logging.getLogger(__name__)

# Full reads of contacts also search downward by id (search has its own 5/s allowance): both_ends_pages. Only
# the biggest stream does: search allowance shared by several downward chains would slow each of them.
FULL_READ_FROM_BOTH_ENDS = True
EXTRACT_MEMORY_LIMIT = "128MB"  # DuckDB buffer pool during an extract (spills to disk beyond)
PENDING_ASSOCIATION_BATCHES = 8  # association calls in flight per stream before paging waits (bounds memory)
# An incremental read lists every live record instead of searching when at least this share of them changed
# (typically the night after a publish rewrote most records: HubSpot counts our own writes as changes).
# Search serves 200 records per call at 5 calls/s; the list serves 100 per call inside the 10-second window
# (19 to 25 calls/s), so from about half of the records on, listing them all is the faster read.
LIST_WHEN_CHANGED_SHARE = 0.5
OBJECT_STREAM_NAMES = tuple(s.name for s in OBJECT_STREAMS)
REFERENCE_STREAM_NAMES = (PIPELINES_STREAM, PROPERTIES_STREAM, ACCOUNT_STREAM)


class HubSpotExtractError(HubSpotError):
    """The extract cannot go on (bad token, daily limit, a non-retryable answer); the message says why.

    ``status``: the HTTP status of the first failure when HubSpot refused a call (401, 403, 429 DAILY...),
    None for transient failures, so a task retry policy can tell "retry later" from "fix the settings".
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _association_plan(stream: ObjectStream, full: bool) -> list[tuple[AssociationStream, str]]:
    """Which associations to read for the records of ``stream`` (association, side the records are on)."""
    if stream is DEALS:
        return [(CONTACT_DEALS, "to"), (DEAL_LINE_ITEMS, "from")]
    if full:
        return []  # a full read gets every pair from the deals side
    if stream is CONTACTS:
        return [(CONTACT_DEALS, "from")]
    return [(DEAL_LINE_ITEMS, "to")]


def _changed_ids(con: duckdb.DuckDBPyConnection, stream: ObjectStream, data: pa.Table) -> list[int]:
    """Ids of this page whose cursor value differs from the warehouse (overlap re-reads are skipped)."""
    name = f"__page_{threading.get_ident()}"
    prop = stream.cursor_property
    con.register(name, data.select(["id", prop]))
    try:
        rows = con.execute(
            f"""SELECT p.id FROM {name} p LEFT JOIN {stream.table} t ON t.id = p.id
                WHERE t.id IS NULL OR t.{prop} IS DISTINCT FROM p.{prop} OR t.merged_into_id IS NOT NULL"""
        ).fetchall()
    finally:
        con.unregister(name)
    return [r[0] for r in rows]


def _new_or_changed_archived(
    con: duckdb.DuckDBPyConnection, stream: ObjectStream, data: pa.Table
) -> pa.Table:
    """The rows of an archived-list page the warehouse does not already hold as archived at that time."""
    name = f"__archived_{threading.get_ident()}"
    con.register(name, data.select(["id", "archived_at"]))
    try:
        known = {
            r[0]
            for r in con.execute(
                f"""SELECT p.id FROM {name} p JOIN {stream.table} t ON t.id = p.id
                    WHERE coalesce(t.archived, false) AND t.archived_at IS NOT DISTINCT FROM p.archived_at"""
            ).fetchall()
        }
    finally:
        con.unregister(name)
    if not known:
        return data
    return data.filter(pc.invert(pc.is_in(data["id"], pa.array(sorted(known), pa.int64()))))


def _purge_candidates(
    con: duckdb.DuckDBPyConnection, stream: ObjectStream, *, full: bool, archived_listed: bool
) -> list[tuple[int, str]]:
    """Warehouse records this run's lists say HubSpot no longer has, with how that was seen: an archived row
    missing from the archived list (purged after retention); after a full read, anything not read at all."""
    rows, seen = stage_name(stream.name), stage_name(stream.name, "archived_seen")
    found: dict[int, str] = {}
    if full:
        scope = "" if archived_listed else "AND NOT coalesce(archived, false)"
        for (record_id,) in con.execute(
            f"""SELECT id FROM {stream.table} WHERE merged_into_id IS NULL {scope}
                AND id NOT IN (SELECT id FROM {rows})"""
        ).fetchall():
            found[record_id] = "full_read"
    elif archived_listed:
        for (record_id,) in con.execute(
            f"""SELECT id FROM {stream.table} WHERE coalesce(archived, false) AND merged_into_id IS NULL
                AND id NOT IN (SELECT id FROM {seen}) AND id NOT IN (SELECT id FROM {rows})"""
        ).fetchall():
            found[record_id] = "archived_list"
    return sorted(found.items())


def _modified_pages(
    ctx: StreamContext,
    api_basic: Any,
    api_search: Any,
    stream: ObjectStream,
    properties: list[str],
    since: datetime,
    until: datetime | None,
    live_count: int,
    stats: CallStats,
) -> Iterator[list[dict]]:
    """Records modified since the cursor: search pages, or, when the first answer says most records
    changed, the whole live list (LIST_WHEN_CHANGED_SHARE). Both page by id: writes during the read shift
    nothing."""
    total: list[int] = []
    pages = search_pages(
        ctx.call, api_search, stream, properties, since=since, until=until, stats=stats, on_total=total.append
    )
    for page in pages:
        yield page
        if total and until is None and live_count and total[0] >= LIST_WHEN_CHANGED_SHARE * live_count:
            log.info(
                "%s: %d of ~%d records changed since the cursor: listing them all is faster than searching",
                stream.name,
                total[0],
                live_count,
            )
            pages.close()
            yield from list_pages(ctx.call, api_basic, stream, properties, archived=False, stats=stats)
            return
        total.clear()


def run_object_stream(ctx: StreamContext, stream: ObjectStream) -> StreamResult:
    con = ctx.con.cursor()  # one cursor per thread: DuckDB connections are not shared across threads
    stats = CallStats()
    extra = tuple(ctx.settings.hubspot.extra_properties.get(stream.object_type, ()))
    previous = wh.get_cursor(con, stream.name)
    window = ctx.modified_between
    full = window is None and (ctx.mode == "full" or previous is None or not previous.value)
    result = StreamResult(stream.name, "full" if full else ("window" if window else "incremental"))
    properties = stream.property_names(extra)
    source = f"hubspot.{stream.object_type}"
    plan = _association_plan(stream, full)
    stream_start = datetime.now(UTC)
    max_seen: datetime | None = None
    pending: list[Future] = []
    queued: set[int] = set()  # ids whose associations are read in this run
    stage = StageWriter(con)
    assoc_buffer: list[int] = []

    def collect(done: list[Future]) -> None:
        for future in done:
            assoc, side, ids, rows = future.result()
            stage.add(
                stage_name(stream.name, "assoc_read"),
                pa.table(
                    {
                        "assoc": pa.array([assoc.name] * len(ids), pa.string()),
                        "from_side": pa.array([side] * len(ids), pa.string()),
                        "read_id": pa.array(ids, pa.int64()),
                    }
                ),
            )
            if rows:
                stage.add(
                    stage_name(stream.name, "assoc"),
                    pa.table(
                        {
                            "assoc": pa.array([assoc.name] * len(rows), pa.string()),
                            "from_side": pa.array([side] * len(rows), pa.string()),
                            "from_id": pa.array([r[0] for r in rows], pa.int64()),
                            "to_id": pa.array([r[1] for r in rows], pa.int64()),
                            "association_type_id": pa.array([r[2] for r in rows], pa.int32()),
                        }
                    ),
                )

    def fetch_assoc(assoc: AssociationStream, side: str, ids: list[int]) -> tuple:
        from_type = assoc.from_type if side == "from" else assoc.to_type
        return assoc, side, ids, association_rows(ctx.call, ctx.client, assoc, from_type, ids, stats)

    def submit(ids: list[int]) -> None:
        for assoc, side in plan:
            pending.append(ctx.assoc_pool.submit(fetch_assoc, assoc, side, list(ids)))

    def cancel_pending() -> None:
        for future in pending:
            future.cancel()

    with recorded_run(ctx, result, con, stats, on_failure=cancel_pending) as run:
        api_basic = getattr(ctx.client.crm, stream.object_type).basic_api
        api_search = getattr(ctx.client.crm, stream.object_type).search_api
        # The archived list is read on every run but a backfill window: search never shows deletions.
        archived_listed = window is None and ctx.settings.hubspot.read_archived
        # (pages, whether they are the archived list)
        sources: list[tuple[Iterator[list[dict]], bool]]
        if full:
            live = (
                both_ends_pages(ctx.call, api_basic, api_search, stream, properties, stats=stats)
                if FULL_READ_FROM_BOTH_ENDS and stream.full_read_from_both_ends
                else list_pages(ctx.call, api_basic, stream, properties, archived=False, stats=stats)
            )
            sources = [(live, False)]
        else:
            if window:
                since = datetime.combine(window[0], datetime.min.time(), UTC)
                until: datetime | None = datetime.combine(
                    window[1] + timedelta(days=1), datetime.min.time(), UTC
                )
            else:
                saved = wh.to_utc_datetime(previous.value)  # type: ignore[union-attr]
                since = saved - timedelta(minutes=ctx.settings.hubspot.overlap_minutes)  # type: ignore[operator]
                until = None
            live_count = con.execute(
                f"SELECT count(*) FROM {stream.table} WHERE NOT coalesce(archived, false) "
                "AND merged_into_id IS NULL"
            ).fetchall()[0][0]
            searched = _modified_pages(
                ctx, api_basic, api_search, stream, properties, since, until, live_count, stats
            )
            sources = [(searched, False)]
        if archived_listed:
            archived_pages = list_pages(ctx.call, api_basic, stream, properties, archived=True, stats=stats)
            sources.append((archived_pages, True))
        page_number = 0
        for pages, is_archived_list in sources:
            for records in prefetch(pages):
                page_number += 1
                data, rejects = records_to_arrow(stream, records, extra, ctx.run_id)
                if rejects:
                    result.rejects += wh.record_rejects(con, ctx.run_id, source, rejects)
                if is_archived_list:
                    stage.add(stage_name(stream.name, "archived_seen"), data.select(["id"]))
                    if not full:  # nightly: only archived records new to the warehouse
                        data = _new_or_changed_archived(con, stream, data)
                stage.add(stage_name(stream.name), data)
                if not is_archived_list:  # the cursor follows what search/list showed, not deletions
                    seen = pc.max(data[stream.cursor_property]).as_py() if data.num_rows else None
                    if seen is not None and (max_seen is None or seen > max_seen):
                        max_seen = seen
                if plan and not is_archived_list:
                    live = data.filter(pc.invert(data["archived"]))
                    ids = live["id"].to_pylist() if full else _changed_ids(con, stream, live)
                    # A record can come twice (search overlap, cap drain): read its associations once.
                    fresh = [i for i in ids if i not in queued]
                    queued.update(fresh)
                    assoc_buffer.extend(fresh)
                    while len(assoc_buffer) >= ASSOCIATION_BATCH_SIZE:
                        submit(assoc_buffer[:ASSOCIATION_BATCH_SIZE])
                        del assoc_buffer[:ASSOCIATION_BATCH_SIZE]
                    while len(pending) > PENDING_ASSOCIATION_BATCHES:
                        done, rest = wait(pending, return_when=FIRST_COMPLETED)
                        collect(list(done))
                        pending = list(rest)
                if ctx.on_page is not None:
                    ctx.on_page(stream.name, page_number)
        if assoc_buffer:
            submit(assoc_buffer)
        done, _ = wait(pending)
        collect(list(done))
        stage.flush()
        pending = []
        candidates = _purge_candidates(con, stream, full=full, archived_listed=archived_listed)
        if candidates:
            how = dict(candidates)
            gone = confirm_gone(ctx.call, ctx.client, stream.object_type, list(how), stats)
            stage.add(
                stage_name(stream.name, "purged"),
                pa.table(
                    {
                        "id": pa.array(gone, pa.int64()),
                        "how": pa.array([how[i] for i in gone], pa.string()),
                    }
                ),
            )
            stage.flush()
        cursor = None
        if window is None:
            # Never past our own start (a record changed while we listed may carry an older stamp than the
            # newest one seen); the overlap covers clock skew. Without anything new the cursor stays put.
            new_value = min(max_seen, stream_start) if max_seen else None
            if new_value is None and full:
                new_value = stream_start
            old = wh.to_utc_datetime(previous.value) if previous and previous.value else None
            if new_value is not None and (old is None or new_value > old or full):
                cursor = wh.Cursor(to_iso_utc(new_value), None, {"mode": result.mode})
        result.cursor = cursor.value if cursor else (previous.value if previous else None)
        with ctx.commit_lock:
            result.rows, result.associations, result.deleted = commit_object_stream(
                con, stream, full, cursor, run
            )
        drop_stage(con, stream)
    return result


# ------------------------------------------------------------------------------------------------------------
# Entry point


def extract_hubspot(
    settings: Settings,
    db_path: str | Path,
    run_id: str,
    mode: str = "incremental",
    streams: Sequence[str] | None = None,
    modified_between: tuple[date, date] | None = None,
    *,
    client: Any = None,
    limiter: PortalRateLimiter | None = None,
    on_page: Callable[[str, int], None] | None = None,
) -> dict[str, StreamResult]:
    """Extract HubSpot into ``db_path`` (raw.hubspot_*); returns one StreamResult per stream.

    mode: "incremental" (search from each stream's saved cursor; a stream without one is read in full)
    or "full".
    streams: names from connectors.hubspot.streams (hubspot_contacts, hubspot_deals, hubspot_line_items,
    hubspot_pipelines, hubspot_properties) or object types; None = all.
    modified_between: (first day, last day) UTC: re-read records modified then, cursors untouched (backfill).
    on_page: test hook called as on_page(stream, page_number) after each staged page.
    Streams that succeed are committed even when another fails; then HubSpotExtractError names the failures.
    """
    if mode not in ("incremental", "full"):
        raise ValueError(f"mode must be 'incremental' or 'full', got {mode!r}")
    settings.validate_for("hubspot")
    wanted = _select_streams(streams)
    client = client if client is not None else make_client(settings)
    limiter = limiter or portal_limiter(settings)
    call = HubSpotCaller(limiter, settings)
    con = wh.connect(db_path)
    # DuckDB keeps table data in its buffer pool up to 80% of RAM; a cap makes it spill instead, so the
    # extract's memory stays flat however many records a portal has.
    memory_limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute(f"SET memory_limit = '{EXTRACT_MEMORY_LIMIT}'")
    object_streams = [s for s in OBJECT_STREAMS if s.name in wanted]
    results: dict[str, StreamResult] = {}
    failures: list[str] = []
    first_error: BaseException | None = None
    try:
        for stream in object_streams:
            extra = settings.hubspot.extra_properties.get(stream.object_type, ())
            wh.ensure_columns(con, stream.table, [(e, "VARCHAR") for e in extra])
            prepare_stage(con, stream)
        workers = max(1, settings.hubspot.max_workers)
        with (
            ThreadPoolExecutor(workers, thread_name_prefix="hubspot-assoc") as assoc_pool,
            ThreadPoolExecutor(len(wanted), thread_name_prefix="hubspot-stream") as stream_pool,
        ):
            ctx = StreamContext(
                settings, client, call, con, run_id, mode, modified_between, assoc_pool, on_page
            )
            futures: dict[str, Future] = {}
            # Deals first: they carry two association reads per page, the longest chain of calls.
            for stream in sorted(object_streams, key=lambda s: s is not DEALS):
                futures[stream.name] = stream_pool.submit(run_object_stream, ctx, stream)
            if PIPELINES_STREAM in wanted:
                futures[PIPELINES_STREAM] = stream_pool.submit(run_pipelines_stream, ctx)
            if PROPERTIES_STREAM in wanted:
                futures[PROPERTIES_STREAM] = stream_pool.submit(run_properties_stream, ctx)
            if ACCOUNT_STREAM in wanted:
                futures[ACCOUNT_STREAM] = stream_pool.submit(run_account_stream, ctx)
            for name, future in futures.items():
                try:
                    results[name] = future.result()
                except Exception as exc:
                    failures.append(redact(f"{name}: {exc}", settings))
                    first_error = first_error or exc
                    results[name] = StreamResult(name, mode, status="failed", error=failures[-1])
        if not failures and modified_between is None and len(object_streams) == len(OBJECT_STREAMS):
            try:
                sweep = _sweep_if_due(ctx, object_streams, results)
            except Exception as exc:
                failures.append(redact(f"{SWEEP_STREAM}: {exc}", settings))
                first_error = first_error or exc
                sweep = StreamResult(SWEEP_STREAM, "sweep", status="failed", error=failures[-1])
            if sweep is not None:
                results[SWEEP_STREAM] = sweep
    finally:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.close()
    if failures:
        refused = (
            first_error if isinstance(first_error, HubSpotCallError) and not first_error.retryable else None
        )
        raise HubSpotExtractError(
            "HubSpot extract failed for " + "; ".join(failures), status=refused.status if refused else None
        ) from first_error
    return results


def _sweep_if_due(
    ctx: StreamContext, object_streams: list[ObjectStream], results: dict[str, StreamResult]
) -> StreamResult | None:
    """The periodic purge sweep (deletions.py), when ``[hubspot] purge_sweep_days`` have passed. A run that
    read every object type in full has just seen everything: it counts as a sweep."""
    con = ctx.con.cursor()
    try:
        now = datetime.now(UTC)
        if all(results[s.name].mode == "full" for s in object_streams):
            mark_swept(con, now, "full_read")
            return None
        if not sweep_due(con, ctx.settings.hubspot.purge_sweep_days, now):
            return None
    finally:
        con.close()
    stats = CallStats()
    result = StreamResult(SWEEP_STREAM, "sweep")
    with recorded_run(ctx, result, ctx.con.cursor(), stats) as run:
        sweep_con = ctx.con.cursor()
        try:
            for stream in object_streams:
                result.deleted += purge_sweep(ctx.call, ctx.client, sweep_con, stream, run.run_id, stats)
            mark_swept(sweep_con, now, "sweep")
        finally:
            sweep_con.close()
        result.rows = result.deleted
    return result


def _select_streams(streams: Sequence[str] | None) -> list[str]:
    every = [*OBJECT_STREAM_NAMES, *REFERENCE_STREAM_NAMES]
    if not streams:
        return every
    chosen = []
    aliases = {s.object_type: s.name for s in OBJECT_STREAMS} | {
        "pipelines": PIPELINES_STREAM,
        "properties": PROPERTIES_STREAM,
        "account": ACCOUNT_STREAM,
    }
    for name in streams:
        resolved = aliases.get(name, name)
        if resolved not in every:
            raise ValueError(f"Unknown HubSpot stream {name!r}: use one of {', '.join(every)}")
        chosen.append(resolved)
    return chosen


__all__ = ["HubSpotExtractError", "StreamResult", "extract_hubspot"]
