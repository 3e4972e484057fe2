"""GA4 traffic that cannot be tied to a contact: kept in staging, measured in ga4_contact_coverage, reported
by flows.reporting.ga4_status, and a warn-only data test above the configured shares."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from raw_fixtures import RawData

from connectors import warehouse
from connectors.ga4 import COST_CAPABILITY, CostAvailability, record_capability
from flows.reporting import ga4_status
from models.runner import ModelBuildError, build, run_data_tests

PARAMS = {"as_of": "2026-06-30", "default_margin_rate": None}
QUIET = {"ga4_untied_sessions_warn_share": "0.99", "ga4_untied_revenue_warn_share": "0.99"}


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def three_days(raw: RawData) -> RawData:
    """June 1: 100 sessions / 50.00 revenue in GA4, the contact report ties 20 sessions / 30.00 to contact 1,
    (not set) 60 / 10.00, (other) 5 / 0, so 15 sessions / 10.00 were withheld. June 2: the contact report was
    not loaded (all untied). June 3: the contact report, pulled later, counts more than the traffic."""
    raw.contact(1, "2026-05-20T10:00:00Z", hs_analytics_source="DIRECT_TRAFFIC")
    raw.traffic("2026-06-01", "google", "cpc", "brand_bougies", sessions=70, revenue="50.00")
    raw.traffic("2026-06-01", "newsletter", "email", "vente_hiver", sessions=30)
    raw.session("2026-06-01", 1, "google", "cpc", "brand_bougies", sessions=20, revenue="30.00")
    raw.session("2026-06-01", "(not set)", "google", "cpc", "brand_bougies", sessions=35, revenue="10.00")
    raw.session("2026-06-01", "(not set)", "newsletter", "email", "vente_hiver", sessions=25)
    raw.session("2026-06-01", "(other)", "(other)", "(other)", "(other)", sessions=5)
    raw.traffic("2026-06-02", "google", "cpc", "brand_bougies", sessions=10, revenue="5.00")
    raw.traffic("2026-06-03", "google", "cpc", "brand_bougies", sessions=4)
    raw.session("2026-06-03", 1, "google", "cpc", "brand_bougies", sessions=6)
    raw.ga4_days("traffic_daily", "2026-06-01", "2026-06-03")
    raw.ga4_days("contact_sessions", "2026-06-01", "2026-06-01", subject_to_thresholding=True,
                 data_loss_from_other_row=True)  # fmt: skip
    raw.ga4_days("contact_sessions", "2026-06-03", "2026-06-03", subject_to_thresholding=True)
    return raw


def test_untied_traffic_is_kept_and_measured_by_cause(raw_data):
    db = three_days(raw_data).write()
    result = build(db, params={**PARAMS, **QUIET})
    assert result.ok, result.summary()
    assert query(
        db,
        "select tie_status, contact_id, sum(sessions), sum(purchase_revenue) from stg_ga4__contact_sessions "
        "group by all order by 1",
    ) == [
        ("contact", 1, 26, Decimal("30.00")),
        ("not_set", None, 60, Decimal("10.00")),
        ("other", None, 5, Decimal("0.00")),
    ]
    coverage = query(
        db,
        "select session_date, contact_report_loaded, is_thresholded, has_other_row, sessions, tied_sessions, "
        "not_set_sessions, other_sessions, withheld_sessions, untied_sessions, revenue, tied_revenue, "
        "withheld_revenue, untied_revenue from ga4_contact_coverage order by 1",
    )
    assert coverage == [
        (dt.date(2026, 6, 1), True, True, True, 100, 20, 60, 5, 15, 80, Decimal("50.00"), Decimal("30.00"),
         Decimal("10.00"), Decimal("20.00")),
        (dt.date(2026, 6, 2), False, False, False, 10, 0, 0, 0, 10, 10, Decimal("5.00"), Decimal("0.00"),
         Decimal("5.00"), Decimal("5.00")),
        (dt.date(2026, 6, 3), True, True, False, 4, 4, 0, 0, 0, 0, Decimal("0.00"), Decimal("0.00"),
         Decimal("0.00"), Decimal("0.00")),
    ]  # fmt: skip
    # Only the tied sessions become touchpoints; (not set) and (other) never reach the contact models.
    assert query(
        db, "select contact_id, touch_date, sessions from int_touchpoints where touch_type = 'ga4_session'"
    ) == [(1, dt.date(2026, 6, 1), 20), (1, dt.date(2026, 6, 3), 6)]
    assert query(db, "select count(*) from utm_compliance where raw_source = '(other)'") == [(0,)]

    con = duckdb.connect(str(db), read_only=True)
    try:
        status = ga4_status(con)
    finally:
        con.close()
    untied = status.untied
    assert untied is not None and status.cost is None
    assert (untied.first_day, untied.last_day, untied.sessions, untied.untied_sessions) == (
        dt.date(2026, 6, 1), dt.date(2026, 6, 3), 114, 90
    )  # fmt: skip
    assert untied.untied_sessions_by_cause == {"not_set": 60, "other": 5, "withheld": 25}
    assert untied.untied_sessions_share == Decimal("0.7895")  # 90 / 114
    assert untied.untied_revenue_share == Decimal("0.4545")  # 25.00 / 55.00
    days = (untied.days_thresholded, untied.days_with_other_row, untied.days_without_contact_report)
    assert days == (2, 1, 1)
    text = "\n".join(status.lines())
    assert "sessions 78.9 % (90 of 114: not_set 60, other 5, withheld 25)" in text
    assert "revenue 45.5 % (25.00 of 55.00)" in text
    assert "GA4 ad cost: not checked yet." in text
    # `roi status` figures: under the thresholds the last build used (QUIET, 99 %), nothing warns.
    assert status.figures() == {
        "GA4 sessions not tied to a contact": {
            "value": "78.9 %",
            "level": "ok",
            "note": "2026-06-01..2026-06-03: not_set 60, other 5, withheld 25",
        },
        "GA4 revenue not tied to a contact": {
            "value": "45.5 %",
            "level": "ok",
            "note": "2026-06-01..2026-06-03: 25.00 of 55.00",
        },
    }
    assert build(db, params={**PARAMS, "ga4_untied_revenue_warn_share": "0.40"}).ok
    con = duckdb.connect(str(db), read_only=True)
    try:
        revenue = ga4_status(con).figures()["GA4 revenue not tied to a contact"]
    finally:
        con.close()
    assert revenue["level"] == "warn" and revenue["note"].endswith("; above the 40 % warning")


def test_lost_google_ads_cost_warns_a_property_that_never_had_it_does_not(tmp_path):
    db = tmp_path / "wh.duckdb"
    con = warehouse.connect(db)
    try:
        record_capability(con, "run-1", "123", COST_CAPABILITY, CostAvailability(False, "no link"))
        never = ga4_status(con).figures()["GA4 ad cost"]
        assert never["level"] == "ok" and never["value"].startswith("from the spend sheet since ")
        assert never["note"] == "no link"
        con.execute("DELETE FROM ops.ga4_capabilities")
        for run, found in (
            ("run-1", CostAvailability(True, None, ("advertiserAdCost",))),
            ("run-2", CostAvailability(False, "link removed")),
            ("run-3", CostAvailability(False, "link removed")),
        ):
            record_capability(con, run, "123", COST_CAPABILITY, found)
        status = ga4_status(con)
        first_unavailable = con.execute(
            "SELECT checked_at FROM ops.ga4_capabilities WHERE run_id = 'run-2'"
        ).fetchone()[0]
    finally:
        con.close()
    assert status.cost.unavailable_since == first_unavailable and status.cost.was_available_before
    lost = status.figures()["GA4 ad cost"]
    assert lost["level"] == "warn" and lost["note"] == "link removed"
    assert lost["value"] == f"from the spend sheet since {first_unavailable:%Y-%m-%d}"
    assert status.untied is None and status.lines()[0].startswith("GA4 ad cost: UNAVAILABLE since")


def test_untied_share_above_the_threshold_warns_without_failing_the_build(raw_data):
    db = three_days(raw_data).write()
    params = {
        **PARAMS,
        "ga4_untied_sessions_warn_share": "0.75",
        "ga4_untied_revenue_warn_share": "0.50",
        "ga4_untied_window_days": 30,
    }
    result = build(db, params=params)
    assert result.ok and result.failed_tests == []
    (warning,) = result.warnings
    assert warning.name == "ga4_untied_share" and warning.severity == "warn"
    assert warning.sample == [
        {
            "measure": "sessions",
            "first_day": dt.date(2026, 6, 1),
            "last_day": dt.date(2026, 6, 3),
            "untied": 90,
            "total": 114,
            "untied_pct": Decimal("78.95"),
            "warn_above_pct": Decimal("75.0000"),
        }
    ]  # revenue: 45.45 % is under 50 %
    assert warning.describe().startswith("WARN ga4_untied_share: 1 offending row(s)")
    assert "1 warning(s)" in result.summary()

    # A one-day window sees June 3 only, where everything was tied: no warning.
    result = build(db, params={**params, "ga4_untied_window_days": 1})
    assert result.ok and result.warnings == []
    # The thresholds are settings: stricter ones warn on revenue too.
    result = build(db, params={**params, "ga4_untied_revenue_warn_share": "0.45"})
    assert [row["measure"] for row in result.warnings[0].sample] == ["sessions", "revenue"]


def test_a_data_test_declares_its_severity_in_its_first_comment_lines(raw_data, tmp_path):
    db = raw_data.write()
    build(db, params=PARAMS, run_tests=False)
    folder = tmp_path / "checks"
    folder.mkdir()
    (folder / "soft.sql").write_text("-- severity: warn\n-- why it only warns\nselect 1 as offending\n")
    (folder / "hard.sql").write_text("-- a normal test\nselect 1 as offending\n")
    (folder / "broken_warn.sql").write_text("-- severity: warn\nselect * from no_such_table\n")
    con = duckdb.connect(str(db))
    try:
        results = {t.name: t for t in run_data_tests(con, folder)}
        assert (results["soft"].warns, results["soft"].passed) == (True, False)
        assert (results["hard"].warns, results["hard"].severity) == (False, "error")
        # A warn test that cannot run is an error, not a warning: nothing was checked.
        assert results["broken_warn"].warns is False and results["broken_warn"].error
        (folder / "typo.sql").write_text("-- severity: warning\nselect 1\n")
        with pytest.raises(ModelBuildError, match=r"typo.sql says severity 'warning'"):
            run_data_tests(con, folder)
    finally:
        con.close()
