"""Money that holds on real-world amounts, in real DuckDB files built by the real models:
a 999,999,999.99 EUR deal split to the cent under all 11 models, currencies (fixed rates, the monthly rates
file, HubSpot's deal_currency_code), and bad amounts (negative, missing, zero) with their rejects.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from raw_fixtures import RawData

from connectors.config import ATTRIBUTION_MODELS
from models.runner import ModelBuildError, build

AS_OF = "2026-06-30"
SHOP = "https://www.bougies-lumiere.fr/"
BIG = Decimal("999999999.99")


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def buyer(raw: RawData, contact_id: int, day: str, campaign: str = "b2b_boutiques") -> RawData:
    """A contact whose first touch is a LinkedIn ad of `campaign` on `day`."""
    return raw.contact(
        contact_id,
        f"{day}T10:00:00Z",
        hs_analytics_source="PAID_SOCIAL",
        hs_analytics_first_timestamp=f"{day}T09:55:00Z",
        hs_analytics_first_url=SHOP + f"?utm_source=linkedin&utm_medium=paid_social&utm_campaign={campaign}",
    )


def test_a_billion_euro_deal_builds_and_splits_to_the_cent_under_every_model(raw_data, tmp_path):
    # Four touches on four channels, so every model splits the amount in its own way.
    buyer(raw_data, 1, "2026-03-02")
    raw_data.session("2026-03-05", 1, "newsletter", "email", "vente_hiver")
    raw_data.session("2026-03-09", 1, "google", "organic")
    raw_data.session("2026-03-12", 1, "salon_maison_objet", "offline", "salon_maison_objet")
    raw_data.deal(
        41, [1], amount=str(BIG), stage="wh_won", pipeline="wholesale",
        created="2026-03-10T10:00:00Z", closed="2026-03-20T10:00:00Z",
    )  # fmt: skip
    raw_data.line_item(401, 41, price="33333333.333", quantity="30", cost="22222222.22")
    raw_data.spend("2026-03-01", "2026-03-31", "linkedin", "paid_social", "b2b_boutiques", "0.01")
    db = raw_data.write()
    result = build(db, params={"as_of": AS_OF})
    assert result.ok, result.summary()

    splits = query(
        db,
        "select attribution_model, count(*), sum(revenue), sum(gross_margin), min(revenue), max(revenue) "
        "from attribution_credits where deal_id = 41 group by all order by 1",
    )
    assert [s[0] for s in splits] == sorted(ATTRIBUTION_MODELS)
    margin = BIG - Decimal("666666666.60")  # 30 x 22,222,222.22 of cost of goods
    for model, _rows, revenue, gross_margin, smallest, largest in splits:
        assert (revenue, gross_margin) == (BIG, margin), model
        assert smallest >= 0 and largest <= BIG
    # each credited amount is the credit x the amount to the cent (the remainder cent on the largest credit)
    credited = query(
        db, "select attribution_model, credit, revenue from attribution_credits where deal_id = 41"
    )
    for model, credit, revenue in credited:
        assert abs(Decimal(repr(credit)) * BIG - revenue) <= Decimal("0.02"), model
    assert {r[1] for r in splits} >= {1, 4}

    marts = query(
        db,
        "select attribution_model, sum(revenue), sum(gross_margin) from roi_by_campaign "
        "where month is null group by all",
    )
    assert len(marts) == 11 and all(r[1:] == (BIG, margin) for r in marts)
    # 0.01 EUR of spend against it: the largest ratio the marts must hold (10^11) fits, exactly
    roi = query(
        db,
        "select revenue, roi_on_revenue, roas, cost_per_euro_of_revenue from roi_by_campaign "
        "where month is null and attribution_model = 'first_touch' and campaign = 'b2b_boutiques'",
    )
    assert roi == [(BIG, Decimal("99999999998.000000"), Decimal("99999999999.000000"), Decimal("0.000000"))]

    # and the export (the workbook `roi export` writes) carries the exact figures, cached beside its formulas
    from openpyxl import load_workbook

    from connectors.reports import export_workbook

    con = duckdb.connect(str(db), read_only=True)
    try:
        export_workbook(con, tmp_path / "big.xlsx", model="first_touch")
    finally:
        con.close()
    sheet = load_workbook(tmp_path / "big.xlsx", data_only=True)["Par campagne"]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)]
    body, total = rows[:-1], rows[-1]
    linkedin = next(r for r in body if r["Campagne"] == "b2b_boutiques")
    assert Decimal(str(linkedin["CA (€)"])) == BIG
    assert Decimal(str(linkedin["ROI sur CA"])) == Decimal("99999999998")
    assert sum(Decimal(str(r["CA (€)"])) for r in body) == BIG == Decimal(str(total["CA (€)"]))


def test_spend_in_usd_converts_at_the_configured_rate_and_gbp_without_rate_is_rejected(raw_data):
    raw_data.spend("2026-04-01", "2026-04-30", "linkedin", "paid_social", "b2b_boutiques", "1000.00", "USD")
    raw_data.spend("2026-04-01", "2026-04-30", "facebook", "paid_social", "noel_cadeaux", "500.00", "GBP")
    db = raw_data.write()
    result = build(db, params={"as_of": AS_OF, "fx_rates": {"USD": "0.92"}}, run_id="run-fx")
    assert result.ok, result.summary()
    cost = query(db, "select campaign, sum(cost) from int_cost_daily group by all")
    assert cost == [("b2b_boutiques", Decimal("920.00"))]
    rejects = query(db, "select source, record_id, line, field, value, reason from ops.rejects")
    assert rejects == [
        (
            "models:marketing_spend",
            "spend.csv",
            3,
            "currency",
            "GBP",
            "Spend file spend.csv line 3: no exchange rate for GBP in 2026-04: "
            'add the line GBP = "<EUR for 1 GBP>" under [models.fx_rates] in roi.toml',
        )
    ]
    # adding that line is the whole fix
    build(db, params={"as_of": AS_OF, "fx_rates": {"USD": "0.92", "GBP": "1.17"}}, run_id="run-fx-2")
    assert query(db, "select sum(cost) from int_cost_daily") == [(Decimal("1505.00"),)]
    assert query(db, "select count(*) from ops.rejects where run_id = 'run-fx-2'") == [(0,)]


def test_monthly_rates_file_converts_each_month_at_its_rate(raw_data, tmp_path):
    rates = tmp_path / "fx_rates.csv"
    rates.write_text("month,currency,rate\n2026-02,USD,0.90\n2026-03,USD,0.95\n# April not known yet\n")
    # 2,000 USD over 15 Feb .. 16 Mar: 14 days in February, 16 in March
    raw_data.spend("2026-02-15", "2026-03-16", "linkedin", "paid_social", "b2b_boutiques", "2000.00", "USD")
    raw_data.spend("2026-04-01", "2026-04-30", "linkedin", "paid_social", "b2b_boutiques", "100.00", "USD")
    raw_data.spend("2026-04-01", "2026-04-30", "linkedin", "paid_social", "b2b_boutiques", "100.00", "CHF")
    buyer(raw_data, 1, "2026-03-02")
    raw_data.deal(
        51, [1], amount="10000.00", currency="USD", amount_home="9100.00", stage="wh_won",
        pipeline="wholesale", created="2026-03-05T10:00:00Z", closed="2026-03-28T10:00:00Z",
    )  # fmt: skip
    db = raw_data.write()
    result = build(
        db, params={"as_of": AS_OF, "fx_rates": {"USD": "0.92"}, "fx_rates_file": str(rates)}, run_id="run-m"
    )
    assert result.ok, result.summary()
    months = query(
        db,
        "select month, sum(cost) from roi_by_channel "
        "where attribution_model = 'linear' and month is not null group by all order by 1",
    )
    # 2,000.00 USD over 30 days = 66.67 on the first 20 days, 66.66 on the last 10: February has 14 x 66.67
    # = 933.38 USD x 0.90 = 840.04 EUR, March 1,066.62 USD x 0.95 = 1,013.29 EUR; April is not in the file:
    # the fixed rate, 100 x 0.92
    assert [m[1] for m in months] == [Decimal("840.04"), Decimal("1013.29"), Decimal("92.00")]
    # the March deal converts at March's rate from the file, not HubSpot's 9,100
    assert query(db, "select amount_home, fx_source, fx_rate from int_deals where deal_id = 51") == [
        (Decimal("9500.00"), "rates_file", Decimal("0.95000000"))
    ]
    reason = query(db, "select reason from ops.rejects where run_id = 'run-m'")[0][0]
    assert reason.endswith(
        'no exchange rate for CHF in 2026-04: add the line CHF = "<EUR for 1 CHF>" under [models.fx_rates] '
        f"in roi.toml (or the row 2026-04,CHF,<rate> to {rates})"
    )


def test_ga4_cost_in_a_property_currency_converts_or_is_rejected_not_lost(raw_data, tmp_path):
    # a GA4 property reporting in USD: March has a monthly rate, April the fixed one, May none at all
    rates = tmp_path / "fx_rates.csv"
    rates.write_text("month,currency,rate\n2026-03,USD,0.95\n")
    raw_data.traffic("2026-03-03", "google", "cpc", "brand_bougies", sessions=10)
    for day, cost in (("2026-03-03", "100.00"), ("2026-04-03", "100.00"), ("2026-05-03", "100.00")):
        raw_data.ad_cost(day, "google", "cpc", "brand_bougies", cost, currency="USD")
    raw_data.ga4_days("ad_cost_daily", "2026-03-01", "2026-05-31")
    raw_data.ga4_days("traffic_daily", "2026-03-01", "2026-05-31")
    db = raw_data.write()
    params = {"as_of": AS_OF, "fx_rates": {"USD": "0.92"}, "fx_rates_file": str(rates)}
    # without the fixed rate, April and May have none: their cost is rejected with the line to add, not lost
    result = build(db, params={**params, "fx_rates": {}}, run_id="run-ga4")
    assert result.ok, result.summary()
    assert query(
        db, "select date_trunc('month', cost_date)::date, sum(cost) from int_cost_daily group by 1"
    ) == [(date(2026, 3, 1), Decimal("95.00"))]
    reasons = [r[0] for r in query(db, "select reason from ops.rejects where run_id = 'run-ga4' order by 1")]
    assert len(reasons) == 2 and all(r.startswith("GA4 property 123456789: 100.00 USD") for r in reasons)
    assert 'add the line USD = "<EUR for 1 USD>" under [models.fx_rates] in roi.toml' in reasons[0]
    build(db, params=params, run_id="run-ga4-2")
    months = query(
        db, "select date_trunc('month', cost_date), sum(cost) from int_cost_daily group by 1 order by 1"
    )
    assert [m[1] for m in months] == [Decimal("95.00"), Decimal("92.00"), Decimal("92.00")]
    assert query(db, "select count(*) from ops.rejects where run_id = 'run-ga4-2'") == [(0,)]


def test_rates_file_problems_name_the_line(raw_data, tmp_path):
    db = raw_data.write()
    rates = tmp_path / "rates.csv"
    for content, problem in [
        ("month,currency,rate\n2026-03,USD,0,92\n", "rates.csv line 2: expected 3 values"),
        ("month,currency,rate\n2026-3,USD,0.92\n", "rates.csv line 2: month '2026-3' is not a month"),
        ("month,currency,rate\n2026-03,USD,0.92\n2026-03,usd,0.93\n", "already on line 2"),
        ("month,currency,rate\n2026-03,DOLLAR,0.92\n", "'DOLLAR' is not a currency code"),
        ("month,currency,rate\n2026-03,USD,-1\n", "must be a positive number"),
        ("mois;devise;taux\n", "the header must be exactly month,currency,rate"),
    ]:
        rates.write_text(content)
        with pytest.raises(ModelBuildError, match=r"Fix|must be|expected") as raised:
            build(db, params={"as_of": AS_OF, "fx_rates_file": str(rates)})
        assert problem in str(raised.value)
    with pytest.raises(ModelBuildError, match="is a float"):
        build(db, params={"as_of": AS_OF, "fx_rates": {"USD": 0.92}})


def test_deal_currencies_configured_rate_then_hubspot_then_rejected(raw_data):
    for contact_id in (1, 2, 3, 4):
        buyer(raw_data, contact_id, "2026-03-02")
    won = {"stage": "closedwon", "created": "2026-03-05T10:00:00Z", "closed": "2026-03-20T10:00:00Z"}
    # a configured rate wins over HubSpot's own conversion
    raw_data.deal(61, [1], amount="1000.00", currency="USD", amount_home="930.00", **won)
    # no configured rate: HubSpot's amount_in_home_currency
    raw_data.deal(62, [2], amount="1000.00", currency="GBP", amount_home="1170.00", **won)
    # neither: rejected with the line to add, counted nowhere
    raw_data.deal(63, [3], amount="1000.00", currency="CHF", amount_home=None, **won)
    # no deal_currency_code at all: the home currency
    raw_data.deal(64, [4], amount="250.00", currency=None, amount_home=None, **won)
    # a lost deal needs no rate and is not rejected for it
    raw_data.deal(65, [4], amount="90.00", currency="JPY", amount_home=None, stage="closedlost",
                  created="2026-03-05T10:00:00Z", closed="2026-03-21T10:00:00Z")  # fmt: skip
    db = raw_data.write()
    result = build(db, params={"as_of": AS_OF, "fx_rates": {"USD": "0.92"}}, run_id="run-d")
    assert result.ok, result.summary()
    assert query(
        db, "select deal_id, currency, fx_source, amount_home, won_revenue from int_deals order by 1"
    ) == [
        (61, "USD", "fx_rates", Decimal("920.00"), Decimal("920.00")),
        (62, "GBP", "hubspot", Decimal("1170.00"), Decimal("1170.00")),
        (64, "EUR", "home", Decimal("250.00"), Decimal("250.00")),
        (65, "JPY", None, None, Decimal("0.00")),
    ]
    assert query(db, "select record_id, field, value, reason from ops.rejects where run_id = 'run-d'") == [
        (
            "63",
            "deal_currency_code",
            "CHF",
            'Deal 63: no exchange rate for CHF in 2026-03: add the line CHF = "<EUR for 1 CHF>" under '
            "[models.fx_rates] in roi.toml",
        )
    ]
    assert query(
        db, "select sum(revenue), sum(won_deals) from roi_by_channel where month is null "
        "and attribution_model = 'first_touch'"
    ) == [(Decimal("2340.00"), 3.0)]  # fmt: skip


def test_negative_missing_and_zero_won_amounts(raw_data):
    for contact_id in (1, 2, 3, 4):
        buyer(raw_data, contact_id, "2026-03-02")
    won = {"stage": "closedwon", "created": "2026-03-05T10:00:00Z", "closed": "2026-03-20T10:00:00Z"}
    raw_data.deal(71, [1], amount="-250.00", **won)  # a refund booked as a deal
    raw_data.deal(72, [2], amount=None, **won)  # amount never filled in
    raw_data.deal(73, [3], amount="0.00", **won)  # a free sample order: a real won deal
    raw_data.deal(74, [4], amount="400.00", **won)
    raw_data.spend("2026-03-01", "2026-03-31", "linkedin", "paid_social", "b2b_boutiques", "100.00")
    db = raw_data.write()
    result = build(db, params={"as_of": AS_OF}, run_id="run-bad")
    assert result.ok, result.summary()
    rejects = dict(query(db, "select record_id, reason from ops.rejects where run_id = 'run-bad'"))
    assert set(rejects) == {"71", "72"}
    assert rejects["71"].startswith("Deal 71: negative amount -250.00: a refund or credit note is not")
    assert rejects["72"].startswith("Deal 72: won deal without amount: counted nowhere")
    assert query(db, "select field, value from ops.rejects where record_id = '71'") == [("amount", "-250.00")]
    # counted nowhere: not in the deals, the credits or the marts; the zero deal counts as a won deal
    assert query(db, "select deal_id, won_revenue from int_deals order by 1") == [
        (73, Decimal("0.00")),
        (74, Decimal("400.00")),
    ]
    assert query(db, "select count(distinct deal_id) from attribution_credits") == [(2,)]
    for model in ATTRIBUTION_MODELS:
        rows = query(
            db,
            "select won_deals, revenue, roi_on_revenue from roi_by_channel where month is null "
            "and attribution_model = ? and channel = 'paid_social'",
            [model],
        )
        assert rows == [(2.0, Decimal("400.00"), Decimal("3.000000"))], model


def test_margin_sources_mix_and_an_unknown_margin_blanks_the_row(raw_data):
    buyer(raw_data, 1, "2026-03-02")
    buyer(raw_data, 2, "2026-03-03")
    buyer(raw_data, 3, "2026-03-04", campaign="noel_cadeaux")
    won = {"created": "2026-03-05T10:00:00Z", "closed": "2026-03-20T10:00:00Z"}
    raw_data.deal(81, [1], amount="8.00", stage="closedwon", **won)
    raw_data.line_item(801, 81, price="8.00", quantity="1", cost="4.00")
    raw_data.deal(82, [2], amount="1000.00", stage="wh_won", pipeline="wholesale", **won)
    raw_data.deal(83, [3], amount="500.00", stage="closedwon", **won)  # no line items, no rate
    raw_data.spend("2026-03-01", "2026-03-31", "linkedin", "paid_social", "b2b_boutiques", "100.00")
    raw_data.spend("2026-03-01", "2026-03-31", "linkedin", "paid_social", "noel_cadeaux", "100.00")
    db = raw_data.write()
    assert build(db, params={"as_of": AS_OF, "margin_rates": {"wholesale": "0.25"}}).ok
    rows = query(
        db,
        "select campaign, revenue, gross_margin, margin_source, roi_on_revenue, roi_on_margin "
        "from roi_by_campaign where month is null and attribution_model = 'first_touch' order by campaign",
    )
    assert rows == [
        # candle (line items: 4.00) + wholesale deal (rate 0.25: 250.00)
        ("b2b_boutiques", Decimal("1008.00"), Decimal("254.00"), "mixed", Decimal("9.08"), Decimal("1.54")),
        ("noel_cadeaux", Decimal("500.00"), None, "none", Decimal("4.000000"), None),
    ]
    channel = query(
        db,
        "select gross_margin, margin_source, roi_on_margin, lead_value from roi_by_channel "
        "where month is null and attribution_model = 'first_touch'",
    )
    assert channel == [(None, "none", None, None)]


def test_rate_settings_in_roi_toml(tmp_path, clean_settings_env):
    from connectors.config import ConfigError, load_settings
    from flows.settings import model_params

    rates = tmp_path / "fx_rates.csv"
    rates.write_text("month,currency,rate\n2026-03,USD,0.95\n")
    config = tmp_path / "roi.toml"
    config.write_text(
        f'[models]\nfx_rates_file = "{rates}"\n[models.fx_rates]\nusd = "0.92"\nGBP = "1.17"\n'
        '[models.margin_rates]\nwholesale = "0.36"\n'
    )
    settings = load_settings(config)
    assert settings.models.fx_rates == {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}
    assert settings.models.default_margin_rate is None  # nothing is assumed
    assert settings.problems(()) == []
    # the settings reach the models as they are: the file's March rate, the fixed ones otherwise
    raw = RawData(tmp_path / "w.duckdb")
    raw.spend("2026-03-01", "2026-03-31", "linkedin", "paid_social", "b2b_boutiques", "1000.00", "USD")
    raw.spend("2026-04-01", "2026-04-30", "linkedin", "paid_social", "b2b_boutiques", "1000.00", "USD")
    db = raw.write()
    assert build(db, params={**model_params(settings), "as_of": AS_OF}).ok
    assert query(db, "select sum(cost) from int_cost_daily") == [(Decimal("1870.00"),)]

    rates.unlink()
    assert any(
        "Exchange rates file" in p and "fx_rates_file" in p for p in load_settings(config).problems(())
    )
    for bad, message in [
        ('[models.fx_rates]\nDOLLAR = "0.92"\n', "'DOLLAR' is not a currency code"),
        ('[models.fx_rates]\nUSD = "-0.92"\n', "rate for USD is -0.92"),
        # a typo in [models] is an error naming the key, never silently dropped
        ('[models]\nfx_rate = {USD = "0.92"}\n', "did you mean 'fx_rates'"),
        ('[models]\nfx_rates_fil = "rates.csv"\n', "did you mean 'fx_rates_file'"),
    ]:
        config.write_text(bad)
        with pytest.raises(ConfigError, match="fx_rate") as raised:
            load_settings(config)
        assert message in str(raised.value)
