"""Real Prefect flow runs (one harness per session) against the sandbox over HTTP, on real DuckDB files."""

from __future__ import annotations

import contextvars
import json
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
from hubspot import HubSpot
from openpyxl import load_workbook
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from typer.testing import CliRunner

from connectors import warehouse
from connectors.reports.formats import money, signed_percent
from flows.backfill import backfill
from flows.cli import app
from flows.common import PipelineStepError
from flows.locking import WarehouseBusyError
from flows.nightly import nightly
from flows.sandbox_mode import sandbox_today


def _artifacts(state) -> dict:
    """The run's artifacts by key, read back from the Prefect API."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    return {
        a.key: (json.loads(a.data) if a.type == "table" and isinstance(a.data, str) else a.data)
        for a in found
    }


def _scalar(db, sql, params=None):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()[0][0]
    finally:
        con.close()


def _all_records(store, object_type: str) -> list:
    records, after = [], None
    while True:
        page, after = store.page(object_type, after, 100)
        records += page
        if after is None:
            return records


def _update_calls(sb) -> int:
    return sb.request_log.count(method="POST", where=lambda e: e.path.endswith("/batch/update"))


def test_nightly_extracts_builds_publishes_and_leaves_artifacts(nightly_run, flow_sandbox, flow_env):
    state, db, publish_calls = nightly_run
    assert state.is_completed(), state.message
    result = state.result()
    assert result["tests_failed"] == [] and result["publish_skipped"] is None
    # Every contact the portal lists landed once; every stream run of this flow run succeeded.
    assert _scalar(
        db,
        "select count(*) from raw.hubspot_contacts "
        "where not coalesce(archived, false) and merged_into_id is null",
    ) == (flow_sandbox.store.count("contacts"))
    statuses = _scalar(
        db, "select list(distinct status) from ops.sync_runs where run_id = ?", [result["run_id"]]
    )
    assert statuses == ["success"]
    # Published values went over HTTP and read back through the official client equal what ops recorded.
    assert result["published"] > 0 and publish_calls > 0
    record_id, prop, value = (
        duckdb.connect(str(db), read_only=True)
        .execute(
            "select record_id, property, value from ops.published_values "
            "where object_type = 'deals' and value is not null and value <> '' order by record_id limit 1"
        )
        .fetchall()[0]
    )
    client = HubSpot(access_token=flow_sandbox.access_token, host=flow_sandbox.base_url)
    assert client.crm.deals.basic_api.get_by_id(str(record_id), properties=[prop]).properties[prop] == value
    # Artifacts: a markdown summary naming the run, and the ROI table equal to the mart.
    artifacts = _artifacts(state)
    assert (
        result["run_id"] in artifacts["nightly-summary"]
        and "Property values published" in artifacts["nightly-summary"]
    )
    # The ROI table shows formatted figures (12 345,67 € ; +12,5 %) for the publish model, equal to the mart.
    table = artifacts["roi-by-channel"]
    con = duckdb.connect(str(db), read_only=True)
    labels = dict(
        con.execute("select channel, label from cfg_tagging_channel_labels where language = 'fr'").fetchall()
    )
    mart_rows = con.execute(
        "select channel, cost, roi_on_revenue, roi_on_margin from roi_by_channel "
        "where month is null and attribution_model = 'markov'"
    ).fetchall()
    con.close()
    shown = {
        row["Canal"]: (row["Investissement (€)"], row["ROI sur CA"], row["ROI sur marge"]) for row in table
    }
    expected = {
        labels[channel]: (money(cost), signed_percent(on_revenue), signed_percent(on_margin))
        for channel, cost, on_revenue, on_margin in mart_rows
    }
    assert {k: v for k, v in shown.items() if k != "Total"} == expected and len(expected) > 3
    assert shown["Total"][0] == money(sum(cost for _, cost, *_ in mart_rows))
    # The HTML report was written beside the warehouse and is linked from the run.
    report = Path(result["report"])
    assert report == db.with_name(f"{db.stem}_report.html") and report.stat().st_size > 50_000
    assert report.resolve().as_uri() in artifacts["roi-report"]  # a markdown link [text](file:///...)
    assert result["run_id"] in report.read_text(encoding="utf-8")


def test_failing_data_test_blocks_publishing(flow_sandbox, flow_env, tmp_path, monkeypatch):
    db = tmp_path / "blocked.duckdb"
    monkeypatch.setenv("ROI_DATABASE", str(db))
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "no_deal_above_100k.sql").write_text(
        "-- a won deal above 100,000 EUR is a typo in this business\n"
        "select id, amount from raw.hubspot_deals where amount > 100000\n"
    )
    deal_id = min(r for r in range(5_000_001, 5_000_100) if flow_sandbox.store.get("deals", r) is not None)
    original = flow_sandbox.store.get("deals", deal_id).properties["amount"]
    flow_sandbox.store.update("deals", deal_id, {"amount": "250000.00"})
    flow_sandbox.request_log.clear()
    try:
        state = nightly(today=sandbox_today(flow_sandbox), extra_data_tests=str(checks), return_state=True)
    finally:
        flow_sandbox.store.update("deals", deal_id, {"amount": original})
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PipelineStepError)
    assert error.result["tests_failed"] == ["no_deal_above_100k"]
    assert "data test(s) failed" in error.result["publish_skipped"]
    assert _update_calls(flow_sandbox) == 0  # nothing reached HubSpot
    assert _scalar(db, "select count(*) from ops.publish_log") == 0
    assert _scalar(db, "select status from ops.sync_runs where stream = '(flow)'") == "failed"
    summary = _artifacts(state)["nightly-summary"]
    assert "**SKIPPED**" in summary and "FAILED `no_deal_above_100k`" in summary


def test_two_runs_at_once_one_stops_cleanly_and_the_file_is_intact(
    flow_sandbox, flow_env, tmp_path, monkeypatch
):
    db = tmp_path / "contended.duckdb"
    monkeypatch.setenv("ROI_DATABASE", str(db))
    states: list = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        states.append(
            nightly(today=sandbox_today(flow_sandbox), publish=False, lock_wait_seconds=0, return_state=True)
        )

    # Each thread in a copy of this one's context: the same Prefect API as the rest of the session.
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(run,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    completed = [s for s in states if s.is_completed()]
    failed = [s for s in states if s.is_failed()]
    assert len(completed) == 1 and len(failed) == 1
    error = failed[0].result(raise_on_failure=False)
    assert isinstance(error, WarehouseBusyError) and "is being written by run nightly-" in str(error)
    # The file opens, holds one complete run, and only that run wrote to it.
    assert _scalar(
        db,
        "select count(*) from raw.hubspot_contacts "
        "where not coalesce(archived, false) and merged_into_id is null",
    ) == (flow_sandbox.store.count("contacts"))
    assert _scalar(db, "select count(distinct run_id) from ops.sync_runs") == 1
    assert _scalar(db, "select count(*) from roi_by_channel") > 0


def test_backfill_resumes_after_the_last_committed_chunk_and_does_not_publish(
    flow_sandbox, flow_env, tmp_path, monkeypatch
):
    db = tmp_path / "backfill.duckdb"
    monkeypatch.setenv("ROI_DATABASE", str(db))
    start, end = date(2026, 10, 1), date(2026, 10, 10)  # chunks of 4 days: 1-4, 5-8, 9-10
    # An earlier attempt of this same backfill committed its first chunk, then crashed.
    con = warehouse.connect(db)
    warehouse.set_cursor(
        con, "backfill:2026-10-01:2026-10-10:ga4+hubspot", warehouse.Cursor(value="2026-10-04")
    )
    con.close()
    # Publishing moved every record's modification date to today: a workflow re-dates a few of them.
    contacts = [r.id for r in _all_records(flow_sandbox.store, "contacts")]
    flow_sandbox.store.touch("contacts", contacts[:5], datetime(2026, 10, 2, 12, tzinfo=UTC))  # skipped chunk
    flow_sandbox.store.touch("contacts", contacts[5:12], datetime(2026, 10, 7, 12, tzinfo=UTC))  # chunk 2
    flow_sandbox.request_log.clear()
    result = backfill(start=start, end=end, streams=["ga4", "hubspot"], chunk_days=4)
    assert (result["chunks"], result["chunks_run"]) == (3, 2)
    days = (
        duckdb.connect(str(db), read_only=True)
        .execute("select min(date), max(date), count(distinct date) from raw.ga4_traffic_daily")
        .fetchall()[0]
    )
    assert days == (date(2026, 10, 5), date(2026, 10, 10), 6)
    # HubSpot: exactly the contacts modified in the chunks that ran (Oct 5-10), none from the skipped chunk.
    expected = sorted(
        r.id
        for r in _all_records(flow_sandbox.store, "contacts")
        if "2026-10-05" <= (r.properties.get("lastmodifieddate") or "")[:10] <= "2026-10-10"
    )
    assert set(contacts[5:12]) <= set(expected) and not set(contacts[:5]) & set(expected)
    assert _scalar(db, "select list(id order by id) from raw.hubspot_contacts") == expected
    assert _update_calls(flow_sandbox) == 0 and result["published"] == 0
    assert "not requested" in result["publish_skipped"]
    # Finished: its progress is cleared, so running it again is a deliberate full re-load.
    assert _scalar(db, "select count(*) from ops.sync_state where stream like 'backfill:%'") == 0


def test_backfill_pauses_when_the_ga4_quota_runs_out_and_resumes_later(
    flow_sandbox, flow_env, tmp_path, monkeypatch
):
    db = tmp_path / "quota.duckdb"
    monkeypatch.setenv("ROI_DATABASE", str(db))
    start, end = date(2026, 9, 1), date(2026, 9, 8)  # chunks of 4 days: 1-4, 5-8
    quota = flow_sandbox.dataset.ga4_quota
    quota.used_hour = quota.tokens_per_hour  # another tool spent this hour's GA4 tokens
    try:
        paused = backfill(start=start, end=end, streams=["ga4"], chunk_days=4, publish=True)
    finally:
        quota.reset()
    assert paused["complete"] is False and "incomplete" in paused["publish_skipped"]
    assert _update_calls(flow_sandbox) == 0
    # Nothing was marked done and no GA4 day loaded: running the same backfill again does the whole range.
    assert _scalar(db, "select count(*) from ops.sync_state where stream like 'backfill:%'") == 0
    assert _scalar(db, "select count(*) from raw.ga4_traffic_daily") == 0
    resumed = backfill(start=start, end=end, streams=["ga4"], chunk_days=4)
    assert resumed["complete"] is True
    con = duckdb.connect(str(db), read_only=True)
    try:
        loaded = con.execute(
            "select count(distinct date) from raw.ga4_traffic_daily where date between ? and ?", [start, end]
        ).fetchall()[0][0]
    finally:
        con.close()
    assert loaded == 8
    assert _scalar(db, "select count(*) from ops.sync_state where stream like 'backfill:%'") == 0


def test_exported_spreadsheet_roi_equals_the_roi_by_source_mart(nightly_run, flow_env, tmp_path):
    _, db, _ = nightly_run
    output = tmp_path / "roi.xlsx"
    model = "linear"
    outcome = CliRunner().invoke(app, ["export", "--model", model, "--output", str(output)])
    assert outcome.exit_code == 0, outcome.output
    sheet = load_workbook(output, data_only=True)["Par source"]
    header = [c.value for c in sheet[1]]
    assert header[:2] == ["Canal", "Source"]
    on_revenue, on_margin = header.index("ROI sur CA"), header.index("ROI sur marge")
    rows = list(sheet.iter_rows(min_row=2, values_only=True))[:-1]  # the last line is the total
    exported = {(row[0], row[1]): (row[on_revenue], row[on_margin]) for row in rows}
    con = duckdb.connect(str(db), read_only=True)
    labels = dict(
        con.execute("select channel, label from cfg_tagging_channel_labels where language = 'fr'").fetchall()
    )
    mart = {
        (labels[channel], source): rois
        for channel, source, *rois in con.execute(
            "select channel, source, roi_on_revenue, roi_on_margin from roi_by_source "
            "where month is null and attribution_model = ?",
            [model],
        ).fetchall()
    }
    con.close()
    assert len(exported) == len(mart) > 3

    def cell_value(value: object) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    for key, rois in mart.items():
        assert tuple(cell_value(v) for v in exported[key]) == tuple(rois), key


def test_status_audit_and_dry_run_publish_from_the_cli(nightly_run, flow_sandbox, flow_env):
    state, db, _ = nightly_run
    runner = CliRunner()
    status = runner.invoke(app, ["status", "--json", "--last", "50"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.stdout)
    runs = {r["run_id"]: r for r in report["recent_runs"]}
    assert {"kind": "nightly", "status": "success"}.items() <= runs[state.result()["run_id"]].items()
    assert report["row_counts"]["raw.hubspot_contacts"] >= flow_sandbox.store.count("contacts")
    audit = runner.invoke(app, ["utm", "audit", "--json", "--limit", "100"])
    assert audit.exit_code == 0, audit.output
    rows = json.loads(audit.stdout)
    assert rows and any(r["raw_source"] == "partenaire_x" and r["channel"] == "unassigned" for r in rows)
    assert [r["sessions"] for r in rows] == sorted((r["sessions"] for r in rows), reverse=True)
    # Dry run through the publish flow: a preview, nothing sent, nothing written.
    logged = _scalar(db, "select count(*) from ops.publish_log")
    flow_sandbox.request_log.clear()
    preview = runner.invoke(app, ["publish", "--dry-run", "--json"])
    assert preview.exit_code == 0, preview.output
    assert json.loads(preview.stdout)["dry_run"] is True
    assert _update_calls(flow_sandbox) == 0
    assert _scalar(db, "select count(*) from ops.publish_log") == logged


def test_ga4_without_google_ads_and_a_warning_still_publish_and_say_so(
    flow_sandbox, flow_env, tmp_path, monkeypatch
):
    """A property without a Google Ads link and an untied share above the configured warning: the nightly
    run completes and publishes; the summary, the flow result and `roi status` say why."""
    db = tmp_path / "no_ads.duckdb"
    monkeypatch.setenv("ROI_DATABASE", str(db))
    monkeypatch.setenv("GA4__UNTIED_SESSIONS_WARN_SHARE", "0.10")
    restrictions = flow_sandbox.dataset.ga4_restrictions
    flow_sandbox.dataset.ga4_restrictions = type(restrictions)(ads_linked=False)
    try:
        state = nightly(today=sandbox_today(flow_sandbox), return_state=True)
    finally:
        flow_sandbox.dataset.ga4_restrictions = restrictions
    assert state.is_completed(), state.message
    result = state.result()
    assert result["publish_skipped"] is None and result["published"] > 0
    assert result["tests_failed"] == [] and result["tests_warned"] == ["ga4_untied_share"]
    assert result["ga4_cost_available"] is False
    assert Decimal("0.10") < result["ga4_untied_sessions_share"] < 1
    assert _scalar(db, "select status from ops.sync_runs where stream = 'ga4.ad_cost_daily'") == "skipped"
    # Google Ads cost came from the spend sheet (its invoices), not from GA4.
    assert _scalar(
        db, "select list(distinct cost_source) from int_cost_daily where channel = 'paid_search'"
    ) == ["spend_file"]
    summary = _artifacts(state)["nightly-summary"]
    assert "## GA4 restrictions" in summary and "GA4 ad cost: UNAVAILABLE since" in summary
    assert "the spend sheet covers it" in summary and "cannot serve advertiserAdCost" in summary
    assert "WARNING `ga4_untied_share` (does not block publish)" in summary
    assert "GA4 traffic not tied to a contact" in summary

    runner = CliRunner()
    shown = runner.invoke(app, ["status"])
    assert shown.exit_code == 0, shown.output
    assert "GA4 ad cost" in shown.output and "from the spend sheet since" in shown.output
    assert "GA4 sessions not tied to a contact" in shown.output
    report = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    figures = report["figures"]
    # Never served by this property: a trait, not a warning; the untied share is above the 10 % set here.
    assert figures["GA4 ad cost"]["level"] == "ok"
    assert "cannot serve advertiserAdCost" in figures["GA4 ad cost"]["note"]
    sessions = figures["GA4 sessions not tied to a contact"]
    assert sessions["level"] == "warn" and "above the 10 % warning" in sessions["note"]
    share = result["ga4_untied_sessions_share"] * 100
    assert sessions["value"] == f"{share.quantize(Decimal('0.1'))} %"
    assert any("GA4 sessions not tied to a contact" in w for w in report["warnings"])
