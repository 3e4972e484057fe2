"""HubSpot CRM extract (contacts, deals, line items, their associations, pipelines, property definitions).

dlt verified-sources style: settings as constants at the top, generators yielding pages, one entry point
``extract_hubspot``. It uses the official ``hubspot-api-client`` with its own retries switched off: every
attempt goes through the portal's shared ``PortalRateLimiter`` and ``HubSpotCaller`` retries 429 / 5xx /
timeouts / dropped connections for every method, POST included (the SDK's urllib3 Retry would skip POST).

How a stream is read:
- full (first run, or ``mode="full"``): the list endpoint, 100 per page, live then archived records; contacts
  are also searched downward by id at the same time until the two reads meet (``both_ends_pages``).
- incremental: search on the stream's cursor property from (saved cursor - overlap), ascending, 200 per page.
  Search stops at 10,000 results per query; when a query reaches the cap the records at its last timestamp T
  are drained separately (``cursor = T``, sorted by hs_object_id, ``hs_object_id > last`` restarting every
  10,000) and the main query restarts at ``cursor > T``. Every query strictly raises a bound, so nothing
  loops, and a bulk update of 50,000 records at one timestamp is read whole.
- Pages are staged in ``ops.stage_<stream>`` as they arrive (memory stays flat); at the end the staged rows,
  their associations, merge markings and the new cursor are committed in ONE transaction. A run killed
  mid-stream leaves the warehouse as before that stream; the next run starts the stream again from the saved
  cursor.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectors import warehouse as wh
from connectors.config import ConfigError, Settings, redact
from connectors.ratelimit import PortalRateLimiter
from connectors.streams import (
    CONTACT_DEALS,
    CONTACTS,
    DEAL_LINE_ITEMS,
    DEALS,
    OBJECT_STREAMS,
    PIPELINES_STREAM,
    PIPELINES_TABLE,
    PROPERTIES_STREAM,
    PROPERTIES_TABLE,
    STAGES_TABLE,
    AssociationStream,
    ObjectStream,
)

log = logging.getLogger(__name__)

LIST_PAGE_SIZE = 100  # HubSpot's maximum for GET /crm/v3/objects/{type}
SEARCH_PAGE_SIZE = 200  # maximum for POST .../search
SEARCH_RESULT_CAP = 10_000  # a search query never pages past this many results (400)
ASSOCIATION_BATCH_SIZE = 1_000  # ids per v4 batch read: HubSpot's maximum (each call counts)
MAX_ATTEMPTS = 8  # per HTTP call
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 8.0
TEN_SECONDLY_PAUSE_SECONDS = 10.0  # a 429 on the burst window: let HubSpot's 10 s window drain
SECONDLY_PAUSE_SECONDS = 1.0  # a 429 on search's per-second limit
REQUEST_TIMEOUT_SECONDS = (5.0, 60.0)  # (connect, read)
PREFETCH_PAGES = 2
# Full reads of contacts also search downward by id (search has its own 5/s allowance): both_ends_pages. Only
# the biggest stream does: search allowance shared by several downward chains would slow each of them.
FULL_READ_FROM_BOTH_ENDS = True  # pages fetched ahead of the one being staged
EXTRACT_MEMORY_LIMIT = "128MB"  # DuckDB buffer pool during an extract (spills to disk beyond)
STAGE_FLUSH_ROWS = 5_000  # staged rows buffered in memory before one insert
PENDING_ASSOCIATION_BATCHES = 8  # association calls in flight per stream before paging waits (bounds memory)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
STAGE_SCHEMA = "ops"
OBJECT_STREAM_NAMES = tuple(s.name for s in OBJECT_STREAMS)
REFERENCE_STREAM_NAMES = (PIPELINES_STREAM, PROPERTIES_STREAM)
# A reverse association read (deal -> contact) is stored with the type id of the table's direction.
REVERSE_TYPE_IDS = {3: 4, 4: 3, 19: 20, 20: 19}


class HubSpotExtractError(RuntimeError):
    """The extract cannot go on (bad token, daily limit, a non-retryable answer); the message says why."""


class DailyLimitReached(HubSpotExtractError):
    pass


@dataclass
class StreamResult:
    stream: str
    mode: str
    rows: int = 0
    calls: int = 0
    retries: int = 0
    rejects: int = 0
    associations: int = 0
    seconds: float = 0.0
    status: str = "running"
    error: str | None = None
    cursor: str | None = None


# ------------------------------------------------------------------------------------------------------------
# HTTP calls with retries through the shared limiter


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, calls: int = 0, retries: int = 0) -> None:
        with self.lock:
            self.calls += calls
            self.retries += retries


def _is_transport_error(exc: BaseException) -> bool:
    """urllib3 MaxRetryError / ProtocolError / timeouts, or the SDK's status-0 ApiException."""
    import urllib3.exceptions as u3

    if isinstance(exc, u3.HTTPError | ConnectionError | TimeoutError):
        return True
    return getattr(exc, "status", None) == 0


