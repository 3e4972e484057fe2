"""Run any command against the built-in sandbox when no credentials are configured.

The sandbox (HubSpot + GA4 stand-ins on 127.0.0.1) starts in this process; its URL, token and spend
file reach the connectors through the same environment variables a real deployment uses, so nothing
downstream knows the difference. The previous environment is restored on exit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

SANDBOX_CONTACTS = 2_000
SANDBOX_SEED = 7
SANDBOX_DIR = Path("out/sandbox")
SANDBOX_DATABASE = SANDBOX_DIR / "roi.duckdb"
SPEND_FILE_NAME = "spend.csv"


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
    contacts: int = SANDBOX_CONTACTS,
    seed: int = SANDBOX_SEED,
    database: Path | None = SANDBOX_DATABASE,
    out_dir: Path | None = None,
) -> Iterator[Any]:
    """Start the sandbox, point the environment at it, yield the SandboxServer."""
    from sandbox.server import SandboxServer

    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"contacts": contacts, "seed": seed}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        kwargs["out_dir"] = out_dir
    with SandboxServer(**kwargs) as sb, patched_environ(sandbox_env(sb, database=database)):
        yield sb
