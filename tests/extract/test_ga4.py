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
    AD_COST_DAILY,
    TRAFFIC_DAILY,
    CostAvailability,
    GA4ConfigError,
    QuotaPolicy,
    ReportPage,
    extract_ga4,
    parse_pages,
    replace_days,
)
from sandbox.dataset import Ga4Restrictions
from sandbox.server import SandboxServer

SEED = 7
CONTACTS = 300
FAST_RETRY = 0.01  # seconds: retry backoff base in tests
MAY_1 = dt.date(2026, 5, 1)
ADVERTISER_METRICS = ("advertiserAdCost", "advertiserAdClicks", "advertiserAdImpressions")
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
    "purchase_revenue, total_revenue, transactions, currency_code"
)
GA4_TABLES = (
    "raw.ga4_traffic_daily",
    "raw.ga4_ad_cost_daily",
    "raw.ga4_contact_sessions",
    "raw.ga4_report_days",
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
    sandbox.dataset.ga4_restrictions = Ga4Restrictions()
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


def _facts_between(dataset, start: dt.date, end: dt.date):
    facts = dataset.ga4
    days = facts.day_dates()
    mask = (days >= np.datetime64(start)) & (days <= np.datetime64(end))
    return facts, days, np.flatnonzero(mask).tolist()


def truth_traffic(dataset, start: dt.date, end: dt.date) -> dict[tuple, tuple[int, Decimal]]:
    """(date, source, medium, campaign, term, content) -> (sessions, purchase revenue)."""
    facts, days, rows = _facts_between(dataset, start, end)
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for i in rows:
        key = (days[i].astype(dt.date), *(facts.tables[d][int(facts.dims[d][i])] for d in TRAFFIC_KEY_DIMS))
        sums[key][0] += int(facts.metrics["sessions"][i])
        sums[key][1] += int(facts.metrics["purchaseRevenue"][i])
    return {key: (s, Decimal(rev) / 100) for key, (s, rev) in sums.items() if s or rev}


def truth_cost(dataset, start: dt.date, end: dt.date) -> dict[tuple, tuple[Decimal, int]]:
    """(date, source, medium, campaign) -> (Google Ads cost, clicks), for rows with any."""
    facts, days, rows = _facts_between(dataset, start, end)
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for i in rows:
        key = (
            days[i].astype(dt.date),
            *(facts.tables[d][int(facts.dims[d][i])] for d in TRAFFIC_KEY_DIMS[:3]),
        )
        sums[key][0] += int(facts.metrics["advertiserAdCost"][i])
        sums[key][1] += int(facts.metrics["advertiserAdClicks"][i])
    return {key: (Decimal(cost) / 100, clicks) for key, (cost, clicks) in sums.items() if cost or clicks}


def loaded_traffic(db: Path, start: dt.date, end: dt.date) -> dict[tuple, tuple[int, Decimal]]:
    rows = query(
        db,
        "SELECT date, session_source, session_medium, session_campaign_name, session_manual_term, "
        "session_manual_ad_content, sessions, purchase_revenue "
        "FROM raw.ga4_traffic_daily WHERE date BETWEEN ? AND ?",
        [start, end],
    )
    return {tuple(r[:6]): (r[6], r[7]) for r in rows}


def loaded_cost(db: Path, start: dt.date, end: dt.date) -> dict[tuple, tuple[Decimal, int]]:
    rows = query(
        db,
        "SELECT date, session_source, session_medium, session_campaign_name, advertiser_ad_cost, "
        "advertiser_ad_clicks FROM raw.ga4_ad_cost_daily WHERE date BETWEEN ? AND ?",
        [start, end],
    )
    return {tuple(r[:4]): (r[4], r[5]) for r in rows}


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
    assert result.complete and result.mode == "backfill" and result.skipped == {}
    assert result.cost == CostAvailability(True, None, ADVERTISER_METRICS)
    assert traffic.chunks == 4  # 30 + 30 + 30 + 1 days
    assert traffic.pages > traffic.chunks  # 120-row pages: several per chunk, stepped by offset to rowCount
    assert traffic.rejected == 0

    truth = truth_traffic(sb.dataset, q_start, q_end)
    loaded = loaded_traffic(db, q_start, q_end)
    assert loaded == truth
    assert traffic.rows == len(truth)
    assert all(isinstance(v[1], Decimal) for v in loaded.values())
    # Google Ads cost in its own report, at the source / medium / campaign grain, exact to the cent.
    assert loaded_cost(db, q_start, q_end) == truth_cost(sb.dataset, q_start, q_end)
    assert result.reports["ad_cost_daily"].rows == len(truth_cost(sb.dataset, q_start, q_end))

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
        ("ad_cost_daily", 91, q_start, q_end, result.reports["ad_cost_daily"].rows),
        ("contact_sessions", 91, q_start, q_end, result.reports["contact_sessions"].rows),
        ("traffic_daily", 91, q_start, q_end, len(truth)),
    ]
    assert query(db, "SELECT DISTINCT currency_code, time_zone FROM raw.ga4_report_days") == [
        ("EUR", "Europe/Paris")
    ]
    state = warehouse.get_cursor(warehouse.connect(db), TRAFFIC_DAILY.stream)
    assert state is not None and state.value == q_end.isoformat() and state.extra["pending"] == []
    assert query(db, "SELECT stream, status, rows FROM ops.sync_runs WHERE run_id = 'run-q2' ORDER BY 1") == [
        ("ga4.ad_cost_daily", "success", result.reports["ad_cost_daily"].rows),
        ("ga4.contact_sessions", "success", result.reports["contact_sessions"].rows),
        ("ga4.traffic_daily", "success", len(truth)),
    ]
    assert query(db, "SELECT run_id, capability, available, metrics FROM ops.ga4_capabilities") == [
        ("run-march", "advertiser_cost", True, list(ADVERTISER_METRICS)),
        ("run-q2", "advertiser_cost", True, list(ADVERTISER_METRICS)),
    ]


