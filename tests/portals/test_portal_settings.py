"""[portals.<name>] in roi.toml: what a portal sees, where its token comes from, and every mistake refused."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connectors.config import ConfigError, load_settings, redact

TWO_PORTALS = """
database = "{folder}/roi.duckdb"
hubspot_tier = "professional"
ga4_property_id = "999"
[models]
lookback_days = 60
[models.fx_rates]
USD = "0.92"
[freshness.hubspot]
warn_after = "26h"
error_after = "50h"

[portals.acme]
label = "Acme SAS"
token_env = "HUBSPOT_TOKEN_ACME"
hubspot_tier = "Enterprise"
ga4_property_id = "111"
[portals.acme.models]
half_life_days = "3"
[portals.acme.models.fx_rates]
GBP = "1.17"
[portals.acme.freshness.hubspot]
warn_after = "30h"

[portals.beta]
token_secret = "hubspot-token-beta"
database = "{folder}/brands/beta.duckdb"
"""


def _write(folder: Path, text: str) -> Path:
    path = folder / "roi.toml"
    path.write_text(text.format(folder=folder), encoding="utf-8")
    return path


def test_a_portal_sees_its_own_keys_over_the_shared_ones(tmp_path, clean_settings_env):
    clean_settings_env.setenv("HUBSPOT_TOKEN_ACME", "pat-eu1-0000aaaa-1111-2222")
    settings = load_settings(_write(tmp_path, TWO_PORTALS))
    assert settings.portal_names() == ["acme", "beta"]

    acme = settings.for_portal("acme")
    assert acme.portal == "acme" and settings.portal_label("acme") == "Acme SAS"
    assert (acme.hubspot_tier, acme.ga4_property_id) == ("enterprise", "111")
    assert acme.database == tmp_path / "acme.duckdb"  # default: <name>.duckdb next to the top-level one
    assert acme.models.lookback_days == 60 and acme.models.half_life_days == Decimal("3")
    assert acme.models.fx_rates == {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}  # merged key by key
    assert acme.freshness.hubspot.warn_after.total_seconds() == 30 * 3600
    assert acme.freshness.hubspot.error_after.total_seconds() == 50 * 3600  # kept from the shared section
    assert acme.hubspot_token == "pat-eu1-0000aaaa-1111-2222"
    assert "0000aaaa" not in redact("sent pat-eu1-0000aaaa-1111-2222 to HubSpot")

    beta = settings.for_portal("BETA", read_secret=lambda block: f"pat-na1-{block}-secret")
    assert beta.hubspot_token == "pat-na1-hubspot-token-beta-secret"
    assert (beta.hubspot_tier, beta.ga4_property_id) == ("professional", "999")  # the shared values
    assert beta.database == tmp_path / "brands" / "beta.duckdb"
    assert settings.group_database() == tmp_path / "group.duckdb"


def test_a_configuration_without_portals_is_one_portal_as_before(tmp_path, clean_settings_env):
    clean_settings_env.setenv("HUBSPOT_ACCESS_TOKEN", "pat-eu1-0000bbbb-1111-2222")
    settings = load_settings(_write(tmp_path, 'database = "{folder}/roi.duckdb"\n'))
    assert settings.for_portal(None) is settings and settings.portal is None
    assert settings.hubspot_token == "pat-eu1-0000bbbb-1111-2222"
    with pytest.raises(ConfigError, match="declares no") as error:
        settings.for_portal("acme")
    assert "leave out --portal" in error.value.fix


def test_choosing_a_portal(tmp_path, clean_settings_env):
    settings = load_settings(_write(tmp_path, TWO_PORTALS))
    with pytest.raises(ConfigError, match=r"Several portals are configured \(acme, beta\)") as several:
        settings.select_portal(None)
    assert "--portal NAME" in several.value.fix
    with pytest.raises(ConfigError, match=r"Unknown portal 'acm'; the portals are acme, beta") as unknown:
        settings.select_portal("acm")
    assert "did you mean 'acme'?" in unknown.value.fix
    one = load_settings(_write(tmp_path, '[portals.solo]\ntoken_env = "T"\n'))
    assert one.select_portal(None) == "solo"  # the only one needs no --portal


def test_a_missing_token_names_where_it_was_looked_for(tmp_path, clean_settings_env):
    settings = load_settings(_write(tmp_path, TWO_PORTALS)).for_portal("acme")
    (problem,) = [p for p in settings.problems(("hubspot",)) if "token" in p]
    assert "HUBSPOT_TOKEN_ACME" in problem and "[portals.acme]" in problem
    bare = load_settings(_write(tmp_path, "[portals.solo]\nga4_property_id = '1'\n")).for_portal("solo")
    (problem,) = [p for p in bare.problems(("hubspot",)) if "token" in p]
    assert 'token_env = "HUBSPOT_TOKEN_SOLO"' in problem and 'token_secret = "hubspot-token-solo"' in problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[portals.a]\ntoken_env='X'\n[portals.a]\nga4_property_id='1'\n",
            r"portal 'a' is declared twice \(again on line 3\)",
        ),
        (
            "[portals.Acme]\n[portals.acme]\n",
            r"\[portals.Acme\] and \[portals.acme\]: names are not case-sensitive",
        ),
        ("[portals.all]\n", "portal name 'all' is reserved"),
        ("[portals.group]\n", "portal name 'group' is reserved"),
        ("[portals.'ma marque']\n", "portal name 'ma marque' is not usable"),
        (
            "[portals.a]\ndatabase = 'same.duckdb'\n[portals.b]\ndatabase = 'same.duckdb'\n",
            "portals 'a' and 'b' have the same warehouse file",
        ),
        (
            "[portals.a]\ntoken_env = 'T'\n[portals.b]\ntoken_env = 'T'\n",
            "portals 'a' and 'b' have the same token_env",
        ),
        ("[portals.a]\ntoken_env = 'T'\ntoken_secret = 'b'\n", "give token_env or token_secret, not both"),
        (
            "[portals.a]\nga4_propery_id = '1'\n",
            r"unknown key '\[portals.a\] ga4_propery_id': did you mean 'ga4_property_id'",
        ),
        (
            "[portals.a.models]\nlookback_day = 3\n",
            r"\[portals.a.models\] lookback_day': did you mean 'lookback_days'",
        ),
        ("[group]\nmax_parallel_portal = 3\n", "did you mean 'max_parallel_portals'"),
        ("[group]\ncurrency = 'euro'\n", "not a currency code"),
        (
            "[freshness.hubspot]\nwarn_after='26h'\nerror_after='50h'\n[portals.a.freshness.hubspot]\nwarn_after='3d'\n",
            r"portal 'a' \(over \[freshness\]\): portals.a.freshness.hubspot: warn_after must not be longer",
        ),
    ],
)
def test_mistakes_in_portals_are_errors_naming_the_fix(tmp_path, clean_settings_env, text, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(_write(tmp_path, text))


@pytest.mark.parametrize(
    "line",
    [
        "hubspot_access_token = 'pat-eu1-12345678-9999-aaaa'",
        "token = 'pat-eu1-12345678-9999-aaaa'",
        "token_env = 'pat-eu1-12345678-9999-aaaa'",
        "token_secret = 'pat-eu1-12345678-9999-aaaa'",
    ],
)
def test_a_token_written_in_a_portal_is_refused_without_being_repeated(tmp_path, clean_settings_env, line):
    with pytest.raises(ConfigError) as error:
        load_settings(_write(tmp_path, f"[portals.acme]\n{line}\n"))
    assert "12345678-9999" not in str(error.value)
    assert "token_env" in str(error.value) or "token_secret" in str(error.value)


def test_a_shared_token_next_to_portals_is_refused(tmp_path, clean_settings_env):
    clean_settings_env.setenv("HUBSPOT_ACCESS_TOKEN", "pat-eu1-0000cccc-1111-2222")
    settings = load_settings(_write(tmp_path, TWO_PORTALS))
    with pytest.raises(ConfigError, match="each portal names its own token"):
        settings.for_portal("acme")


def test_portal_keys_from_the_environment_are_checked_too(tmp_path, clean_settings_env):
    clean_settings_env.setenv("PORTALS__ACME__GA4_PROPERTY_ID", "777")
    settings = load_settings(_write(tmp_path, TWO_PORTALS))
    assert settings.for_portal("acme").ga4_property_id == "777"
    clean_settings_env.setenv("PORTALS__ACME__GA4_PROPERTY", "777")
    with pytest.raises(ConfigError, match="unknown variable PORTALS__ACME__GA4_PROPERTY"):
        load_settings(_write(tmp_path, TWO_PORTALS))


def test_the_example_file_documents_every_portal_and_group_key():
    text = (Path(__file__).resolve().parents[2] / "roi.example.toml").read_text(encoding="utf-8")
    from connectors.config import GroupOptions, PortalOptions

    for key in PortalOptions.model_fields:
        if key not in ("hubspot", "ga4", "spend", "publish", "freshness"):
            assert key in text, key
    for key in GroupOptions.model_fields:
        assert key in text, key
