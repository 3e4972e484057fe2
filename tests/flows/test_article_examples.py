"""The issue's done-when checks end to end, through `roi run` and `roi export` against the sandbox portal:

- the first article's two campaigns: 4,000 EUR spent for 4,500 EUR of revenue -> ROI on revenue 12.5 %;
  2,000 EUR for 5,000 EUR -> 150 %;
- the second article's candle: sold 8 EUR, 4 EUR cost of goods -> margin 4.00, both ROI bases shown;
- 1,000 USD of spend with [models.fx_rates] USD = "0.92" -> 920.00 EUR; a GBP row without a rate is rejected
  with the roi.toml line to add;
- a won deal of 999,999,999.99 EUR goes through the whole run and the export to the cent.

The article's customers are added to the sandbox portal (its CRM store) before the run; the pipeline reads
them over HTTP with the official client like any other record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from connectors.config import ATTRIBUTION_MODELS
from flows.cli import app
from sandbox.server import SandboxServer

SHOP = "https://www.bougies-lumiere.fr/"
TODAY = "2026-10-30"
# (contact id, deal id, source, medium, campaign, won amount, line item (price, quantity, unit cost) or None)
CUSTOMERS = [
    (900001, 990001, "linkedin", "paid_social", "article_campagne_a", "4500.00", None),
    (900002, 990002, "newsletter", "email", "article_campagne_b", "5000.00", None),
    (900003, 990003, "facebook", "paid_social", "article_bougie", "8.00", ("8.00", "1", "4.00")),
    (900004, 990004, "linkedin", "paid_social", "article_grand_compte", "999999999.99", None),
]
SPEND = [
    "period_start,period_end,source,medium,campaign,amount,currency",
    "2026-09-01,2026-09-30,linkedin,paid_social,article_campagne_a,4000.00,EUR",
    "2026-09-01,2026-09-30,newsletter,email,article_campagne_b,2000.00,EUR",
    "2026-09-01,2026-09-30,facebook,paid_social,article_bougie,2.00,EUR",
    "2026-09-01,2026-09-30,linkedin,paid_social,article_dollars,1000.00,USD",
    "2026-09-01,2026-09-30,linkedin,paid_social,article_livres,500.00,GBP",
]


def add_article_customers(sb: SandboxServer) -> None:
    """One contact per campaign, first seen on its tagged link on 2026-09-02, one won deal each."""
    crm = sb.store
    at = datetime(2026, 9, 2, 10, tzinfo=UTC)
    closed = datetime(2026, 9, 20, 10, tzinfo=UTC)
    item_id = 9_900_000_001
    for contact_id, deal_id, source, medium, campaign, amount, item in CUSTOMERS:
        crm.add(
            "contacts",
            contact_id,
            {
                "email": f"client{contact_id}@exemple.fr",
                "lifecyclestage": "customer",
                "hs_lifecyclestage_lead_date": "2026-09-02T10:00:00.000Z",
                "hs_lifecyclestage_customer_date": "2026-09-20T10:00:00.000Z",
                "hs_analytics_source": "PAID_SOCIAL" if medium == "paid_social" else "EMAIL_MARKETING",
                "hs_analytics_first_timestamp": "2026-09-02T09:55:00.000Z",
                "hs_analytics_first_url": (
                    f"{SHOP}?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}"
                ),
            },
            at,
            at,
        )
        crm.add(
            "deals",
            deal_id,
            {
                "dealname": f"Article {campaign}",
                "amount": amount,
                "deal_currency_code": "EUR",
                "amount_in_home_currency": amount,
                "dealstage": "closedwon",
                "pipeline": "default",
                "closedate": "2026-09-20T10:00:00.000Z",
                "hs_is_closed_won": "true",
                "hs_is_closed": "true",
            },
            at,
            closed,
        )
        crm.associate("deals", deal_id, "contacts", contact_id, 3)
        if item:
            price, quantity, cost = item
            crm.add(
                "line_items",
                item_id,
                {"name": "Bougie classique", "hs_sku": "BOUGIE-CLASSIQUE", "price": price,
                 "quantity": quantity, "amount": price, "hs_cost_of_goods_sold": cost,
                 "hs_line_item_currency_code": "EUR"},
                at,
                at,
            )  # fmt: skip
            crm.associate("deals", deal_id, "line_items", item_id, 19)
            item_id += 1


@pytest.fixture
def article_run(prefect_harness, clean_settings_env, tmp_path):
    """`roi run --no-publish` on a sandbox portal with the articles' customers: runner, config, db, result."""
    clean_settings_env.chdir(tmp_path)
    (tmp_path / "spend.csv").write_text("\n".join(SPEND) + "\n")
    database = tmp_path / "roi.duckdb"
    with SandboxServer(contacts=60, seed=5, rate_limits=False) as sb:
        add_article_customers(sb)
        config = tmp_path / "roi.toml"
        config.write_text(
            f'hubspot_access_token = "{sb.access_token}"\nhubspot_base_url = "{sb.base_url}"\n'
            f'ga4_property_id = "{sb.ga4_property_id}"\nga4_api_endpoint = "{sb.base_url}"\n'
            f'database = "{database}"\nspend_file = "{tmp_path / "spend.csv"}"\n'
            '[models]\npublish_model = "linear"\n[models.fx_rates]\nUSD = "0.92"\n'
        )
        runner = CliRunner()
        result = runner.invoke(
            app, ["run", "--config", str(config), "--today", TODAY, "--no-publish", "--json"]
        )
        assert result.exit_code == 0, result.output
        yield runner, config, database, json.loads(result.stdout)


