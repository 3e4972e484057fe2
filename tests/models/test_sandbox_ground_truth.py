"""The models on the sandbox generator's data set (loaded into raw.* as the connectors would) reproduce the
generator's ground truth: first-touch channel per contact, first-touch revenue / margin per channel, and cost
per channel under the default plan's winner rule. All data tests pass on it.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest
from raw_fixtures import load_dataset_into_raw

from models.runner import build
from sandbox.generator import generate

CONTACTS = 400
SEED = 7


@pytest.fixture(scope="module")
def sandbox_build(tmp_path_factory):
    dataset = generate(contacts=CONTACTS, seed=SEED)
    db = load_dataset_into_raw(tmp_path_factory.mktemp("sandbox") / "warehouse.duckdb", dataset)
    truth = dataset.ground_truth
    # Ground truth counts a contact's very first touch, whatever its age: a lookback covering all history.
    params = {
        "as_of": dataset.now.date().isoformat(),
        "lookback_days": 3650,
        "margin_rates": truth["margin_rates"],
        "fx_rates": truth["rates_to_eur"],
    }
    result = build(db, params=params, run_id="sandbox-build")
    con = duckdb.connect(str(db), read_only=True)
    yield dataset, result, con
    con.close()


def test_data_tests_pass_on_the_sandbox(sandbox_build):
    _, result, _ = sandbox_build
    assert result.ok, result.summary()
    assert len(result.tests) >= 10


def test_first_touch_channel_per_contact(sandbox_build):
    dataset, _, con = sandbox_build
    ours = dict(
        con.execute("""
        select contact_id, channel from int_touchpoints
        qualify row_number() over (partition by contact_id order by touchpoint_at, touchpoint_id) = 1
    """).fetchall()
    )
    truth = {c: dataset.first_touch_channel(c) for c in dataset.first_touch_channel_by_contact}
    wrong = {c: (truth[c], ours.get(c)) for c in truth if truth[c] != ours.get(c)}
    # contacts the plan cannot place (offline, no answer) have no touch at all: their truth is unassigned
    assert all(t == "unassigned" and o is None for t, o in wrong.values()), wrong
    assert len(truth) > 0.95 * CONTACTS


def test_first_touch_revenue_margin_and_cost_per_channel(sandbox_build):
    dataset, _, con = sandbox_build
    truth = dataset.ground_truth
    rows = con.execute("""
        select channel, won_deals, revenue, gross_margin, cost from roi_by_channel
        where attribution_model = 'first_touch' and month is null
    """).fetchall()
    ours = {r[0]: r[1:] for r in rows}
    for channel, revenue in truth["won_revenue_by_first_touch_channel"].items():
        won_deals, our_revenue, our_margin, _ = ours.get(channel, (0, Decimal(0), Decimal(0), Decimal(0)))
        assert our_revenue == Decimal(revenue), channel
        assert won_deals == truth["won_deals_by_first_touch_channel"][channel], channel
        # the truth rounds each channel total once; we round each deal's margin to the cent
        tolerance = Decimal("0.01") * max(1, int(won_deals))
        assert abs(our_margin - Decimal(truth["gross_margin_by_first_touch_channel"][channel])) <= tolerance
    expected_cost = {ch: Decimal(v) for ch, v in truth["expected_cost_by_channel"].items()}
    assert {ch: v[3] for ch, v in ours.items() if v[3] != 0} == expected_cost
    # the spend sheet's Google Ads invoice lost to GA4's cost
    assert expected_cost["paid_search"] == Decimal(truth["ga4_ad_cost_by_channel"]["paid_search"])


def test_refunds_missing_amounts_and_rateless_spend_are_rejected_not_counted(sandbox_build):
    dataset, _, con = sandbox_build
    truth = dataset.ground_truth
    rejects = con.execute(
        "select source, record_id, line, field, reason from ops.rejects where run_id = 'sandbox-build'"
    ).fetchall()
    deals = {int(r[1]): r for r in rejects if r[0] == "models:hubspot_deals"}
    expected = {d["deal_id"]: d["reason"] for d in truth["rejected_won_deals"]}
    assert set(deals) == set(expected) and len(expected) >= 2
    for deal_id, reason in expected.items():
        text = deals[deal_id][4]
        assert deals[deal_id][3] == "amount"
        assert ("negative amount -" in text) if reason == "negative amount" else ("without amount" in text)
    counted = {r[0] for r in con.execute("select deal_id from int_deals").fetchall()}
    assert not counted & set(expected)
    # the CHF invoice: no rate in the sandbox settings -> rejected with the line to add, costs nothing
    (chf,) = truth["spend_rows_without_rate"]
    spend = [r for r in rejects if r[0] == "models:marketing_spend"]
    assert spend == [
        (
            "models:marketing_spend",
            "spend.csv",
            chf["line"],
            "currency",
            f"Spend file spend.csv line {chf['line']}: no exchange rate for CHF in 2026-05: add the line "
            'CHF = "<EUR for 1 CHF>" under [models.fx_rates] in roi.toml',
        )
    ]
    # the large wholesale accounts are in the marts to the cent
    largest = con.execute("select max(won_revenue) from int_deals").fetchall()[0][0]
    assert largest == Decimal(truth["largest_won_deal_eur"]) > 10_000


def test_utm_compliance_lists_variants_and_unmatched_values(sandbox_build):
    _, _, con = sandbox_build
    rows = con.execute("""
        select raw_source, raw_medium, raw_campaign, channel, matched_rule, is_compliant, sessions + contacts,
            seen_in_spend_file
        from utm_compliance
    """).fetchall()
    unmatched = [r for r in rows if r[4] == "unmatched"]
    assert unmatched and all(r[0] == "partenaire_x" and r[3] == "unassigned" and not r[5] for r in unmatched)
    variants = [r for r in rows if r[0] in ("fb", "Google", "lnkd.in", "news%20letter")]
    assert variants and not any(r[5] for r in variants) and all(r[3] != "unassigned" for r in variants)
    assert any(r[:3] == ("google", "cpc", "brand_bougies") and r[5] for r in rows)
    # every combination comes from somewhere: traffic, contacts, or the spend sheet
    assert all(r[6] > 0 or r[7] for r in rows)
