"""Publish ROI results back onto HubSpot contacts and deals (reverse ETL), writing only what changed.

The desired state is the mart `main.crm_property_values(object_type, record_id, property, value)`; what
HubSpot is known to hold is `ops.published_values` (only values HubSpot accepted). Each run diffs the two in
DuckDB and sends the changed values in batch updates of up to 100 records (one input per record with all its
changed properties), through the portal's shared rate limiter, retrying 429 / 5xx / dropped connections.

- 207 answers are read record by record; a batch refused as a whole (4xx) is split in halves until the bad
  record is alone; records HubSpot no longer has (deleted, merged) are logged and skipped.
- Failed records are never marked published, so the next run's diff picks them up again.
- Each batch's accepted values are written to ops.published_values as soon as HubSpot acknowledges it (one
  small transaction per batch), and a new batch is sent only when a finished one is recorded: a run killed
  during publish re-sends at most the batches that were in flight (`workers`, 4 by default, of up to 100
  records), never what HubSpot had already acknowledged and the warehouse recorded.
- `roi_computed_at` is not part of the diff: it is stamped (run start, epoch ms) only on records whose other
  values change, so a run with no change in the data sends nothing and the pipeline converges.
- A value that disappears from the mart while the record still exists is cleared explicitly with "" (HubSpot's
  way to empty a property); nothing else ever sends an empty value.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from connectors import warehouse
from connectors.config import Settings, redact
from connectors.hubspot.client import (
    DailyLimitReached,
    HubSpotCaller,
    HubSpotCallError,
    daily_reset_hint,
    make_client,
    portal_limiter,
)
from connectors.hubspot.properties import (
    COMPUTED_AT_PROPERTY,
    OBJECT_TYPES,
    PIPELINE_PROPERTIES,
    PropertySchemaError,
    SchemaReport,
    channel_labels,
    ensure_property_schema,
    owned_property_names,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 100  # HubSpot's maximum inputs per batch/update call
SEND_WORKERS = 4  # concurrent batch calls; the shared limiter, not this number, bounds the request rate
MAX_ATTEMPTS = 6  # per call, for 429 / 5xx / dropped connections (client.HubSpotCaller retries)
SAMPLE_SIZE = 20
DESIRED_TABLE = "main.crm_property_values"
NOT_FOUND_CATEGORIES = frozenset({"OBJECT_NOT_FOUND", "NOT_FOUND"})
# A whole batch refused with these can be one bad record's fault: split it to find the record.
SPLITTABLE_STATUSES = frozenset({400, 409, 422})


class PublishError(RuntimeError):
    """The publish cannot run at all (no credentials, no desired-values mart, schema conflict)."""


# ----------------------------------------------------------------------------------------------------
# Results


@dataclass
class PropertyCounts:
    desired: int = 0
    changed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass
class RecordFailure:
    object_type: str
    record_id: int
    reason: str
    status: int | None
    skipped: bool  # True: the record is gone from HubSpot (deleted / merged); False: a failure to retry


@dataclass
class PublishResult:
    run_id: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    schema: SchemaReport = field(default_factory=SchemaReport)
    counts: dict[tuple[str, str], PropertyCounts] = field(default_factory=dict)
    records_changed: dict[str, int] = field(default_factory=dict)
    records_sent: dict[str, int] = field(default_factory=dict)
    update_calls: int = 0
    retries: int = 0
    # Written to an id HubSpot had merged into a new record meanwhile (the write landed on the new record).
    records_redirected: int = 0
    failures: list[RecordFailure] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def api_calls(self) -> int:
        return self.update_calls + self.schema.calls

    @property
    def records_failed(self) -> int:
        return sum(1 for f in self.failures if not f.skipped)

    @property
    def records_skipped(self) -> int:
        return sum(1 for f in self.failures if f.skipped)

    @property
    def ok(self) -> bool:
        return self.records_failed == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view (flows return it as a Prefect result; no secrets in it)."""
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "schema": {
                "groups_created": self.schema.groups_created,
                "properties_created": self.schema.properties_created,
                "options_added": self.schema.options_added,
            },
            "records_changed": self.records_changed,
            "records_sent": self.records_sent,
            "records_failed": self.records_failed,
            "records_skipped": self.records_skipped,
            "records_redirected": self.records_redirected,
            "update_calls": self.update_calls,
            "retries": self.retries,
            "api_calls": self.api_calls,
            "properties": [
                {"object_type": obj, "property": prop, **vars(c)}
                for (obj, prop), c in sorted(self.counts.items())
            ],
            "sample": self.sample,
            "failures": [vars(f) for f in self.failures[:SAMPLE_SIZE]],
        }

    def summary(self) -> str:
        verb = "would send" if self.dry_run else "sent"
        lines = [f"publish run {self.run_id}{' (dry run: nothing sent)' if self.dry_run else ''}"]
        if self.schema.groups_created or self.schema.properties_created or self.schema.options_added:
            head = "would create" if self.dry_run else "created"
            lines.append(
                f"  schema {head}: groups {self.schema.groups_created or '-'}, "
                f"properties {self.schema.properties_created or '-'}, "
                f"new options {self.schema.options_added or '-'}"
            )
        for object_type in OBJECT_TYPES:
            changed = self.records_changed.get(object_type, 0)
            sent = self.records_sent.get(object_type, 0)
            lines.append(
                f"  {object_type}: {changed} records changed, {verb} {sent if not self.dry_run else changed}"
            )
            for (obj, prop), c in sorted(self.counts.items()):
                if obj == object_type:
                    lines.append(
                        f"    {prop:<28} desired {c.desired:>7}  changed {c.changed:>7}  sent {c.sent:>7}"
                        f"  failed {c.failed:>5}  skipped {c.skipped:>5}"
                    )
        lines.append(
            f"  batch/update calls: {self.update_calls}; failed records: {self.records_failed}; "
            f"skipped (gone from HubSpot): {self.records_skipped}; landed on a merged record: "
            f"{self.records_redirected}"
        )
        if self.sample:
            lines.append("  sample of changes:")
            for change in self.sample:
                lines.append(
                    f"    {change['object_type']} {change['record_id']} {change['property']}: "
                    f"{change['published']!r} -> {change['desired']!r}"
                )
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# The diff


