"""Publishing ROI values to HubSpot: the official client against the sandbox over real HTTP, a real DuckDB
file
built by the pipeline's connectors and models. Counts come from the sandbox's request log and CRM store."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from publish_helpers import (
    accepted_inputs,
    assert_batch_writes_only_our_properties,
    assert_only_our_properties_changed,
    batch_updates,
    client_for,
    desired_values,
    extract_and_build,
    hubspot_values,
    min_update_calls,
    records_by_type,
    sandbox_settings,
    sandbox_today,
    store_snapshot,
)

from connectors.hubspot.properties import GROUP_NAME, PIPELINE_PROPERTIES, PropertySchemaError
from connectors.hubspot.publish import PublishError, publish_to_hubspot


def _raw_properties(sb, object_type: str) -> dict[str, dict]:
    response = client_for(sb).crm.properties.core_api.get_all(object_type, _preload_content=False)
    return {p["name"]: p for p in json.loads(response.data)["results"]}


def _published(db_path: Path, run_id: str | None = None) -> dict[tuple[str, int, str], str]:
    sql = "SELECT object_type, record_id, property, value FROM ops.published_values"
    params: list = []
    if run_id:
        sql += " WHERE run_id = ?"
        params.append(run_id)
    with duckdb.connect(str(db_path)) as con:
        return {(o, r, p): v for o, r, p, v in con.execute(sql, params).fetchall()}


def test_fresh_portal_holds_the_records_the_warehouse_was_built_from(portal, warehouse):
    with duckdb.connect(str(warehouse)) as con:
        contact_ids = {
            r[0]
            for r in con.execute(
                "SELECT id FROM raw.hubspot_contacts WHERE NOT archived AND merged_into_id IS NULL"
            ).fetchall()
        }
    assert contact_ids == {r.id for r in portal.dataset.crm.iter_records("contacts")}


def test_first_publish_creates_schema_and_writes_every_record_in_minimum_calls(portal, warehouse):
    desired = desired_values(warehouse)
    records = records_by_type(desired)
    assert len(records["contacts"]) > 100 and records["deals"], "the build must give values to publish"
    assert {p for (_o, _r, p) in desired} - {"roi_computed_at"}, "mart produced no values"
    # Stray mart rows for properties the pipeline does not own must never be sent.
    some_contact = min(records["contacts"])
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "INSERT INTO main.crm_property_values VALUES "
            "('contacts', ?, 'lifecyclestage', 'customer'), ('contacts', ?, 'roi_not_declared', 'x')",
            [some_contact, some_contact],
        )
    before = store_snapshot(portal)

    result = publish_to_hubspot(sandbox_settings(portal, warehouse), warehouse, "run-1")

    # Schema: our group and every declared property, with the declared types and display hints.
    for object_type, specs in PIPELINE_PROPERTIES.items():
        groups = client_for(portal).crm.properties.groups_api.get_all(object_type).results
        assert GROUP_NAME in {g.name for g in groups}
        existing = _raw_properties(portal, object_type)
        for spec in specs:
            prop = existing[spec.name]
            assert (prop["type"], prop["fieldType"], prop["groupName"]) == (
                spec.hubspot_type,
                spec.field_type,
                GROUP_NAME,
            )
            assert prop["description"] and prop["label"]
            if spec.kind == "currency":
                assert prop["numberDisplayHint"] == "currency" and prop["showCurrencySymbol"] is True
            if spec.kind == "ratio":
                assert prop["numberDisplayHint"] == "percentage"
            if spec.kind == "channel":
                assert {"paid_search", "email", "unassigned", "unattributed"} <= {
                    o["value"] for o in prop["options"]
                }

    # Every record's values, read back through the official client, equal the mart's.
    for object_type in ("contacts", "deals"):
        in_hubspot = hubspot_values(portal, object_type)
        for (obj, record_id, prop), value in desired.items():
            if obj == object_type:
                assert in_hubspot[record_id][prop] == value, (obj, record_id, prop)
        for record_id in records[object_type]:
            assert in_hubspot[record_id]["roi_computed_at"], (object_type, record_id)

    # Exactly ceil(records / 100) batch updates per object type, each one fully applied; nothing foreign
    # written.
    updates = batch_updates(portal)
    assert len(updates) == min_update_calls(records) == result.update_calls
    assert all(e.status == 200 for e in updates)
    assert accepted_inputs(portal) == sum(len(ids) for ids in records.values())
    assert_batch_writes_only_our_properties(portal)
    changed = assert_only_our_properties_changed(before, store_snapshot(portal))
    assert changed == {(o, r) for o, ids in records.items() for r in ids}
    assert result.records_failed == result.records_skipped == 0

    with duckdb.connect(str(warehouse)) as con:
        log = {
            (o, p): (d, c, s, f, k)
            for o, p, d, c, s, f, k in con.execute(
                "SELECT object_type, property, desired, changed, sent, failed, skipped FROM ops.publish_log "
                "WHERE run_id = 'run-1'"
            ).fetchall()
        }
    for object_type in ("contacts", "deals"):
        n = len(records[object_type])
        assert log[(object_type, "roi_computed_at")] == (n, n, n, 0, 0)
    assert log[("contacts", "roi_acquisition_channel")][2] == len(records["contacts"])


def test_changed_deal_amount_sends_exactly_the_records_whose_values_changed(portal, warehouse):
    settings = sandbox_settings(portal, warehouse)
    publish_to_hubspot(settings, warehouse, "run-1")
    before = desired_values(warehouse)

    crm = portal.dataset.crm
    won = next(
        r
        for r in crm.iter_records("deals")
        if r.properties.get("hs_is_closed_won") == "true" and ("deals", r.id, "roi_gross_margin") in before
    )
    new_amount = f"{float(won.properties['amount']) + 250:.2f}"
    crm.update(
        "deals", won.id, {"amount": new_amount, "amount_in_home_currency": new_amount}, at=datetime.now(UTC)
    )
    extract_and_build(settings, warehouse, "run-2-build", sandbox_today(portal))
    after = desired_values(warehouse)

    expected = {
        (o, r) for (o, r, p) in set(before) | set(after) if before.get((o, r, p)) != after.get((o, r, p))
    }
    assert ("deals", won.id) in expected
    portal.request_log.clear()
    result = publish_to_hubspot(settings, warehouse, "run-2")

    sent = {(o, r) for (o, r, p) in _published(warehouse, "run-2")}
    assert sent == expected
    assert accepted_inputs(portal) == len(expected)
    assert len(batch_updates(portal)) == min_update_calls(
        {t: {r for o, r in expected if o == t} for t in ("contacts", "deals")}
    )
    assert result.records_sent == {
        t: n for t in ("contacts", "deals") if (n := sum(1 for o, _ in expected if o == t))
    }
    assert (
        hubspot_values(portal, "deals")[won.id]["roi_gross_margin"]
        == after[("deals", won.id, "roi_gross_margin")]
    )


def test_three_runs_in_a_row_converge_to_zero_updates(portal, warehouse):
    """Run 1 writes (moving lastmodifieddate); the next extracts re-read those records; nothing is resent."""
    # GA4 keeps revising its last days on every pull (a real source change): let them settle first.
    portal.dataset.advance_ga4_processing(len(portal.dataset.ga4_processing_days))
    settings = sandbox_settings(portal, warehouse)
    first = publish_to_hubspot(settings, warehouse, "run-1")
    written = {(o, r) for (o, r, _p) in _published(warehouse)}
    assert first.update_calls > 0
    sent_per_run = []
    for run in ("run-2", "run-3"):
        portal.request_log.clear()
        extract_and_build(settings, warehouse, f"{run}-build", sandbox_today(portal))
        with duckdb.connect(str(warehouse)) as con:
            reread = con.execute(
                "SELECT count(*) FROM raw.hubspot_contacts WHERE _run_id = ?", [f"{run}-build"]
            ).fetchall()[0][0]
        result = publish_to_hubspot(settings, warehouse, run)
        sent_per_run.append((reread, result.update_calls, len(batch_updates(portal))))
    # run 2's extract re-read the contacts run 1 wrote (their lastmodifieddate moved) ...
    assert sent_per_run[0][0] >= len({r for o, r in written if o == "contacts"})
    # ... and the third run sends no update at all
    assert sent_per_run[1][1:] == (0, 0)


def test_deleted_and_merged_records_and_injected_server_errors_write_every_other_record_once(
    portal, warehouse
):
    desired = desired_values(warehouse)
    records = records_by_type(desired)
    contacts = sorted(records["contacts"])
    # Inside the second batch of 100, after the extract: one deleted; two merged (HubSpot's merge makes a NEW
    # record, and writes to either old id land on it).
    deleted, primary, other = contacts[110], contacts[115], contacts[116]
    portal.dataset.crm.archive("contacts", deleted, at=datetime.now(UTC))
    new_record = portal.dataset.crm.merge("contacts", primary, other, at=datetime.now(UTC)).id
    gone = {("contacts", deleted)}
    redirected = {("contacts", primary), ("contacts", other)}
    portal.request_log.clear()
    # on the writes themselves, so the number of schema calls before them does not decide whether they fail
    portal.faults.configure(
        error_rate=0.2,
        seed=5,
        statuses=(503, 500, 502),
        fail_requests={2},  # at least the second write fails, whatever the random draws
        paths=tuple(f"/crm/v3/objects/{t}/batch/update" for t in ("contacts", "deals")),
    )
    before = store_snapshot(portal)

    result = publish_to_hubspot(sandbox_settings(portal, warehouse), warehouse, "run-1")
    portal.faults.clear()

    updates = batch_updates(portal)
    assert any(e.status >= 500 for e in updates), "faults must have hit batch updates"
    assert result.retries > 0
    # Every record but the deleted one holds its values; the sandbox applied each input exactly once.
    assert_batch_writes_only_our_properties(portal)
    changed = assert_only_our_properties_changed(before, store_snapshot(portal))
    every = {(o, r) for o, ids in records.items() for r in ids}
    assert changed == (every - gone - redirected) | {("contacts", new_record)}
    assert accepted_inputs(portal) == len(every)  # the deleted one refused inside its 207
    in_hubspot = hubspot_values(portal, "contacts")
    for (obj, record_id, prop), value in desired.items():
        if obj == "contacts" and ("contacts", record_id) not in gone | redirected:
            assert in_hubspot[record_id][prop] == value
    # The merged record holds what was written last to one of its old ids.
    assert any(
        all(
            in_hubspot[new_record][p] == v for (o, r, p), v in desired.items() if o == "contacts" and r == old
        )
        for old in (primary, other)
    )
    # The deleted record is logged and skipped; the merged ones counted as landed on the new record; none of
    # the three is marked published (the next extract knows the merge and the survivor gets its own values).
    assert result.records_skipped == 1 and result.records_failed == 0 and result.records_redirected == 2
    with duckdb.connect(str(warehouse)) as con:
        failures = con.execute(
            "SELECT object_type, record_id, reason, status FROM ops.publish_failures"
        ).fetchall()
    assert {(o, r) for o, r, _reason, _s in failures} == gone and len(failures) == 1
    assert all("no longer in HubSpot" in reason for _o, _r, reason, _s in failures)
    assert not {k for k in _published(warehouse) if k[:2] in gone | redirected}


def test_batch_refused_for_one_bad_value_is_split_until_the_record_is_isolated(portal, warehouse):
    desired = desired_values(warehouse)
    records = records_by_type(desired)
    with_revenue = sorted(r for (o, r, p) in desired if o == "contacts" and p == "roi_attributed_revenue")
    bad = with_revenue[len(with_revenue) // 2]
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "UPDATE main.crm_property_values SET value = 'not-a-number' "
            "WHERE object_type = 'contacts' AND record_id = ? AND property = 'roi_attributed_revenue'",
            [bad],
        )
        assert con.execute(
            "SELECT count(*) FROM main.crm_property_values WHERE value = 'not-a-number'"
        ).fetchall() == [(1,)], "the contact needs an attributed revenue value"
    settings = sandbox_settings(portal, warehouse)

    result = publish_to_hubspot(settings, warehouse, "run-1")

    assert result.records_failed == 1 and result.failures[0].record_id == bad
    assert "INVALID_DECIMAL" in result.failures[0].reason or "not a valid number" in result.failures[0].reason
    assert 400 in {e.status for e in batch_updates(portal)}
    expected = {(o, r) for o, ids in records.items() for r in ids} - {("contacts", bad)}
    assert {(o, r) for (o, r, _p) in _published(warehouse)} == expected
    assert accepted_inputs(portal) == len(expected)
    # log2(100) splits at most: 1 refused batch of 100 -> 7 levels of halves, two calls each
    assert len(batch_updates(portal)) <= min_update_calls(records) + 2 * 7

    # The failed record is not marked published: the next run retries it (and only it).
    portal.request_log.clear()
    again = publish_to_hubspot(settings, warehouse, "run-2")
    assert again.records_changed == {"contacts": 1}
    assert [e.inputs for e in batch_updates(portal)] == [1]


def test_value_that_disappears_is_cleared_with_an_explicit_empty_string(portal, warehouse):
    settings = sandbox_settings(portal, warehouse)
    publish_to_hubspot(settings, warehouse, "run-1")
    desired = desired_values(warehouse)
    contact = next(r for (o, r, p) in sorted(desired) if o == "contacts" and p == "roi_acquisition_source")
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "DELETE FROM main.crm_property_values WHERE object_type = 'contacts' AND record_id = ? "
            "AND property = 'roi_acquisition_source'",
            [contact],
        )
    portal.request_log.clear()

    result = publish_to_hubspot(settings, warehouse, "run-2")

    assert result.records_changed == {"contacts": 1}
    assert (
        result.sample[0]["desired"] is None
        and result.sample[0]["published"] == desired[("contacts", contact, "roi_acquisition_source")]
    )
    assert hubspot_values(portal, "contacts")[contact]["roi_acquisition_source"] is None
    assert _published(warehouse)[("contacts", contact, "roi_acquisition_source")] == ""
    # ... and once cleared it stays quiet
    portal.request_log.clear()
    assert publish_to_hubspot(settings, warehouse, "run-3").update_calls == 0


def test_upgrade_clears_the_old_single_roi_property_values(portal, warehouse):
    """Before both ROI bases were published, `roi_channel_roi` held one ROI on contacts. After the upgrade the
    pipeline no longer owns that name: the values it wrote there are cleared once, not left stale."""
    settings = sandbox_settings(portal, warehouse)
    publish_to_hubspot(settings, warehouse, "run-1")
    contact = min(r for (o, r, p) in desired_values(warehouse) if o == "contacts")
    # what the previous version left: its property in our group, a value on the record, its publish log
    client_for(portal).crm.properties.core_api.create(
        "contacts",
        {"name": "roi_channel_roi", "label": "Acquisition channel ROI", "type": "number",
         "fieldType": "number", "groupName": GROUP_NAME},
    )  # fmt: skip
    portal.dataset.crm.update("contacts", contact, {"roi_channel_roi": "0.5000"}, at=datetime.now(UTC))
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "INSERT INTO ops.published_values (run_id, object_type, record_id, property, value, "
            "published_at) VALUES ('old-version', 'contacts', ?, 'roi_channel_roi', '0.5000', now())",
            [contact],
        )
    result = publish_to_hubspot(settings, warehouse, "run-2")
    assert result.records_changed == {"contacts": 1}
    record = client_for(portal).crm.contacts.basic_api.get_by_id(str(contact), properties=["roi_channel_roi"])
    assert record.properties.get("roi_channel_roi") in (None, "")
    assert _published(warehouse)[("contacts", contact, "roi_channel_roi")] == ""
    assert publish_to_hubspot(settings, warehouse, "run-3").update_calls == 0


@pytest.mark.parametrize(
    ("object_type", "definition", "expected"),
    [
        (
            "deals",
            {
                "name": "roi_channel_roi_on_revenue",
                "label": "Someone's ROI",
                "type": "number",
                "fieldType": "number",
                "groupName": "dealinformation",
            },
            "group 'dealinformation'",
        ),
        (
            "contacts",
            {
                "name": "roi_acquisition_channel",
                "label": "Ours?",
                "type": "string",
                "fieldType": "text",
                "groupName": GROUP_NAME,
            },
            "type 'string'",
        ),
        (
            "deals",
            {
                "name": "roi_gross_margin",
                "label": "Gross margin",
                "type": "number",
                "fieldType": "number",
                "groupName": "dealinformation",
                "hubspotDefined": True,
            },
            "HubSpot-defined",
        ),
    ],
)
def test_conflicting_existing_property_stops_the_publish_before_any_write(
    portal, warehouse, object_type, definition, expected
):
    client = client_for(portal)
    if definition.get("hubspotDefined"):  # HubSpot's own properties cannot be created through the API
        portal.dataset.crm.define_property(object_type, definition)
    elif definition["groupName"] == GROUP_NAME:
        client.crm.properties.groups_api.create(object_type, {"name": GROUP_NAME, "label": "ROI marketing"})
    if not definition.get("hubspotDefined"):
        client.crm.properties.core_api.create(object_type, definition)
    portal.request_log.clear()

    with pytest.raises(PropertySchemaError) as raised:
        publish_to_hubspot(sandbox_settings(portal, warehouse), warehouse, "run-1")

    message = str(raised.value)
    assert definition["name"] in message and expected in message and "Fix:" in message
    assert all(e.method == "GET" for e in portal.request_log.entries), "nothing may be created or written"
    with duckdb.connect(str(warehouse)) as con:
        assert con.execute("SELECT count(*) FROM ops.published_values").fetchall() == [(0,)]


def test_dry_run_sends_nothing_and_writes_nothing(portal, warehouse):
    settings = sandbox_settings(portal, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        ops_before = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ops'"
        ).fetchall()
        log_before = con.execute("SELECT count(*) FROM ops.publish_log").fetchall()

    preview = publish_to_hubspot(settings, warehouse, "dry-1", dry_run=True)

    assert all(e.method == "GET" for e in portal.request_log.entries)
    assert preview.schema.properties_created and preview.update_calls == 0
    with duckdb.connect(str(warehouse)) as con:
        assert (
            con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ops'"
            ).fetchall()
            == ops_before
        )
        assert con.execute("SELECT count(*) FROM ops.publish_log").fetchall() == log_before
        assert con.execute("SELECT count(*) FROM ops.published_values").fetchall() == [(0,)]
    assert len(preview.sample) == 20 and "dry run" in preview.summary()

    # The preview's counts are what the real run then sends.
    real = publish_to_hubspot(settings, warehouse, "run-1")
    assert real.records_sent == preview.records_changed
    assert {k: (c.desired, c.changed) for k, c in real.counts.items()} == {
        k: (c.desired, c.changed) for k, c in preview.counts.items()
    }


def test_refused_token_stops_with_a_clear_error_that_does_not_leak_it(portal, warehouse):
    settings = sandbox_settings(portal, warehouse)
    wrong = "pat-na1-11111111-2222-3333-4444-555555555555"
    settings = settings.model_copy(
        update={"hubspot_access_token": type(settings.hubspot_access_token)(wrong)}
    )

    with pytest.raises(PublishError) as raised:
        publish_to_hubspot(settings, warehouse, "run-1")

    assert "HUBSPOT_ACCESS_TOKEN" in str(raised.value) and "401" in str(raised.value)
    assert wrong not in str(raised.value) and portal.access_token not in str(raised.value)
    assert {e.status for e in portal.request_log.entries} == {401}
    assert len(portal.request_log.entries) == 1, "a refused token must not be retried"


def test_desired_values_follow_the_marts_and_the_generators_ground_truth(portal, warehouse):
    """The mart's values, checked against the attribution and ROI marts and the generator's ground truth."""
    desired = desired_values(warehouse)
    by_record: dict[tuple[str, int], dict[str, str]] = {}
    for (obj, rid, prop), value in desired.items():
        by_record.setdefault((obj, rid), {})[prop] = value
    contacts = {rid: v for (obj, rid), v in by_record.items() if obj == "contacts"}
    deals = {rid: v for (obj, rid), v in by_record.items() if obj == "deals"}

    # Every contact's acquisition channel is the generator's true first-touch channel.
    assert contacts and all(
        v["roi_acquisition_channel"] == portal.dataset.first_touch_channel(rid) for rid, v in contacts.items()
    )
    with duckdb.connect(str(warehouse)) as con:
        channel_roi = {
            channel: (on_revenue, on_margin)
            for channel, on_revenue, on_margin in con.execute(
                "SELECT channel, CAST(round(roi_on_revenue, 4) AS DECIMAL(38, 4))::VARCHAR, "
                "CAST(round(roi_on_margin, 4) AS DECIMAL(38, 4))::VARCHAR "
                "FROM roi_by_channel WHERE attribution_model = 'markov' AND month IS NULL"
            ).fetchall()
        }
        best_credit = dict(
            con.execute(
                "SELECT deal_id, max(credit) FROM (SELECT deal_id, channel, sum(credit) AS credit "
                "FROM attribution_credits WHERE attribution_model = 'markov' GROUP BY ALL) GROUP BY deal_id"
            ).fetchall()
        )
        credit_of = {
            (d, c): credit
            for d, c, credit in con.execute(
                "SELECT deal_id, channel, sum(credit) FROM attribution_credits "
                "WHERE attribution_model = 'markov' GROUP BY ALL"
            ).fetchall()
        }
        won_margin = {
            d: str(m)
            for d, m in con.execute(
                "SELECT deal_id, gross_margin FROM int_deals WHERE is_won AND gross_margin IS NOT NULL"
            ).fetchall()
        }
        won_margin_source = dict(
            con.execute("SELECT deal_id, margin_source FROM int_deals WHERE is_won").fetchall()
        )
        credited_revenue = con.execute(
            "SELECT sum(revenue) FROM attribution_credits WHERE attribution_model = 'markov' "
            "AND contact_id IS NOT NULL"
        ).fetchall()[0][0]
    for rid, v in contacts.items():
        on_revenue, on_margin = channel_roi.get(v["roi_acquisition_channel"], (None, None))
        assert (v.get("roi_channel_roi_on_revenue"), v.get("roi_channel_roi_on_margin")) == (
            on_revenue,
            on_margin,
        ), rid
    # both bases reach the CRM: the sandbox shop's margin is known (line items, pipeline rates)
    assert any(v.get("roi_channel_roi_on_margin") for v in contacts.values())
    assert any(v.get("roi_campaign_roi_on_revenue") for v in deals.values())
    assert sum(Decimal(v.get("roi_attributed_revenue", "0")) for v in contacts.values()) == credited_revenue
    assert deals and all(v["roi_attribution_model"] == "markov" for v in deals.values())
    for rid, v in deals.items():
        assert credit_of[(rid, v["roi_attributed_channel"])] == pytest.approx(best_credit[rid]), rid
        assert v.get("roi_gross_margin") == won_margin.get(rid), rid
        assert v.get("roi_margin_source") == won_margin_source.get(rid), rid  # set on won deals only
    # the sandbox shop has line items with cost of goods, pipelines with a rate, and deals with neither
    assert {v.get("roi_margin_source") for v in deals.values()} >= {"line_items", "margin_rate"}
    # HubSpot's formats: amounts with 2 decimals, ratios with 4.
    for (_obj, _rid, prop), value in desired.items():
        if prop.endswith(("_roi_on_revenue", "_roi_on_margin", "_roas", "_cost_per_euro_of_revenue")):
            assert re.fullmatch(r"-?\d+\.\d{4}", value), (prop, value)
        elif prop.endswith(("_revenue", "_margin", "_cost_per_lead")):
            assert re.fullmatch(r"-?\d+\.\d{2}", value), (prop, value)


def test_property_labels_name_the_currency_the_values_are_in():
    # [models] home_currency = "GBP": the labels CRM users read say GBP, never EUR.
    from connectors.hubspot.client import HubSpotCaller
    from connectors.hubspot.properties import ensure_property_schema
    from sandbox.server import SandboxServer

    with SandboxServer(contacts=5, seed=3, rate_limits=False) as sb:
        ensure_property_schema(
            HubSpotCaller(None), client_for(sb), channel_options={"direct": "Accès direct"}, currency="GBP"
        )
        deals = _raw_properties(sb, "deals")
    assert deals["roi_channel_cost_per_euro_of_revenue"]["label"] == "Coût pour 1 GBP de CA du canal attribué"
    assert "(2,5 = 2,50 GBP pour 1 GBP)" in deals["roi_campaign_roas"]["description"]
    ours = [p for name, p in deals.items() if name.startswith("roi_")]
    assert ours and not any("EUR" in p["label"] + p["description"] for p in ours)