def contact_truth(dataset, start: dt.date, end: dt.date) -> dict[tuple, tuple[int, Decimal]]:
    """(date, contact id or "(not set)", source, medium, campaign) -> (sessions, purchase revenue)."""
    facts, days, rows = _facts_between(dataset, start, end)
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for i in rows:
        contact = int(facts.contact[i])
        utm = (facts.tables[d][int(facts.dims[d][i])] for d in TRAFFIC_KEY_DIMS[:3])
        key = (days[i].astype(dt.date), str(contact) if contact else "(not set)", *utm)
        sums[key][0] += int(facts.metrics["sessions"][i])
        sums[key][1] += int(facts.metrics["purchaseRevenue"][i])
    return {k: (v, Decimal(r) / 100) for k, (v, r) in sums.items() if v or r}


def loaded_contacts(db: Path) -> dict[tuple, tuple[int, Decimal]]:
    rows = query(
        db,
        "SELECT date, contact_id, session_source, session_medium, session_campaign_name, sessions, "
        "purchase_revenue FROM raw.ga4_contact_sessions",
    )
    return {tuple(r[:5]): (r[5], r[6]) for r in rows}


def test_contact_sessions_keep_every_row_and_count_what_ga4_withholds(sb, tmp_path):
    start, end = dt.date(2026, 5, 1), dt.date(2026, 5, 31)
    truth = contact_truth(sb.dataset, start, end)
    # GA4 hiding nothing: every session is loaded, those without a contact id under "(not set)".
    sb.dataset.ga4_restrictions = Ga4Restrictions.off()
    plain = tmp_path / "plain.duckdb"
    result = extract_ga4(settings_for(sb), plain, "run-1", start=start, end=end, reports=["contact_sessions"])
    assert result.complete and set(result.reports) == {"contact_sessions"} and result.cost is None
    assert loaded_contacts(plain) == truth
    assert sum(n for k, (n, _) in truth.items() if k[1] == "(not set)") > 0

    # GA4 as it is: thresholded, the long tail of ids folded into (other). Nothing is lost: the rows plus what
    # GA4 withheld (its totals minus the rows) are every session, and the chunk is not pulled twice for it.
    sb.dataset.ga4_restrictions = Ga4Restrictions(threshold_users=2, other_values_per_day=2)
    db = tmp_path / "wh.duckdb"
    sb.request_log.clear()
    result = extract_ga4(
        settings_for(sb), db, "run-2", start=start, end=end, reports=["contact_sessions"], chunk_days=31
    )
    contacts = result.reports["contact_sessions"]
    assert result.complete and result.calls == 1 and len(sb.request_log) == 1
    loaded = loaded_contacts(db)
    all_sessions = sum(n for n, _ in truth.values())
    assert 0 < contacts.withheld_sessions < all_sessions / 2
    assert sum(n for n, _ in loaded.values()) + contacts.withheld_sessions == all_sessions
    other = {k: n for k, (n, _) in loaded.items() if k[1] == "(other)"}
    assert other, "busy days fold their long tail"
    # A row that survived is exact; (other) rows have every dimension set to "(other)".
    assert all(loaded[k] == truth[k] for k in loaded if k[1] != "(other)")
    other_dims = "SELECT DISTINCT session_source, session_campaign_name FROM raw.ga4_contact_sessions"
    assert query(db, other_dims + " WHERE contact_id = '(other)'") == [("(other)", "(other)")]
    assert query(
        db,
        "SELECT DISTINCT subject_to_thresholding, data_loss_from_other_row FROM raw.ga4_report_days",
    ) == [(True, True)]


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
        first_cost = loaded_cost(db, processing[0], processing[1])

        nightly = extract_ga4(settings, db, "run-nightly-1", today=today)
        assert (nightly.mode, nightly.start, nightly.end) == (
            "nightly",
            today - dt.timedelta(days=3),
            today - dt.timedelta(days=1),
        )
        second_pull = loaded_traffic(db, processing[0], processing[1])
        truth = truth_traffic(dataset, processing[0], processing[1])
        # Processing days moved closer to their final numbers, and were replaced (no stale or duplicate rows).
        second_cost = loaded_cost(db, processing[0], processing[1])
        costs = [sum(v[0] for v in pull.values()) for pull in (first_cost, second_cost)]
        final_cost = truth_cost(dataset, processing[0], processing[1])
        assert costs[0] < costs[1] < sum(v[0] for v in final_cost.values())
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
        assert loaded_cost(db, first_day, nightly.end) == truth_cost(dataset, first_day, nightly.end)
        assert loaded_traffic(db, first_day, nightly.end) == truth_traffic(dataset, first_day, nightly.end)


