"""The DuckDB warehouse layer on a real database file: upserts, partitions, atomic commits, rejects."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_rejects_keep_a_hostile_raw_value_readable(con):
    # A lone surrogate cannot be encoded as UTF-8: the reject stores its escape instead of failing the load.
    n = wh.record_rejects(con, "r1", "hubspot", [wh.Reject("7", "firstname", "a\ud800b", "bad text")])
    assert n == 1
    assert con.execute("SELECT value FROM ops.rejects").fetchall() == [("a\\ud800b",)]
    wh.record_rejects(con, "r2", "spend", [wh.Reject(None, "campaign", "x" * 200_000, "cell too long")])
    stored = con.execute("SELECT value FROM ops.rejects WHERE run_id = 'r2'").fetchall()[0][0]
    assert stored.startswith("xxx") and len(stored) == wh.REJECT_VALUE_CHARS + 1


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
        # Eight digits are a compact ISO date, never epoch milliseconds in January 1970.
        (wh.to_date, "20261031", date(2026, 10, 31)),
        (wh.to_utc_datetime, "20261031", datetime(2026, 10, 31, tzinfo=UTC)),
        (wh.to_decimal, "1e3", Decimal("1000.00")),
        (wh.to_decimal, "9999999999999999.99", Decimal("9999999999999999.99")),
        (wh.to_bigint, "9223372036854775807", 2**63 - 1),
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
        # Values that once escaped as decimal.InvalidOperation and failed a whole HubSpot stream.
        (wh.to_decimal, "1e30", "too large"),
        (wh.to_decimal, "1e309", "too large"),
        (wh.to_decimal, "-1e309", "too large"),
        (wh.to_decimal, "1" * 27, "too large"),
        (wh.to_decimal, "1e-999999999", "more than 2 decimals"),
        (wh.to_decimal, "9" * 5000, "characters long"),
        (wh.to_decimal, "\ud800", "not a number"),
        # Read by Python, meant by no one: refused instead of silently accepted.
        (wh.to_decimal, "1_000", "no '_'"),
        (wh.to_bigint, "1_000", "no '_'"),
        (wh.to_decimal, "\u0661\u0662\u0663", "only the digits 0-9"),
        (wh.to_bigint, "1e30", "BIGINT range"),
        (wh.to_bigint, "9223372036854775808", "BIGINT range"),
        (wh.to_bigint, "Infinity", "BIGINT range"),
        (wh.to_date, "20261399", "not a date"),
        (wh.to_utc_datetime, "99999999999999999999999", "out of range"),
        (wh.to_utc_datetime, "0001-01-01T00:00:00+01:00", "out of range"),
    ],
)
def test_converters_refuse_bad_values_with_a_reason(func, raw, reason):
    with pytest.raises(wh.ConversionError, match=reason):
        func(raw)


CONVERTERS = (
    wh.to_decimal,
    lambda v: wh.to_decimal(v, 4),
    wh.to_bigint,
    wh.to_date,
    wh.to_utc_datetime,
    wh.to_bool,
)
# Text an API or a sheet can send: digits, signs, exponents and separators mixed with anything at all.
NUMBERISH = st.text(alphabet="0123456789+-.,eE_ :TZnaNIfity\u00a0\u0661", max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.one_of(NUMBERISH, st.text(max_size=60)))
def test_every_converter_answers_a_value_or_a_conversion_error(raw):
    # Whatever arrives, one value never stops a load: either a typed value or a ConversionError (a reject).
    for convert in CONVERTERS:
        with contextlib.suppress(wh.ConversionError):
            convert(raw)


@settings(max_examples=200, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=0, max_value=10**15))
def test_money_round_trips_exactly(amount):
    assert wh.to_decimal(str(amount)) == amount
