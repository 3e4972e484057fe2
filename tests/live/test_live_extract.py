"""Opt-in check against the REAL HubSpot portal and GA4 property (read-only calls, a throwaway DuckDB file).

Runs only when selected with `-m live` (`make test-live`) AND the credentials are in the environment:
HUBSPOT_ACCESS_TOKEN, GA4_PROPERTY_ID, GOOGLE_APPLICATION_CREDENTIALS. Otherwise every test is skipped with
the reason printed (`-ra`), so a normal `pytest` never talks to the outside world.
"""

from __future__ import annotations

import os
import uuid

import duckdb
import pytest

pytestmark = pytest.mark.live

REQUIRED_ENV = ("HUBSPOT_ACCESS_TOKEN", "GA4_PROPERTY_ID", "GOOGLE_APPLICATION_CREDENTIALS")


@pytest.fixture(scope="module")
def live_settings(request):
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        pytest.skip(f"live checks need {', '.join(missing)} in the environment")
    if "live" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("live checks run only when selected: pytest -m live tests/live (make test-live)")
    from connectors.config import load_settings

    settings = load_settings(None)
    problems = settings.problems(("hubspot", "ga4"))
    if problems:
        pytest.fail("Settings for the live check are invalid:\n" + "\n".join(problems))
    return settings


def _run_id() -> str:
    return f"live-{uuid.uuid4().hex[:8]}"


def test_live_ga4_nightly_window(live_settings, tmp_path):
    from connectors.ga4 import extract_ga4

    db = tmp_path / "live.duckdb"
    result = extract_ga4(live_settings, db, _run_id())
    # A quota stop is a clean outcome too; anything else raised would have failed the test already.
    assert result.complete or result.stopped_reason
    traffic = result.reports["traffic_daily"]
    assert traffic.skipped is None and traffic.chunks >= 1
    con = duckdb.connect(str(db), read_only=True)
    try:
        days = con.execute(
            "SELECT count(*), count(DISTINCT currency_code), min(time_zone) FROM raw.ga4_report_days "
            "WHERE report = 'traffic_daily'"
        ).fetchall()[0]
        loaded = con.execute("SELECT count(*) FROM raw.ga4_traffic_daily").fetchall()[0][0]
    finally:
        con.close()
    assert days[0] == traffic.days and days[1] <= 1 and days[2]
    assert loaded == traffic.rows
    assert result.tokens_consumed > 0  # the property's quota was read from every response


def test_live_hubspot_pipelines_and_properties(live_settings, tmp_path):
    from connectors.hubspot.extract import extract_hubspot
    from connectors.hubspot.streams import PIPELINES_STREAM, PROPERTIES_STREAM

    db = tmp_path / "live.duckdb"
    results = extract_hubspot(live_settings, db, _run_id(), streams=[PIPELINES_STREAM, PROPERTIES_STREAM])
    assert all(r.status not in ("failed", "running") for r in results.values()), results
    con = duckdb.connect(str(db), read_only=True)
    try:
        stages = con.execute("SELECT count(*) FROM raw.hubspot_deal_stages").fetchall()[0][0]
        properties = con.execute(
            "SELECT count(*) FROM raw.hubspot_properties WHERE object_type = 'contacts'"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert stages > 0 and properties > 0  # every portal has a default pipeline and contact properties