def _error_body(exc: BaseException) -> dict:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {"message": str(body)[:300]}
    return parsed if isinstance(parsed, dict) else {}


class HubSpotCaller:
    """Runs one SDK call: a limiter slot, then retries with backoff + jitter on transient failures."""

    def __init__(
        self,
        limiter: PortalRateLimiter,
        settings: Settings | None = None,
        stop: threading.Event | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limiter = limiter
        self.settings = settings
        self.stop = stop or threading.Event()
        self._sleep = sleep
        self._rng = random.Random()

    def __call__(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        kind: str = "default",
        stats: CallStats | None = None,
        **kwargs: Any,
    ) -> Any:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_SECONDS)
        kwargs.setdefault("_preload_content", False)  # raw JSON: faster than SDK models, and kept as _raw
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self.stop.is_set():
                raise HubSpotExtractError(f"{what}: stopped because another stream hit a fatal error")
            self.limiter.acquire(kind)
            if stats:
                stats.add(calls=1)
            try:
                response = fn(*args, **kwargs)
                if kwargs.get("_preload_content") is False:
                    try:
                        return json.loads(response.data or b"{}")
                    finally:
                        response.release_conn()
                return response
            except Exception as exc:
                delay = self._retry_delay(what, exc, attempt)
            if stats:
                stats.add(retries=1)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _retry_delay(self, what: str, exc: Exception, attempt: int) -> float:
        status = getattr(exc, "status", None)
        backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        backoff = backoff / 2 + self._rng.random() * backoff / 2  # jitter: threads don't retry in lockstep
        truncated = status is None and isinstance(
            exc, ValueError
        )  # body cut off mid-read (dropped connection)
        if _is_transport_error(exc) or truncated or (status in RETRYABLE_STATUSES and status != 429):
            reason = f"{type(exc).__name__} {status or ''}".strip()
        elif status == 429:
            body = _error_body(exc)
            policy = str(body.get("policyName") or "").upper()
            if policy == "DAILY":
                self.stop.set()
                raise DailyLimitReached(
                    f"{what}: the portal's DAILY API limit is used up ({body.get('message', '')}). "
                    "The run stops; it resumes from the saved cursors after the limit resets at midnight "
                    "(portal time zone)."
                ) from None
            if policy == "SECONDLY":
                backoff = max(backoff, SECONDLY_PAUSE_SECONDS)
            else:
                # The 10-second window is shared by every thread of the portal: hold them all.
                self.limiter.pause(TEN_SECONDLY_PAUSE_SECONDS)
                backoff = 0.0
            reason = f"429 {policy or 'rate limit'}"
        else:
            body = _error_body(exc)
            message = body.get("message") or getattr(exc, "reason", None) or str(exc)
            hint = ""
            if status == 401:
                hint = " Fix: check HUBSPOT_ACCESS_TOKEN (expired or revoked private app token)."
                self.stop.set()
            elif status == 403:
                hint = " Fix: give the private app the crm.objects.*.read and crm.schemas.*.read scopes."
                self.stop.set()
            raise HubSpotExtractError(
                redact(f"{what}: HubSpot answered {status}: {message}.{hint}", self.settings)
            ) from None
        if attempt >= MAX_ATTEMPTS:
            raise HubSpotExtractError(
                redact(
                    f"{what}: still failing after {attempt} attempts ({reason}); try again later.",
                    self.settings,
                )
            ) from None
        log.debug("retrying %s after %s (attempt %d, %.2fs)", what, reason, attempt, backoff)
        return backoff


def make_client(settings: Settings) -> Any:
    """The official SDK client for the configured portal, with SDK-level retries switched off."""
    from hubspot import HubSpot
    from urllib3.util.retry import Retry

    token = settings.hubspot_token
    if not token:
        raise ConfigError(
            "HubSpot access token is missing: set HUBSPOT_ACCESS_TOKEN or hubspot_access_token in roi.toml."
        )
    # Retry(0): a failure surfaces at once, so HubSpotCaller retries it through the limiter (POST included).
    return HubSpot(access_token=token, host=settings.hubspot_base_url, retry=Retry(0, redirect=False))


# ------------------------------------------------------------------------------------------------------------
# Page generators