@dataclass
class _Change:
    object_type: str
    record_id: int
    properties: dict[str, str]  # property -> value to send ("" clears)


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchall()
    return rows[0][0] > 0


def _owned_names_sql(object_types: tuple[str, ...]) -> str:
    names = sorted(
        {
            (obj, name)
            for obj in object_types
            for name in owned_property_names(obj)
            if name != COMPUTED_AT_PROPERTY
        }
    )
    return ", ".join(f"('{obj}', '{name}')" for obj, name in names)


def _raw_records_sql(con: duckdb.DuckDBPyConnection, *, gone: bool) -> str | None:
    """Record ids from the raw extract: still in HubSpot, or (gone=True) archived or merged away."""
    parts = []
    condition = "coalesce(archived, false) OR merged_into_id IS NOT NULL"
    for object_type, table in (("contacts", "hubspot_contacts"), ("deals", "hubspot_deals")):
        if _table_exists(con, "raw", table):
            parts.append(
                f"SELECT '{object_type}' AS object_type, CAST(id AS BIGINT) AS record_id FROM raw.{table} "
                f"WHERE {condition if gone else f'NOT ({condition})'}"
            )
    return " UNION ALL ".join(parts) if parts else None


def _live_records_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Records that still exist: in the desired set, or in the raw extract and not archived or merged."""
    raw_live = _raw_records_sql(con, gone=False)
    desired = "SELECT DISTINCT object_type, record_id FROM publish_desired"
    return f"{desired} UNION {raw_live}" if raw_live else desired


@dataclass
class _Diff:
    desired_counts: dict[tuple[str, str], int]
    changed_counts: dict[tuple[str, str], int]
    changes: list[_Change]
    sample: list[dict[str, Any]]


def _diff(con: duckdb.DuckDBPyConnection, object_types: tuple[str, ...], computed_at_ms: str) -> _Diff:
    """Desired vs published, computed in DuckDB; Python only gets one row per changed record."""
    published_sql = (
        "SELECT object_type, CAST(record_id AS BIGINT) AS record_id, property, value "
        f"FROM ops.published_values WHERE property <> '{COMPUTED_AT_PROPERTY}'"
        if _table_exists(con, "ops", "published_values")
        else "SELECT NULL::VARCHAR AS object_type, NULL::BIGINT AS record_id, NULL::VARCHAR AS property, "
        "NULL::VARCHAR AS value WHERE false"
    )
    gone_sql = (
        _raw_records_sql(con, gone=True)
        or "SELECT NULL::VARCHAR AS object_type, NULL::BIGINT AS record_id WHERE false"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE publish_desired AS
        SELECT v.object_type, CAST(v.record_id AS BIGINT) AS record_id, v.property, v.value
        FROM {DESIRED_TABLE} AS v
        JOIN (VALUES {_owned_names_sql(object_types)}) AS owned(object_type, property)
          ON owned.object_type = v.object_type AND owned.property = v.property
        -- records the last extract saw archived or merged away are gone from HubSpot: nothing to send
        ANTI JOIN ({gone_sql}) AS gone
          ON gone.object_type = v.object_type AND gone.record_id = CAST(v.record_id AS BIGINT)
        WHERE v.value IS NOT NULL AND v.record_id IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY v.object_type, v.record_id, v.property ORDER BY v.value) = 1
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE publish_changes AS
        WITH published AS (
            {published_sql}
        ), live AS (
            {_live_records_sql(con)}
        ), differing AS (
            SELECT coalesce(d.object_type, p.object_type) AS object_type,
                   coalesce(d.record_id, p.record_id) AS record_id,
                   coalesce(d.property, p.property) AS property,
                   d.value AS desired,
                   p.value AS published
            FROM publish_desired AS d
            FULL OUTER JOIN published AS p
              ON p.object_type = d.object_type AND p.record_id = d.record_id AND p.property = d.property
            WHERE d.value IS DISTINCT FROM p.value
        )
        SELECT differing.*
        FROM differing
        LEFT JOIN live ON differing.desired IS NULL
          AND live.object_type = differing.object_type AND live.record_id = differing.record_id
        WHERE differing.desired IS NOT NULL
           -- a value the mart no longer has: clear it, but only on records that still exist
           OR (coalesce(differing.published, '') <> '' AND live.record_id IS NOT NULL)
    """)

    def counts(table: str) -> dict[tuple[str, str], int]:
        sql = f"SELECT object_type, property, count(*) FROM {table} GROUP BY ALL"
        return {(obj, prop): n for obj, prop, n in con.execute(sql).fetchall()}

    sample = [
        {"object_type": obj, "record_id": rid, "property": prop, "published": pub, "desired": des}
        for obj, rid, prop, des, pub in con.execute(
            f"SELECT object_type, record_id, property, desired, published FROM publish_changes "
            f"ORDER BY 1, 2, 3 LIMIT {SAMPLE_SIZE}"
        ).fetchall()
    ]
    # One row per record with its changed properties as a JSON object (values to send; "" clears): fetching
    # one string per record is several times faster than fetching DuckDB lists or one row per value.
    records = con.execute("""
        SELECT object_type, record_id, json_group_object(property, coalesce(desired, ''))
        FROM publish_changes GROUP BY ALL ORDER BY object_type, record_id
    """).fetchall()
    changes = []
    for object_type, record_id, properties_json in records:
        properties = json.loads(properties_json)
        properties[COMPUTED_AT_PROPERTY] = computed_at_ms
        changes.append(_Change(object_type, record_id, properties))
    return _Diff(counts("publish_desired"), counts("publish_changes"), changes, sample)