def exported(runner: CliRunner, config, path, *args: str) -> dict[str, dict]:
    """The workbook's "Par campagne" rows (cached values of its formulas) for the article's campaigns."""
    result = runner.invoke(app, ["export", "--config", str(config), "--output", str(path), *args])
    assert result.exit_code == 0, result.output
    sheet = load_workbook(path, data_only=True)["Par campagne"]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)]
    return {r["Campagne"]: r for r in rows if (r["Campagne"] or "").startswith("article_")}, sheet, header


def test_the_articles_figures_through_roi_run_and_roi_export(article_run, tmp_path):
    runner, config, database, run = article_run
    for model in ("linear", "markov"):
        rows, sheet, header = exported(runner, config, tmp_path / f"{model}.xlsx", "--model", model)
        # the first article: ROI on revenue (CA) 12.5 % and 150 %; no cost of goods and no rate -> margin n/a
        a, b = rows["article_campagne_a"], rows["article_campagne_b"]
        assert (a["Investissement (€)"], a["CA (€)"], a["ROI sur CA"]) == (4000, 4500, 0.125), model
        assert (b["Investissement (€)"], b["CA (€)"], b["ROI sur CA"]) == (2000, 5000, 1.5), model
        # unknown margin: empty cells, never 0, and the row says why
        assert (a["Marge brute (€)"], a["ROI sur marge"], a["Source de la marge"]) == (None, None, "inconnue")
        # the second article's candle: margin 4.00, both bases
        candle = rows["article_bougie"]
        assert (candle["CA (€)"], candle["Marge brute (€)"], candle["Source de la marge"]) == (
            8,
            4,
            "lignes de produits",
        )
        assert (candle["ROI sur CA"], candle["ROI sur marge"], candle["CA / Investissement"]) == (3, 1, 4)
        # 1,000 USD at 0.92 = 920.00 EUR of investment
        assert rows["article_dollars"]["Investissement (€)"] == 920
        # the billion-euro deal, to the cent
        assert Decimal(str(rows["article_grand_compte"]["CA (€)"])) == Decimal("999999999.99")
        # shown as percentages in the spreadsheet
        column = header.index("ROI sur CA") + 1
        formats = {sheet.cell(row=r, column=column).number_format for r in range(2, sheet.max_row + 1)}
        assert formats == {"0.0%;[Red]-0.0%"}
    assert "article_livres" not in rows  # the GBP row has no rate: rejected, it costs nothing

    # every model, exactly, in the mart the export reads
    with duckdb.connect(str(database), read_only=True) as con:
        marts = con.execute(
            "select attribution_model, campaign, roi_on_revenue, gross_margin, roi_on_margin "
            "from roi_by_campaign where month is null "
            "and campaign in ('article_campagne_a', 'article_campagne_b', 'article_bougie')"
        ).fetchall()
        grand = con.execute(
            "select attribution_model, sum(revenue) from attribution_credits "
            "where deal_id = 990004 group by all"
        ).fetchall()
    assert len(marts) == 3 * len(ATTRIBUTION_MODELS)
    expected = {
        "article_campagne_a": (Decimal("0.125000"), None, None),
        "article_campagne_b": (Decimal("1.500000"), None, None),
        "article_bougie": (Decimal("3.000000"), Decimal("4.00"), Decimal("1.000000")),
    }
    assert all(tuple(row[2:]) == expected[row[1]] for row in marts)
    assert sorted(grand) == [(m, Decimal("999999999.99")) for m in sorted(ATTRIBUTION_MODELS)]

    # the GBP row without a rate: rejected, counted in the run summary, with the roi.toml line to add
    assert run["rejects"].get("models:marketing_spend") == 1
    status = runner.invoke(app, ["status", "--config", str(config), "--json"])
    assert status.exit_code == 0, status.output
    reasons = [r["reason"] for r in json.loads(status.stdout)["latest_rejects"]]
    assert (
        "Spend file spend.csv line 6: no exchange rate for GBP in 2026-09: "
        'add the line GBP = "<EUR for 1 GBP>" under [models.fx_rates] in roi.toml' in reasons
    )
    # (that adding the line is the whole fix is checked on the models alone, in tests/models/test_money.py: a
    # second `roi run` here would double this test's time)