def _ms(value: datetime) -> str:
    return str(int(value.timestamp() * 1000))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(pages: Iterator[list[dict]], depth: int = PREFETCH_PAGES) -> Iterator[list[dict]]:
    """The same pages, fetched by a helper thread ``depth`` pages ahead: the next HTTP round trip overlaps the
    conversion and staging of the current page (a stream's pages are a sequential chain of cursors)."""
    return _pages_in_threads([pages], depth, "hubspot-prefetch")


def list_pages(
    call: HubSpotCaller,
    api: Any,
    stream: ObjectStream,
    properties: list[str],
    *,
    archived: bool,
    stats: CallStats,
) -> Iterator[list[dict]]:
    """Every record of the object type (live, or archived ones), 100 per page, in id order."""
    after = None
    while True:
        page = call(
            f"list {stream.object_type}",
            api.get_page,
            limit=LIST_PAGE_SIZE,
            after=after,
            properties=properties,
            archived=archived,
            stats=stats,
        )
        results = page.get("results") or []
        if results:
            yield results
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return


def _search_body(filters: list[dict], sort_property: str, direction: str, properties: list[str]) -> dict:
    return {
        "filterGroups": [{"filters": filters}] if filters else [],
        "sorts": [{"propertyName": sort_property, "direction": direction}],
        "properties": properties,
        "limit": SEARCH_PAGE_SIZE,
    }


class _SearchQuery:
    """The pages (results lists) of one search query. Afterwards ``capped`` says whether it stopped because
    the next page would pass the 10,000-result cap: the caller then restarts with a tighter filter."""

    def __init__(self, call: HubSpotCaller, api: Any, what: str, body: dict, stats: CallStats) -> None:
        self.call, self.api, self.what, self.body, self.stats = call, api, what, body, stats
        self.capped = False

    def __iter__(self) -> Iterator[list[dict]]:
        offset = 0
        while True:
            page = self.call(
                self.what,
                self.api.do_search,
                public_object_search_request={**self.body, "after": str(offset)},
                kind="search",
                stats=self.stats,
            )
            yield page.get("results") or []
            next_after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not next_after:
                return
            offset = int(next_after)
            if offset >= SEARCH_RESULT_CAP:
                self.capped = True
                return


def both_ends_pages(
    call: HubSpotCaller,
    basic_api: Any,
    search_api: Any,
    stream: ObjectStream,
    properties: list[str],
    *,
    stats: CallStats,
) -> Iterator[list[dict]]:
    """Every live record, read from both ends at once until the two meet: list pages upward by id and search
    pages downward by hs_object_id. A list read is a chain of cursors, bound by latency; search has its own
    allowance (5/s, outside the 10-second window), so the second chain costs no burst capacity."""
    lock = threading.Lock()
    seen = {"listed_up_to": -1, "searched_down_to": None}  # highest id listed, lowest id searched

    def upward() -> Iterator[list[dict]]:
        for page in list_pages(call, basic_api, stream, properties, archived=False, stats=stats):
            with lock:
                seen["listed_up_to"] = max(seen["listed_up_to"], max(int(r["id"]) for r in page))
                floor = seen["searched_down_to"]
            yield page if floor is None else [r for r in page if int(r["id"]) < floor]
            if floor is not None and seen["listed_up_to"] >= floor:
                return

    def downward() -> Iterator[list[dict]]:
        below: int | None = None
        while True:
            filters = (
                [{"propertyName": "hs_object_id", "operator": "LT", "value": str(below)}] if below else []
            )
            body = _search_body(filters, "hs_object_id", "DESCENDING", properties)
            query = _SearchQuery(call, search_api, f"search {stream.object_type} by id", body, stats)
            for results in query:
                if not results:
                    return
                with lock:
                    listed = seen["listed_up_to"]
                    below = int(results[-1]["id"])  # lowest id so far: the next query restarts under it
                    seen["searched_down_to"] = below
                yield [r for r in results if int(r["id"]) > listed]
                if below <= listed:
                    return
            if not query.capped:
                return

    yield from _pages_in_threads([upward(), downward()], PREFETCH_PAGES, "hubspot-read")


