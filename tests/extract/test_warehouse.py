"""The DuckDB warehouse layer on a real database file: upserts, partitions, atomic commits, rejects."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

from connectors import warehouse as wh


@pytest.fixture
def con(tmp_path):
    connection = wh.connect(tmp_path / "wh.duckdb")
    yield connection
    connection.close()


def test_schema_has_every_contract_table_and_is_idempotent(con):
    wh.ensure_schema(con)  # a second time changes nothing
    tables = {
        f"{s}.{t}"
        for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'ops')"
        ).fetchall()
    }
    assert set(wh.raw_tables()) <= tables
    assert {
        "ops.sync_state",
        "ops.sync_runs",
        "ops.rejects",
        "ops.published_values",
        "ops.publish_log",
    } <= tables
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'hubspot_deals'"
        ).fetchall()
    )
    assert types["amount"] == "DECIMAL(18,2)" and types["closedate"] == "TIMESTAMP WITH TIME ZONE"
    assert (
        types["_raw"] == "JSON"
        and types["merged_into_id"] == "BIGINT"
        and types["hs_is_closed_won"] == "BOOLEAN"
    )


def test_upsert_keeps_the_last_duplicate_of_a_batch_and_replaces_by_key(con):
    batch = pa.table(
        {
            "id": [1, 2, 1],
            "dealname": ["first", "two", "last"],
            "amount": pa.array([Decimal("1.00"), Decimal("2.00"), Decimal("3.10")], pa.decimal128(18, 2)),
        }
    )
    assert wh.upsert_arrow(con, "raw.hubspot_deals", batch, ["id"], run_id="r1") == 2
    wh.upsert_arrow(
        con, "raw.hubspot_deals", pa.table({"id": [2], "dealname": ["two v2"]}), ["id"], run_id="r2"
    )
    rows = con.execute("SELECT id, dealname, amount, _run_id FROM raw.hubspot_deals ORDER BY id").fetchall()
    assert rows == [(1, "last", Decimal("3.10"), "r1"), (2, "two v2", None, "r2")]
    assert con.execute("SELECT count(*) FROM raw.hubspot_deals WHERE _loaded_at IS NULL").fetchall() == [(0,)]


def test_replace_partition_swaps_one_day_only(con):
    def day(d: date, sessions: int) -> pa.Table:
        return pa.table(
            {
                "property_id": ["1"],
                "date": [d],
                "session_source": ["google"],
                "session_medium": ["cpc"],
                "session_campaign_name": ["x"],
                "session_manual_term": [""],
                "session_manual_ad_content": [""],
                "sessions": [sessions],
            }
        )

    d1, d2 = date(2026, 10, 1), date(2026, 10, 2)
    for d in (d1, d2):
        wh.replace_partition(
            con, "raw.ga4_traffic_daily", day(d, 5), "property_id = ? AND date = ?", ["1", d]
        )
    wh.replace_partition(con, "raw.ga4_traffic_daily", day(d2, 9), "property_id = ? AND date = ?", ["1", d2])
    rows = con.execute("SELECT date, sessions FROM raw.ga4_traffic_daily ORDER BY date").fetchall()
    assert rows == [(d1, 5), (d2, 9)]


def test_commit_stream_is_all_or_nothing(con):
    run = wh.start_run(con, "r1", "test", "s")
    good = pa.table({"id": [1, 2], "email": ["a@x.fr", "b@x.fr"]})
    wh.commit_stream(con, "s", "raw.hubspot_contacts", good, wh.Cursor("2026-10-01T00:00:00.000Z", 2), run)
    assert run.rows == 2
    # A failure inside the transaction (here: an association row with a column the table lacks) rolls back
    # the rows AND the cursor.
    bad_assoc = pa.table({"contact_id": [1], "deal_id": [9], "no_such_column": [1]})
    with pytest.raises(duckdb.Error):
        wh.commit_stream(
            con,
            "s",
            "raw.hubspot_contacts",
            pa.table({"id": [3], "email": ["c@x.fr"]}),
            wh.Cursor("2026-10-02T00:00:00.000Z"),
            run,
            also=[("raw.hubspot_contact_deals", bad_assoc, ["contact_id", "deal_id"])],
        )
    assert con.execute("SELECT id FROM raw.hubspot_contacts ORDER BY id").fetchall() == [(1,), (2,)]
    cursor = wh.get_cursor(con, "s")
    assert cursor is not None and (cursor.value, cursor.id) == ("2026-10-01T00:00:00.000Z", 2)
    wh.finish_run(con, run, "failed", "boom")
    assert con.execute("SELECT rows, status, error FROM ops.sync_runs WHERE run_id = 'r1'").fetchall() == [
        (2, "failed", "boom")
    ]


def test_rejects_are_recorded_with_record_field_value_and_reason(con):
    n = wh.record_rejects(
        con,
        "r1",
        "spend",
        [
            wh.Reject(None, "amount", "1 200,00", "not a number", line=7),
            {"record_id": "42", "field": "closedate", "value": "x", "reason": "bad date"},
        ],
    )
    assert n == 2
    rows = con.execute(
        "SELECT source, record_id, line, field, value, reason FROM ops.rejects ORDER BY field"
    ).fetchall()
    assert rows == [
        ("spend", None, 7, "amount", "1 200,00", "not a number"),
        ("spend", "42", None, "closedate", "x", "bad date"),
    ]


@pytest.mark.parametrize(
    ("func", "raw", "expected"),
    [
        (wh.to_decimal, "1234.5", Decimal("1234.50")),
        (wh.to_decimal, " -0.10 ", Decimal("-0.10")),
        (wh.to_decimal, "", None),
        (
            wh.to_utc_datetime,
            "2026-10-30T15:58:56.710Z",
            datetime(2026, 10, 30, 15, 58, 56, 710000, tzinfo=UTC),
        ),
        (wh.to_utc_datetime, "2026-10-30T17:00:00+02:00", datetime(2026, 10, 30, 15, 0, tzinfo=UTC)),
        (wh.to_utc_datetime, "1704067200000", datetime(2024, 1, 1, tzinfo=UTC)),
        (wh.to_date, "2026-10-30", date(2026, 10, 30)),
        (wh.to_date, "1430438400000", date(2015, 5, 1)),
        (wh.to_bool, "TRUE", True),
        (wh.to_bool, "false", False),
        (wh.to_bigint, "12", 12),
    ],
)
def test_converters_read_hubspot_strings(func, raw, expected):
    assert func(raw) == expected


@pytest.mark.parametrize(
    ("func", "raw", "reason"),
    [
        (wh.to_decimal, "12,50", "not a number"),
        (wh.to_decimal, "1.005", "more than 2 decimals"),  # never silently rounded
        (wh.to_decimal, "NaN", "not a finite number"),
        (wh.to_utc_datetime, "last tuesday", "not an ISO 8601"),
        (wh.to_date, "2026-13-01", "not a valid date"),
        (wh.to_bool, "maybe", "not a boolean"),
        (wh.to_bigint, "1.5", "not an integer"),
    ],
)
def test_converters_refuse_bad_values_with_a_reason(func, raw, reason):
    with pytest.raises(wh.ConversionError, match=reason):
        func(raw)
