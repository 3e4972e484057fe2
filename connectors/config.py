"""Settings for every part of the pipeline: a TOML file (``roi.toml``), then environment variables on top.

Secrets (the HubSpot token) are ``SecretStr`` so they never print; ``redact`` and ``SecretRedactingFilter``
scrub them from any text or log record that might still carry them (an SDK error echoing a header, for
example). ``Settings.problems(needs)`` lists every missing or invalid setting with its fix *before* any
outside call.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import threading
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from connectors.errors import EXIT_CONFIG, RoiError

DEFAULT_CONFIG_FILE = "roi.toml"
DEFAULT_HUBSPOT_BASE_URL = "https://api.hubapi.com"
DEFAULT_DATABASE = "roi.duckdb"
HUBSPOT_TIERS = ("starter", "professional", "enterprise")
REDACTED = "***"

HubSpotTier = Literal["starter", "professional", "enterprise"]


class ConfigError(RoiError, ValueError):
    """Missing or invalid settings or input files; the message names each setting and how to fix it."""

    exit_code = EXIT_CONFIG


class Section(BaseModel):
    """Base of every ``[section]`` of roi.toml: unknown keys are refused (see ``unknown_keys``)."""

    model_config = ConfigDict(extra="forbid")


class HubSpotOptions(Section):
    """``[hubspot]`` section."""

    # Extra CRM properties to extract per object type (loaded as VARCHAR columns), e.g. {contacts =
    # ["industry"]}.
    extra_properties: dict[str, list[str]] = Field(default_factory=dict)
    # Incremental search re-reads this many minutes before the cursor: HubSpot's search index lags behind
    # writes.
    overlap_minutes: int = Field(default=10, ge=0, le=24 * 60)
    # Streams read concurrently; the shared rate limiter, not this number, bounds the request rate.
    max_workers: int = Field(default=4, ge=1, le=32)
    # Read the archived (deleted) records on every run: search never returns them, so this list is how a
    # deletion since the last run is seen (and, diffed with the warehouse, a purge of an archived record).
    read_archived: bool = True
    # Days between two purge sweeps (ids only, live + archived): finds records deleted for good without being
    # archived first (GDPR deletes). 0 = on every run.
    purge_sweep_days: int = Field(default=7, ge=0, le=365)
    # IANA time zone of the portal (Settings > Account defaults): HubSpot resets the daily API limit at
    # midnight there; errors then say when the run can resume. Unset: "midnight, portal time".
    portal_time_zone: str | None = None

    @field_validator("portal_time_zone")
    @classmethod
    def _known_time_zone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like 'Europe/Paris' or 'America/New_York'"
            ) from None
        return value.strip()


class GA4Options(Section):
    """``[ga4]`` section."""

    # GA4 keeps revising recent days; these many trailing days are re-read every run.
    trailing_days: int = Field(default=3, ge=0, le=60)
    contact_dimension: str = "customUser:crm_contact_id"
    backfill_chunk_days: int = Field(default=30, ge=1, le=366)
    # Days of history the first nightly on an empty warehouse pulls once (a backfill can add more later).
    first_run_days: int = Field(default=730, ge=1, le=3650)
    # Read Google Ads cost from GA4 when the property serves it (checked with checkCompatibility every run);
    # false: never ask, the spend sheet covers all cost.
    read_cost: bool = True
    # The data test ga4_untied_share warns (never blocks publish) when, over the last `untied_window_days` of
    # GA4 data, a larger share of sessions / revenue than this cannot be tied to a CRM contact.
    untied_sessions_warn_share: Decimal = Field(default=Decimal("0.90"), ge=0, le=1)
    untied_revenue_warn_share: Decimal = Field(default=Decimal("0.30"), ge=0, le=1)
    untied_window_days: int = Field(default=30, ge=1, le=3650)


class SpendOptions(Section):
    """``[spend]`` section."""

    sheet: str | None = None  # worksheet name for .xlsx files; first sheet when unset
    # A sheet that would lower the loaded spend of a currency by more than this share (or to nothing) is
    # refused before anything is replaced, unless the run is told --confirm-spend-removal.
    max_removed_share: Decimal = Field(default=Decimal("0.5"), ge=0, le=1)


# The models built by models/sql/intermediate/attribution (docs/attribution.md).
ATTRIBUTION_MODELS = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "time_decay",
    "u_shaped",
    "w_shaped",
    "full_path",
    "j_shaped",
    "inverse_j",
    "markov",
)


def rates_by_currency_code(rates: Any) -> Any:
    """An exchange-rate table keyed by upper-case ISO 4217 codes (" usd" -> "USD"); ValueError otherwise."""
    if not isinstance(rates, dict):
        return rates
    codes = {}
    for code, rate in rates.items():
        key = str(code).strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", key):
            raise ValueError(f"{code!r} is not a currency code; write a 3-letter ISO 4217 code (USD)")
        codes[key] = rate
    return codes


def currency_code(value: str) -> str:
    """A 3-letter ISO 4217 code, upper-cased; ValueError with the fix otherwise."""
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError(f"{value!r} is not a currency code; write a 3-letter ISO 4217 code (EUR)")
    return code


def positive_rates(rates: dict[str, Decimal]) -> dict[str, Decimal]:
    for code, rate in rates.items():
        if not rate.is_finite() or rate <= 0:
            raise ValueError(f'rate for {code} is {rate}; write a positive number such as {code} = "0.92"')
    return rates


# An exchange-rate table in roi.toml ([models] and [group] fx_rates): ISO codes, positive exact rates.
FxRates = Annotated[
    dict[str, Decimal], BeforeValidator(rates_by_currency_code), AfterValidator(positive_rates)
]


class ModelOptions(Section):
    """``[models]`` section: parameters the SQL models read (cfg_params)."""

    lookback_days: int = Field(default=90, ge=1, le=3650)
    half_life_days: Decimal = Field(default=Decimal("7"), gt=0)
    # No default: a won deal without line-item cost of goods and without a rate for its pipeline has an
    # unknown margin (ROI on margin n/a), never a guessed one. Set it only if you know your average margin.
    default_margin_rate: Decimal | None = Field(default=None, ge=0, le=1)
    margin_rates: dict[str, Decimal] = Field(default_factory=dict)  # per deal pipeline id
    publish_model: str = "markov"
    # The currency every amount is converted to and reported in (the spreadsheet, the report, the CRM values).
    # Make it your HubSpot portal's company currency: a deal in a currency without a rate below converts with
    # HubSpot's own amount_in_home_currency, which is in the portal's company currency.
    home_currency: str = "EUR"
    # Home-currency units for one unit of each other currency: USD = "0.92" is 1 USD = 0.92 EUR (home EUR).
    # Spend rows and HubSpot deals (deal_currency_code) in a currency without a rate are rejected, with the
    # line to add here.
    fx_rates: FxRates = Field(default_factory=dict)
    # Optional CSV `month,currency,rate` (2026-03,USD,0.9187): a month's spend and deals convert at that
    # month's rate; months missing from it use fx_rates.
    fx_rates_file: Path | None = None
    # Bootstrap intervals of ROI (models/intervals.py, mart roi_intervals).
    interval_resamples: int = Field(default=1000, ge=100, le=100_000)
    interval_level: Decimal = Field(default=Decimal("0.95"), ge=Decimal("0.5"), lt=1)
    interval_seed: int = Field(default=20261, ge=0)
    interval_min_deals: int = Field(default=20, ge=0)
    interval_models: str = "all"  # "all" or a comma-separated list of attribution models

    @field_validator("publish_model")
    @classmethod
    def _known_attribution_model(cls, model: str) -> str:
        model = model.strip().lower()
        if model == "data_driven":  # the data-driven model of this project is the Markov removal-effect model
            return "markov"
        if model not in ATTRIBUTION_MODELS:
            raise ValueError(
                f"unknown attribution model {model!r}; use one of {', '.join(ATTRIBUTION_MODELS)}"
            )
        return model

    @field_validator("home_currency")
    @classmethod
    def _home_currency_code(cls, value: str) -> str:
        return currency_code(value)

    @model_validator(mode="after")
    def _home_currency_rate_is_one(self) -> ModelOptions:
        rate = self.fx_rates.get(self.home_currency)
        if rate is not None and rate != 1:
            raise ValueError(
                f"fx_rates {self.home_currency} = {rate}: {self.home_currency} is home_currency, the home "
                f"currency's rate is 1; remove that line (or change home_currency)"
            )
        return self

    @field_validator("margin_rates")
    @classmethod
    def _rates_between_0_and_1(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        for pipeline, rate in rates.items():
            if not Decimal(0) <= rate <= Decimal(1):
                raise ValueError(f"margin rate for pipeline {pipeline!r} is {rate}; use a fraction 0..1")
        return rates


ReportLanguage = Literal["fr", "en"]


class ReportOptions(Section):
    """``[report]`` section: the spreadsheet and the HTML report."""

    # Language of the spreadsheet, the CSV export and the HTML report (`roi export --lang` overrides it).
    language: ReportLanguage = "fr"
    # The nightly run's HTML report; unset: beside the warehouse, named <warehouse name>_report.html.
    html_file: Path | None = None
    # Write the HTML report after every nightly run.
    nightly_html: bool = True

    @field_validator("language", mode="before")
    @classmethod
    def _language_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class PublishOptions(Section):
    """``[publish]`` section."""

    enabled: bool = True
    dry_run: bool = False
    object_types: list[str] = Field(default_factory=lambda: ["contacts", "deals"])


DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: Any) -> timedelta | None:
    """ "36h", "3d", "2w", "90m" -> timedelta; "off" (or "") -> None (no threshold)."""
    if value is None or isinstance(value, timedelta):
        return value
    text = str(value).strip().lower()
    if text in ("", "off", "never", "none"):
        return None
    match = re.fullmatch(r"(\d+)\s*([mhdw])", text)
    if not match or isinstance(value, bool | int | float):
        raise ValueError(f'{value!r} is not a duration: write e.g. "90m", "36h", "3d", "2w" (or "off")')
    return timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])


Duration = Annotated[timedelta | None, BeforeValidator(parse_duration)]


class FreshnessThreshold(Section):
    """How old one source's data may get before `roi status` warns, then errs (and the flow notifies)."""

    warn_after: Duration = None
    error_after: Duration = None

    @model_validator(mode="after")
    def _warn_before_error(self) -> FreshnessThreshold:
        if self.warn_after and self.error_after and self.warn_after > self.error_after:
            raise ValueError("warn_after must not be longer than error_after")
        return self


