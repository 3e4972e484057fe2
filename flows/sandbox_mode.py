"""The built-in sandbox as a target: when the CLI uses it, where its warehouse lives, how it is started.

The rule (docs/operations.md, "Without credentials"): a command runs against the sandbox only when NO
configuration exists at all (no roi.toml, no --config, no settings variable such as HUBSPOT_ACCESS_TOKEN or
GA4_PROPERTY_ID) or when it is given ``--sandbox``; it then says so in its first line. A typo in a real
configuration is an error, never a silent switch to fake data.

The sandbox (HubSpot + GA4 stand-ins on 127.0.0.1) starts in this process; its URL, token and spend file
reach the connectors through the same environment variables a real deployment uses, so nothing downstream
knows the difference. The previous environment is restored on exit.

Everything the sandbox produces goes to ONE place, ``out/demo/`` (relative to the working directory):
``roi demo`` writes its warehouse there and the sandbox runs of ``roi run --sandbox`` extend it, so
``roi status``, ``roi export`` and ``roi utm audit`` with no configuration read what the demo wrote.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.config import configuration_sources

SANDBOX_CONTACTS = 2_000
SANDBOX_SEED = 7
SANDBOX_DIR = Path("out/demo")
SANDBOX_DATABASE = SANDBOX_DIR / "roi.duckdb"
# Size and seed of the sandbox that filled SANDBOX_DATABASE: later sandbox runs regenerate the same data.
SANDBOX_MARKER = "sandbox.json"
SPEND_FILE_NAME = "spend.csv"


def use_sandbox(config_path: str | Path | None, explicit: bool) -> bool:
    """True with --sandbox, or when no configuration exists at all (see the module docstring)."""
    return explicit or not configuration_sources(config_path)


def sandbox_notice(explicit: bool, *, database: Path = SANDBOX_DATABASE) -> str:
    """The first line of every command that uses the sandbox."""
    why = "--sandbox given" if explicit else "no roi.toml and no HUBSPOT_*/GA4_* variables"
    return (
        f"SANDBOX ({why}): built-in fake HubSpot + GA4 on 127.0.0.1, warehouse {database}. "
        + ("" if explicit else "To use your portal, copy roi.example.toml to roi.toml (then `roi check`).")
    ).strip()


def sandbox_size(directory: Path = SANDBOX_DIR) -> tuple[int, int]:
    """(contacts, seed) of the sandbox whose data is in ``directory``; the defaults when none was recorded."""
    try:
        recorded = json.loads((directory / SANDBOX_MARKER).read_text(encoding="utf-8"))
        return int(recorded["contacts"]), int(recorded["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return SANDBOX_CONTACTS, SANDBOX_SEED


def record_sandbox_size(directory: Path, contacts: int, seed: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SANDBOX_MARKER).write_text(json.dumps({"contacts": contacts, "seed": seed}) + "\n")


def status_clock(in_sandbox: bool) -> tuple[datetime, date, str]:
    """(now, today, description) to age data by: the sandbox data set stops at its own "now", so its
    warehouse is aged by that day, a real one by today's date."""
    now = datetime.now(UTC)
    if not in_sandbox:
        return now, now.date(), "now"
    from sandbox.generator import DATA_SET_NOW

    return now, DATA_SET_NOW.date(), f"the sandbox data set's last day, {DATA_SET_NOW.date()}"


def sandbox_today(sb: Any) -> date:
    """The sandbox data set's own today: its activity stops the day before."""
    return sb.dataset.now.date()


def sandbox_history(sb: Any) -> tuple[date, date]:
    """First and last day with sandbox activity (for a GA4 history backfill)."""
    from sandbox.generator import HISTORY_START

    return HISTORY_START, sandbox_today(sb) - timedelta(days=1)


def sandbox_env(sb: Any, *, database: Path | None) -> dict[str, str]:
    """The environment that points every connector at the running sandbox `sb`, with the sandbox shop's
    `[models]` settings (margin rates per pipeline) as MODELS__* variables."""
    from sandbox.generator import model_settings

    spend = Path(sb.out_dir) / SPEND_FILE_NAME
    env = {
        "HUBSPOT_ACCESS_TOKEN": sb.access_token,
        "HUBSPOT_BASE_URL": sb.base_url,
        "GA4_PROPERTY_ID": str(sb.ga4_property_id),
        "GA4_API_ENDPOINT": sb.base_url,
    }
    for key, value in model_settings().items():
        env[f"MODELS__{key.upper()}"] = json.dumps(value)
    if spend.exists():
        env["ROI_SPEND_FILE"] = str(spend)
    if database is not None:
        env["ROI_DATABASE"] = str(database)
    return env


def sandbox_portal_section(
    name: str,
    sb: Any,
    *,
    database: Path,
    token_env: str | None = None,
    token_secret: str | None = None,
    models: dict[str, dict[str, Any]] | None = None,
    **keys: Any,
) -> str:
    """A ``[portals.<name>]`` section of roi.toml for the running sandbox ``sb`` (its URL, GA4 property, spend
    sheet and the sandbox shop's [models] settings), with its token in the variable ``token_env`` (default
    HUBSPOT_TOKEN_<NAME>) or the Prefect Secret block ``token_secret``; ``keys`` are added as they are and
    ``models`` replaces tables of the sandbox's [models] settings (fx_rates for a portal in another home
    currency). The token itself never goes in the file: put ``sb.access_token`` where the section says."""
    from sandbox.generator import model_settings

    if token_secret is None and token_env is None:
        token_env = "HUBSPOT_TOKEN_" + name.upper().replace("-", "_")
    spend = Path(sb.out_dir) / SPEND_FILE_NAME
    table: dict[str, Any] = {
        **({"token_secret": token_secret} if token_secret else {"token_env": token_env}),
        "hubspot_base_url": sb.base_url,
        "ga4_property_id": str(sb.ga4_property_id),
        "ga4_api_endpoint": sb.base_url,
        "database": str(database),
        **({"spend_file": str(spend)} if spend.exists() else {}),
        **keys,
    }
    lines = [f"[portals.{name}]", *(f"{key} = {_toml(value)}" for key, value in table.items())]
    for key, values in {**model_settings(), **(models or {})}.items():
        lines.append(f"[portals.{name}.models.{key}]")
        lines += [f"{_toml(k)} = {_toml(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


@contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextmanager
def sandbox_environment(
    *,
    contacts: int | None = None,
    seed: int | None = None,
    database: Path | None = SANDBOX_DATABASE,
    out_dir: Path | None = None,
) -> Iterator[Any]:
    """Start the sandbox, point the environment at it, yield the SandboxServer.

    Without ``contacts``/``seed``, the size and seed recorded next to ``database`` (by the demo) are used, so
    a sandbox run adds to the demo's warehouse the same data, not a different company's.
    """
    from sandbox.server import SandboxServer

    recorded = sandbox_size(database.parent) if database is not None else (SANDBOX_CONTACTS, SANDBOX_SEED)
    contacts = recorded[0] if contacts is None else contacts
    seed = recorded[1] if seed is None else seed
    if database is not None:
        record_sandbox_size(database.parent, contacts, seed)
    kwargs: dict[str, Any] = {"contacts": contacts, "seed": seed}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        kwargs["out_dir"] = out_dir
    with SandboxServer(**kwargs) as sb, patched_environ(sandbox_env(sb, database=database)):
        yield sb
