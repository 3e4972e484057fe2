"""Issue 12: `roi check` against the sandbox: all good, a token without write scope, a GA4 property without
the contact dimension, a broken spend sheet, a busy warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import EXIT_CONFIG, app
from sandbox.dataset import Ga4Restrictions
from sandbox.hubspot_api import ALL_SCOPES
from sandbox.server import SandboxServer

READ_ONLY = [s for s in ALL_SCOPES if s.endswith(".read")]


def _config(path: Path, sb: SandboxServer, **extra: str) -> Path:
    lines = [
        f'hubspot_access_token = "{sb.access_token}"',
        f'hubspot_base_url = "{sb.base_url}"',
        f'ga4_property_id = "{sb.ga4_property_id}"',
        f'ga4_api_endpoint = "{sb.base_url}"',
        *(f'{key} = "{value}"' for key, value in extra.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _lines(output: str) -> str:
    return " ".join(output.split())


@pytest.fixture
def runner(clean_settings_env, tmp_path):
    clean_settings_env.chdir(tmp_path)
    return CliRunner()


def test_check_passes_on_a_good_setup_and_calls_nothing_that_writes(runner, tmp_path, sandbox):
    _config(tmp_path / "roi.toml", sandbox, database=str(tmp_path / "w.duckdb"))
    sandbox.request_log.clear()
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    text = _lines(result.stdout)
    for expected in (
        "ok settings roi.toml: every key known",
        "ok hubspot token portal 24000001",
        "ok hubspot extract the token can read contacts, deals, line items",
        "ok hubspot publish the token can write the ROI properties",
        "ok ga4 contact dimension customUser:crm_contact_id is registered",
        "ok ga4 cost the property serves advertiserAdCost, advertiserAdClicks, advertiserAdImpressions",
        "ok warehouse",
        "All checks passed",
    ):
        assert expected in text, text
    assert "SANDBOX" not in result.output
    calls = {(e.method, e.path.split("/")[-1]) for e in sandbox.request_log.entries}
    assert calls and not any(m in ("PATCH", "DELETE") or p in ("update", "merge") for m, p in calls)


def test_check_names_the_missing_write_scope_and_the_missing_contact_dimension(runner, tmp_path):
    with SandboxServer(
        contacts=20,
        seed=2,
        rate_limits=False,
        token_scopes=READ_ONLY,
        ga4_contact_dimension=False,
        ga4_restrictions=Ga4Restrictions(ads_linked=False),
    ) as sb:
        _config(tmp_path / "roi.toml", sb)
        result = runner.invoke(app, ["check"])
    assert result.exit_code == EXIT_CONFIG, result.output
    text = _lines(result.stdout)
    assert "ok hubspot extract" in text
    assert (
        "FAIL hubspot publish missing scope(s) crm.objects.contacts.write, crm.objects.deals.write, "
        "crm.schemas.contacts.write, crm.schemas.deals.write: publishing ROI would be refused (403)"
    ) in text
    assert "Fix: add crm.objects.contacts.write" in text
    assert "FAIL ga4 contact dimension customUser:crm_contact_id is not registered on properties/" in text
    assert "Fix: in GA4 Admin > Custom definitions, create a user-scoped dimension" in text
    # No Google Ads link: a warning (the spend sheet covers cost), decided as the extract decides it.
    assert "warn ga4 cost no ad cost from GA4: GA4 property 123456789 cannot serve advertiserAdCost" in text
    assert "checkCompatibility: advertiserAdCost INCOMPATIBLE" in text
    assert result.stderr.strip() == "error: 2 check(s) failed: hubspot publish, ga4 contact dimension"


def test_check_previews_spend_rejects_and_reports_a_refused_token_and_a_busy_warehouse(
    runner, tmp_path, sandbox
):
    from flows.locking import warehouse_lock

    (tmp_path / "spend.csv").write_text(
        "period_start,period_end,source,medium,campaign,amount,currency\n"
        "2026-01-01,2026-01-31,google,cpc,brand_bougies,120.50,EUR\n"
        "2026-01-01,2026-01-31,google,cpc,brand_bougies,douze,EUR\n"
    )
    config = _config(
        tmp_path / "roi.toml", sandbox, spend_file="spend.csv", database=str(tmp_path / "w.duckdb")
    )
    config.write_text(
        config.read_text().replace(sandbox.access_token, "pat-eu1-00000000-0000-0000-0000-000000000000")
    )
    with warehouse_lock(tmp_path / "w.duckdb", run_id="nightly-busy"):
        result = runner.invoke(app, ["check"])
    assert result.exit_code == EXIT_CONFIG
    text = _lines(result.stdout)
    assert "FAIL hubspot token HubSpot does not know this token (400)" in text
    assert "warn spend sheet spend.csv: 1 rows read, 1 would be rejected" in text
    assert "line 3: amount 'douze' is not a number" in text
    assert "warn warehouse" in text and "being written now by run nightly-busy" in text
    assert "pat-eu1-00000000" not in result.output


def test_check_compares_the_portals_company_currency_with_home_currency(runner, tmp_path, sandbox):
    # The sandbox portal's company currency is EUR (account-info). Reporting in pounds needs a EUR rate:
    # deals without a currency code are in euros.
    config = tmp_path / "roi.toml"
    _config(config, sandbox, database=str(tmp_path / "w.duckdb"))
    base = config.read_text()
    config.write_text(base + '[models]\nhome_currency = "GBP"\n')
    refused = runner.invoke(app, ["check"])
    assert refused.exit_code == EXIT_CONFIG, refused.output
    text = _lines(refused.stdout)
    assert "FAIL hubspot currency the portal's company currency is EUR but [models] home_currency is GBP" in (
        text
    )
    assert 'add EUR = "<GBP for 1 EUR>" under [models.fx_rates]' in text
    config.write_text(base + '[models]\nhome_currency = "GBP"\n[models.fx_rates]\nEUR = "0.85"\n')
    converted = runner.invoke(app, ["check"])
    assert converted.exit_code == 0, converted.output
    assert "ok hubspot currency company currency EUR, reported in GBP" in _lines(converted.stdout)
    config.write_text(base)
    same = runner.invoke(app, ["check"])
    assert "ok hubspot currency company currency EUR = [models] home_currency" in _lines(same.stdout)


def test_check_warns_when_the_account_details_are_refused(runner, tmp_path, sandbox):
    _config(tmp_path / "roi.toml", sandbox, database=str(tmp_path / "w.duckdb"))
    sandbox.faults.configure(error_rate=1.0, statuses=(403,), paths=("/account-info",))
    try:
        result = runner.invoke(app, ["check"])
    finally:
        sandbox.faults.clear()
    assert result.exit_code == 0, result.output  # a warning, not a failure: the extract does not need it
    text = _lines(result.stdout)
    assert "warn hubspot currency HubSpot refused the account details (403)" in text
    assert "deals without a currency code will be taken in EUR" in text