class FreshnessOptions(Section):
    """``[freshness]``: like dbt's source freshness, per source (see docs/operations.md)."""

    # Time since the last successful HubSpot extract (nightly at 02:00: one missed night warns).
    hubspot: FreshnessThreshold = Field(
        default_factory=lambda: FreshnessThreshold(warn_after="26h", error_after="50h")
    )
    # Days since the last day with GA4 traffic data (the nightly run loads up to yesterday).
    ga4: FreshnessThreshold = Field(
        default_factory=lambda: FreshnessThreshold(warn_after="3d", error_after="5d")
    )
    # Days since the last day covered by the spend sheet (usually filled in once a month).
    spend: FreshnessThreshold = Field(
        default_factory=lambda: FreshnessThreshold(warn_after="35d", error_after="65d")
    )


NOTIFY_EVENTS = ("failure", "tests_blocked", "freshness")
NotifyEvent = Literal["failure", "tests_blocked", "freshness"]


class NotifyOptions(Section):
    """``[notify]``: who hears about a failed run, data tests blocking publish, and stale data."""

    on: list[NotifyEvent] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    # Slack-compatible incoming webhook (Slack, Mattermost...): a secret, prefer NOTIFY__WEBHOOK_URL.
    webhook_url: SecretStr | None = None
    email_to: list[str] = Field(default_factory=list)
    email_from: str = "roi-pipeline@localhost"
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None  # prefer NOTIFY__SMTP_PASSWORD
    timeout_seconds: float = Field(default=10, gt=0, le=120)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value.get_secret_value().strip()):
            raise ValueError("is not an http(s) URL; paste the incoming webhook URL of your Slack app")
        return value

    @field_validator("email_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address.strip()):
                raise ValueError(f"{address!r} is not an e-mail address")
        return [a.strip() for a in value]

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url or self.email_to)