def _batches(changes: list[_Change], size: int = BATCH_SIZE) -> Iterator[tuple[str, list[_Change]]]:
    """Pages of at most `size` records of one object type (dlt-style generator)."""
    by_type: dict[str, list[_Change]] = defaultdict(list)
    for change in changes:
        by_type[change.object_type].append(change)
    for object_type in OBJECT_TYPES:
        items = by_type.get(object_type, [])
        for start in range(0, len(items), size):
            yield object_type, items[start : start + size]


# ----------------------------------------------------------------------------------------------------
# Sending one batch: 207 per record, whole-batch 4xx bisected, gone records skipped


@dataclass
class _Outcome:
    accepted: list[_Change] = field(default_factory=list)
    failures: list[tuple[_Change, RecordFailure]] = field(default_factory=list)
    # Accepted, but HubSpot answered with another id: the record was merged into a new one since the
    # extract. Not recorded as published (which of several merged records' values it holds is unknown): the
    # next run, whose extract knows the merge, writes the surviving record.
    redirected: list[_Change] = field(default_factory=list)
    calls: int = 0


def _error_ids(error: dict[str, Any]) -> list[str]:
    context = error.get("context") or {}
    ids = context.get("ids") or context.get("id") or []
    if isinstance(ids, str):
        ids = [ids]
    return [str(i) for i in ids]


