"""Extract test fixtures: settings pointed at a sandbox, and a comparable snapshot of the warehouse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.config import Settings, load_settings
from connectors.ratelimit import PortalRateLimiter, reset_registry
from sandbox.server import SandboxServer

HUBSPOT_TABLES = (
    "raw.hubspot_contacts",
    "raw.hubspot_deals",
    "raw.hubspot_line_items",
    "raw.hubspot_contact_deals",
    "raw.hubspot_deal_line_items",
    "raw.hubspot_deal_pipelines",
    "raw.hubspot_deal_stages",
    "raw.hubspot_properties",
)
RUN_COLUMNS = ("_loaded_at", "_run_id")


def settings_for(sb: SandboxServer, **overrides: Any) -> Settings:
    """Settings aimed at a sandbox server, independent of any roi.toml or environment of the machine."""
    hubspot = {"overlap_minutes": 10, "max_workers": 4, **overrides.pop("hubspot", {})}
    values = {
        "hubspot_access_token": sb.access_token,
        "hubspot_base_url": sb.base_url,
        "hubspot_tier": sb.tier,
        **overrides,
    }
    return load_settings(None, hubspot=hubspot, **values)


@pytest.fixture(autouse=True)
def _fresh_limiters() -> None:
    # Every sandbox is a new portal: a limiter shared by an earlier test would carry its window over.
    reset_registry()


@pytest.fixture(scope="session")
def fast_limiter() -> Callable[[], PortalRateLimiter]:
    """For sandboxes started with rate_limits=False: the HubSpot allowance would only slow the test down."""
    return lambda: PortalRateLimiter(100_000, 1.0, search_per_second=10_000)


@pytest.fixture(scope="session")
def make_settings() -> Callable[..., Settings]:
    return settings_for


def snapshot(db_path: str | Path) -> dict[str, list[tuple]]:
    """Every HubSpot raw table's rows (minus load bookkeeping), sorted: equal snapshots = same content."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        out = {}
        for table in HUBSPOT_TABLES:
            cols = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema || '.' || table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if r[0] not in RUN_COLUMNS
            ]
            select = ", ".join(f'"{c}"' for c in cols)
            out[table] = con.execute(f"SELECT {select} FROM {table} ORDER BY ALL").fetchall()
        # The purge sweep's state is the wall-clock time it last ran, not data.
        cursors = con.execute(
            "SELECT stream, cursor_value FROM ops.sync_state "
            "WHERE stream <> 'hubspot_purge_sweep' ORDER BY stream"
        ).fetchall()
        out["ops.sync_state"] = cursors
        return out
    finally:
        con.close()


@pytest.fixture(scope="session")
def table_snapshot() -> Callable[[str | Path], dict[str, list[tuple]]]:
    return snapshot
