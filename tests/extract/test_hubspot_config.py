"""Settings (TOML then environment), validation before any call, and secrets kept out of logs and errors."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from connectors.config import ConfigError, SecretRedactingFilter, load_settings, redact
from connectors.hubspot.extract import HubSpotExtractError, extract_hubspot
from sandbox.server import SandboxServer

TOKEN = "pat-eu1-11111111-2222-3333-4444-555555555555"


def test_toml_then_environment(tmp_path, clean_settings_env):
    path = tmp_path / "roi.toml"
    path.write_text(
        'hubspot_tier = "Starter"\ndatabase = "a.duckdb"\n'
        '[hubspot]\noverlap_minutes = 5\nextra_properties = {contacts = ["industry"]}\n'
        '[models]\nmargin_rates = {wholesale = "0.36"}\n'
    )
    clean_settings_env.setenv("ROI_DATABASE", str(tmp_path / "b.duckdb"))
    clean_settings_env.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    clean_settings_env.setenv("HUBSPOT__MAX_WORKERS", "2")
    settings = load_settings(path)
    assert settings.hubspot_tier == "starter"
    assert settings.database == tmp_path / "b.duckdb"  # the environment wins over the file
    assert settings.hubspot.overlap_minutes == 5 and settings.hubspot.max_workers == 2
    assert settings.hubspot.extra_properties == {"contacts": ["industry"]}
    assert settings.models.margin_rates == {"wholesale": Decimal("0.36")}
    assert settings.hubspot_token == TOKEN and TOKEN not in repr(settings)


def test_the_example_file_loads_with_defaults(clean_settings_env):
    settings = load_settings("roi.example.toml")
    assert settings.models.lookback_days == 90 and settings.ga4.trailing_days == 3
    assert settings.ga4.contact_dimension == "customUser:crm_contact_id"


def test_problems_name_each_missing_setting_and_its_fix(tmp_path, clean_settings_env):
    settings = load_settings(
        None, ga4_property_id="properties/12", google_application_credentials=tmp_path / "no"
    )
    with pytest.raises(ConfigError) as caught:
        settings.validate_for("hubspot", "ga4")
    message = str(caught.value)
    assert "HUBSPOT_ACCESS_TOKEN" in message and "not numeric" in message
    assert "GOOGLE_APPLICATION_CREDENTIALS" in message and "not a file" in message
    with pytest.raises(ConfigError, match="hubspot_tier"):
        load_settings(None, hubspot_tier="gold")
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_redaction_of_text_and_log_records(clean_settings_env):
    settings = load_settings(None, hubspot_access_token=TOKEN)
    assert TOKEN not in redact(f"call failed: Authorization: Bearer {TOKEN}", settings)
    assert "Bearer ***" in redact("Authorization: Bearer abcdefghijklmnop")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s leaked", (TOKEN,), None)
    SecretRedactingFilter(settings).filter(record)
    assert TOKEN not in record.getMessage() and "***" in record.getMessage()


def test_a_rejected_token_stops_with_a_fix_and_never_echoes_the_token(
    tmp_path, clean_settings_env, make_settings
):
    with SandboxServer(contacts=50, seed=1, rate_limits=False) as sb:
        settings = make_settings(sb, hubspot_access_token=TOKEN)
        with pytest.raises(HubSpotExtractError) as caught:
            extract_hubspot(settings, tmp_path / "roi.duckdb", "r1", streams=["pipelines"])
    assert "401" in str(caught.value) and "HUBSPOT_ACCESS_TOKEN" in str(caught.value)
    assert TOKEN not in str(caught.value)