def _is_not_found(error: dict[str, Any], status: int | None) -> bool:
    """The record is gone from HubSpot (deleted, or merged into another), as opposed to a bad value."""
    category = str(error.get("category") or "").upper()
    if (
        category == "VALIDATION_ERROR"
    ):  # e.g. 'Property "x" does not exist' is about a property, not the record
        return False
    message = str(error.get("message") or "").lower()
    return (
        status == 404
        or category in NOT_FOUND_CATEGORIES
        or any(hint in message for hint in ("object not found", "may be deleted", "was merged"))
    )


def _batch_api(client: Any, object_type: str) -> Any:
    return getattr(client.crm, object_type).batch_api


def _send_batch(client: Any, call: HubSpotCaller, object_type: str, changes: list[_Change]) -> _Outcome:
    outcome = _Outcome()
    body = {"inputs": [{"id": str(c.record_id), "properties": c.properties} for c in changes]}
    by_id = {str(c.record_id): c for c in changes}
    outcome.calls += 1
    try:
        answer = call.answer(f"batch update {object_type}", _batch_api(client, object_type).update, body)
    except DailyLimitReached as exc:
        raise PublishError(
            "HubSpot's DAILY API limit of this portal is used up; the publish stops. Records not sent yet "
            f"are sent by the next run: {daily_reset_hint(call.settings)}."
        ) from exc
    except HubSpotCallError as exc:
        status = exc.status
        error = exc.body
        if status in (401, 403):
            # Every other batch would fail the same way: stop instead of splitting or retrying.
            raise PublishError(
                redact(
                    f"HubSpot refused the {object_type} batch update with {status}: "
                    f"{error.get('message') or exc}. Fix: check HUBSPOT_ACCESS_TOKEN and give the private "
                    f"app the crm.objects.{object_type}.write scope."
                )
            ) from None
        if status is not None and 400 <= status < 500 and status != 429:
            named = set(_error_ids(error)) & by_id.keys()
            if named:
                # HubSpot named the culprits (e.g. 404 when every record of the batch is gone): fail those and
                # resend the rest in one go
                for record_id in sorted(named):
                    outcome.failures.append(_failure(by_id[record_id], error, status))
                rest = [c for c in changes if str(c.record_id) not in named]
                if rest:
                    _merge(outcome, _send_batch(client, call, object_type, rest))
                return outcome
            if len(changes) > 1 and status in SPLITTABLE_STATUSES:
                # One bad record can refuse the whole batch: split until it is alone
                middle = len(changes) // 2
                _merge(outcome, _send_batch(client, call, object_type, changes[:middle]))
                _merge(outcome, _send_batch(client, call, object_type, changes[middle:]))
                return outcome
            outcome.failures.extend(_failure(change, error, status) for change in changes)
            return outcome
        reason = f"gave up after retries: {status or type(exc).__name__}: {error.get('message') or exc}"
        for change in changes:
            outcome.failures.append(
                (
                    change,
                    RecordFailure(object_type, change.record_id, redact(reason)[:500], status, skipped=False),
                )
            )
        return outcome
    payload, status = answer.body, answer.status
    failed: dict[str, tuple[dict[str, Any], int | None]] = {}
    unattributed_error: dict[str, Any] | None = None
    for error in payload.get("errors") or []:
        ids = [i for i in _error_ids(error) if i in by_id]
        if not ids:
            unattributed_error = error
        for record_id in ids:
            failed.setdefault(record_id, (error, status))
    if unattributed_error is not None:
        # An error that names no record: trust only the records HubSpot returned as updated.
        returned = {str(r.get("id")) for r in payload.get("results") or [] if isinstance(r, dict)}
        for record_id in by_id.keys() - returned:
            failed.setdefault(record_id, (unattributed_error, status))
    for record_id, (error, error_status) in failed.items():
        outcome.failures.append(_failure(by_id[record_id], error, error_status))
    returned = {str(r.get("id")) for r in payload.get("results") or [] if isinstance(r, dict)}
    for change in changes:
        record_id = str(change.record_id)
        if record_id in failed:
            continue
        if returned and record_id not in returned:
            outcome.redirected.append(change)
        else:
            outcome.accepted.append(change)
    return outcome