def _pages_in_threads(
    generators: list[Iterator[list[dict]]], depth: int, thread_name: str
) -> Iterator[list[dict]]:
    """Pages of the generators, each run in its own thread up to ``depth`` pages ahead, in arrival order
    (empty pages dropped); the first error raises here. When the consumer stops, the threads quit at their
    next page."""
    out: queue.Queue = queue.Queue(depth * len(generators))
    stop = threading.Event()
    finished = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(gen: Iterator[list[dict]]) -> None:
        try:
            for page in gen:
                if not put(page):
                    return
        except BaseException as exc:
            put(_Failed(exc))
            return
        put(finished)

    for gen in generators:
        threading.Thread(target=run, args=(gen,), name=thread_name, daemon=True).start()
    running = len(generators)
    try:
        while running:
            item = out.get()
            if item is finished:
                running -= 1
            elif isinstance(item, _Failed):
                raise item.exc
            elif item:
                yield item
    finally:
        stop.set()


def search_pages(
    call: HubSpotCaller,
    api: Any,
    stream: ObjectStream,
    properties: list[str],
    *,
    since: datetime,
    until: datetime | None,
    stats: CallStats,
) -> Iterator[list[dict]]:
    """Records with since <= cursor (< until), ascending, beating the 10,000-result cap (module doc)."""
    prop = stream.cursor_property
    upper = [{"propertyName": prop, "operator": "LT", "value": _ms(until)}] if until else []
    lower: dict = {"propertyName": prop, "operator": "GTE", "value": _ms(since)}
    while True:
        body = _search_body([lower, *upper], prop, "ASCENDING", properties)
        last_value: str | None = None
        query = _SearchQuery(call, api, f"search {stream.object_type}", body, stats)
        for results in query:
            if results:
                last_value = results[-1]["properties"].get(prop) or last_value
                yield results
        if not query.capped or last_value is None:
            return
        # Cap reached: read everything at exactly the last timestamp by id, then go on strictly after it.
        at = wh.to_utc_datetime(last_value)
        assert at is not None
        yield from _drain_timestamp(call, api, stream, properties, at, stats)
        lower = {"propertyName": prop, "operator": "GT", "value": _ms(at)}


def _drain_timestamp(
    call: HubSpotCaller, api: Any, stream: ObjectStream, properties: list[str], at: datetime, stats: CallStats
) -> Iterator[list[dict]]:
    prop = stream.cursor_property
    last_id: int | None = None
    while True:
        filters: list[dict] = [{"propertyName": prop, "operator": "EQ", "value": _ms(at)}]
        if last_id is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)})
        body = _search_body(filters, "hs_object_id", "ASCENDING", properties)
        query = _SearchQuery(call, api, f"search {stream.object_type} at {_iso(at)}", body, stats)
        for results in query:
            if results:
                last_id = int(results[-1]["id"])
                yield results
        if not query.capped:
            return


def association_rows(
    call: HubSpotCaller,
    client: Any,
    assoc: AssociationStream,
    from_type: str,
    ids: Sequence[int],
    stats: CallStats,
) -> list[tuple[int, int, int | None]]:
    """(table from id, table to id, type id) for each association of ``ids`` (of ``from_type``), all pages."""
    reverse = from_type != assoc.from_type
    to_type = assoc.from_type if reverse else assoc.to_type
    api = client.crm.associations.v4.batch_api
    rows: list[tuple[int, int, int | None]] = []
    pending: list[dict] = [{"id": str(i)} for i in ids]
    while pending:
        page = call(
            f"associations {from_type}->{to_type}",
            api.get_page,
            from_type,
            to_type,
            {"inputs": pending},
            stats=stats,
        )
        pending = []
        for result in page.get("results") or []:
            source = int((result.get("from") or result.get("_from") or {})["id"])
            for link in result.get("to") or []:
                types = link.get("associationTypes") or []
                defined = [t for t in types if t.get("category") == "HUBSPOT_DEFINED"] or types
                type_id = defined[0].get("typeId") if defined else None
                target = int(link["toObjectId"])
                if reverse:
                    rows.append((target, source, REVERSE_TYPE_IDS.get(type_id, type_id)))
                else:
                    rows.append((source, target, type_id))
            after = ((result.get("paging") or {}).get("next") or {}).get("after")
            if after:
                pending.append({"id": str(source), "after": after})
    return rows