def test_a_portal_reporting_in_pounds_converts_every_amount_and_shows_pounds(
    prefect_harness, clean_settings_env, tmp_path
):
    # [models] home_currency = "GBP": euros and dollars convert at their rates, pounds stay as they are, and
    # every output shows £ (the ratios do not move: cost and revenue convert at the same rate).
    clean_settings_env.chdir(tmp_path)
    (tmp_path / "spend.csv").write_text("\n".join(SPEND) + "\n")
    database = tmp_path / "roi.duckdb"
    with SandboxServer(contacts=60, seed=5, rate_limits=False) as sb:
        add_article_customers(sb)
        # The portal's company currency is EUR (account-info): a deal without a currency code is in euros, and
        # HubSpot's amount_in_home_currency of a franc deal (no CHF rate configured) is in euros too.
        assert sb.store.company_currency == "EUR"
        won = {
            "dealstage": "closedwon",
            "pipeline": "default",
            "closedate": "2026-09-20T10:00:00.000Z",
            "hs_is_closed_won": "true",
            "hs_is_closed": "true",
        }
        at = datetime(2026, 9, 20, 10, tzinfo=UTC)
        for deal_id, name, amount, currency, in_home in (
            (990101, "Sans devise", "100.00", "", "100.00"),
            (990102, "En francs", "200.00", "CHF", "210.00"),
        ):
            properties = {"dealname": name, "amount": amount, "deal_currency_code": currency}
            sb.store.add("deals", deal_id, {**won, **properties, "amount_in_home_currency": in_home}, at, at)
        config = tmp_path / "roi.toml"
        config.write_text(
            f'hubspot_access_token = "{sb.access_token}"\nhubspot_base_url = "{sb.base_url}"\n'
            f'ga4_property_id = "{sb.ga4_property_id}"\nga4_api_endpoint = "{sb.base_url}"\n'
            f'database = "{database}"\nspend_file = "{tmp_path / "spend.csv"}"\n'
            '[models]\nhome_currency = "gbp"\npublish_model = "linear"\n'
            '[models.fx_rates]\nEUR = "0.85"\nUSD = "0.78"\n'
        )
        runner = CliRunner()
        result = runner.invoke(
            app, ["run", "--config", str(config), "--today", TODAY, "--no-publish", "--json"]
        )
        assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rejects"].get("models:marketing_spend", 0) == 0  # GBP needs no rate

    rows, sheet, header = exported(runner, config, tmp_path / "gbp.xlsx")
    a = rows["article_campagne_a"]
    assert (a["Investissement (£)"], a["CA (£)"], a["ROI sur CA"]) == (3400, 3825, 0.125)
    assert rows["article_dollars"]["Investissement (£)"] == 780  # 1,000 USD x 0.78
    assert rows["article_livres"]["Investissement (£)"] == 500  # already in pounds
    candle = rows["article_bougie"]
    assert (candle["CA (£)"], candle["Marge brute (£)"], candle["ROI sur marge"]) == (6.8, 3.4, 1)
    # 999,999,999.99 EUR x 0.85 = 849,999,999.9915 -> to the cent, half away from zero
    assert Decimal(str(rows["article_grand_compte"]["CA (£)"])) == Decimal("849999999.99")
    assert not any("€" in str(h) for h in header)
    column = header.index("CA (£)") + 1
    assert {sheet.cell(row=r, column=column).number_format for r in range(2, sheet.max_row + 1)} == {
        '#,##0.00 "£";[Red]-#,##0.00 "£"'
    }
    with duckdb.connect(str(database), read_only=True) as con:
        deals = {
            d: rest
            for d, *rest in con.execute(
                "select deal_id, currency, fx_source, amount_home, reject_reason from int_deal_amounts "
                "where deal_id >= 990001"
            ).fetchall()
        }
    # the articles' euro deals, at [models.fx_rates] EUR
    assert {deals[d][1] for d in (990001, 990002, 990003, 990004)} == {"fx_rates"}
    assert deals[990101] == ["EUR", "fx_rates", Decimal("85.00"), None]  # no code: the company currency
    assert deals[990102] == ["CHF", "hubspot", Decimal("178.50"), None]  # 210.00 EUR by HubSpot x 0.85

    report = tmp_path / "gbp.html"
    shown = runner.invoke(app, ["report", "--config", str(config), "--output", str(report)])
    assert shown.exit_code == 0, shown.output
    html = report.read_text(encoding="utf-8")
    assert "Investissement (£)" in html and "\u00a0£</div>" in html and "\u00a0€" not in html
    csv_file = tmp_path / "gbp.csv"
    exported_csv = runner.invoke(
        app, ["export", "--config", str(config), "--format", "csv", "--output", str(csv_file)]
    )
    assert exported_csv.exit_code == 0, exported_csv.output
    assert "Investissement (£)" in csv_file.read_text(encoding="utf-8-sig").splitlines()[0]