def _failure(change: _Change, error: dict[str, Any], status: int | None) -> tuple[_Change, RecordFailure]:
    gone = _is_not_found(error, status)
    message = str(error.get("message") or "no message")
    category = error.get("category")
    reason = f"{category}: {message}" if category else message
    if gone:
        reason = f"record no longer in HubSpot (deleted or merged), skipped: {reason}"
    return change, RecordFailure(
        change.object_type, change.record_id, redact(reason)[:500], status, skipped=gone
    )


def _merge(into: _Outcome, other: _Outcome) -> None:
    into.accepted.extend(other.accepted)
    into.failures.extend(other.failures)
    into.redirected.extend(other.redirected)
    into.calls += other.calls


# ----------------------------------------------------------------------------------------------------
# Recording what happened


def _record_published(con: duckdb.DuckDBPyConnection, accepted: list[_Change], run_id: str) -> None:
    if not accepted:
        return
    now = datetime.now(UTC)
    object_types, record_ids, props, values = [], [], [], []
    for change in accepted:
        for prop, value in change.properties.items():
            object_types.append(change.object_type)
            record_ids.append(change.record_id)
            props.append(prop)
            values.append(value)
    incoming = pa.table(
        {
            "object_type": pa.array(object_types, pa.string()),
            "record_id": pa.array(record_ids, pa.int64()),
            "property": pa.array(props, pa.string()),
            "value": pa.array(values, pa.string()),
        }
    )
    con.register("publish_incoming", incoming)
    try:
        con.execute("BEGIN")
        # A batch holds neighbouring ids (changes are sent in id order): the id range lets DuckDB skip the row
        # groups that cannot match, so recording each batch stays cheap as the table grows.
        con.execute(
            """DELETE FROM ops.published_values AS p USING publish_incoming AS i
               WHERE p.record_id BETWEEN ? AND ? AND p.object_type = i.object_type
                 AND p.record_id = i.record_id AND p.property = i.property""",
            [min(record_ids), max(record_ids)],
        )
        con.execute(
            """INSERT INTO ops.published_values
                   (object_type, record_id, property, value, published_at, run_id)
               SELECT object_type, record_id, property, value, ?, ? FROM publish_incoming""",
            [now, run_id],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("publish_incoming")


def _record_failures(con: duckdb.DuckDBPyConnection, failures: list[RecordFailure], run_id: str) -> None:
    if not failures:
        return
    now = datetime.now(UTC)
    incoming = pa.table(
        {
            "object_type": pa.array([f.object_type for f in failures], pa.string()),
            "record_id": pa.array([f.record_id for f in failures], pa.int64()),
            "reason": pa.array([f.reason for f in failures], pa.string()),
            "status": pa.array([f.status for f in failures], pa.int32()),
        }
    )
    con.register("publish_failed", incoming)
    try:
        con.execute(
            """INSERT INTO ops.publish_failures (run_id, object_type, record_id, reason, status, failed_at)
                       SELECT ?, object_type, record_id, reason, status, ? FROM publish_failed""",
            [run_id, now],
        )
    finally:
        con.unregister("publish_failed")


def _record_log(con: duckdb.DuckDBPyConnection, result: PublishResult) -> None:
    rows = [
        (
            result.run_id,
            obj,
            prop,
            c.desired,
            c.changed,
            c.sent,
            c.failed,
            c.skipped,
            result.started_at,
            result.finished_at,
        )
        for (obj, prop), c in sorted(result.counts.items())
    ]
    if rows:
        con.executemany(
            """INSERT INTO ops.publish_log (run_id, object_type, property, desired, changed, sent, failed,
                                            skipped, started_at, finished_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            rows,
        )


# ----------------------------------------------------------------------------------------------------
# Entry point


def publish_to_hubspot(
    settings: Settings,
    db_path: str | Path,
    run_id: str,
    dry_run: bool = False,
    *,
    client: Any = None,
    limiter: Any = None,
    workers: int = SEND_WORKERS,
) -> PublishResult:
    """Send the changed ROI values to HubSpot and record what happened (see module docstring).

    dry_run: reads the portal's property schema and the warehouse, then returns what would be created and sent
    (counts per object and property, a sample of changes); nothing is written to HubSpot or to the warehouse.
    Raises PropertySchemaError when one of the pipeline's property names is owned by someone else.
    """
    started = datetime.now(UTC)
    # [publish] dry_run = true in roi.toml makes every publish a preview, whatever the caller asked.
    dry_run = dry_run or settings.publish.dry_run
    result = PublishResult(run_id=run_id, dry_run=dry_run, started_at=started)
    object_types = _object_types(settings)
    client = client if client is not None else make_client(settings)
    limiter = limiter if limiter is not None else portal_limiter(settings)
    schema_call = HubSpotCaller(limiter, settings, max_attempts=MAX_ATTEMPTS)
    update_call = HubSpotCaller(limiter, settings, max_attempts=MAX_ATTEMPTS)

    # A dry run must not write, not even the ops tables: plain connection, and no ensure_schema.
    con = duckdb.connect(str(db_path)) if dry_run else warehouse.connect(db_path)
    try:
        if not _table_exists(con, "main", DESIRED_TABLE.split(".", 1)[1]):
            raise PublishError(
                f"Desired values table {DESIRED_TABLE} is missing in {db_path}. "
                "Fix: build the models (roi run, or models.runner.build) before publishing."
            )
        tagging_plan = settings.tagging_plan
        try:
            result.schema = ensure_property_schema(
                schema_call,
                client,
                channel_options=channel_labels(Path(tagging_plan) if tagging_plan else None),
                dry_run=dry_run,
                object_types=object_types,
                currency=settings.models.home_currency,
            )
        except PropertySchemaError:
            raise
        except HubSpotCallError as exc:
            status = exc.status
            if status not in (401, 403):
                raise
            message = exc.body.get("message") or str(exc)
            raise PublishError(
                redact(
                    f"HubSpot refused to list or create properties ({status}): {message}. Fix: check "
                    "HUBSPOT_ACCESS_TOKEN and give the private app the crm.schemas.contacts.write and "
                    "crm.schemas.deals.write scopes."
                )
            ) from None

        diff = _diff(con, object_types, str(int(started.timestamp() * 1000)))
        _refuse_mass_clear(con, diff.desired_counts, object_types, db_path)
        changes = diff.changes
        for key, n in diff.desired_counts.items():
            result.counts.setdefault(key, PropertyCounts()).desired = n
        for key, n in diff.changed_counts.items():
            result.counts.setdefault(key, PropertyCounts()).changed = n
        for change in changes:
            stamp = result.counts.setdefault((change.object_type, COMPUTED_AT_PROPERTY), PropertyCounts())
            stamp.desired += 1
            stamp.changed += 1
        result.records_changed = dict(Counter(c.object_type for c in changes))
        result.sample = diff.sample
        if changes and not dry_run:
            _send_all(con, client, update_call, changes, result, workers)
        result.update_calls = update_call.calls
        result.retries = schema_call.retries + update_call.retries
        result.finished_at = datetime.now(UTC)
        if not dry_run:
            _record_log(con, result)
        log.info("%s", result.summary())
        return result
    finally:
        con.close()


def _object_types(settings: Settings) -> tuple[str, ...]:
    configured = settings.publish.object_types or OBJECT_TYPES
    unknown = sorted(set(configured) - set(OBJECT_TYPES))
    if unknown:
        raise PublishError(
            f"publish.object_types lists {unknown}: the pipeline publishes only {list(OBJECT_TYPES)}. "
            "Fix: remove them from [publish] object_types in roi.toml."
        )
    return tuple(t for t in OBJECT_TYPES if t in configured)


def _refuse_mass_clear(
    con: duckdb.DuckDBPyConnection,
    desired_counts: dict[tuple[str, str], int],
    object_types: tuple[str, ...],
    db_path: str | Path,
) -> None:
    """An empty mart next to published values means a broken build, not a CRM that lost every value: stop."""
    if not _table_exists(con, "ops", "published_values"):
        return
    for object_type in object_types:
        if any(n for (obj, _prop), n in desired_counts.items() if obj == object_type):
            continue
        published = con.execute(
            "SELECT count(*) FROM ops.published_values WHERE object_type = ? AND coalesce(value, '') <> ''",
            [object_type],
        ).fetchall()[0][0]
        if published:
            raise PublishError(
                f"{DESIRED_TABLE} in {db_path} has no {object_type} values but {published} were published "
                f"before; publishing would clear them all in HubSpot. Fix: check the model build (the "
                "[models] publish_model must be a model attribution_credits has) and run again."
            )


def _send_all(
    con: duckdb.DuckDBPyConnection,
    client: Any,
    call: HubSpotCaller,
    changes: list[_Change],
    result: PublishResult,
    workers: int,
) -> None:
    """Send every batch, `workers` at a time; each outcome is recorded (on this thread: DuckDB is unshared)
    before the next batch is sent, so at most `workers` acknowledged batches are ever unrecorded."""

    def account(outcome: _Outcome) -> None:
        for change in [*outcome.accepted, *outcome.redirected]:
            result.records_sent[change.object_type] = result.records_sent.get(change.object_type, 0) + 1
            for prop in change.properties:
                result.counts.setdefault((change.object_type, prop), PropertyCounts()).sent += 1
        result.records_redirected += len(outcome.redirected)
        for change, failure in outcome.failures:
            for prop in change.properties:
                counts = result.counts.setdefault((change.object_type, prop), PropertyCounts())
                if failure.skipped:
                    counts.skipped += 1
                else:
                    counts.failed += 1
            result.failures.append(failure)
        _record_published(con, outcome.accepted, result.run_id)
        _record_failures(con, [failure for _change, failure in outcome.failures], result.run_id)

    workers = max(1, workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hubspot-publish") as pool:
        in_flight: set[Future[_Outcome]] = set()
        for object_type, batch in _batches(changes):
            if len(in_flight) >= workers:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    account(future.result())
            in_flight.add(pool.submit(_send_batch, client, call, object_type, batch))
        while in_flight:
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                account(future.result())
    if result.records_failed:
        log.warning(
            "publish %s: %d records failed and will be retried next run", result.run_id, result.records_failed
        )


__all__ = [
    "PIPELINE_PROPERTIES",
    "PropertySchemaError",
    "PublishError",
    "PublishResult",
    "publish_to_hubspot",
]
