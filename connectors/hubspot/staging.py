"""Staging pages of one stream in DuckDB, and the one transaction that commits them.

Pages are staged in ``ops.stage_<stream>__*`` as they arrive (memory stays flat); at the end the staged rows,
their associations, merge markings and the new cursor are committed in ONE transaction. A run killed
mid-stream leaves the warehouse as before that stream.
"""

from __future__ import annotations

import threading

import duckdb
import pyarrow as pa

from connectors import warehouse as wh
from connectors.hubspot.deletions import delete_records
from connectors.hubspot.streams import ASSOCIATION_STREAMS, DEALS, OBJECT_STREAMS, ObjectStream

STAGE_SCHEMA = "ops"
STAGE_FLUSH_ROWS = 5_000  # staged rows buffered in memory before one insert


def stage_name(stream: str, part: str = "rows") -> str:
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


STAGE_PARTS = ("rows", "assoc", "assoc_read", "archived_seen", "purged")


def prepare_stage(con: duckdb.DuckDBPyConnection, stream: ObjectStream) -> None:
    """Fresh staging tables for one stream (a killed run's leftovers are replaced)."""
    con.execute(f"CREATE OR REPLACE TABLE {stage_name(stream.name)} AS SELECT * FROM {stream.table} LIMIT 0")
    con.execute(
        f"CREATE OR REPLACE TABLE {stage_name(stream.name, 'assoc')} (assoc VARCHAR, from_side VARCHAR, "
        "from_id BIGINT, to_id BIGINT, association_type_id INTEGER)"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {stage_name(stream.name, 'assoc_read')} (assoc VARCHAR, "
        "from_side VARCHAR, read_id BIGINT)"
    )
    # Every id on this run's archived list, and the ids confirmed purged (deletions.py).
    con.execute(f"CREATE OR REPLACE TABLE {stage_name(stream.name, 'archived_seen')} (id BIGINT)")
    con.execute(f"CREATE OR REPLACE TABLE {stage_name(stream.name, 'purged')} (id BIGINT, how VARCHAR)")


def drop_stage(con: duckdb.DuckDBPyConnection, stream: ObjectStream) -> None:
    for part in STAGE_PARTS:
        con.execute(f"DROP TABLE IF EXISTS {stage_name(stream.name, part)}")


def _merge_pairs_sql(stream: ObjectStream, rows_stage: str) -> str:
    """(loser_id, winner_id) for every id a staged record lists in hs_merged_object_ids."""
    if "hs_merged_object_ids" not in dict(stream.properties):
        return (
            "SELECT NULL::BIGINT AS loser_id, NULL::BIGINT AS winner_id WHERE false"  # line items never merge
        )
    return f"""SELECT DISTINCT TRY_CAST(trim(loser) AS BIGINT) AS loser_id, id AS winner_id FROM (
                   SELECT id, unnest(string_split(hs_merged_object_ids, ';')) AS loser FROM {rows_stage}
                   WHERE coalesce(hs_merged_object_ids, '') <> '')
               WHERE TRY_CAST(trim(loser) AS BIGINT) IS NOT NULL AND TRY_CAST(trim(loser) AS BIGINT) <> id"""


def commit_object_stream(
    con: duckdb.DuckDBPyConnection,
    stream: ObjectStream,
    full: bool,
    cursor: wh.Cursor | None,
    run: wh.RunRecord,
) -> tuple[int, int, int]:
    """Staged rows -> target, merges marked, purged records deleted, associations replaced per record read,
    cursor: all in one transaction. Returns (rows, association rows, records deleted)."""
    rows_stage = stage_name(stream.name)
    assoc_stage = stage_name(stream.name, "assoc")
    read_stage = stage_name(stream.name, "assoc_read")
    purged_stage = stage_name(stream.name, "purged")
    target = stream.table
    merged = f"__merged_{stream.name}"
    kept = f"__kept_merges_{stream.name}"
    cursor_column = stream.cursor_property
    with wh.transaction(con):
        # A merged-away id stays merged even if HubSpot lists it again (e.g. among archived records).
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {kept} AS SELECT id, merged_into_id FROM {target}
                        WHERE merged_into_id IS NOT NULL AND id IN (SELECT id FROM {rows_stage})""")
        con.execute(f"DELETE FROM {target} WHERE id IN (SELECT id FROM {rows_stage})")
        # A record read twice (search overlap, both ends meeting, live then on the archived list): the copy of
        # the latest event wins: archivedAt for an archived copy, the last-modified stamp for a live one (a
        # restore stamps the record after its archivedAt). Same event: the last read.
        written = con.execute(
            f"""INSERT INTO {target} BY NAME SELECT * EXCLUDE (__pick) FROM (
                    SELECT *, row_number() OVER (
                        PARTITION BY id
                        ORDER BY coalesce(archived_at, {cursor_column}) DESC NULLS LAST, _loaded_at DESC
                    ) AS __pick
                    FROM {rows_stage}) WHERE __pick = 1"""
        ).fetchall()[0][0]
        con.execute(
            f"UPDATE {target} AS t SET merged_into_id = k.merged_into_id FROM {kept} AS k WHERE t.id = k.id"
        )
        # Merges (HubSpot's: the merge made a NEW record): the new record lists every id merged into it. Those
        # ids' rows stay, marked with the survivor, and lose their associations (moved to the survivor); ids
        # never seen get a marker row, so every alias is known; an alias of an alias now points to the end.
        con.execute(f"CREATE OR REPLACE TEMP TABLE {merged} AS {_merge_pairs_sql(stream, rows_stage)}")
        con.execute(f"""UPDATE {target} AS t SET merged_into_id = m.winner_id FROM {merged} AS m
                        WHERE t.id = m.loser_id OR t.merged_into_id = m.loser_id""")
        con.execute(
            f"""INSERT INTO {target} (id, merged_into_id, archived, _loaded_at, _run_id)
                        SELECT loser_id, winner_id, false, now(), ? FROM {merged}
                        WHERE loser_id NOT IN (SELECT id FROM {target})""",
            [run.run_id],
        )
        deleted = 0
        for how in ("archived_list", "full_read", "sweep"):
            ids = [
                r[0] for r in con.execute(f"SELECT id FROM {purged_stage} WHERE how = ?", [how]).fetchall()
            ]
            deleted += delete_records(con, stream, ids, run.run_id, how)
        assoc_rows = 0
        for assoc in ASSOCIATION_STREAMS:
            if stream.object_type not in (assoc.from_type, assoc.to_type):
                continue
            side_cols = {"from": assoc.from_column, "to": assoc.to_column}
            own = assoc.from_column if stream.object_type == assoc.from_type else assoc.to_column
            con.execute(f"DELETE FROM {assoc.table} WHERE {own} IN (SELECT loser_id FROM {merged})")
            # HubSpot shows no association of an archived record (they come back with a restore, which the
            # next run reads): the warehouse keeps none either, so a deleted contact is nobody's deal contact.
            con.execute(
                f"DELETE FROM {assoc.table} WHERE {own} IN "
                f"(SELECT id FROM {target} WHERE coalesce(archived, false))"
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
            # Pairs read before the other side's merge was known land on its survivor.
            from_table, to_table = _object_table(assoc.from_type), _object_table(assoc.to_type)
            n = con.execute(
                f"""INSERT INTO {assoc.table} ({assoc.from_column}, {assoc.to_column}, association_type_id,
                        _loaded_at, _run_id)
                    WITH mapped AS (
                        SELECT coalesce(f.merged_into_id, s.from_id) AS from_id,
                               coalesce(t.merged_into_id, s.to_id) AS to_id,
                               any_value(s.association_type_id) AS association_type_id
                        FROM {assoc_stage} AS s
                        LEFT JOIN {from_table} AS f ON f.id = s.from_id AND f.merged_into_id IS NOT NULL
                        LEFT JOIN {to_table} AS t ON t.id = s.to_id AND t.merged_into_id IS NOT NULL
                        WHERE s.assoc = ?
                        GROUP BY ALL
                    )
                    SELECT mapped.from_id, mapped.to_id, mapped.association_type_id, now(), ?
                    FROM mapped
                    ANTI JOIN {assoc.table} AS e
                      ON e.{assoc.from_column} = mapped.from_id AND e.{assoc.to_column} = mapped.to_id""",
                [assoc.name, run.run_id],
            ).fetchall()[0][0]
            assoc_rows += n
        if cursor is not None:
            wh.set_cursor(con, stream.name, cursor)
        con.execute(f"DROP TABLE {merged}")
        con.execute(f"DROP TABLE {kept}")
    return int(written), int(assoc_rows), deleted


def _object_table(object_type: str) -> str:
    return next(s.table for s in OBJECT_STREAMS if s.object_type == object_type)
