"""The core models end to end on small explicit raw data in a real DuckDB file: ROI worked examples, zero
cost, exact spend spreading, the cost winner rule, reconciliation data tests, and int_deal_touchpoints'
windows/flags.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import duckdb
import pytest
from raw_fixtures import RawData

from models.runner import ModelBuildError, build, run_data_tests

AS_OF = "2026-06-30"
# No default margin: a won deal without line-item costs and without a pipeline rate has an unknown margin.
PARAMS = {"as_of": AS_OF}
SHOP = "https://www.bougies-lumiere.fr/"


def query(db, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def write_worked_examples(raw: RawData):
    """Three single-touch customers, each the only one of its channel:
    - LinkedIn b2b_boutiques (paid_social): 4,000 EUR spent, a 4,500 EUR deal without line items -> ROI 12.5 %
    - newsletter vente_hiver (email): 2,000 EUR spent, a 5,000 EUR deal -> ROI 150 %
    - trade show salon_maison_objet (events, offline answer): 2 EUR spent, one candle sold 8 EUR at 4 EUR
    unit cost
    -> ROI on the 4 EUR margin: (4 - 2) / 2 = 100 %, not (8 - 2) / 2

    """
    raw.contact(
        1,
        "2026-03-02T10:00:00Z",
        hs_analytics_source="PAID_SOCIAL",
        hs_analytics_first_timestamp="2026-03-02T09:55:00Z",
        hs_analytics_first_url=SHOP
        + "?utm_source=LinkedIn&utm_medium=paid-social&utm_campaign=b2b_boutiques",
    )
    raw.contact(
        2,
        "2026-03-03T10:00:00Z",
        hs_analytics_source="EMAIL_MARKETING",
        hs_analytics_first_timestamp="2026-03-03T09:50:00Z",
        hs_analytics_first_url=SHOP
        + "?utm_source=news%20letter&utm_medium=E-mail&utm_campaign=Vente%20Hiver",
    )
    raw.contact(
        3,
        "2026-03-04T10:00:00Z",
        hs_analytics_source="OFFLINE",
        hs_analytics_source_data_1="IMPORT",
        how_did_you_hear_about_us="salon_maison_objet",
    )
    raw.deal(
        11,
        [1],
        amount="4500.00",
        stage="wh_won",
        pipeline="wholesale",
        created="2026-03-10T10:00:00Z",
        closed="2026-03-20T10:00:00Z",
    )
    raw.deal(
        12,
        [2],
        amount="5000.00",
        stage="closedwon",
        created="2026-03-11T10:00:00Z",
        closed="2026-03-21T10:00:00Z",
    )
    raw.deal(
        13,
        [3],
        amount="8.00",
        stage="closedwon",
        created="2026-03-12T10:00:00Z",
        closed="2026-03-22T10:00:00Z",
    )
    raw.line_item(101, 13, price="8.00", quantity="1", cost="4.00")
    raw.spend("2026-03-01", "2026-03-31", "LinkedIn", "paid_social", "b2b_boutiques", "4000.00")
    raw.spend("2026-03-01", "2026-03-31", "newsletter", "email", "vente_hiver", "2000.00")
    raw.spend("2026-03-04", "2026-03-04", "salon_maison_objet", "offline", "salon_maison_objet", "2.00")
    return raw.write()


@pytest.fixture(scope="module")
def built_examples(tmp_path_factory):
    """The worked examples written and built once for the module: (db path, BuildResult)."""
    db = write_worked_examples(RawData(tmp_path_factory.mktemp("examples") / "warehouse.duckdb"))
    return db, build(db, params=PARAMS)


@pytest.fixture
def worked_examples(built_examples, tmp_path):
    """A private copy of the built worked-examples warehouse."""
    copy = tmp_path / "examples.duckdb"
    shutil.copyfile(built_examples[0], copy)
    return copy


def test_worked_examples_roi_under_every_model(built_examples):
    worked_examples, result = built_examples
    assert result.ok, result.summary()
    rows = query(
        worked_examples,
        """
        select attribution_model, channel, cost, revenue, gross_margin, margin_source, roi_on_revenue,
               roi_on_margin, roas, cost_per_euro_of_revenue, cost_is_zero,
               leads, customers, cost_per_lead, cac, lead_value
        from roi_by_channel where month is null and channel in ('paid_social', 'email', 'events')
        order by attribution_model, channel
    """,
    )
    models = {r[0] for r in rows}
    assert len(models) == 11
    by_channel = {(r[0], r[1]): r[2:] for r in rows}
    for model in models:
        # the first article: ROI on revenue (CA) 12.5 % and 150 %; no margin information -> n/a, not a guess
        (cost, revenue, margin, source, on_revenue, on_margin, roas, per_euro, zero, *counts) = by_channel[
            (model, "paid_social")
        ]
        assert (cost, revenue, margin, source) == (Decimal("4000.00"), Decimal("4500.00"), None, "none")
        assert (on_revenue, on_margin, roas) == (Decimal("0.125000"), None, Decimal("1.125000"))
        assert per_euro == Decimal("0.888889") and not zero
        leads, customers, cpl, cac, lead_value = counts
        assert (leads, customers, cpl, cac, lead_value) == (
            1,
            1,
            Decimal("4000.00"),
            Decimal("4000.00"),
            None,
        )
        cost, revenue, margin, source, on_revenue, on_margin, roas, *_ = by_channel[(model, "email")]
        assert (cost, revenue, on_revenue, roas) == (
            Decimal("2000.00"),
            Decimal("5000.00"),
            Decimal("1.500000"),
            Decimal("2.500000"),
        )
        assert (margin, on_margin) == (None, None)
        # the second article's candle: sold 8 EUR, cost of goods 4 EUR -> margin 4.00, both bases shown
        cost, revenue, margin, source, on_revenue, on_margin, roas, *_ = by_channel[(model, "events")]
        assert (cost, revenue, margin, source) == (
            Decimal("2.00"),
            Decimal("8.00"),
            Decimal("4.00"),
            "line_items",
        )
        assert (on_revenue, on_margin, roas) == (
            Decimal("3.000000"),
            Decimal("1.000000"),
            Decimal("4.000000"),
        )

    # the campaign mart carries the same figures on the canonical campaign names (variants mapped back)
    campaigns = query(
        worked_examples,
        """
        select source, medium, campaign, roi_on_revenue, roi_on_margin from roi_by_campaign
        where month is null and attribution_model = 'first_touch' and cost > 0 order by campaign
    """,
    )
    assert campaigns == [
        ("linkedin", "paid_social", "b2b_boutiques", Decimal("0.125000"), None),
        ("salon_maison_objet", "offline", "salon_maison_objet", Decimal("3.000000"), Decimal("1.000000")),
        ("newsletter", "email", "vente_hiver", Decimal("1.500000"), None),
    ]
    # monthly rows: everything happened in March 2026
    march = query(
        worked_examples,
        """
        select sum(cost), sum(revenue) from roi_by_channel
        where attribution_model = 'linear' and month = date '2026-03-01'
    """,
    )
    assert march == [(Decimal("6002.00"), Decimal("9508.00"))]


def test_pipeline_margin_rate_gives_a_margin_and_mixed_sources_are_named(worked_examples):
    build(worked_examples, params={**PARAMS, "margin_rates": {"wholesale": "0.36"}}, run_tests=False)
    rows = query(
        worked_examples,
        """
        select channel, gross_margin, margin_source, roi_on_revenue, roi_on_margin from roi_by_channel
        where month is null and attribution_model = 'first_touch' order by channel
    """,
    )
    # 4,500 x 0.36 = 1,620 margin on 4,000 cost; ROI on revenue unchanged. The newsletter deal (default
    # pipeline, no rate, no line items) stays unknown.
    assert rows == [
        ("email", None, "none", Decimal("1.500000"), None),
        ("events", Decimal("4.00"), "line_items", Decimal("3.000000"), Decimal("1.000000")),
        ("paid_social", Decimal("1620.00"), "margin_rate", Decimal("0.125000"), Decimal("-0.595000")),
    ]
    # an explicit default rate covers the default pipeline too; line items still win over any rate
    build(
        worked_examples,
        params={**PARAMS, "margin_rates": {"wholesale": "0.36"}, "default_margin_rate": "0.5"},
        run_tests=False,
    )
    sources = query(
        worked_examples,
        "select channel, margin_source, gross_margin from roi_by_channel "
        "where month is null and attribution_model = 'linear' order by channel",
    )
    assert sources == [
        ("email", "margin_rate", Decimal("2500.00")),
        ("events", "line_items", Decimal("4.00")),
        ("paid_social", "margin_rate", Decimal("1620.00")),
    ]


def test_zero_cost_gives_null_ratios_and_a_flag(raw_data):
    raw_data.contact(
        1,
        "2026-04-01T10:00:00Z",
        hs_analytics_source="ORGANIC_SEARCH",
        hs_analytics_source_data_1="bougie artisanale",
        hs_analytics_source_data_2="Google",
        hs_analytics_first_timestamp="2026-04-01T09:00:00Z",
        hs_analytics_first_url=SHOP,
    )
    raw_data.deal(
        21,
        [1],
        amount="120.00",
        stage="closedwon",
        created="2026-04-02T10:00:00Z",
        closed="2026-04-03T10:00:00Z",
    )
    db = raw_data.write()
    result = build(db, params=PARAMS)
    assert result.ok, result.summary()
    rows = query(
        db,
        """
        select source, cost, revenue, roi_on_revenue, roi_on_margin, roas, cost_per_euro_of_revenue,
            cost_per_lead, cac, cost_is_zero
        from roi_by_source where month is null and attribution_model = 'first_touch'
    """,
    )
    assert rows == [("google", Decimal("0.00"), Decimal("120.00"), None, None, None, None, None, None, True)]


def test_spend_spread_over_days_to_the_cent_in_home_currency(raw_data):
    raw_data.spend("2026-02-01", "2026-02-03", "LinkedIn", "paid_social", "b2b_boutiques", "100.00")
    raw_data.spend(
        "2026-01-01", "2026-01-31", "facebook", "Paid Social", "noel_cadeaux", "10.00", currency="USD"
    )
    raw_data.spend(
        "2026-01-01", "2026-01-31", "facebook", "paid_social", "noel_cadeaux", "55.00", currency="CHF"
    )
    db = raw_data.write()
    result = build(db, params={**PARAMS, "fx_rates": {"USD": "0.92"}}, run_id="run-1")
    assert result.ok, result.summary()
    days = query(db, "select spend_date::varchar, amount_home from int_spend_daily where line = 2 order by 1")
    assert days == [
        ("2026-02-01", Decimal("33.34")),
        ("2026-02-02", Decimal("33.33")),
        ("2026-02-03", Decimal("33.33")),
    ]
    # 10 USD x 0.92 = 9.20 EUR over 31 days: 920 cents = 29 x 31 + 21 -> 21 days of 0.30 and 10 of 0.29
    usd = query(
        db,
        "select count(*), sum(amount_home), max(amount_home), min(amount_home) from int_spend_daily "
        "where line = 3",
    )
    assert usd == [(31, Decimal("9.20"), Decimal("0.30"), Decimal("0.29"))]
    # no rate for CHF: the row is kept with its reason and costs nothing
    rejected = query(db, "select reject_reason from stg_spend__marketing_spend where line = 4")
    assert rejected[0][0].startswith("no exchange rate for CHF")
    assert query(db, "select run_id, source, record_id, line, field, value from ops.rejects") == [
        ("run-1", "models:marketing_spend", "spend.csv", 4, "currency", "CHF")
    ]
    assert query(db, "select sum(cost) from int_cost_daily") == [(Decimal("109.20"),)]


def _google_ads_month(raw_data, *, cost_days: tuple[str, str] | None) -> None:
    """May 2026: Google Ads cost both in the sheet (invoice, rounded up) and in GA4's cost report for the
    days `cost_days` (None: GA4 served no cost report); LinkedIn in the sheet only (and a stray GA4 cost)."""
    raw_data.spend("2026-05-01", "2026-05-31", "google", "cpc", "brand_bougies", "500.00")
    raw_data.traffic("2026-05-03", "google", "cpc", "brand_bougies", sessions=40)
    raw_data.traffic("2026-05-04", "Google", "CPC", "brand_bougies", sessions=30)
    raw_data.spend("2026-05-01", "2026-05-31", "linkedin", "paid_social", "b2b_boutiques", "250.00")
    raw_data.traffic("2026-05-05", "linkedin", "paid_social", "b2b_boutiques", sessions=5)
    raw_data.ga4_days("traffic_daily", "2026-05-01", "2026-05-31")
    if cost_days is not None:
        raw_data.ga4_days("ad_cost_daily", *cost_days)
        for day, source, medium, campaign, cost in (
            ("2026-05-03", "google", "cpc", "brand_bougies", "300.10"),
            ("2026-05-04", "Google", "CPC", "brand_bougies", "180.05"),
            ("2026-05-05", "linkedin", "paid_social", "b2b_boutiques", "99.00"),
        ):
            if cost_days[0] <= day <= cost_days[1]:
                raw_data.ad_cost(day, source, medium, campaign, cost)


def test_cost_counted_once_per_campaign_by_the_winner_rule(raw_data):
    # GA4 wins for google / cpc; for LinkedIn the sheet wins and the GA4 cost is ignored.
    _google_ads_month(raw_data, cost_days=("2026-05-01", "2026-05-31"))
    db = raw_data.write()
    result = build(db, params=PARAMS)
    assert result.ok, result.summary()
    cost = query(db, "select channel, cost_source, sum(cost) from int_cost_daily group by all order by 1")
    assert cost == [
        ("paid_search", "ga4", Decimal("480.15")),
        ("paid_social", "spend_file", Decimal("250.00")),
    ]
    # no deals at all: the marts still show cost and sessions, under every model
    marts = query(
        db,
        """
        select channel, cost, sessions, revenue, gross_margin, margin_source, roi_on_revenue, roi_on_margin
        from roi_by_channel
        where month is null and attribution_model = 'w_shaped' order by channel
    """,
    )
    # nothing won: margin is known to be 0, both ROIs are -100 %
    minus_one = Decimal("-1.000000")
    assert marts == [
        (
            "paid_search",
            Decimal("480.15"),
            70,
            Decimal("0.00"),
            Decimal("0.00"),
            "no_won_deals",
            minus_one,
            minus_one,
        ),
        (
            "paid_social",
            Decimal("250.00"),
            5,
            Decimal("0.00"),
            Decimal("0.00"),
            "no_won_deals",
            minus_one,
            minus_one,
        ),
    ]


def test_spend_sheet_covers_google_ads_on_days_ga4_served_no_cost(raw_data, tmp_path):
    # No Google Ads link: GA4 never served the cost report; the whole invoice counts, from the sheet.
    _google_ads_month(raw_data, cost_days=None)
    db = raw_data.write()
    assert build(db, params=PARAMS).ok
    by_channel = "select channel, cost_source, sum(cost) from int_cost_daily group by all order by 1"
    assert query(db, by_channel) == [
        ("paid_search", "spend_file", Decimal("500.00")),
        ("paid_social", "spend_file", Decimal("250.00")),
    ]

    # Cost report loaded for May 1-4 only (then the link was removed): GA4 for those days, the sheet's daily
    # share for the 27 others, each day from one source only.
    partial = RawData(tmp_path / "partial.duckdb")
    _google_ads_month(partial, cost_days=("2026-05-01", "2026-05-04"))
    db = partial.write()
    result = build(db, params=PARAMS)
    assert result.ok, result.summary()
    sheet_share = query(
        db,
        "select sum(amount_home) from int_spend_daily where campaign = 'brand_bougies' "
        "and spend_date >= date '2026-05-05'",
    )[0][0]
    assert sheet_share == Decimal("435.48")  # 500.00 / 31 x 27, spread exactly to the cent
    by_source = query(
        db,
        "select cost_source, min(cost_date), max(cost_date), sum(cost) from int_cost_daily "
        "where channel = 'paid_search' group by all order by 1",
    )
    assert by_source == [
        ("ga4", dt.date(2026, 5, 3), dt.date(2026, 5, 4), Decimal("480.15")),
        ("spend_file", dt.date(2026, 5, 5), dt.date(2026, 5, 31), sheet_share),
    ]


def test_reconciliation_tests_catch_a_tampered_mart(worked_examples):
    con = duckdb.connect(str(worked_examples))
    try:
        con.execute(
            "update roi_by_channel set cost = cost + 1, revenue = revenue - 1 "
            "where channel = 'email' and month is null and attribution_model = 'linear'"
        )
        failed = {t.name: t for t in run_data_tests(con) if not t.passed}
    finally:
        con.close()
    assert {"roi_cost_reconciles", "roi_revenue_reconciles", "roi_formulas_consistent"} <= set(failed)
    sample = failed["roi_cost_reconciles"].sample
    assert sample == [
        {
            "mart": "roi_by_channel",
            "attribution_model": "linear",
            "all_time_cost": Decimal("6003.00"),
            "monthly_cost": Decimal("6002.00"),
            "loaded_cost": Decimal("6002.00"),
        }
    ]


def test_deal_touchpoints_window_order_and_milestones(raw_data):
    """Contact 1 (lead 2026-03-10) and contact 2 share deal 31 (created 03-20, won 04-10)."""
    raw = raw_data
    raw.contact(
        1,
        "2026-03-10T12:00:00Z",
        hs_analytics_source="ORGANIC_SEARCH",
        hs_analytics_source_data_2="google",
        hs_analytics_first_timestamp="2026-03-10T11:00:00Z",
        hs_analytics_first_url=SHOP,
        hs_latest_source="PAID_SEARCH",
        hs_latest_source_data_1="brand_bougies",
        hs_latest_source_timestamp="2026-04-10T10:00:00Z",
    )
    raw.contact(
        2,
        "2026-03-25T12:00:00Z",
        hs_analytics_source="DIRECT_TRAFFIC",
        hs_analytics_first_timestamp="2026-03-25T08:00:00Z",
        hs_analytics_first_url=SHOP,
    )
    raw.deal(
        31,
        [1, 2],
        amount="300.00",
        stage="closedwon",
        created="2026-03-20T10:00:00Z",
        closed="2026-04-10T10:00:00Z",
    )
    # GA4 sessions of contact 1: too old (outside 90 days before deal creation), inside (dated at midnight in
    # Paris = 23:00 UTC the day before), after the close
    raw.session("2025-12-01", 1, "facebook", "social")
    raw.session("2026-03-15", 1, "newsletter", "email", "vente_hiver")
    raw.session("2026-04-20", 1, "google", "organic")
    # same day as the HubSpot first visit, same source: the same interaction, kept once
    raw.session("2026-03-10", 1, "google", "organic")
    # contact 3: a visitor with touches and no deal -> a non-converting journey for the Markov model
    raw.contact(
        3,
        "2026-05-01T12:00:00Z",
        hs_analytics_source="DIRECT_TRAFFIC",
        hs_analytics_first_timestamp="2026-05-01T12:00:00Z",
    )
    raw.session("2026-05-03", 3, "fb", "paid-social", "noel_cadeaux")
    db = raw.write()
    result = build(db, params=PARAMS)
    assert result.ok, result.summary()
    rows = query(
        db,
        """
        select touch_index, n_touches, contact_id, channel, is_first_touch, is_lead_creation,
               is_deal_creation,
               is_closed_won, round(days_before_conversion, 4)
        from int_deal_touchpoints where deal_id = 31 order by touch_index
    """,
    )
    assert rows == [
        (1, 4, 1, "organic_search", True, True, False, False, round(31 - 1 / 24, 4)),
        (2, 4, 1, "email", False, False, True, False, round(26 + 11 / 24, 4)),
        (3, 4, 2, "direct", False, False, False, False, round(16 + 2 / 24, 4)),
        (4, 4, 1, "paid_search", False, False, False, True, 0.0),
    ]
    ga4_same_day = query(
        db,
        "select count(*), sum(sessions) from int_touchpoints where contact_id = 1 "
        "and touch_date = date '2026-03-10'",
    )
    assert ga4_same_day == [(1, 1)]
    journeys = query(
        db,
        "select path_id, deal_id, list(channel order by touch_index), bool_and(is_conversion), "
        "max(conversion_value) from int_contact_paths group by all order by 1",
    )
    # contacts 1 and 2 have a won deal, so only contact 3's journey is non-converting
    assert journeys == [
        ("contact:3", None, ["direct", "paid_social"], False, Decimal("0.00")),
        ("deal:31", 31, ["organic_search", "email", "direct", "paid_search"], True, Decimal("300.00")),
    ]


def test_merged_and_archived_contacts(raw_data):
    raw_data.contact(
        5,
        "2026-02-01T10:00:00Z",
        hs_analytics_source="DIRECT_TRAFFIC",
        hs_analytics_first_timestamp="2026-02-01T10:00:00Z",
        hs_merged_object_ids="6",
    )
    raw_data.contact(7, "2026-02-01T10:00:00Z", archived=True)
    raw_data.session("2026-02-05", 6, "newsletter", "email", "soldes_ete")  # the merged-away id
    raw_data.session("2026-02-05", 7, "newsletter", "email", "soldes_ete")  # archived contact
    raw_data.session("2026-02-05", "(not set)", "newsletter", "email", "soldes_ete")
    db = raw_data.write()
    build(db, params=PARAMS, run_tests=False)
    rows = query(db, "select contact_id, channel, campaign from int_touchpoints order by touchpoint_at")
    assert rows == [(5, "direct", None), (5, "email", "soldes_ete")]


def test_a_failing_model_rolls_back_and_names_the_file(worked_examples, tmp_path):
    before = query(worked_examples, "select count(*) from roi_by_channel")
    models_dir = tmp_path / "sql"
    (models_dir / "marts").mkdir(parents=True)
    (models_dir / "marts" / "good_model.sql").write_text("select 1 as x")
    (models_dir / "marts" / "roi_by_channel.sql").write_text("select * from good_model")
    (models_dir / "marts" / "broken_model.sql").write_text("select no_such_column from good_model")
    with pytest.raises(ModelBuildError, match=r"broken_model \(.*broken_model.sql\) failed"):
        build(worked_examples, params=PARAMS, models_dir=models_dir, tests_dir=tmp_path)
    assert query(worked_examples, "select count(*) from roi_by_channel") == before
    (models_dir / "marts" / "broken_model.sql").write_text("select * from good_model, roi_by_channel")
    (models_dir / "marts" / "good_model.sql").write_text("select 1 as x from broken_model")
    with pytest.raises(ModelBuildError, match="cycle"):
        build(worked_examples, params=PARAMS, models_dir=models_dir, tests_dir=tmp_path)
