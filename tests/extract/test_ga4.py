"""GA4 extract: the official client (REST) against the sandbox over HTTP, into a real DuckDB file.

Expected numbers are recomputed here from the generator's GA4 facts (the sandbox's ground truth),
independently of the stand-in's report engine.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pytest
from google.api_core.exceptions import ServiceUnavailable

from connectors import warehouse
from connectors.config import Settings, load_settings
from connectors.ga4 import (
    TRAFFIC_DAILY,
    GA4ConfigError,
    QuotaPolicy,
    ReportPage,
    contact_sessions_spec,
    extract_ga4,
    parse_pages,
    replace_days,
)
from sandbox.server import SandboxServer

SEED = 7
CONTACTS = 300
FAST_RETRY = 0.01  # seconds: retry backoff base in tests
TRAFFIC_KEY_DIMS = (
    "sessionSource",
    "sessionMedium",
    "sessionCampaignName",
    "sessionManualTerm",
    "sessionManualAdContent",
)
TRAFFIC_COLUMNS = (
    "date, session_source, session_medium, session_campaign_name, session_manual_term, "
    "session_manual_ad_content, session_default_channel_group, sessions, total_users, key_events, "
    "purchase_revenue, total_revenue, transactions, advertiser_ad_cost, advertiser_ad_clicks, "
    "advertiser_ad_impressions, currency_code"
)


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(contacts=CONTACTS, seed=SEED) as sb:
        yield sb


@pytest.fixture
def sb(sandbox):
    """The shared sandbox with its quota and faults clean before and after each test."""
    sandbox.dataset.ga4_quota.reset()
    sandbox.faults.clear()
    yield sandbox
    sandbox.dataset.ga4_quota = type(sandbox.dataset.ga4_quota)()
    sandbox.faults.clear()


def settings_for(sb: SandboxServer, property_id: str | None = None, **ga4_options) -> Settings:
    """Real settings (the [ga4] section as in roi.toml) aimed at the sandbox."""
    return load_settings(
        None,
        ga4_property_id=property_id or sb.ga4_property_id,
        ga4_api_endpoint=sb.base_url,
        ga4=ga4_options,
    )


def property_today(sb: SandboxServer) -> dt.date:
    return sb.dataset.now.astimezone(ZoneInfo("Europe/Paris")).date()


def truth_traffic(dataset, start: dt.date, end: dt.date) -> dict[tuple, tuple[int, Decimal, Decimal]]:
    """(date, source, medium, campaign, term, content) -> (sessions, ad cost, purchase revenue)."""
    facts = dataset.ga4
    days = facts.day_dates()
    mask = (days >= np.datetime64(start)) & (days <= np.datetime64(end))
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for i in np.flatnonzero(mask).tolist():
        key = (
            days[i].astype(dt.date),
            *(facts.tables[d][int(facts.dims[d][i])] for d in TRAFFIC_KEY_DIMS),
        )
        sums[key][0] += int(facts.metrics["sessions"][i])
        sums[key][1] += int(facts.metrics["advertiserAdCost"][i])
        sums[key][2] += int(facts.metrics["purchaseRevenue"][i])
    return {
        key: (s, Decimal(cost) / 100, Decimal(rev) / 100)
        for key, (s, cost, rev) in sums.items()
        if s or cost or rev
    }


def loaded_traffic(db: Path, start: dt.date, end: dt.date) -> dict[tuple, tuple[int, Decimal, Decimal]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT date, session_source, session_medium, session_campaign_name, session_manual_term, "
            "session_manual_ad_content, sessions, advertiser_ad_cost, purchase_revenue "
            "FROM raw.ga4_traffic_daily WHERE date BETWEEN ? AND ?",
            [start, end],
        ).fetchall()
    finally:
        con.close()
    return {tuple(r[:6]): (r[6], r[7], r[8]) for r in rows}


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_backfill_of_a_quarter_pages_with_offset_and_matches_ground_truth(sb, tmp_path):
    db = tmp_path / "wh.duckdb"
    q_start, q_end = dt.date(2026, 4, 1), dt.date(2026, 6, 30)
    # A March day loaded before must stay as it was.
    extract_ga4(settings_for(sb), db, "run-march", start=dt.date(2026, 3, 31), end=dt.date(2026, 3, 31))

    result = extract_ga4(
        settings_for(sb, backfill_chunk_days=30), db, "run-q2", start=q_start, end=q_end, page_size=120
    )
    traffic = result.reports["traffic_daily"]
    assert result.complete and result.mode == "backfill"
    assert traffic.chunks == 4  # 30 + 30 + 30 + 1 days
    assert traffic.pages > traffic.chunks  # 120-row pages: several per chunk, stepped by offset to rowCount
    assert traffic.rejected == 0

    truth = truth_traffic(sb.dataset, q_start, q_end)
    loaded = loaded_traffic(db, q_start, q_end)
    assert loaded == truth
    assert traffic.rows == len(truth)
    assert all(isinstance(v[1], Decimal) for v in loaded.values())

    # Exactly that quarter (plus the untouched March day), one metadata row per day and report.
    assert query(db, "SELECT min(date), max(date) FROM raw.ga4_traffic_daily WHERE _run_id = 'run-q2'") == [
        (q_start, q_end)
    ]
    assert query(db, "SELECT DISTINCT _run_id FROM raw.ga4_traffic_daily WHERE date < ?", [q_start]) == [
        ("run-march",)
    ]
    assert query(
        db,
        "SELECT report, count(*), min(date), max(date), sum(row_count) FROM raw.ga4_report_days "
        "WHERE date BETWEEN ? AND ? GROUP BY report ORDER BY report",
        [q_start, q_end],
    ) == [
        ("contact_sessions", 91, q_start, q_end, result.reports["contact_sessions"].rows),
        ("traffic_daily", 91, q_start, q_end, len(truth)),
    ]
    assert query(db, "SELECT DISTINCT currency_code, time_zone FROM raw.ga4_report_days") == [
        ("EUR", "Europe/Paris")
    ]
    state = warehouse.get_cursor(warehouse.connect(db), TRAFFIC_DAILY.stream)
    assert state is not None and state.value == q_end.isoformat() and state.extra["pending"] == []
    assert query(db, "SELECT stream, status, rows FROM ops.sync_runs WHERE run_id = 'run-q2' ORDER BY 1") == [
        ("ga4.contact_sessions", "success", result.reports["contact_sessions"].rows),
        ("ga4.traffic_daily", "success", len(truth)),
    ]


def test_contact_sessions_carry_the_crm_contact_id(sb, tmp_path):
    db = tmp_path / "wh.duckdb"
    start, end = dt.date(2026, 5, 1), dt.date(2026, 5, 31)
    result = extract_ga4(
        settings_for(sb), db, "run-1", start=start, end=end, reports=["contact_sessions"], chunk_days=31
    )
    assert result.complete and set(result.reports) == {"contact_sessions"}

    facts = sb.dataset.ga4
    days = facts.day_dates()
    mask = (days >= np.datetime64(start)) & (days <= np.datetime64(end)) & (facts.contact != 0)
    expected: dict[tuple[dt.date, str], int] = defaultdict(int)
    for i in np.flatnonzero(mask).tolist():
        expected[(days[i].astype(dt.date), str(int(facts.contact[i])))] += int(facts.metrics["sessions"][i])
    rows = query(
        db, "SELECT date, contact_id, sum(sessions) FROM raw.ga4_contact_sessions GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert {(d, c): s for d, c, s in rows} == {k: v for k, v in expected.items() if v}
    assert query(db, "SELECT DISTINCT subject_to_thresholding FROM raw.ga4_report_days") == [(True,)]


def test_trailing_window_replaces_processing_days_and_leaves_older_days(tmp_path):
    with SandboxServer(contacts=CONTACTS, seed=SEED) as sb:
        dataset = sb.dataset
        today = property_today(sb)
        processing = dataset.ga4_processing_days
        assert processing == [today - dt.timedelta(days=2), today - dt.timedelta(days=1)]
        db = tmp_path / "wh.duckdb"
        settings = settings_for(sb, trailing_days=3)
        first_day = today - dt.timedelta(days=20)
        extract_ga4(settings, db, "run-backfill", start=first_day, end=today - dt.timedelta(days=1))
        older_sql = f"SELECT {TRAFFIC_COLUMNS} FROM raw.ga4_traffic_daily WHERE date < ? ORDER BY ALL"
        older = query(db, older_sql, [today - dt.timedelta(days=3)])
        first_pull = loaded_traffic(db, processing[0], processing[1])

        nightly = extract_ga4(settings, db, "run-nightly-1", today=today)
        assert (nightly.mode, nightly.start, nightly.end) == (
            "nightly",
            today - dt.timedelta(days=3),
            today - dt.timedelta(days=1),
        )
        second_pull = loaded_traffic(db, processing[0], processing[1])
        truth = truth_traffic(dataset, processing[0], processing[1])
        # Processing days moved closer to their final numbers, and were replaced (no stale or duplicate rows).
        assert first_pull != second_pull
        sessions = [sum(v[0] for v in pull.values()) for pull in (first_pull, second_pull, truth)]
        assert sessions[0] <= sessions[1] < sessions[2]
        assert query(
            db, "SELECT DISTINCT _run_id FROM raw.ga4_traffic_daily WHERE date >= ?", [nightly.start]
        ) == [("run-nightly-1",)]
        # Older days: not touched at all.
        assert query(
            db, "SELECT DISTINCT _run_id FROM raw.ga4_traffic_daily WHERE date < ?", [nightly.start]
        ) == [("run-backfill",)]
        assert query(db, older_sql, [today - dt.timedelta(days=3)]) == older

        # Once the days settle, the next nightly lands exactly on the final numbers.
        dataset.advance_ga4_processing(2)
        extract_ga4(settings, db, "run-nightly-2", today=today)
        assert loaded_traffic(db, nightly.start, nightly.end) == truth_traffic(
            dataset, nightly.start, nightly.end
        )
        assert loaded_traffic(db, first_day, nightly.end) == truth_traffic(dataset, first_day, nightly.end)


def _comparable(db: Path) -> dict[str, list[tuple]]:
    """Every GA4 raw table minus load bookkeeping, sorted (one connection)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            table: con.execute(f"SELECT * EXCLUDE (_loaded_at, _run_id) FROM {table} ORDER BY ALL").fetchall()
            for table in ("raw.ga4_traffic_daily", "raw.ga4_contact_sessions", "raw.ga4_report_days")
        }
    finally:
        con.close()