def _comparable(db: Path) -> dict[str, list[tuple]]:
    """Every GA4 raw table minus load bookkeeping, sorted (one connection)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            table: con.execute(f"SELECT * EXCLUDE (_loaded_at, _run_id) FROM {table} ORDER BY ALL").fetchall()
            for table in GA4_TABLES
        }
    finally:
        con.close()


def test_quota_exhaustion_mid_backfill_stops_cleanly_and_resumes_identically(sb, tmp_path):
    start, end = dt.date(2026, 1, 1), dt.date(2026, 2, 11)  # 6 weekly chunks per report
    settings = settings_for(sb, backfill_chunk_days=7)
    reference_db = tmp_path / "reference.duckdb"
    reference = extract_ga4(settings, reference_db, "run-ref", start=start, end=end)
    assert reference.complete and reference.calls == 6 * 3 + 1  # 3 reports + the cost compatibility check

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
        "ad_cost_daily": [(start, end)],
        "contact_sessions": [(start, end)],
    }
    assert stopped.cost is None, "a quota stop is incompleteness; the cost capability was not even asked"
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
    assert resumed.calls == 2 + 1 + 6 + 6
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
        ("ga4.ad_cost_daily", "success"),
        ("ga4.contact_sessions", "skipped"),
        ("ga4.traffic_daily", "success"),
    ]
    assert first.skipped == {"contact_sessions": skipped}

    # From then on: the trailing window only (one request for traffic, the cost check and report, one refused
    # for the contact report).
    second = extract_ga4(settings, db, "run-2", today=today)
    assert second.complete and second.start == today - dt.timedelta(days=3)
    assert second.reports["traffic_daily"].chunks == 1 and second.calls == 4


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
                ["10", "8", "2.5", "35.004", "35", "1"],
            ),
            (
                ["20260105", "bing", "cpc", "x", "(not set)", "(not set)", "Paid Search"],
                ["ten", "8", "0", "0", "0", "0"],
            ),
            (
                ["20260106", "google", "cpc", "brand_bougies", "(not set)", "(not set)", "Paid Search"],
                ["3.5", "1", "0", "0", "0", "0"],
            ),
            (
                ["20260107", "google", "cpc", "brand_bougies", "(not set)", "(not set)", "Paid Search"],
                ["3", "1", "0", "0", "0", "0"],
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


def compatibility_checks(sb: SandboxServer) -> int:
    return sb.request_log.count(where=lambda e: e.path.endswith(":checkCompatibility"))


def test_a_property_without_google_ads_keeps_sessions_flowing_and_says_why_cost_is_missing(sb, tmp_path):
    sb.dataset.ga4_restrictions = Ga4Restrictions(ads_linked=False)
    db = tmp_path / "wh.duckdb"
    today = property_today(sb)
    sb.request_log.clear()
    first = extract_ga4(settings_for(sb), db, "run-1", today=today)
    # Not an incomplete extract: nothing is pending, the cost is a capability the property lacks.
    assert first.complete and first.pending == {} and first.stopped_reason is None
    assert first.cost is not None and not first.cost.available and first.cost.metrics == ()
    assert "cannot serve advertiserAdCost" in first.cost.reason
    assert "checkCompatibility: advertiserAdCost INCOMPATIBLE" in first.cost.reason
    assert first.skipped == {"ad_cost_daily": first.cost.reason}
    assert compatibility_checks(sb) == 1 and sb.request_log.count(status=400) == 0  # asked, never refused
    settled_end = sb.dataset.ga4_processing_days[0] - dt.timedelta(days=1)
    history = sb.dataset.ga4.first_day
    assert loaded_traffic(db, history, settled_end) == truth_traffic(sb.dataset, history, settled_end)
    assert first.reports["contact_sessions"].rows > 0
    assert query(db, "SELECT count(*) FROM raw.ga4_ad_cost_daily") == [(0,)]
    assert query(db, "SELECT count(*) FROM raw.ga4_report_days WHERE report = 'ad_cost_daily'") == [(0,)]
    assert query(
        db, "SELECT stream, status, error FROM ops.sync_runs WHERE stream = 'ga4.ad_cost_daily'"
    ) == [("ga4.ad_cost_daily", "skipped", first.cost.reason)]
    assert query(db, "SELECT run_id, available, reason FROM ops.ga4_capabilities") == [
        ("run-1", False, first.cost.reason)
    ]

    # Google Ads gets linked: the next run checks again, finds it and pulls the cost history once.
    sb.dataset.ga4_restrictions = Ga4Restrictions(ads_linked=True)
    sb.dataset.advance_ga4_processing(2)
    second = extract_ga4(settings_for(sb), db, "run-2", today=today)
    assert second.complete and second.cost == CostAvailability(True, None, ADVERTISER_METRICS)
    end = today - dt.timedelta(days=1)
    assert loaded_cost(db, history, end) == truth_cost(sb.dataset, history, end)
    assert second.reports["ad_cost_daily"].chunks == 25  # two years, 30-day chunks
    assert query(db, "SELECT run_id, available FROM ops.ga4_capabilities ORDER BY checked_at") == [
        ("run-1", False),
        ("run-2", True),
    ]


def test_when_the_check_says_yes_and_the_report_says_no_the_report_wins(sb, tmp_path):
    sb.dataset.ga4_restrictions = Ga4Restrictions(ads_linked=False, check_disagrees=True)
    db = tmp_path / "wh.duckdb"
    start, end = dt.date(2026, 6, 1), dt.date(2026, 6, 30)
    result = extract_ga4(settings_for(sb), db, "run-1", start=start, end=end, chunk_days=31)
    assert result.complete and not result.cost.available
    assert result.cost.reason.startswith("runReport refused the cost report: GA4 refused the properties/")
    assert "Please remove advertiserAdCost" in result.cost.reason
    assert set(result.skipped) == {"ad_cost_daily"}
    assert loaded_traffic(db, start, end) == truth_traffic(sb.dataset, start, end)
    # Both answers are kept; the latest (the report's refusal) is what status shows.
    assert query(db, "SELECT available FROM ops.ga4_capabilities ORDER BY checked_at") == [(True,), (False,)]
    assert query(db, "SELECT status FROM ops.sync_runs WHERE stream = 'ga4.ad_cost_daily'") == [("skipped",)]


def test_reading_cost_can_be_turned_off(sb, tmp_path):
    sb.request_log.clear()
    settings = settings_for(sb, read_cost=False)
    result = extract_ga4(settings, tmp_path / "wh.duckdb", "run-1", start=MAY_1, end=MAY_1)
    assert result.complete and not result.cost.available
    assert "read_cost = false" in result.cost.reason
    assert compatibility_checks(sb) == 0 and result.calls == 2  # traffic and contact reports only
    assert AD_COST_DAILY.name in result.skipped