# A portal's name is a file name (its warehouse), a Prefect concurrency-limit name and a CLI argument.
PORTAL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
# "all" selects the group roll-up on the command line, "group" is the roll-up's warehouse.
RESERVED_PORTAL_NAMES = ("all", "group")
ENVIRONMENT_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PREFECT_BLOCK_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


def http_base_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL; use e.g. {DEFAULT_HUBSPOT_BASE_URL}")
    return value


class PortalOptions(Section):
    """``[portals.<name>]``: one HubSpot portal and its GA4 property, spend sheet and warehouse.

    Keys left out fall back to the top-level ones; the sub-sections (``[portals.<name>.models]`` ...) override
    the shared sections key by key. The token itself is never here: the portal names the environment
    variable (``token_env``) or the Prefect Secret block (``token_secret``) that holds it.
    """

    # Shown in the group report and `roi portals` ("Marque A"); the name when unset.
    label: str | None = None
    token_env: str | None = None  # e.g. "HUBSPOT_TOKEN_ACME"
    token_secret: str | None = None  # e.g. "hubspot-token-acme" (`prefect block create secret`)
    hubspot_base_url: str | None = None
    hubspot_tier: HubSpotTier | None = None
    hubspot_api_limit_increase: bool | None = None
    ga4_property_id: str | None = None
    ga4_api_endpoint: str | None = None
    google_application_credentials: Path | None = None
    # Default: <name>.duckdb next to the top-level `database`. One file per portal, never shared.
    database: Path | None = None
    spend_file: Path | None = None
    tagging_plan: Path | None = None

    hubspot: HubSpotOptions = Field(default_factory=HubSpotOptions)
    ga4: GA4Options = Field(default_factory=GA4Options)
    spend: SpendOptions = Field(default_factory=SpendOptions)
    models: ModelOptions = Field(default_factory=ModelOptions)
    publish: PublishOptions = Field(default_factory=PublishOptions)
    freshness: FreshnessOptions = Field(default_factory=FreshnessOptions)
    report: ReportOptions = Field(default_factory=ReportOptions)

    @field_validator("hubspot_tier", mode="before")
    @classmethod
    def _tier_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("hubspot_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return http_base_url(value) if value is not None else None

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not ENVIRONMENT_VARIABLE_NAME.fullmatch(value):
            # Never echo it: someone may have pasted the token itself here.
            raise ValueError(
                "is not an environment variable name: write the NAME of the variable that holds the token "
                '(token_env = "HUBSPOT_TOKEN_ACME"), never the token itself'
            )
        return value

    @field_validator("token_secret")
    @classmethod
    def _block_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not PREFECT_BLOCK_NAME.fullmatch(value) or any(p.search(value) for p in _SECRET_PATTERNS):
            raise ValueError(
                "is not a Prefect block name: lowercase letters, digits and dashes (token_secret = "
                '"hubspot-token-acme"), never the token itself'
            )
        return value

    @model_validator(mode="after")
    def _one_token_source(self) -> PortalOptions:
        if self.token_env and self.token_secret:
            raise ValueError("give token_env or token_secret, not both")
        return self


class GroupOptions(Section):
    """``[group]``: several portals run together (the `nightly-all` flow) and their roll-up warehouse."""

    # Portals running at the same time, whatever starts them (a Prefect global concurrency limit).
    max_parallel_portals: int = Field(default=4, ge=1, le=64)
    # The roll-up warehouse; it attaches every portal's file read-only. Default: group.duckdb next to
    # `database`.
    database: Path | None = None
    # Currency of the group figures. A portal's money is converted from its home currency with the portal's
    # own rates for this currency ([models] fx_rates / fx_rates_file, by month), else with fx_rates below.
    currency: str = "EUR"
    # Group-currency units for 1 unit of a portal's home currency (GBP = "1.17"): used when the portal's own
    # settings have no rate for the group currency.
    fx_rates: FxRates = Field(default_factory=dict)

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        return currency_code(value)


class Settings(BaseSettings):
    """All settings. Environment variables win over the TOML file; see roi.example.toml for every key."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", env_nested_delimiter="__", populate_by_name=True
    )

    hubspot_access_token: SecretStr | None = None
    hubspot_base_url: str = DEFAULT_HUBSPOT_BASE_URL
    hubspot_tier: HubSpotTier = "professional"
    # HubSpot's paid API limit increase (Professional / Enterprise): 250 requests per 10 s instead of 190.
    hubspot_api_limit_increase: bool = False
    ga4_property_id: str | None = None
    ga4_api_endpoint: str | None = None
    google_application_credentials: Path | None = None
    # Environment names ROI_*; the TOML file uses the plain field names (database = "...").
    database: Path = Field(default=Path(DEFAULT_DATABASE), validation_alias="roi_database")
    spend_file: Path | None = Field(default=None, validation_alias="roi_spend_file")
    tagging_plan: Path | None = Field(default=None, validation_alias="roi_tagging_plan")

    hubspot: HubSpotOptions = Field(default_factory=HubSpotOptions)
    ga4: GA4Options = Field(default_factory=GA4Options)
    spend: SpendOptions = Field(default_factory=SpendOptions)
    models: ModelOptions = Field(default_factory=ModelOptions)
    publish: PublishOptions = Field(default_factory=PublishOptions)
    freshness: FreshnessOptions = Field(default_factory=FreshnessOptions)
    notify: NotifyOptions = Field(default_factory=NotifyOptions)
    report: ReportOptions = Field(default_factory=ReportOptions)
    portals: dict[str, PortalOptions] = Field(default_factory=dict)
    group: GroupOptions = Field(default_factory=GroupOptions)
    # The portal these settings were selected for (for_portal), and where its token came from.
    _portal: str | None = PrivateAttr(default=None)
    _token_source: str | None = PrivateAttr(default=None)

    @field_validator("hubspot_tier", mode="before")
    @classmethod
    def _tier_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("hubspot_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return http_base_url(value)

    @field_validator("portals", mode="before")
    @classmethod
    def _portal_names(cls, portals: Any) -> Any:
        """Names are lower-cased; two names that are the same in lower case are one portal declared twice."""
        if not isinstance(portals, Mapping):
            return portals
        named: dict[str, Any] = {}
        given: dict[str, str] = {}
        for name, options in portals.items():
            key = str(name).strip().lower()
            if not PORTAL_NAME.fullmatch(key):
                raise ValueError(
                    f"portal name {name!r} is not usable: 1-40 lowercase letters, digits, '-' or '_' "
                    "(it names the portal's warehouse file and its Prefect concurrency limit)"
                )
            if key in RESERVED_PORTAL_NAMES:
                raise ValueError(
                    f"portal name {name!r} is reserved ({', '.join(RESERVED_PORTAL_NAMES)}: the group "
                    "roll-up)"
                )
            if key in named:
                raise ValueError(
                    f"portal {key!r} is declared twice ([portals.{given[key]}] and [portals.{name}]: names "
                    "are not case-sensitive); keep one section"
                )
            named[key], given[key] = options, str(name)
        return named

    @field_validator("portals")
    @classmethod
    def _portals_apart(
        cls, portals: dict[str, PortalOptions], info: ValidationInfo
    ) -> dict[str, PortalOptions]:
        """Two portals never share a warehouse (one writer per file) nor a token (one CRM counted twice)."""
        top_database = Path(info.data.get("database") or DEFAULT_DATABASE)
        seen: dict[tuple[str, str], str] = {}
        for name, options in sorted(portals.items()):
            database = options.database or top_database.with_name(f"{name}.duckdb")
            claims = [("warehouse file", str(Path(database).expanduser().resolve()))]
            if options.token_env:
                claims.append(("token_env", options.token_env))
            if options.token_secret:
                claims.append(("token_secret", options.token_secret))
            for what, value in claims:
                other = seen.setdefault((what, value), name)
                if other != name:
                    shown = value if what != "warehouse file" else str(database)
                    raise ValueError(
                        f"portals {other!r} and {name!r} have the same {what} ({shown}); give each "
                        "portal its own"
                    )
        return portals

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first so it overrides the TOML values, which load_settings passes as init kwargs.
        return (env_settings, init_settings)

    # -- secrets ------------------------------------------------------------------------------------------

    @property
    def hubspot_token(self) -> str | None:
        """The token in clear, for the SDK only. Never log it."""
        return self.hubspot_access_token.get_secret_value() if self.hubspot_access_token else None

    def secret_values(self) -> list[str]:
        notify = self.notify
        values = (
            self.hubspot_token,
            notify.webhook_url.get_secret_value() if notify.webhook_url else None,
            notify.smtp_password.get_secret_value() if notify.smtp_password else None,
        )
        return [v for v in values if v]

    # -- portals -----------------------------------------------------------------------------------------

    @property
    def portal(self) -> str | None:
        """The portal these settings were selected for (``for_portal``); None without [portals]."""
        return self._portal

    def portal_names(self) -> list[str]:
        return sorted(self.portals)

    def portal_label(self, name: str) -> str:
        return self.portals[name].label or name

    def portal_database(self, name: str) -> Path:
        """The portal's own warehouse: its ``database``, else <name>.duckdb next to the top-level one."""
        configured = self.portals[name].database
        return Path(configured) if configured else Path(self.database).with_name(f"{name}.duckdb")

    def group_database(self) -> Path:
        """The roll-up warehouse: [group] database, else group.duckdb next to the top-level ``database``."""
        return (
            Path(self.group.database)
            if self.group.database
            else Path(self.database).with_name("group.duckdb")
        )

    def select_portal(self, name: str | None) -> str | None:
        """The portal a command works on: ``name``, or the only one declared (None when none is declared).

        ConfigError when several portals exist and none is named (listing them), for an unknown name (with the
        closest one) and for a name given to a configuration without [portals].
        """
        names = self.portal_names()
        if name is None:
            if len(names) > 1:
                raise ConfigError(
                    f"Several portals are configured ({', '.join(names)}) and none was chosen",
                    fix="pass --portal NAME (flows: the portal parameter)",
                )
            return names[0] if names else None
        key = name.strip().lower()
        if not names:
            raise ConfigError(
                f"No portal {name!r}: this configuration declares no [portals.<name>] section",
                fix="leave out --portal (flows: portal), or declare the portals in roi.toml",
            )
        if key not in self.portals:
            close = difflib.get_close_matches(key, names, n=1)
            raise ConfigError(
                f"Unknown portal {name!r}; the portals are {', '.join(names)}",
                fix=(f"did you mean {close[0]!r}? " if close else "") + "pass one of them to --portal",
            )
        return key

    def portal_sections(self, name: str) -> dict[str, Section]:
        """The shared sections the portal overrides, merged key by key (ConfigError naming the key)."""
        merged: dict[str, Section] = {}
        for section in _PORTAL_SECTIONS:
            shared = getattr(self, section)
            own = getattr(self.portals[name], section).model_dump(exclude_unset=True)
            if not own:
                continue
            try:
                merged[section] = type(shared).model_validate(_deep_merge(shared.model_dump(), own))
            except ValidationError as exc:
                problems = [f"portals.{name}.{section}.{p}" for p in describe_validation_error(exc)]
                title = f"Invalid settings of portal {name!r} (over [{section}])"
                raise ConfigError(_listing(title, problems)) from None
        return merged

    def for_portal(
        self,
        name: str | None,
        *,
        read_secret: Callable[[str], str] | None = None,
        with_token: bool = True,
    ) -> Settings:
        """These settings as seen by one portal: its keys over the top-level ones, its sections merged key by
        key over the shared sections, its warehouse, and its token read from where ``token_env`` /
        ``token_secret`` say (``read_secret(block_name)`` reads a Prefect Secret block; ``with_token=False``
        for commands that only read the warehouse). Without [portals], the settings themselves."""
        key = self.select_portal(name)
        if key is None:
            return self
        if self.hubspot_access_token is not None:
            raise ConfigError(
                "hubspot_access_token (or HUBSPOT_ACCESS_TOKEN) is set, but with [portals] each portal "
                "names its own token",
                fix="remove hubspot_access_token from roi.toml and unset HUBSPOT_ACCESS_TOKEN; use "
                "token_env or token_secret in each [portals.<name>]",
            )
        options = self.portals[key]
        update: dict[str, Any] = {
            field: getattr(options, field)
            for field in _PORTAL_SCALARS
            if field in options.model_fields_set and getattr(options, field) is not None
        }
        update["database"] = self.portal_database(key)
        update.update(self.portal_sections(key))
        token, source = _portal_token(key, options, read_secret) if with_token else (None, None)
        update["hubspot_access_token"] = SecretStr(token) if token else None
        selected = self.model_copy(update=update)
        selected._portal, selected._token_source = key, source
        register_secrets(selected.secret_values())
        return selected

    # -- validation ---------------------------------------------------------------------------------------

    def problems(self, needs: Iterable[str] = ("hubspot", "ga4")) -> list[str]:
        """Every missing/invalid setting needed by the systems in ``needs`` (hubspot, ga4, spend, publish)."""
        needs = set(needs)
        found: list[str] = []
        if needs & {"hubspot", "publish"}:
            if self._portal and not self.hubspot_token:
                found.append(
                    f"HubSpot token of portal {self._portal!r} is missing: "
                    + (
                        f"set {self._token_source}."
                        if self._token_source
                        else f'say where it is in [portals.{self._portal}]: token_env = "HUBSPOT_TOKEN_'
                        f'{self._portal.upper().replace("-", "_")}" (an environment variable of the worker) '
                        f'or token_secret = "hubspot-token-{self._portal}" (a Prefect Secret block).'
                    )
                )
            elif not self.hubspot_token:
                found.append(
                    "HubSpot access token is missing: set HUBSPOT_ACCESS_TOKEN (a private app token, "
                    "pat-...) or hubspot_access_token in roi.toml."
                )
            elif re.search(r"\s", self.hubspot_token):
                found.append(
                    "HubSpot access token contains whitespace: copy it again without spaces/newlines."
                )
            if self.hubspot_api_limit_increase and self.hubspot_tier == "starter":
                found.append(
                    "hubspot_api_limit_increase is true but hubspot_tier is starter: HubSpot sells the API "
                    "limit increase for Professional and Enterprise only. Fix HUBSPOT_TIER or unset "
                    "HUBSPOT_API_LIMIT_INCREASE."
                )
        if "ga4" in needs:
            if not self.ga4_property_id:
                found.append(
                    "GA4 property id is missing: set GA4_PROPERTY_ID (the numeric id under Admin > Property "
                    "details) or ga4_property_id in roi.toml."
                )
            elif not str(self.ga4_property_id).isdigit():
                found.append(
                    f"GA4 property id {self.ga4_property_id!r} is not numeric: use the number only, "
                    "without 'properties/'."
                )
            creds = self.google_application_credentials
            if not self.ga4_api_endpoint and creds is None:
                found.append(
                    "Google credentials are missing: set GOOGLE_APPLICATION_CREDENTIALS to a service-account "
                    "JSON key file that has Viewer access to the GA4 property."
                )
            elif creds is not None and not Path(creds).is_file():
                found.append(
                    f"GOOGLE_APPLICATION_CREDENTIALS points to {creds}, which is not a file: fix the path."
                )
        # Files are checked whatever the command needs: a run must not spend API calls and then stop on them.
        if self.spend_file is not None and not Path(self.spend_file).is_file():
            found.append(
                f"Spend file {self.spend_file} "
                + ("is a folder" if Path(self.spend_file).is_dir() else "does not exist")
                + ": fix ROI_SPEND_FILE or spend_file (a .csv or .xlsx file)."
            )
        rates_file = self.models.fx_rates_file
        if rates_file is not None and not Path(rates_file).is_file():
            found.append(
                f"Exchange rates file {rates_file} does not exist: fix fx_rates_file under [models] "
                "(a CSV month,currency,rate) or remove it."
            )
        if self.tagging_plan is not None and not Path(self.tagging_plan).is_file():
            found.append(
                f"Tagging plan {self.tagging_plan} does not exist: fix ROI_TAGGING_PLAN or tagging_plan."
            )
        if self.notify.email_to and not self.notify.smtp_host:
            found.append(
                "[notify] email_to is set but smtp_host is not: set smtp_host (and smtp_port, smtp_username, "
                "NOTIFY__SMTP_PASSWORD) or remove email_to."
            )
        database = Path(self.database)
        setting = f"database in [portals.{self._portal}]" if self._portal else "ROI_DATABASE"
        if database.is_dir():
            found.append(
                f"Database {database} is a folder: set {setting} to a file such as {database}/roi.duckdb."
            )
        elif not database.parent.exists() and str(database.parent) not in ("", "."):
            found.append(f"Database folder {database.parent} does not exist: create it or change {setting}.")
        return found

    def validate_for(self, *needs: str) -> Settings:
        """Raise ConfigError listing every problem for ``needs``; returns self so calls can chain."""
        problems = self.problems(needs or ("hubspot", "ga4"))
        if problems:
            raise ConfigError(_listing("Settings are incomplete", problems))
        return self


# What a portal may set at the top of its section, and the shared sections it may override key by key.
_PORTAL_SCALARS = (
    "hubspot_base_url",
    "hubspot_tier",
    "hubspot_api_limit_increase",
    "ga4_property_id",
    "ga4_api_endpoint",
    "google_application_credentials",
    "spend_file",
    "tagging_plan",
)
_PORTAL_SECTIONS = ("hubspot", "ga4", "spend", "models", "publish", "freshness", "report")


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _portal_token(
    name: str, options: PortalOptions, read_secret: Callable[[str], str] | None
) -> tuple[str | None, str | None]:
    """(token or None, where it was looked for, in words) for portal ``name``; never logs the value."""
    if options.token_env:
        return (
            os.environ.get(options.token_env) or None,
            f"the environment variable {options.token_env} (token_env of [portals.{name}]) where the flow "
            "runs",
        )
    if options.token_secret:
        where = f"the Prefect Secret block {options.token_secret!r} (token_secret of [portals.{name}])"
        if read_secret is None:
            raise ConfigError(f"Portal {name!r} keeps its token in {where}, which cannot be read here")
        return read_secret(options.token_secret) or None, where
    return None, None


def load_settings(config_path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config_path`` (or ./roi.toml when present), then the environment, then ``overrides``.

    Raises ConfigError for a missing named file, a file that is not UTF-8 or not TOML, unknown keys (with the
    closest valid key) and invalid values, naming the file, the key and the fix.
    """
    data: dict[str, Any] = {}
    path = Path(config_path) if config_path is not None else Path(DEFAULT_CONFIG_FILE)
    if config_path is not None and not path.is_file():
        if path.is_dir():
            raise ConfigError(f"Config file {path} is a folder", fix="pass the path of a .toml file")
        raise ConfigError(f"Config file {path} does not exist: copy roi.example.toml to {path} and edit it.")
    text = ""
    if path.is_file():
        text = read_text_file(path, what="Config file")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            twice = re.match(r"Cannot declare \('portals', '([^']*)'\) twice \(at line (\d+)", str(exc))
            if twice:
                raise ConfigError(
                    f"Config file {path}: portal {twice.group(1)!r} is declared twice (again on line "
                    f"{twice.group(2)})",
                    fix=f"keep one [portals.{twice.group(1)}] section, or rename the second portal",
                ) from None
            raise ConfigError(
                f"Config file {path} is not valid TOML ({exc})", fix="correct the line it names"
            ) from None
    source = str(path) if path.is_file() else "settings"
    problems = [f"{source}: {p}" for p in unknown_keys(data, Settings, text=text)]
    problems += [f"environment: {p}" for p in unknown_environment_keys(os.environ)]
    if problems:
        raise ConfigError(_listing("Unknown settings", problems))
    data.update(overrides)
    try:
        settings = Settings(**data)
    except ValidationError as exc:  # names each field; never echoes SecretStr values
        raise ConfigError(
            _listing(f"Invalid settings (from {source} and the environment)", describe_validation_error(exc))
        ) from None
    for name in settings.portal_names():
        settings.portal_sections(name)  # a portal's override that breaks a shared rule is reported now
    register_secrets(settings.secret_values())
    return settings


def read_text_file(path: Path, *, what: str) -> str:
    """The UTF-8 text of a settings or input file, or a ConfigError saying which byte is wrong."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{what} {path} is not UTF-8 (byte 0x{exc.object[exc.start]:02x} on line {line})",
            fix="save it as UTF-8 (in most editors: Save as... > Encoding: UTF-8)",
        ) from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read ({exc.strerror})", fix="check the path") from None


def _listing(title: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return f"{title}: {problems[0]}"
    return f"{title}:\n" + "\n".join(f"  - {p}" for p in problems)


# ----------------------------------------------------------------------------------------------------------
# Unknown keys: every section of every Settings model, found by walking the model, so a section or key added
# later is covered without registering it anywhere.


def _field_names(model: type[BaseModel]) -> dict[str, str]:
    """Every name a key may take in the file -> the field it sets (field names, and string aliases)."""
    names: dict[str, str] = {}
    for name, info in model.model_fields.items():
        names[name] = name
        if isinstance(info.validation_alias, str):
            names[info.validation_alias] = name
    return names


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _section_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(model, keyed): the BaseModel a field holds, and whether it is a table of them (dict[str, Model])."""
    annotation = _strip_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if typing.get_origin(annotation) is dict:
        args = typing.get_args(annotation)
        value = _strip_optional(args[1]) if len(args) == 2 else None
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value, True
    return None, False


def _all_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every valid dotted key of the model ("models.lookback_days"), for "did you mean" across sections."""
    paths = []
    for name, info in model.model_fields.items():
        paths.append(prefix + name)
        sub, keyed = _section_model(info.annotation)
        if sub is not None:
            paths += _all_paths(sub, prefix + name + (".<name>." if keyed else "."))
    return paths


def _did_you_mean(key: str, here: Iterable[str], everywhere: list[str], section: str) -> str:
    close = difflib.get_close_matches(key.lower(), list(here), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    # Maybe the right key in the wrong section ("lookback_day" at the top instead of [models]).
    leaves: dict[str, str] = {}
    # The shared section rather than a portal's copy of it ([models], not [portals.<name>.models]).
    for path in sorted(everywhere, key=lambda p: ("<name>" in p, p.count("."))):
        if path.rsplit(".", 1)[0] != section:
            leaves.setdefault(path.rsplit(".", 1)[-1], path)
    close = difflib.get_close_matches(key.lower(), list(leaves), n=1, cutoff=0.75)
    if close:
        path = leaves[close[0]]
        table, _, leaf = path.rpartition(".")
        return f"did you mean {leaf!r} in [{table}]?" if table else f"did you mean {leaf!r} at the top?"
    return f"valid keys here: {', '.join(sorted(here))}"


def _line_of(text: str, key: str) -> str:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", line):
            return f"line {number}: "
    return ""


def unknown_keys(
    data: Mapping[str, Any], model: type[BaseModel] | None = None, *, text: str = "", _section: str = ""
) -> list[str]:
    """One problem per key of ``data`` that ``model`` (default Settings) does not define, with the closest
    valid key. Sections (fields holding a model) and tables of sections (``dict[str, Model]``) are walked."""
    model = model or Settings
    names = _field_names(model)
    everywhere = _all_paths(Settings)
    problems: list[str] = []
    for key, value in data.items():
        field = names.get(key) or names.get(str(key).lower())
        where = f"{_section}.{key}" if _section else str(key)
        if field is None:
            shown = f"[{_section}] {key}" if _section else str(key)
            hint = _did_you_mean(str(key), names, everywhere, _section)
            if _section.startswith("portals.") and "token" in str(key).lower():
                hint = (
                    "a portal never holds its token: name the environment variable (token_env = "
                    '"HUBSPOT_TOKEN_X") or the Prefect Secret block (token_secret = "hubspot-token-x") '
                    "that does"
                )
            problems.append(f"{_line_of(text, str(key))}unknown key {shown!r}: {hint}")
            continue
        sub, keyed = _section_model(model.model_fields[field].annotation)
        if sub is None or not isinstance(value, Mapping):
            continue
        if keyed:
            for name, table in value.items():
                if isinstance(table, Mapping):
                    problems += unknown_keys(table, sub, text=text, _section=f"{where}.{name}")
        else:
            problems += unknown_keys(value, sub, text=text, _section=where)
    return problems


def unknown_environment_keys(environ: Mapping[str, str]) -> list[str]:
    """SECTION__KEY variables whose SECTION is ours but whose KEY is not (HUBSPOT__OVERLAP_MINUTS)."""
    problems = []
    sections = {
        name.upper(): _section_model(info.annotation)
        for name, info in Settings.model_fields.items()
        if _section_model(info.annotation)[0] is not None
    }
    for variable in environ:
        head, sep, rest = variable.upper().partition("__")
        if not sep or head not in sections:
            continue
        sub, keyed = sections[head]
        key = rest.split("__")[1 if keyed else 0].lower() if (not keyed or "__" in rest) else ""
        if key and sub is not None and key not in _field_names(sub):
            hint = _did_you_mean(key, _field_names(sub), [], head.lower())
            problems.append(f"unknown variable {variable}: {hint}")
    return problems


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One line per invalid value: the dotted key, what is wrong, the value given (never a secret)."""
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown key {key!r}")
            continue
        message = error["msg"].removeprefix("Value error, ")
        given = error.get("input")
        shown = ""
        if (
            "token" not in key
            and isinstance(given, str | int | float | Decimal)
            and not isinstance(given, bool)
        ):
            shown = f" (got {given!r})"
        lines.append(f"{key}: {message}{shown}")
    return lines


# Environment variables that are settings: any of them set means "a configuration exists" (no sandbox).
def settings_variables() -> list[str]:
    """Names of the environment variables the settings read (top-level keys and their ROI_* aliases)."""
    names = []
    for name, info in Settings.model_fields.items():
        if _section_model(info.annotation)[0] is not None:
            continue
        alias = info.validation_alias
        names.append((alias if isinstance(alias, str) else name).upper())
    return names


def configuration_sources(
    config_path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Where a configuration comes from: the named or default config file, and each settings variable set.
    Empty means "no configuration at all", the one case where the CLI may use the sandbox on its own."""
    environ = os.environ if environ is None else environ
    found = []
    path = Path(config_path) if config_path is not None else Path(DEFAULT_CONFIG_FILE)
    if config_path is not None or path.is_file():
        found.append(str(path))
    sections = [
        name.upper() + "__"
        for name, info in Settings.model_fields.items()
        if _section_model(info.annotation)[0] is not None
    ]
    variables = set(settings_variables())
    found += sorted(
        name
        for name, value in environ.items()
        if value and (name.upper() in variables or name.upper().startswith(tuple(sections)))
    )
    return found


# ----------------------------------------------------------------------------------------------------------
# Redaction

_known_secrets: set[str] = set()
_secrets_lock = threading.Lock()
# Shapes of secrets even when we were never told their value: HubSpot private-app tokens and bearer headers.
_SECRET_PATTERNS = (
    re.compile(r"\bpat-[a-z0-9]{2,4}-[A-Za-z0-9-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r'(?i)("?private_key"?\s*[:=]\s*)"[^"]+"'),
)


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so every SecretRedactingFilter removes them from log records."""
    with _secrets_lock:
        _known_secrets.update(v for v in values if v and len(v) >= 4)


def redact(text: str, settings: Settings | None = None) -> str:
    """``text`` with every known secret (and anything shaped like a token) replaced by ***."""
    if not text:
        return text
    secrets = set(_known_secrets)
    if settings is not None:
        secrets.update(settings.secret_values())
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


class SecretRedactingFilter(logging.Filter):
    """Logging filter that rewrites each record's message with secrets removed (attach it to handlers)."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self._settings = settings

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is still logged, unformatted
            message = str(record.msg)
        clean = redact(message, self._settings)
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are formatted later from exc_info: format now, redacted, and drop the raw exception.
            formatter = logging.Formatter()
            clean = clean + "\n" + redact(formatter.formatException(record.exc_info), self._settings)
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = clean, None
        return True


def install_log_redaction(settings: Settings | None = None, logger: logging.Logger | None = None) -> None:
    """Attach one SecretRedactingFilter to every handler of ``logger`` (root by default), idempotently."""
    target = logger or logging.getLogger()
    if settings is not None:
        register_secrets(settings.secret_values())
    for handler in target.handlers:
        if not any(isinstance(f, SecretRedactingFilter) for f in handler.filters):
            handler.addFilter(SecretRedactingFilter(settings))
