"""The one place flows and the CLI read settings: connectors.config.Settings, seen through small accessors.

Flows take a config *path* as a parameter, never a Settings object, so tokens never land in Prefect's
database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from connectors import warehouse
from connectors.config import ConfigError as ConfigurationError
from connectors.config import Settings, install_log_redaction
from connectors.config import load_settings as load_connector_settings
from connectors.errors import NotBuiltYetError
from flows.locking import WarehouseBusyError


def load_configuration(config_path: str | Path | None = None) -> Settings:
    """The whole configuration, every portal declared (``load_settings`` selects one); ConfigurationError
    names the fix."""
    return load_connector_settings(config_path)


def load_settings(config_path: str | Path | None = None, portal: str | None = None) -> Settings:
    """The settings of one portal: the TOML file (or ./roi.toml), then the environment, then the portal's
    own keys and token (``Settings.for_portal``: the only portal when ``portal`` is None, an error listing
    them when there are several). Without [portals], the settings as they are.

    Also makes sure every log handler (ours and Prefect's console/API handlers) scrubs the token.
    """
    settings = load_configuration(config_path).for_portal(portal, read_secret=read_secret_block)
    for logger in (logging.getLogger(), logging.getLogger("prefect")):
        install_log_redaction(settings, logger)
    return settings


_secrets_read: dict[str, str] = {}


def read_secret_block(name: str) -> str:
    """The value of the Prefect Secret block ``name`` on the Prefect API in use (read once per process)."""
    if name not in _secrets_read:
        from prefect.blocks.system import Secret

        try:
            _secrets_read[name] = str(Secret.load(name).get())
        except ValueError:  # Prefect: "Unable to find block document named ..."
            from prefect.settings import PREFECT_API_URL

            raise ConfigurationError(
                f"No Prefect Secret block {name!r} on the Prefect API "
                f"{PREFECT_API_URL.value() or '(ephemeral, this machine)'}",
                f"create it (prefect block create secret, or Secret(value=...).save({name!r})) on the server "
                "the flows run against, or use token_env",
            ) from None
    return _secrets_read[name]


def validate_settings(
    settings: Settings,
    needs: tuple[str, ...] = ("hubspot", "ga4"),
    *,
    extra_data_tests: str | Path | None = None,
) -> None:
    """Raise ConfigurationError naming every missing/invalid setting and input file, before any outside call.

    Beyond ``Settings.problems`` (settings needed by the systems in ``needs``, files that must exist), the
    tagging plan is parsed and the extra data tests folder must exist: a run must not spend API calls and
    then stop on a file it could have checked first.
    """
    from models.tagging_plan import TaggingPlanError, load_tagging_plan

    problems = settings.problems(needs)
    if not any("Tagging plan" in p for p in problems):
        try:
            load_tagging_plan(tagging_plan_path(settings))
        except TaggingPlanError as exc:
            problems.append(str(exc))
    if extra_data_tests is not None and not Path(extra_data_tests).is_dir():
        problems.append(
            f"Extra data tests folder {extra_data_tests} does not exist: fix --extra-data-tests "
            "(flow parameter extra_data_tests)."
        )
    if problems:
        if len(problems) == 1:
            raise ConfigurationError(problems[0])
        raise ConfigurationError("Settings are incomplete:\n" + "\n".join(f"  - {p}" for p in problems))


def database_path(settings: Settings) -> Path:
    return Path(settings.database)


def spend_file(settings: Settings) -> Path | None:
    return Path(settings.spend_file) if settings.spend_file else None


def tagging_plan_path(settings: Settings) -> Path | None:
    return Path(settings.tagging_plan) if settings.tagging_plan else None


def model_params(settings: Settings) -> dict[str, Any]:
    """The [models] section as the runner's params (it stores unknown keys in cfg_params as they are), plus
    the [ga4] thresholds the data tests read."""
    ga4 = settings.ga4
    return {
        **settings.models.model_dump(),
        "ga4_untied_sessions_warn_share": ga4.untied_sessions_warn_share,
        "ga4_untied_revenue_warn_share": ga4.untied_revenue_warn_share,
        "ga4_untied_window_days": ga4.untied_window_days,
    }


def html_report_path(settings: Settings, *, group: bool = False) -> Path:
    """Where the nightly run writes the HTML report: [report] html_file, else beside the warehouse (for
    ``group``: beside the group roll-up's). A portal given the shared html_file gets its own name from it
    (report.html -> report_<portal>.html): portals never overwrite each other's report."""
    configured = settings.report.html_file
    if group:
        configured = (
            None if configured is None else Path(configured).with_stem(f"{Path(configured).stem}_group")
        )
    elif (
        configured is not None
        and settings.portal
        and settings.portals[settings.portal].report.html_file is None
    ):
        configured = Path(configured).with_stem(f"{Path(configured).stem}_{settings.portal}")
    if configured is not None:
        return Path(configured)
    database = settings.group_database() if group else database_path(settings)
    return database.with_name(f"{database.stem}_report.html")


def default_model(settings: Settings) -> str:
    return settings.models.publish_model


def has_credentials(settings: Settings) -> bool:
    """True when a HubSpot token is configured: otherwise the CLI runs against the built-in sandbox."""
    return bool(settings.hubspot_token)


@contextmanager
def open_warehouse(db_path: str | Path, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection; read-only ones fail fast, clearly, while a writer holds the file."""
    db_path = Path(db_path)
    if read_only and not db_path.exists():
        raise NotBuiltYetError(
            f"No warehouse at {db_path}",
            "run `roi run` (or `roi demo`) first, or fix ROI_DATABASE / database",
        )
    try:
        con = warehouse.connect(db_path, read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise ConfigurationError(
                f"The warehouse {db_path} cannot be opened: {str(exc).splitlines()[0]}",
                "point ROI_DATABASE / database at the pipeline's DuckDB file",
            ) from None
        raise WarehouseBusyError(
            f"The warehouse {db_path} is locked by a running pipeline ({exc.__class__.__name__})",
            "try again when it finishes",
        ) from None
    try:
        yield con
    finally:
        con.close()
