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
from connectors.hubspot.streams import CONTACT_DEALS, DEAL_LINE_ITEMS, DEALS, ObjectStream

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


def drop_stage(con: duckdb.DuckDBPyConnection, stream: ObjectStream) -> None:
    for part in ("rows", "assoc", "assoc_read"):
        con.execute(f"DROP TABLE IF EXISTS {stage_name(stream.name, part)}")


def commit_object_stream(
    con: duckdb.DuckDBPyConnection,
    stream: ObjectStream,
    full: bool,
    cursor: wh.Cursor | None,
    run: wh.RunRecord,
) -> tuple[int, int]:
    """Staged rows -> target (last read wins), associations replaced per record read, merges marked, cursor:
    all in one transaction. Returns (rows, association rows)."""
    rows_stage = stage_name(stream.name)
    assoc_stage = stage_name(stream.name, "assoc")
    read_stage = stage_name(stream.name, "assoc_read")
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
