"""The DuckDB warehouse: schemas, raw/ops tables, Arrow upserts, stream state, run log and rejects.

Loads always go through Arrow (``INSERT ... SELECT`` from a registered table), never row by row: DuckDB
inserts from Arrow are hundreds of times faster than ``executemany``. A stream's rows and its cursor are
committed in one transaction so a run killed mid-stream leaves the warehouse as it was before or after that
stream, never between.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

RAW_SCHEMA = "raw"
OPS_SCHEMA = "ops"
COMMON_COLUMNS = (("_loaded_at", "TIMESTAMPTZ"), ("_run_id", "VARCHAR"))
HUBSPOT_COMMON_COLUMNS = (
    ("_raw", "JSON"),
    ("archived", "BOOLEAN"),
    ("archived_at", "TIMESTAMPTZ"),
    ("merged_into_id", "BIGINT"),
)

OPS_TABLES_DDL = (
    """CREATE TABLE IF NOT EXISTS ops.sync_state (
        stream VARCHAR PRIMARY KEY, cursor_value VARCHAR, cursor_id BIGINT, extra JSON, updated_at
        TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS ops.sync_runs (
        run_id VARCHAR, kind VARCHAR, stream VARCHAR, rows BIGINT, calls BIGINT, retries BIGINT,
        started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, status VARCHAR, error VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ops.rejects (
        run_id VARCHAR, source VARCHAR, record_id VARCHAR, line INTEGER, field VARCHAR, value VARCHAR,
        reason VARCHAR, rejected_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS ops.published_values (
        object_type VARCHAR, record_id BIGINT, property VARCHAR, value VARCHAR, published_at TIMESTAMPTZ,
        run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ops.publish_log (
        run_id VARCHAR, object_type VARCHAR, property VARCHAR, desired BIGINT, changed BIGINT, sent BIGINT,
        failed BIGINT, skipped BIGINT, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS ops.publish_failures (
        run_id VARCHAR, object_type VARCHAR, record_id BIGINT, reason VARCHAR, status INTEGER,
        failed_at TIMESTAMPTZ)""",
    # HubSpot records deleted for good (purged after retention, GDPR deletes): their rows are gone from raw.*;
    # the id, when and how it was found stay for the audit trail (how: archived_list, full_read, sweep).
    """CREATE TABLE IF NOT EXISTS ops.hubspot_deletions (
        object_type VARCHAR, record_id BIGINT, detected_at TIMESTAMPTZ, run_id VARCHAR, how VARCHAR)""",
    # What the GA4 property can serve (e.g. capability 'advertiser_cost'), one row per check.
    """CREATE TABLE IF NOT EXISTS ops.ga4_capabilities (
        property_id VARCHAR, capability VARCHAR, available BOOLEAN, reason VARCHAR, metrics VARCHAR[],
        checked_at TIMESTAMPTZ, run_id VARCHAR)""",
)


@dataclass(frozen=True)
class RawTable:
    """Declaration of one raw table: typed columns (beyond the common ones) and its primary key."""

    name: str  # "raw.hubspot_contacts"
    columns: tuple[tuple[str, str], ...]
    keys: tuple[str, ...]
    hubspot: bool = False  # adds _raw, archived, archived_at, merged_into_id

    def all_columns(self) -> list[tuple[str, str]]:
        extra = HUBSPOT_COMMON_COLUMNS if self.hubspot else ()
        return [*self.columns, *extra, *COMMON_COLUMNS]

    def ddl(self) -> str:
        cols = ", ".join(f"{quote_ident(n)} {t}" for n, t in self.all_columns())
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({cols})"


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """'a VARCHAR, b DATE' -> (('a','VARCHAR'), ('b','DATE')); DECIMAL(p,s) commas handled."""
    parts = re.split(r",\s*(?![^()]*\))", spec.strip())
    return tuple((p.split(None, 1)[0], p.split(None, 1)[1]) for p in parts if p.strip())


# GA4 and spend-sheet raw tables (contracts.md section 3); the HubSpot ones are declared in
# connectors.hubspot.streams.
NON_HUBSPOT_RAW_TABLES: tuple[RawTable, ...] = (
    RawTable(
        "raw.ga4_traffic_daily",
        _cols(
            "property_id VARCHAR, date DATE, session_source VARCHAR, session_medium VARCHAR, "
            "session_campaign_name VARCHAR, session_manual_term VARCHAR, session_manual_ad_content VARCHAR, "
            "session_default_channel_group VARCHAR, sessions BIGINT, total_users BIGINT, "
            "key_events DECIMAL(18,4), "
            "purchase_revenue DECIMAL(18,2), total_revenue DECIMAL(18,2), transactions BIGINT, "
            "currency_code VARCHAR"
        ),
        (
            "property_id",
            "date",
            "session_source",
            "session_medium",
            "session_campaign_name",
            "session_manual_term",
            "session_manual_ad_content",
        ),
    ),
    RawTable(
        "raw.ga4_ad_cost_daily",
        _cols(
            "property_id VARCHAR, date DATE, session_source VARCHAR, session_medium VARCHAR, "
            "session_campaign_name VARCHAR, advertiser_ad_cost DECIMAL(18,2), advertiser_ad_clicks BIGINT, "
            "advertiser_ad_impressions BIGINT, currency_code VARCHAR"
        ),
        ("property_id", "date", "session_source", "session_medium", "session_campaign_name"),
    ),
    RawTable(
        "raw.ga4_contact_sessions",
        _cols(
            "property_id VARCHAR, date DATE, contact_id VARCHAR, session_source VARCHAR, "
            "session_medium VARCHAR, "
            "session_campaign_name VARCHAR, sessions BIGINT, key_events DECIMAL(18,4), "
            "purchase_revenue DECIMAL(18,2)"
        ),
        ("property_id", "date", "contact_id", "session_source", "session_medium", "session_campaign_name"),
    ),
    RawTable(
        "raw.ga4_report_days",
        _cols(
            "property_id VARCHAR, report VARCHAR, date DATE, currency_code VARCHAR, time_zone VARCHAR, "
            "data_loss_from_other_row BOOLEAN, subject_to_thresholding BOOLEAN, sampled BOOLEAN, "
            "row_count BIGINT"
        ),
        ("property_id", "report", "date"),
    ),
    RawTable(
        "raw.marketing_spend",
        _cols(
            "file_name VARCHAR, line INTEGER, period_start DATE, period_end DATE, source VARCHAR, "
            "medium VARCHAR, "
            "campaign VARCHAR, amount DECIMAL(18,2), currency VARCHAR"
        ),
        ("file_name", "line"),
    ),
)


def raw_tables() -> dict[str, RawTable]:
    """Every declared raw table by name."""
    from connectors.hubspot.streams import HUBSPOT_RAW_TABLES  # declarations live with the streams

    return {t.name: t for t in (*HUBSPOT_RAW_TABLES, *NON_HUBSPOT_RAW_TABLES)}


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(table: str) -> str:
    return ".".join(quote_ident(p) for p in table.split("."))


# ------------------------------------------------------------------------------------------------------------
# Connection and schema


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse file with its schemas and tables in place."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ rendered in UTC everywhere
    if not read_only:
        ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schemas raw/ops, every ops table and every declared raw table (idempotent)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    for ddl in OPS_TABLES_DDL:
        con.execute(ddl)
    declared = raw_tables()
    for table in declared.values():
        con.execute(table.ddl())
    _add_declared_columns(con, declared)


def _add_declared_columns(con: duckdb.DuckDBPyConnection, declared: Mapping[str, RawTable]) -> None:
    """Columns declared after a warehouse was created (e.g. a new GA4 metric) are added to it; columns no
    longer declared are left alone, so older rows keep what they held."""
    existing: dict[str, set[str]] = {}
    for schema, table, column in con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns WHERE table_schema = ?",
        [RAW_SCHEMA],
    ).fetchall():
        existing.setdefault(f"{schema}.{table}", set()).add(column)
    for name, table in declared.items():
        missing = [(c, t) for c, t in table.all_columns() if c not in existing.get(name, set())]
        if missing:
            ensure_columns(con, name, missing)


def ensure_columns(con: duckdb.DuckDBPyConnection, table: str, columns: Iterable[tuple[str, str]]) -> None:
    """Add columns that are missing (configured extra properties); existing ones are left alone."""
    for name, sql_type in columns:
        con.execute(
            f"ALTER TABLE {_qualified(table)} ADD COLUMN IF NOT EXISTS {quote_ident(name)} {sql_type}"
        )


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".", 1)
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return [r[0] for r in rows]


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, or ROLLBACK on any exception (DuckDB refuses further statements until then)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


# ------------------------------------------------------------------------------------------------------------
# Loading


def _with_loaded_columns(
    con: duckdb.DuckDBPyConnection, table: str, data: pa.Table, run_id: str | None
) -> pa.Table:
    columns = set(table_columns(con, table))
    if "_loaded_at" in columns and "_loaded_at" not in data.column_names:
        now = datetime.now(UTC)
        data = data.append_column("_loaded_at", pa.array([now] * data.num_rows, pa.timestamp("us", tz="UTC")))
    if "_run_id" in columns and "_run_id" not in data.column_names:
        data = data.append_column("_run_id", pa.array([run_id] * data.num_rows, pa.string()))
    return data


def upsert_arrow(
    con: duckdb.DuckDBPyConnection,
    table: str,
    data: pa.Table,
    keys: Sequence[str],
    *,
    run_id: str | None = None,
) -> int:
    """Insert or replace ``data`` in ``table`` by ``keys``; the LAST row wins among duplicates within
    ``data``.

    Columns missing from ``data`` become NULL; ``_loaded_at``/``_run_id`` are filled in. Returns rows written.
    Run it inside ``transaction`` when it must be atomic with other writes.
    """
    if data.num_rows == 0:
        return 0
    if not keys:
        raise ValueError(f"upsert into {table} needs its key columns")
    data = _with_loaded_columns(con, table, data, run_id)
    # INSERT OR REPLACE / ON CONFLICT silently keep the FIRST duplicate of a batch: dedupe here, last one
    # wins.
    data = data.append_column("__ord", pa.array(range(data.num_rows), pa.int64()))
    name = f"__upsert_{uuid.uuid4().hex}"
    key_list = ", ".join(quote_ident(k) for k in keys)
    match = " AND ".join(f"t.{quote_ident(k)} IS NOT DISTINCT FROM s.{quote_ident(k)}" for k in keys)
    target = _qualified(table)
    con.register(name, data)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name}_d AS SELECT * EXCLUDE (__ord) FROM {name} "
            f"QUALIFY row_number() OVER (PARTITION BY {key_list} ORDER BY __ord DESC) = 1"
        )
        con.execute(f"DELETE FROM {target} AS t USING {name}_d AS s WHERE {match}")
        written = con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {name}_d").fetchall()[0][0]
        con.execute(f"DROP TABLE {name}_d")
    finally:
        con.unregister(name)
    return int(written)


def replace_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    data: pa.Table,
    where_sql: str,
    params: Sequence[Any] = (),
    *,
    run_id: str | None = None,
) -> int:
    """Delete the rows matching ``where_sql`` (e.g. one GA4 property/day) and insert ``data`` in their place.

    Run inside ``transaction`` for atomicity with state updates. Returns rows inserted.
    """
    target = _qualified(table)
    con.execute(f"DELETE FROM {target} WHERE {where_sql}", list(params))
    if data.num_rows == 0:
        return 0
    data = _with_loaded_columns(con, table, data, run_id)
    name = f"__part_{uuid.uuid4().hex}"
    con.register(name, data)
    try:
        written = con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {name}").fetchall()[0][0]
    finally:
        con.unregister(name)
    return int(written)


# ------------------------------------------------------------------------------------------------------------
# Stream state (ops.sync_state)


@dataclass(frozen=True)
class Cursor:
    """Where a stream stopped: a cursor value (e.g. an ISO timestamp), an id tie-break and free-form
    extras."""

    value: str | None = None
    id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def get_cursor(con: duckdb.DuckDBPyConnection, stream: str) -> Cursor | None:
    rows = con.execute(
        "SELECT cursor_value, cursor_id, extra FROM ops.sync_state WHERE stream = ?", [stream]
    ).fetchall()
    if not rows:
        return None
    value, cursor_id, extra = rows[0]
    return Cursor(value, cursor_id, json.loads(extra) if extra else {})


def set_cursor(con: duckdb.DuckDBPyConnection, stream: str, cursor: Cursor) -> None:
    con.execute("DELETE FROM ops.sync_state WHERE stream = ?", [stream])
    con.execute(
        "INSERT INTO ops.sync_state (stream, cursor_value, cursor_id, extra, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [stream, cursor.value, cursor.id, json.dumps(cursor.extra, default=str), datetime.now(UTC)],
    )


def clear_cursor(con: duckdb.DuckDBPyConnection, stream: str) -> None:
    con.execute("DELETE FROM ops.sync_state WHERE stream = ?", [stream])


# ------------------------------------------------------------------------------------------------------------
# Run log (ops.sync_runs)


@dataclass
class RunRecord:
    """One row of ops.sync_runs while it runs; counters are written by finish_run."""

    run_id: str
    kind: str
    stream: str
    started_at: datetime
    rows: int = 0
    calls: int = 0
    retries: int = 0


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, kind: str, stream: str) -> RunRecord:
    run = RunRecord(run_id, kind, stream, datetime.now(UTC))
    con.execute(
        "INSERT INTO ops.sync_runs (run_id, kind, stream, rows, calls, retries, started_at, status) "
        "VALUES (?, ?, ?, 0, 0, 0, ?, 'running')",
        [run_id, kind, stream, run.started_at],
    )
    return run


def finish_run(
    con: duckdb.DuckDBPyConnection, run: RunRecord, status: str = "success", error: str | None = None
) -> None:
    con.execute(
        "UPDATE ops.sync_runs SET rows = ?, calls = ?, retries = ?, finished_at = ?, status = ?, error = ? "
        "WHERE run_id = ? AND kind = ? AND stream = ? AND started_at = ?",
        [
            run.rows,
            run.calls,
            run.retries,
            datetime.now(UTC),
            status,
            error,
            run.run_id,
            run.kind,
            run.stream,
            run.started_at,
        ],
    )


def commit_stream(
    con: duckdb.DuckDBPyConnection,
    stream: str,
    table: str,
    rows: pa.Table,
    cursor: Cursor | None,
    run: RunRecord | None = None,
    *,
    keys: Sequence[str] | None = None,
    also: Sequence[tuple[str, pa.Table, Sequence[str]]] = (),
) -> int:
    """Upsert ``rows`` (plus ``also``: more (table, rows, keys)) and set the stream cursor in ONE
    transaction."""
    declared = raw_tables()
    keys = keys or declared[table].keys
    with transaction(con):
        written = upsert_arrow(con, table, rows, keys, run_id=run.run_id if run else None)
        for other_table, other_rows, other_keys in also:
            upsert_arrow(con, other_table, other_rows, other_keys, run_id=run.run_id if run else None)
        if cursor is not None:
            set_cursor(con, stream, cursor)
    if run is not None:
        run.rows += written
    return written


# ------------------------------------------------------------------------------------------------------------
# Rejects (ops.rejects) and typed conversion


@dataclass(frozen=True)
class Reject:
    """One bad value or row: which record (or file line), which field, the value as received, and why."""

    record_id: str | None
    field: str | None
    value: str | None
    reason: str
    line: int | None = None


REJECT_VALUE_CHARS = 1000  # a 128 KiB cell is kept as its first 1,000 characters, enough to find it
REJECT_REASON_CHARS = 2000


def storable_text(value: Any, limit: int | None = None) -> str | None:
    """Text that Arrow and DuckDB can store: lone surrogates ("\\ud800", which UTF-8 cannot encode) are
    written as their escape, so the raw value of a hostile input is kept and readable, never a crash."""
    if value is None:
        return None
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def record_rejects(
    con: duckdb.DuckDBPyConnection, run_id: str, source: str, rows: Iterable[Reject | Mapping[str, Any]]
) -> int:
    """Append rejects to ops.rejects (via Arrow). Returns how many."""
    items = [r if isinstance(r, Reject) else Reject(**r) for r in rows]
    if not items:
        return 0
    text = storable_text
    now = datetime.now(UTC)
    data = pa.table(
        {
            "run_id": pa.array([run_id] * len(items), pa.string()),
            "source": pa.array([source] * len(items), pa.string()),
            "record_id": pa.array([text(r.record_id) for r in items], pa.string()),
            "line": pa.array([r.line for r in items], pa.int32()),
            "field": pa.array([text(r.field) for r in items], pa.string()),
            "value": pa.array([text(r.value, REJECT_VALUE_CHARS) for r in items], pa.string()),
            "reason": pa.array([text(r.reason, REJECT_REASON_CHARS) for r in items], pa.string()),
            "rejected_at": pa.array([now] * len(items), pa.timestamp("us", tz="UTC")),
        }
    )
    name = f"__rejects_{uuid.uuid4().hex}"
    con.register(name, data)
    try:
        con.execute(f"INSERT INTO ops.rejects BY NAME SELECT * FROM {name}").fetchall()
    finally:
        con.unregister(name)
    return len(items)


class ConversionError(ValueError):
    """A value that cannot be read as the declared type; the message is the reason stored in ops.rejects."""


_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COMPACT_DATE_LENGTH = 8  # YYYYMMDD


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# Longest text read as a number: enough for any DECIMAL(38, s) written out, short enough that a pasted
# paragraph is refused at once instead of being parsed.
MAX_NUMBER_TEXT = 100
BIGINT_RANGE = (-(2**63), 2**63 - 1)


def _number_text(value: Any) -> str:
    """The stripped text of a number cell, refused when Python's Decimal/int would read it but people don't.

    Python accepts digit-group underscores ("1_000") and any script's digits ("١٢٣"); an API or a sheet that
    sends those sent something else than a number, so they are refused rather than silently read.
    """
    text = str(value).strip()
    if len(text) > MAX_NUMBER_TEXT:
        raise ConversionError(f"not a number: {len(text)} characters long (at most {MAX_NUMBER_TEXT})")
    if "_" in text:
        raise ConversionError(f"not a number: {text!r} (digits only, no '_' between them)")
    if not text.isascii():
        raise ConversionError(f"not a number: {text!r} (only the digits 0-9 are read)")
    return text


def to_decimal(value: Any, scale: int = 2, precision: int = 18) -> Decimal | None:
    """'1 234,50' is refused; '1234.50' -> Decimal('1234.50'). Blank -> None. More decimals than ``scale`` or
    more digits than ``precision`` are refused rather than silently rounded (money is exact). Every refusal
    is a ConversionError, whatever the input (1e30, 1e309, a 1 MB string): one value never stops a load."""
    if _blank(value):
        return None
    if isinstance(value, Decimal):
        number = value
    else:
        text = _number_text(value)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ConversionError(
                f"not a number: {text!r} (use digits and '.' as decimal separator)"
            ) from None
    if not number.is_finite():
        raise ConversionError(f"not a finite number: {value!r}")
    if number and number.adjusted() >= precision - scale:
        raise ConversionError(f"{value!r} is too large for DECIMAL({precision},{scale})")
    step = Decimal(1).scaleb(-scale)
    # A context wide enough for any value that passed the size check: quantize never raises on it.
    with localcontext() as context:
        context.prec = precision + scale + 2
        try:
            quantized = number.quantize(step)
        except InvalidOperation:  # pragma: no cover - excluded by the size check above
            raise ConversionError(f"{value!r} is too large for DECIMAL({precision},{scale})") from None
        if quantized != number:
            raise ConversionError(f"{value!r} has more than {scale} decimals")
    if len(quantized.as_tuple().digits) > precision:
        raise ConversionError(f"{value!r} is too large for DECIMAL({precision},{scale})")
    return quantized


def to_utc_datetime(value: Any) -> datetime | None:
    """ISO 8601 (with Z or offset; naive means UTC), the compact date `YYYYMMDD`, or epoch milliseconds ->
    aware UTC datetime. Blank -> None.

    Eight digits are a compact date, never epoch ms: as epoch ms they would be the first day of 1970, a date
    no CRM means ("20261031" was once read as 1970-01-01). Eight digits that are not a calendar date are
    refused.
    """
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if len(text) == COMPACT_DATE_LENGTH and text.isdigit() and text.isascii():
        try:
            day = datetime.strptime(text, "%Y%m%d")
        except ValueError:
            raise ConversionError(f"not a date: {text!r} (8 digits, not a YYYYMMDD calendar date)") from None
        return day.replace(tzinfo=UTC)
    if text.isascii() and (text.isdigit() or (text.startswith("-") and text[1:].isdigit())):
        try:
            return _EPOCH + timedelta(milliseconds=int(text))  # HubSpot v1-style epoch ms
        except OverflowError:
            raise ConversionError(f"epoch milliseconds out of range: {text[:40]!r}") from None
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        raise ConversionError(f"not an ISO 8601 date-time or epoch ms: {text[:80]!r}") from None
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC time
        raise ConversionError(f"date-time out of range: {text[:80]!r}") from None


def to_date(value: Any) -> date | None:
    """'YYYY-MM-DD', a midnight-UTC epoch ms, or an ISO date-time (its UTC date) -> date. Blank -> None."""
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return to_utc_datetime(value).date()  # type: ignore[union-attr]
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if len(text) == 10 and text[4:5] == "-":
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ConversionError(f"not a valid date: {text!r} (use YYYY-MM-DD)") from None
    try:
        return to_utc_datetime(text).date()  # type: ignore[union-attr]
    except ConversionError:
        raise ConversionError(f"not a date: {text[:80]!r} (use YYYY-MM-DD)") from None


def to_bool(value: Any) -> bool | None:
    """'true'/'false' (also yes/no, 1/0) -> bool. Blank -> None."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConversionError(f"not a boolean: {text[:80]!r} (use true or false)")


def to_bigint(value: Any) -> int | None:
    """'12' (or a whole decimal, '12.0') -> int within BIGINT's range. Blank -> None."""
    if _blank(value):
        return None
    text = _number_text(value)
    try:
        number = int(text)
    except ValueError:
        try:
            decimal_number = Decimal(text)
        except InvalidOperation:
            raise ConversionError(f"not an integer: {text!r}") from None
        if not decimal_number.is_finite() or decimal_number.adjusted() > 19:
            raise ConversionError(f"not an integer in BIGINT range: {text!r}") from None
        if decimal_number != decimal_number.to_integral_value():
            raise ConversionError(f"not an integer: {text!r}") from None
        number = int(decimal_number)
    if not BIGINT_RANGE[0] <= number <= BIGINT_RANGE[1]:
        raise ConversionError(f"not an integer in BIGINT range: {text!r}")
    return number
