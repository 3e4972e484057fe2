"""The one place flows and the CLI read settings: connectors.config.Settings, seen through small accessors.

Flows take a config *path* as a parameter, never a Settings object, so tokens never land in Prefect's
database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

DEFAULT_DATABASE = "roi.duckdb"
DEFAULT_MODEL = "data_driven"


class ConfigurationError(ValueError):
    """Missing or invalid settings, named with how to fix them; raised before any outside call."""


def load_settings(config_path: str | Path | None = None) -> Any:
    """Settings from the TOML file (or ./roi.toml) then the environment."""
    from connectors.config import load_settings as load_connector_settings

    if config_path is not None and not Path(config_path).is_file():
        raise ConfigurationError(
            f"Config file {config_path} does not exist. Copy roi.example.toml to {config_path} and edit it, "
            "or leave out --config to use ./roi.toml and environment variables."
        )
    try:
        return load_connector_settings(config_path)
    except ConfigurationError:
        raise
    except ValueError as exc:  # pydantic ValidationError is a ValueError: it already names the field
        raise ConfigurationError(str(exc)) from exc


def validate_settings(settings: Any, needs: tuple[str, ...] = ("hubspot", "ga4")) -> None:
    """Raise ConfigurationError naming every missing/invalid setting needed by the systems in `needs`."""
    problems = settings.problems(needs) if hasattr(settings, "problems") else []
    if problems:
        raise ConfigurationError("Settings are incomplete:\n" + "\n".join(f"  - {p}" for p in problems))


def database_path(settings: Any) -> Path:
    return Path(getattr(settings, "database", None) or DEFAULT_DATABASE)


def spend_file(settings: Any) -> Path | None:
    value = getattr(settings, "spend_file", None)
    return Path(value) if value else None


def tagging_plan_path(settings: Any) -> Path | None:
    value = getattr(settings, "tagging_plan", None)
    return Path(value) if value else None


def model_params(settings: Any) -> dict | None:
    models = getattr(settings, "models", None)
    return models.model_dump() if hasattr(models, "model_dump") else None


def default_model(settings: Any) -> str:
    models = getattr(settings, "models", None)
    return getattr(models, "publish_model", None) or DEFAULT_MODEL


def has_credentials(settings: Any) -> bool:
    """True when a real HubSpot token is configured: otherwise the CLI runs against the built-in sandbox."""
    token = getattr(settings, "hubspot_access_token", None)
    return bool(token and token.get_secret_value())


@contextmanager
def open_warehouse(db_path: str | Path, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection; read-only ones fail fast, clearly, while a writer holds the file."""
    db_path = Path(db_path)
    if read_only and not db_path.exists():
        raise ConfigurationError(
            f"No warehouse at {db_path}: run `roi run` or `roi demo` first (or pass --config)."
        )
    try:
        con = duckdb.connect(str(db_path), read_only=read_only)
    except duckdb.IOException as exc:
        raise ConfigurationError(
            f"The warehouse {db_path} is locked by a running pipeline ({exc.__class__.__name__}); "
            "try again when it finishes."
        ) from exc
    try:
        yield con
    finally:
        con.close()