def test_quota_exhaustion_mid_backfill_stops_cleanly_and_resumes_identically(sb, tmp_path):
    start, end = dt.date(2026, 1, 1), dt.date(2026, 2, 11)  # 6 weekly chunks per report
    settings = settings_for(sb, backfill_chunk_days=7)
    reference_db = tmp_path / "reference.duckdb"
    reference = extract_ga4(settings, reference_db, "run-ref", start=start, end=end)
    assert reference.complete and reference.calls == 12

    quota = sb.dataset.ga4_quota
    quota.reset()
    quota.tokens_per_day = 4  # each weekly request costs 1 token in the sandbox
    db = tmp_path / "wh.duckdb"
    stopped = extract_ga4(settings, db, "run-1", start=start, end=end)
    assert not stopped.complete
    assert "tokens_per_day" in stopped.stopped_reason
    assert stopped.reports["traffic_daily"].chunks == 4
    assert stopped.pending == {
        "traffic_daily": [(dt.date(2026, 1, 29), end)],
        "contact_sessions": [(start, end)],
    }
    assert query(db, "SELECT max(date) FROM raw.ga4_traffic_daily") == [(dt.date(2026, 1, 28),)]
    assert query(db, "SELECT count(*) FROM raw.ga4_contact_sessions") == [(0,)]
    assert query(db, "SELECT stream, status FROM ops.sync_runs WHERE run_id = 'run-1'") == [
        ("ga4.traffic_daily", "stopped")
    ]

    # Still exhausted: GA4 answers 429 at once; the run stops again without losing anything.
    again = extract_ga4(settings, db, "run-2", start=start, end=end)
    assert not again.complete and "429" in again.stopped_reason
    assert again.calls == 1 and again.pending == stopped.pending
    assert sb.request_log.count(status=429) >= 1

    # Quota back (next day): the same backfill only pulls what was left, and ends identical.
    quota.reset()
    quota.tokens_per_day = 200_000
    resumed = extract_ga4(settings, db, "run-3", start=start, end=end)
    assert resumed.complete and resumed.pending == {}
    assert resumed.calls == 2 + 6
    assert _comparable(db) == _comparable(reference_db)


