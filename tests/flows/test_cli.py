"""CLI behaviour that needs no Prefect run: UTM building, config errors, exit codes, redaction."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import EXIT_CONFIG, EXIT_UTM_REFUSED, app

URL = "https://www.exemple.com/produit"
TOKEN = "pat-eu1-0f0f0f0f-1234-5678-9abc-def012345678"


@pytest.fixture
def runner(clean_settings_env, tmp_path):
    # No roi.toml in the working directory and no ambient settings: each test states what it configures.
    clean_settings_env.chdir(tmp_path)
    return CliRunner()


def test_utm_build_reproduces_the_tagged_link(runner):
    result = runner.invoke(
        app, ["utm", "build", URL, "--source", "newsletter", "--medium", "email", "--campaign", "vente_hiver"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{URL}?utm_source=newsletter&utm_medium=email&utm_campaign=vente_hiver"


TAGS = ["--source", "newsletter", "--medium", "email", "--campaign", "vente_hiver"]


@pytest.mark.parametrize(
    ("url", "extra", "named"),
    [
        ("https://exemple.fr/p\r\nSet-Cookie: a=b", [], "U+000D (carriage return)"),
        ("https://exemple.fr/p\tq", [], "U+0009 (tab)"),
        ("https://exemple.fr/p\u200b", [], "U+200B (ZERO WIDTH SPACE)"),
        ("https://exemple.fr/p", ["--content", "bandeau\nhaut"], "utm_content"),
        ("https://exemple.fr/p", ["--term", "bougie\x00"], "U+0000 (NUL)"),
        ("https://ex ample.fr/p", [], "no valid host name"),
    ],
)
def test_utm_build_refuses_control_characters_in_the_url_or_a_value(runner, url, extra, named):
    result = runner.invoke(app, ["utm", "build", url, *TAGS, *extra])
    assert result.exit_code == EXIT_UTM_REFUSED, result.output
    assert named in " ".join(result.stderr.split())
    assert result.stdout == "" and "Traceback" not in result.output


def test_utm_build_percent_encodes_spaces_and_accents_and_punycodes_the_host(runner):
    result = runner.invoke(
        app, ["utm", "build", " https://bougies-été.fr/ma page/été?q=à #haut de page", *TAGS]
    )
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url == (
        "https://xn--bougies-t-i4ab.fr/ma%20page/%C3%A9t%C3%A9?q=%C3%A0+"
        "&utm_source=newsletter&utm_medium=email&utm_campaign=vente_hiver#haut%20de%20page"
    )
    assert url.isascii() and not any(c.isspace() for c in url)


def test_utm_build_refuses_a_variant_and_suggests_the_canonical_value(runner):
    result = runner.invoke(
        app,
        ["utm", "build", URL, "--source", "newsletter", "--medium", "E-mail", "--campaign", "vente_hiver"],
    )
    assert result.exit_code == EXIT_UTM_REFUSED
    message = " ".join(result.stderr.split())
    assert "utm_medium='E-mail' is not in the tagging plan; use 'email'" in message
    assert "allowed: organic, cpc, paid_social, social, email, referral, (none), offline" in message
    assert "utm_source" not in message  # only the bad value is reported
    assert "?utm_" not in result.stdout


def test_missing_config_file_is_named(runner):
    result = runner.invoke(app, ["run", "--config", "nope.toml"])
    assert result.exit_code == EXIT_CONFIG
    assert "nope.toml does not exist" in " ".join(result.stderr.split())


def test_invalid_setting_is_named_with_its_fix(runner, tmp_path):
    (tmp_path / "roi.toml").write_text('hubspot_tier = "gold"\n')
    result = runner.invoke(app, ["status", "--config", "roi.toml"])
    assert result.exit_code == EXIT_CONFIG
    assert "hubspot_tier" in result.stderr


def test_missing_ga4_settings_named_before_any_call_and_token_never_shown(runner, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    result = runner.invoke(app, ["run", "--no-publish"])
    assert result.exit_code == EXIT_CONFIG
    message = " ".join(result.stderr.split())
    assert "GA4_PROPERTY_ID" in message and "GOOGLE_APPLICATION_CREDENTIALS" in message
    assert TOKEN not in result.output


def test_backfill_rejects_unknown_stream_and_bad_dates(runner):
    result = runner.invoke(
        app, ["backfill", "--start", "2026-01-01", "--end", "2026-01-02", "--streams", "crm"]
    )
    assert result.exit_code == 2 and "unknown stream(s) crm" in result.stderr
    result = runner.invoke(app, ["backfill", "--start", "2026-01-01", "--end", "01/02/2026"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --end '01/02/2026' is not a date. Fix: write it as YYYY-MM-DD, e.g. --end 2026-10-31"
    )


def test_token_is_redacted_from_prefect_log_lines(runner, monkeypatch):
    import logging

    from flows.settings import load_settings

    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    load_settings()
    handler = logging.StreamHandler()
    records: list[str] = []
    handler.emit = lambda record: records.append(record.getMessage())  # collect what handlers would write
    prefect_logger = logging.getLogger("prefect")
    prefect_logger.addHandler(handler)
    try:
        load_settings()  # installs the redacting filter on the handler added above too
        logging.getLogger("prefect.roi").warning("calling HubSpot with Bearer %s", TOKEN)
    finally:
        prefect_logger.removeHandler(handler)
    assert records and TOKEN not in records[0] and "***" in records[0]


def test_utm_build_says_the_channel_and_accepts_a_new_campaign_that_follows_the_naming_rule(runner):
    result = runner.invoke(
        app, ["utm", "build", URL, "--source", "google", "--medium", "cpc", "--campaign", "soldes_printemps"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{URL}?utm_source=google&utm_medium=cpc&utm_campaign=soldes_printemps"
    lines = result.stderr.splitlines()
    assert lines[0] == "channel: paid_search (Paid search; rule paid_search)"
    assert "new campaign 'soldes_printemps': accepted by the plan's naming rule" in " ".join(lines[1:])
    refused = runner.invoke(
        app, ["utm", "build", URL, "--source", "google", "--medium", "cpc", "--campaign", "Soldes Printemps"]
    )
    assert refused.exit_code == EXIT_UTM_REFUSED
    assert (
        "utm_campaign='Soldes Printemps' is not written as the naming rule wants; use 'soldes_printemps'"
        in (" ".join(refused.stderr.split()))
    )
    refused = runner.invoke(
        app, ["utm", "build", URL, "--source", "google", "--medium", "cpc", "--campaign", "promo-50%"]
    )
    assert (
        refused.exit_code == EXIT_UTM_REFUSED and "does not follow the plan's naming rule" in refused.stderr
    )


def test_utm_build_refuses_a_pair_no_channel_rule_accepts_and_lists_the_pairs_that_are(runner):
    result = runner.invoke(
        app, ["utm", "build", URL, "--source", "linkedin", "--medium", "offline", "--campaign", "vente_hiver"]
    )
    assert result.exit_code == EXIT_UTM_REFUSED
    message = " ".join(result.stderr.split())
    assert message.startswith(
        "error: utm_source='linkedin' with utm_medium='offline' lands in no channel (it would report as "
        "'unassigned'): with source linkedin, use medium organic or social or referral (organic_social), "
        "cpc or paid_social (paid_social), email (email); with medium offline, use source salon_maison_objet "
        "or salon_bijorhca (events), word_of_mouth (word_of_mouth). Fix: pick one of those pairs"
    )
    assert result.stdout == ""
