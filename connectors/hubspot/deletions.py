"""Records deleted for good in HubSpot, and removing them from the warehouse.

HubSpot "deletes" in two steps: a deleted record is ARCHIVED (listed with ``archived=true`` and
``archivedAt``, restorable for 90 days), then PURGED (gone from every endpoint). A GDPR delete purges a
contact at once, with no archived step. Search never returns archived records, so:
- every run lists the archived records (extract.py): new ones are loaded as archived rows, and an archived row
  of the warehouse that is no longer on that list was purged;
- a periodic sweep (``purge_sweep``, every ``[hubspot] purge_sweep_days``) lists the ids alone, live and
  archived (100 per call, no properties), and finds the records purged without being archived first.
A record only missing from a list is never deleted on that evidence alone: ``confirm_gone`` reads it by id
(live, then archived) and only ids HubSpot answers "not found" for are deleted. An id merged into another
record answers with the merged record, so a merge is never taken for a deletion.

Deleting removes the record's rows (and the rows of ids merged into it), its associations and what was
published for it; ``ops.hubspot_deletions`` keeps the id, when and how it was found.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from connectors import warehouse as wh
from connectors.hubspot.client import CallStats, HubSpotCaller, HubSpotCallError
from connectors.hubspot.pages import list_pages
from connectors.hubspot.streams import ASSOCIATION_STREAMS, ObjectStream

log = logging.getLogger(__name__)

BATCH_READ_SIZE = 100  # ids per batch/read call: HubSpot's maximum
SWEEP_STREAM = "hubspot_purge_sweep"  # ops.sync_state: when the last sweep finished
ID_ONLY_PROPERTIES = ["hs_object_id"]  # the sweep asks for this one property: ids, nothing personal


def _missing_ids(answer_body: dict, asked: set[str]) -> set[str]:
    missing: set[str] = set()
    for error in answer_body.get("errors") or []:
        ids = (error.get("context") or {}).get("ids") or []
        missing.update(str(i) for i in ids if str(i) in asked)
    return missing


def _not_found(
    call: HubSpotCaller, api: Any, object_type: str, ids: list[str], archived: bool, stats: CallStats
) -> set[str]:
    """Ids of ``ids`` HubSpot answers "not found" for (live, or archived), read 100 at a time."""
    missing: set[str] = set()
    for start in range(0, len(ids), BATCH_READ_SIZE):
        chunk = ids[start : start + BATCH_READ_SIZE]
        body = {"inputs": [{"id": i} for i in chunk], "properties": ID_ONLY_PROPERTIES}
        what = f"batch read {'archived ' if archived else ''}{object_type} (deletion check)"
        try:
            answer = call(what, api.read, body, archived=archived, stats=stats)
        except HubSpotCallError as exc:
            if exc.status != 404:  # 404: none of the batch exists
                raise
            missing.update(chunk)
            continue
        missing |= _missing_ids(answer, set(chunk))
    return missing


def confirm_gone(
    call: HubSpotCaller, client: Any, object_type: str, ids: Sequence[int], stats: CallStats
) -> list[int]:
    """The ids of ``ids`` that HubSpot has neither live nor archived (purged), checked by id."""
    if not ids:
        return []
    api = getattr(client.crm, object_type).batch_api
    asked = [str(i) for i in ids]
    not_live = _not_found(call, api, object_type, asked, False, stats)
    gone = _not_found(call, api, object_type, sorted(not_live), True, stats) if not_live else set()
    return sorted(int(i) for i in gone)


def delete_records(
    con: duckdb.DuckDBPyConnection, stream: ObjectStream, ids: Sequence[int], run_id: str, how: str
) -> int:
    """Remove purged records from the warehouse (caller holds the transaction). Returns how many."""
    if not ids:
        return 0
    name = f"__purged_{stream.name}"
    con.register(name, pa.table({"id": pa.array(list(ids), pa.int64())}))
    try:
        aliases = f"SELECT id FROM {stream.table} WHERE merged_into_id IN (SELECT id FROM {name})"
        gone = f"(SELECT id FROM {name} UNION {aliases})"
        con.execute(f"CREATE OR REPLACE TEMP TABLE __gone_{stream.name} AS SELECT DISTINCT id FROM {gone}")
        con.execute(
            "INSERT INTO ops.hubspot_deletions (object_type, record_id, detected_at, run_id, how) "
            f"SELECT ?, id, ?, ?, ? FROM {name}",
            [stream.object_type, datetime.now(UTC), run_id, how],
        )
        ids_sql = f"(SELECT id FROM __gone_{stream.name})"
        con.execute(f"DELETE FROM {stream.table} WHERE id IN {ids_sql}")
        for assoc in ASSOCIATION_STREAMS:
            if assoc.from_type == stream.object_type:
                con.execute(f"DELETE FROM {assoc.table} WHERE {assoc.from_column} IN {ids_sql}")
            if assoc.to_type == stream.object_type:
                con.execute(f"DELETE FROM {assoc.table} WHERE {assoc.to_column} IN {ids_sql}")
        con.execute(
            f"DELETE FROM ops.published_values WHERE object_type = ? AND record_id IN {ids_sql}",
            [stream.object_type],
        )
        con.execute(f"DROP TABLE __gone_{stream.name}")
    finally:
        con.unregister(name)
    log.info("%s: %d record(s) purged in HubSpot removed (%s)", stream.name, len(ids), how)
    return len(ids)


# ------------------------------------------------------------------------------------------------------------
# The periodic id sweep


def sweep_due(con: duckdb.DuckDBPyConnection, every_days: int, now: datetime | None = None) -> bool:
    """Whether the purge sweep should run now: never ran, or ran ``every_days`` days ago (0: every run)."""
    last = wh.get_cursor(con, SWEEP_STREAM)
    if last is None or not last.value:
        return True
    ran_at = wh.to_utc_datetime(last.value)
    return ran_at is None or (now or datetime.now(UTC)) - ran_at >= timedelta(days=every_days)


def mark_swept(con: duckdb.DuckDBPyConnection, at: datetime, how: str) -> None:
    wh.set_cursor(con, SWEEP_STREAM, wh.Cursor(at.astimezone(UTC).isoformat(), None, {"how": how}))


def purge_sweep(
    call: HubSpotCaller,
    client: Any,
    con: duckdb.DuckDBPyConnection,
    stream: ObjectStream,
    run_id: str,
    stats: CallStats,
) -> int:
    """List every id of the object type (live and archived, ids only), check the warehouse ids missing from
    both lists by id, delete the ones HubSpot no longer has. Returns how many were deleted."""
    api = getattr(client.crm, stream.object_type).basic_api
    listed: list[int] = []
    for archived in (False, True):
        for page in list_pages(call, api, stream, ID_ONLY_PROPERTIES, archived=archived, stats=stats):
            listed.extend(int(r["id"]) for r in page)
    name = f"__listed_{stream.name}"
    con.register(name, pa.table({"id": pa.array(listed, pa.int64())}))
    try:
        candidates = [
            r[0]
            for r in con.execute(
                f"SELECT id FROM {stream.table} WHERE merged_into_id IS NULL "
                f"AND id NOT IN (SELECT id FROM {name}) ORDER BY id"
            ).fetchall()
        ]
    finally:
        con.unregister(name)
    gone = confirm_gone(call, client, stream.object_type, candidates, stats)
    if gone:
        with wh.transaction(con):
            delete_records(con, stream, gone, run_id, "sweep")
    return len(gone)