def test_pauses_grow_as_the_hourly_quota_drains_then_stop(sb, tmp_path):
    sb.dataset.ga4_quota.tokens_per_project_per_hour = 12
    pauses: list[float] = []
    result = extract_ga4(
        settings_for(sb, backfill_chunk_days=1),
        tmp_path / "wh.duckdb",
        "run-1",
        start=dt.date(2026, 2, 1),
        end=dt.date(2026, 2, 28),
        reports=["traffic_daily"],
        quota_policy=QuotaPolicy(slow_below=0.5, max_pause_seconds=10.0),
        sleep=pauses.append,
    )
    # 12 one-token requests; pauses start below half the bucket and lengthen as it drains; then a clean stop.
    assert result.calls == 12 and not result.complete
    assert "tokens_per_project_per_hour" in result.stopped_reason
    assert len(pauses) == 5
    assert pauses == sorted(pauses) and pauses[0] > 0 and pauses[-1] < 10.0
    assert result.quota_pause_seconds == pytest.approx(sum(pauses))
    assert result.pending["traffic_daily"] == [(dt.date(2026, 2, 13), dt.date(2026, 2, 28))]


def test_server_errors_are_retried_and_the_data_is_complete(sb, tmp_path):
    sb.faults.configure(fail_requests={1, 2, 4}, statuses=(500, 503))
    db = tmp_path / "wh.duckdb"
    start, end = dt.date(2026, 7, 1), dt.date(2026, 7, 14)
    result = extract_ga4(
        settings_for(sb, backfill_chunk_days=7),
        db,
        "run-1",
        start=start,
        end=end,
        reports=["traffic_daily"],
        retry_base_seconds=FAST_RETRY,
    )
    assert result.complete and result.retries == 3 and result.calls == 2 + 3
    assert loaded_traffic(db, start, end) == truth_traffic(sb.dataset, start, end)
    assert query(db, "SELECT retries, calls FROM ops.sync_runs WHERE run_id = 'run-1'") == [(3, 5)]

    # Dropped connections and random 5xx (seeded): every failed call is retried, the data still ends exact.
    sb.faults.configure(drop_rate=0.25, error_rate=0.2, seed=11)
    sb.request_log.clear()
    start, end = dt.date(2026, 7, 15), dt.date(2026, 8, 11)
    flaky = extract_ga4(
        settings_for(sb, backfill_chunk_days=7),
        db,
        "run-2",
        start=start,
        end=end,
        reports=["traffic_daily"],
        retry_base_seconds=FAST_RETRY,
    )
    failed_calls = sb.request_log.count(where=lambda e: e.status == 0 or e.status >= 500)
    assert flaky.complete and failed_calls > 0 and flaky.retries == failed_calls
    assert loaded_traffic(db, start, end) == truth_traffic(sb.dataset, start, end)