# ------------------------------------------------------------------------------------------------------------
# Records -> typed Arrow


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "datetime": wh.to_utc_datetime,
    "date": wh.to_date,
    "money": lambda v: wh.to_decimal(v, 2),
    "unit": lambda v: wh.to_decimal(v, 4),
    "bool": wh.to_bool,
    "bigint": wh.to_bigint,
}
_ARROW_TYPES = {
    "string": pa.string(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "money": pa.decimal128(18, 2),
    "unit": pa.decimal128(18, 4),
    "bool": pa.bool_(),
    "bigint": pa.int64(),
}


def records_to_arrow(
    stream: ObjectStream, records: list[dict], extra: Sequence[str], run_id: str
) -> tuple[pa.Table, list[wh.Reject]]:
    """Typed columns for one page; a value that does not parse becomes NULL and a Reject (record, field)."""
    typed = [*stream.properties, *((e, "string") for e in extra if e not in dict(stream.properties))]
    columns: dict[str, list] = {name: [] for name, _ in typed}
    ids, raws, archived, archived_at = [], [], [], []
    rejects: list[wh.Reject] = []
    for record in records:
        record_id = str(record.get("id"))
        try:
            ids.append(int(record_id))
        except ValueError:
            rejects.append(
                wh.Reject(record_id, "id", record_id, "record id is not an integer; record skipped")
            )
            continue
        props = record.get("properties") or {}
        for name, kind in typed:
            value = props.get(name)
            convert = _CONVERTERS.get(kind)
            if convert is not None and value is not None:
                try:
                    value = convert(value)
                except wh.ConversionError as exc:
                    rejects.append(wh.Reject(record_id, name, str(value), f"{stream.object_type}: {exc}"))
                    value = None
            elif value is not None and not isinstance(value, str):
                value = str(value)
            columns[name].append(value)
        raws.append(json.dumps(record, separators=(",", ":"), default=str))
        archived.append(bool(record.get("archived")))
        archived_at.append(wh.to_utc_datetime(record.get("archivedAt")) if record.get("archivedAt") else None)
    arrays = {"id": pa.array(ids, pa.int64())}
    for name, kind in typed:
        arrays[name] = pa.array(columns[name], _ARROW_TYPES[kind])
    arrays["_raw"] = pa.array(raws, pa.string())
    arrays["archived"] = pa.array(archived, pa.bool_())
    arrays["archived_at"] = pa.array(archived_at, pa.timestamp("us", tz="UTC"))
    arrays["_run_id"] = pa.array([run_id] * len(ids), pa.string())
    arrays["_loaded_at"] = pa.array([datetime.now(UTC)] * len(ids), pa.timestamp("us", tz="UTC"))
    return pa.table(arrays), rejects


# ------------------------------------------------------------------------------------------------------------
# Staging and commit


def _stage_name(stream: str, part: str = "rows") -> str:
    return f"{STAGE_SCHEMA}.stage_{stream}__{part}"


class StageWriter:
    """Buffers staged pages and writes them ``STAGE_FLUSH_ROWS`` at a time: one DuckDB commit per page would
    cost a WAL sync each, while buffering everything would make memory grow with the number of records."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._buffers: dict[str, list[pa.Table]] = {}
        self._rows = 0

    def add(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        self._buffers.setdefault(table, []).append(data)
        self._rows += data.num_rows
        if self._rows >= STAGE_FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        name = f"__stage_{threading.get_ident()}"
        with wh.transaction(self.con):
            for table, parts in self._buffers.items():
                self.con.register(name, pa.concat_tables(parts, promote_options="default"))
                try:
                    self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}").fetchall()
                finally:
                    self.con.unregister(name)
        self._buffers.clear()
        self._rows = 0


def _prepare_stage(con: duckdb.DuckDBPyConnection, stream: ObjectStream) -> None:
    """Fresh staging tables for one stream (a killed run's leftovers are replaced)."""
    con.execute(f"CREATE OR REPLACE TABLE {_stage_name(stream.name)} AS SELECT * FROM {stream.table} LIMIT 0")
    con.execute(
        f"CREATE OR REPLACE TABLE {_stage_name(stream.name, 'assoc')} (assoc VARCHAR, from_side VARCHAR, "
        "from_id BIGINT, to_id BIGINT, association_type_id INTEGER)"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {_stage_name(stream.name, 'assoc_read')} (assoc VARCHAR, "
        "from_side VARCHAR, read_id BIGINT)"
    )


def _drop_stage(con: duckdb.DuckDBPyConnection, stream: ObjectStream) -> None:
    for part in ("rows", "assoc", "assoc_read"):
        con.execute(f"DROP TABLE IF EXISTS {_stage_name(stream.name, part)}")


def _commit_object_stream(
    con: duckdb.DuckDBPyConnection,
    stream: ObjectStream,
    full: bool,
    cursor: wh.Cursor | None,
    run: wh.RunRecord,
) -> tuple[int, int]:
    """Staged rows -> target (last read wins), associations replaced per record read, merges marked, cursor:
    all in one transaction. Returns (rows, association rows)."""
    rows_stage = _stage_name(stream.name)
    assoc_stage = _stage_name(stream.name, "assoc")
    read_stage = _stage_name(stream.name, "assoc_read")
    target = stream.table
    with wh.transaction(con):
        con.execute(f"DELETE FROM {target} WHERE id IN (SELECT id FROM {rows_stage})")
        # A record read twice (overlap, cap drain, both ends meeting): the live, most recently read copy wins.
        written = con.execute(
            f"""INSERT INTO {target} BY NAME SELECT * EXCLUDE (__pick) FROM (
                    SELECT *, row_number() OVER (PARTITION BY id ORDER BY archived, _loaded_at DESC) AS __pick
                    FROM {rows_stage}) WHERE __pick = 1"""
        ).fetchall()[0][0]
        # Merges: a winner lists its losers in hs_merged_object_ids; their rows stay, marked, and lose their
        # associations (HubSpot moved them to the winner).
        merged_from = (
            f"""SELECT id, unnest(string_split(hs_merged_object_ids, ';')) AS loser FROM {rows_stage}
                WHERE coalesce(hs_merged_object_ids, '') <> ''"""
            if "hs_merged_object_ids" in dict(stream.properties)
            else "SELECT NULL::BIGINT AS id, NULL::VARCHAR AS loser WHERE false"  # line items never merge
        )
        con.execute(f"""CREATE OR REPLACE TEMP TABLE __merged_{stream.name} AS
            SELECT DISTINCT TRY_CAST(trim(loser) AS BIGINT) AS loser_id, id AS winner_id FROM ({merged_from})
            WHERE TRY_CAST(trim(loser) AS BIGINT) IS NOT NULL AND TRY_CAST(trim(loser) AS BIGINT) <> id""")
        con.execute(f"""UPDATE {target} AS t SET merged_into_id = m.winner_id FROM __merged_{stream.name} AS m
                        WHERE t.id = m.loser_id""")
        assoc_rows = 0
        for assoc in (CONTACT_DEALS, DEAL_LINE_ITEMS):
            side_cols = {"from": assoc.from_column, "to": assoc.to_column}
            if stream.object_type in (assoc.from_type, assoc.to_type):
                own = assoc.from_column if stream.object_type == assoc.from_type else assoc.to_column
                con.execute(
                    f"DELETE FROM {assoc.table} WHERE {own} IN (SELECT loser_id FROM __merged_{stream.name})"
                )
            if full and stream is DEALS:
                # A full read of deals re-reads every deal's associations: drop pairs of deals that are gone.
                con.execute(f"DELETE FROM {assoc.table}")
            for side, column in side_cols.items():
                con.execute(
                    f"DELETE FROM {assoc.table} WHERE {column} IN "
                    f"(SELECT read_id FROM {read_stage} WHERE assoc = ? AND from_side = ?)",
                    [assoc.name, side],
                )
            n = con.execute(
                f"""INSERT INTO {assoc.table} ({assoc.from_column}, {assoc.to_column}, association_type_id,
                        _loaded_at, _run_id)
                    SELECT from_id, to_id, any_value(association_type_id), now(), ? FROM {assoc_stage}
                    WHERE assoc = ? GROUP BY from_id, to_id""",
                [run.run_id, assoc.name],
            ).fetchall()[0][0]
            assoc_rows += n
        if cursor is not None:
            wh.set_cursor(con, stream.name, cursor)
        con.execute(f"DROP TABLE __merged_{stream.name}")
    return int(written), int(assoc_rows)


# ------------------------------------------------------------------------------------------------------------
# One object stream


@dataclass
class _Context:
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
def _recorded_run(
    ctx: _Context,
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


def run_object_stream(ctx: _Context, stream: ObjectStream) -> StreamResult:
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
                _stage_name(stream.name, "assoc_read"),
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
                    _stage_name(stream.name, "assoc"),
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

    with _recorded_run(ctx, result, con, stats, on_failure=cancel_pending) as run:
        api_basic = getattr(ctx.client.crm, stream.object_type).basic_api
        api_search = getattr(ctx.client.crm, stream.object_type).search_api
        if full:
            live = (
                both_ends_pages(ctx.call, api_basic, api_search, stream, properties, stats=stats)
                if FULL_READ_FROM_BOTH_ENDS and stream.full_read_from_both_ends
                else list_pages(ctx.call, api_basic, stream, properties, archived=False, stats=stats)
            )
            sources: list[Iterator[list[dict]]] = [live]
            if ctx.settings.hubspot.read_archived:
                sources.append(
                    list_pages(ctx.call, api_basic, stream, properties, archived=True, stats=stats)
                )
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
            sources = [
                search_pages(ctx.call, api_search, stream, properties, since=since, until=until, stats=stats)
            ]
        page_number = 0
        for pages in sources:
            for records in prefetch(pages):
                page_number += 1
                data, rejects = records_to_arrow(stream, records, extra, ctx.run_id)
                if rejects:
                    result.rejects += wh.record_rejects(con, ctx.run_id, source, rejects)
                stage.add(_stage_name(stream.name), data)
                seen = pc.max(data[stream.cursor_property]).as_py() if data.num_rows else None
                if seen is not None and (max_seen is None or seen > max_seen):
                    max_seen = seen
                if plan:
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
        cursor = None
        if window is None:
            # Never past our own start (a record changed while we listed may carry an older stamp than the
            # newest one seen); the overlap covers clock skew. Without anything new the cursor stays put.
            new_value = min(max_seen, stream_start) if max_seen else None
            if new_value is None and full:
                new_value = stream_start
            old = wh.to_utc_datetime(previous.value) if previous and previous.value else None
            if new_value is not None and (old is None or new_value > old or full):
                cursor = wh.Cursor(_iso(new_value), None, {"mode": result.mode})
        result.cursor = cursor.value if cursor else (previous.value if previous else None)
        with ctx.commit_lock:
            result.rows, result.associations = _commit_object_stream(con, stream, full, cursor, run)
        _drop_stage(con, stream)
    return result


# ------------------------------------------------------------------------------------------------------------
# Reference streams: pipelines + stages, property definitions (small, read whole every run)


def run_pipelines_stream(ctx: _Context) -> StreamResult:
    con, stats = ctx.con.cursor(), CallStats()
    result = StreamResult(PIPELINES_STREAM, "full")
    with _recorded_run(ctx, result, con, stats):
        payload = ctx.call(
            "pipelines deals", ctx.client.crm.pipelines.pipelines_api.get_all, "deals", stats=stats
        )
        pipelines, stages, rejects = [], [], []
        for p in payload.get("results") or []:
            pipelines.append(
                {
                    "pipeline_id": p["id"],
                    "label": p.get("label"),
                    "display_order": p.get("displayOrder"),
                    "archived": bool(p.get("archived")),
                }
            )
            for s in p.get("stages") or []:
                meta = s.get("metadata") or {}
                try:
                    probability = wh.to_decimal(meta.get("probability"), 3, 4)
                except wh.ConversionError as exc:
                    rejects.append(wh.Reject(s.get("id"), "probability", meta.get("probability"), str(exc)))
                    probability = None
                try:
                    closed = wh.to_bool(meta.get("isClosed"))
                except wh.ConversionError as exc:
                    rejects.append(wh.Reject(s.get("id"), "isClosed", meta.get("isClosed"), str(exc)))
                    closed = None
                stages.append(
                    {
                        "stage_id": s["id"],
                        "pipeline_id": p["id"],
                        "label": s.get("label"),
                        "display_order": s.get("displayOrder"),
                        "probability": probability,
                        "is_closed": closed,
                        "archived": bool(s.get("archived")),
                    }
                )
        p_table = pa.Table.from_pylist(
            pipelines,
            schema=pa.schema(
                [
                    ("pipeline_id", pa.string()),
                    ("label", pa.string()),
                    ("display_order", pa.int32()),
                    ("archived", pa.bool_()),
                ]
            ),
        )
        s_table = pa.Table.from_pylist(
            stages,
            schema=pa.schema(
                [
                    ("stage_id", pa.string()),
                    ("pipeline_id", pa.string()),
                    ("label", pa.string()),
                    ("display_order", pa.int32()),
                    ("probability", pa.decimal128(4, 3)),
                    ("is_closed", pa.bool_()),
                    ("archived", pa.bool_()),
                ]
            ),
        )
        with wh.transaction(con):
            # Full each run: what HubSpot no longer lists is gone.
            con.execute(f"DELETE FROM {PIPELINES_TABLE.name}")
            con.execute(f"DELETE FROM {STAGES_TABLE.name}")
            result.rows = wh.upsert_arrow(
                con, PIPELINES_TABLE.name, p_table, PIPELINES_TABLE.keys, run_id=ctx.run_id
            )
            result.rows += wh.upsert_arrow(
                con, STAGES_TABLE.name, s_table, STAGES_TABLE.keys, run_id=ctx.run_id
            )
            if rejects:
                result.rejects = wh.record_rejects(con, ctx.run_id, "hubspot.pipelines", rejects)
    return result


def run_properties_stream(ctx: _Context) -> StreamResult:
    con, stats = ctx.con.cursor(), CallStats()
    result = StreamResult(PROPERTIES_STREAM, "full")
    with _recorded_run(ctx, result, con, stats):
        rows = []
        for stream in OBJECT_STREAMS:
            payload = ctx.call(
                f"properties {stream.object_type}",
                ctx.client.crm.properties.core_api.get_all,
                stream.object_type,
                stats=stats,
            )
            for p in payload.get("results") or []:
                meta = p.get("modificationMetadata") or {}
                rows.append(
                    {
                        "object_type": stream.object_type,
                        "name": p.get("name"),
                        "label": p.get("label"),
                        "type": p.get("type"),
                        "field_type": p.get("fieldType"),
                        "group_name": p.get("groupName"),
                        "hubspot_defined": p.get("hubspotDefined"),
                        "read_only_value": meta.get("readOnlyValue"),
                        "options": json.dumps(p.get("options") or []),
                    }
                )
        table = pa.Table.from_pylist(
            rows,
            schema=pa.schema(
                [
                    ("object_type", pa.string()),
                    ("name", pa.string()),
                    ("label", pa.string()),
                    ("type", pa.string()),
                    ("field_type", pa.string()),
                    ("group_name", pa.string()),
                    ("hubspot_defined", pa.bool_()),
                    ("read_only_value", pa.bool_()),
                    ("options", pa.string()),
                ]
            ),
        )
        with wh.transaction(con):
            con.execute(f"DELETE FROM {PROPERTIES_TABLE.name}")
            result.rows = wh.upsert_arrow(
                con, PROPERTIES_TABLE.name, table, PROPERTIES_TABLE.keys, run_id=ctx.run_id
            )
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
    streams: names from connectors.streams (hubspot_contacts, hubspot_deals, hubspot_line_items,
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
    limiter = limiter or PortalRateLimiter.for_portal(settings.hubspot_token, settings.hubspot_tier)
    call = HubSpotCaller(limiter, settings)
    con = wh.connect(db_path)
    # DuckDB keeps table data in its buffer pool up to 80% of RAM; a cap makes it spill instead, so the
    # extract's memory stays flat however many records a portal has.
    memory_limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute(f"SET memory_limit = '{EXTRACT_MEMORY_LIMIT}'")
    object_streams = [s for s in OBJECT_STREAMS if s.name in wanted]
    results: dict[str, StreamResult] = {}
    failures: list[str] = []
    try:
        for stream in object_streams:
            extra = settings.hubspot.extra_properties.get(stream.object_type, ())
            wh.ensure_columns(con, stream.table, [(e, "VARCHAR") for e in extra])
            _prepare_stage(con, stream)
        workers = max(1, settings.hubspot.max_workers)
        with (
            ThreadPoolExecutor(workers, thread_name_prefix="hubspot-assoc") as assoc_pool,
            ThreadPoolExecutor(len(wanted), thread_name_prefix="hubspot-stream") as stream_pool,
        ):
            ctx = _Context(settings, client, call, con, run_id, mode, modified_between, assoc_pool, on_page)
            futures: dict[str, Future] = {}
            # Deals first: they carry two association reads per page, the longest chain of calls.
            for stream in sorted(object_streams, key=lambda s: s is not DEALS):
                futures[stream.name] = stream_pool.submit(run_object_stream, ctx, stream)
            if PIPELINES_STREAM in wanted:
                futures[PIPELINES_STREAM] = stream_pool.submit(run_pipelines_stream, ctx)
            if PROPERTIES_STREAM in wanted:
                futures[PROPERTIES_STREAM] = stream_pool.submit(run_properties_stream, ctx)
            for name, future in futures.items():
                try:
                    results[name] = future.result()
                except Exception as exc:
                    failures.append(redact(f"{name}: {exc}", settings))
                    results[name] = StreamResult(name, mode, status="failed", error=failures[-1])
    finally:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.close()
    if failures:
        raise HubSpotExtractError("HubSpot extract failed for " + "; ".join(failures))
    return results


def _select_streams(streams: Sequence[str] | None) -> list[str]:
    every = [*OBJECT_STREAM_NAMES, *REFERENCE_STREAM_NAMES]
    if not streams:
        return every
    chosen = []
    aliases = {s.object_type: s.name for s in OBJECT_STREAMS} | {
        "pipelines": PIPELINES_STREAM,
        "properties": PROPERTIES_STREAM,
    }
    for name in streams:
        resolved = aliases.get(name, name)
        if resolved not in every:
            raise ValueError(f"Unknown HubSpot stream {name!r}: use one of {', '.join(every)}")
        chosen.append(resolved)
    return chosen


__all__ = ["HubSpotCaller", "HubSpotExtractError", "StreamResult", "extract_hubspot", "make_client"]