def test_failure_after_retries_keeps_progress_and_the_next_run_does_the_rest(sb, tmp_path):
    db = tmp_path / "wh.duckdb"
    start, end = dt.date(2026, 8, 1), dt.date(2026, 8, 21)  # 3 weekly chunks
    settings = settings_for(sb, backfill_chunk_days=7)
    # Request 1 (week 1) succeeds; week 2 fails on all its 5 attempts, as a long outage would.
    sb.faults.configure(fail_requests={2, 3, 4, 5, 6}, statuses=(503,))
    with pytest.raises(ServiceUnavailable):
        extract_ga4(settings, db, "run-1", start=start, end=end, reports=["traffic_daily"],
                    retry_base_seconds=FAST_RETRY)  # fmt: skip
    assert query(db, "SELECT max(date) FROM raw.ga4_traffic_daily") == [(dt.date(2026, 8, 7),)]
    assert query(db, "SELECT status FROM ops.sync_runs WHERE run_id = 'run-1'") == [("failed",)]
    state = warehouse.get_cursor(warehouse.connect(db), TRAFFIC_DAILY.stream)
    assert state is not None and state.extra["pending"] == [["2026-08-08", "2026-08-21"]]

    sb.faults.clear()
    resumed = extract_ga4(settings, db, "run-2", start=start, end=end, reports=["traffic_daily"])
    assert resumed.complete and resumed.calls == 2
    assert loaded_traffic(db, start, end) == truth_traffic(sb.dataset, start, end)


def test_first_nightly_pulls_history_and_a_missing_custom_dimension_skips_only_that_report(sb, tmp_path):
    db = tmp_path / "wh.duckdb"
    settings = settings_for(sb, contact_dimension="customUser:not_registered")
    today = property_today(sb)
    first = extract_ga4(settings, db, "run-1", today=today)
    assert first.complete and first.mode == "nightly"
    # Empty warehouse: two years of history once (30-day chunks), so ROI has its cost history from day one.
    assert first.start == today - dt.timedelta(days=730) and first.end == today - dt.timedelta(days=1)
    settled_end = sb.dataset.ga4_processing_days[0] - dt.timedelta(days=1)
    history_start = sb.dataset.ga4.first_day
    assert loaded_traffic(db, history_start, settled_end) == truth_traffic(
        sb.dataset, history_start, settled_end
    )
    skipped = first.reports["contact_sessions"].skipped
    assert skipped is not None and "customUser:not_registered is not a valid dimension" in skipped
    assert query(db, "SELECT stream, status FROM ops.sync_runs ORDER BY stream") == [
        ("ga4.contact_sessions", "skipped"),
        ("ga4.traffic_daily", "success"),
    ]

    # From then on: the trailing window only (one request for traffic, one refused for the contact report).
    second = extract_ga4(settings, db, "run-2", today=today)
    assert second.complete and second.start == today - dt.timedelta(days=3)
    assert second.reports["traffic_daily"].chunks == 1 and second.calls == 2


def test_wrong_property_fails_fast_with_a_clear_error(sb, tmp_path):
    settings = settings_for(sb, property_id="999")
    before = len(sb.request_log)
    with pytest.raises(GA4ConfigError, match=r"properties/999.*403.*permissions"):
        extract_ga4(settings, tmp_path / "wh.duckdb", "run-1", today=property_today(sb))
    assert len(sb.request_log) - before == 1  # no retry of a permission error
    assert query(tmp_path / "wh.duckdb", "SELECT status FROM ops.sync_runs") == [("failed",)]


def test_bad_values_from_ga4_go_to_rejects_and_the_rest_loads(tmp_path):
    span = (dt.date(2026, 1, 5), dt.date(2026, 1, 6))
    page = ReportPage(
        rows=[
            (
                ["20260105", "google", "cpc", "brand_bougies", "(not set)", "(not set)", "Paid Search"],
                ["10", "8", "2.5", "35.004", "35", "1", "4.5", "12", "300"],
            ),
            (
                ["20260105", "bing", "cpc", "x", "(not set)", "(not set)", "Paid Search"],
                ["ten", "8", "0", "0", "0", "0", "0", "0", "0"],
            ),
            (
                ["20260106", "google", "cpc", "brand_bougies", "(not set)", "(not set)", "Paid Search"],
                ["3.5", "1", "0", "0", "0", "0", "0", "0", "0"],
            ),
            (
                ["20260107", "google", "cpc", "brand_bougies", "(not set)", "(not set)", "Paid Search"],
                ["3", "1", "0", "0", "0", "0", "0", "0", "0"],
            ),
        ],
        row_count=4,
        offset=0,
        metadata={"currency_code": "EUR", "time_zone": "Europe/Paris", "subject_to_thresholding": False},
        totals=None,
    )
    parsed, _ = parse_pages(iter([page]), TRAFFIC_DAILY, "123", span)
    db = tmp_path / "wh.duckdb"
    con = warehouse.connect(db)
    replace_days(con, TRAFFIC_DAILY, "123", span, parsed, "run-1", cursor_after=None, state_after={})
    con.close()
    assert query(db, "SELECT date, sessions, key_events, purchase_revenue FROM raw.ga4_traffic_daily") == [
        (dt.date(2026, 1, 5), 10, Decimal("2.5000"), Decimal("35.00"))
    ]
    rejects = query(db, "SELECT source, field, value, reason FROM ops.rejects ORDER BY value")
    assert [(r[0], r[1], r[2]) for r in rejects] == [
        ("ga4.traffic_daily", "date", "20260107"),
        ("ga4.traffic_daily", "sessions", "3.5"),
        ("ga4.traffic_daily", "sessions", "ten"),
    ]
    assert all("the row was not loaded" in r[3] for r in rejects)
    assert query(db, "SELECT date, row_count FROM raw.ga4_report_days ORDER BY date") == [
        (dt.date(2026, 1, 5), 1),
        (dt.date(2026, 1, 6), 0),
    ]


def test_contact_report_asks_ga4_to_leave_out_anonymous_rows():
    request_filter = contact_sessions_spec("customUser:crm_contact_id").dimension_filter()
    assert request_filter is not None
    inner = request_filter.not_expression.filter
    assert (inner.field_name, inner.string_filter.value) == ("customUser:crm_contact_id", "(not set)")
