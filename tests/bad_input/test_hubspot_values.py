"""Hostile HubSpot property values (tests/data/bad/hubspot/values.toml) served by the sandbox over HTTP.

One value that cannot be converted goes to ops.rejects with the record id, the property and the raw value, the
property is stored as NULL, and every record of every stream still loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bad_corpus import cases, raw_value

from connectors import warehouse
from connectors.config import load_settings
from connectors.hubspot.extract import extract_hubspot
from connectors.ratelimit import PortalRateLimiter, reset_registry
from sandbox.server import SandboxServer

CASES = cases("hubspot/values.toml")
CONTACTS = 300  # 47 deals, 65 line items: one record per case and object


@pytest.fixture(scope="module")
def hostile_portal(tmp_path_factory) -> Iterator[tuple[SandboxServer, dict[str, int], Path]]:
    """A sandbox whose records carry every case's value (one record per case), extracted once in full."""
    reset_registry()
    with SandboxServer(contacts=CONTACTS, seed=3, rate_limits=False) as sb:
        record_for: dict[str, int] = {}
        free = {
            kind: sorted(r.id for r in sb.store.iter_records(kind))
            for kind in ("contacts", "deals", "line_items")
        }
        for case in CASES:
            record_id = free[case["object"]].pop(0)
            sb.store.update(case["object"], record_id, {case["property"]: raw_value(case)})
            record_for[case["name"]] = record_id
        db = tmp_path_factory.mktemp("hostile") / "roi.duckdb"
        settings = load_settings(
            None,
            hubspot_access_token=sb.access_token,
            hubspot_base_url=sb.base_url,
            hubspot_tier=sb.tier,
            database=str(db),
        )
        extract_hubspot(
            settings,
            db,
            "run-hostile",
            mode="full",
            limiter=PortalRateLimiter(100_000, 1.0, search_per_second=10_000),
        )
        yield sb, record_for, db


def _query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    con = warehouse.connect(db, read_only=True)  # TimeZone UTC: timestamps render as +00
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_every_record_of_every_stream_loads_despite_the_hostile_values(hostile_portal):
    sb, _, db = hostile_portal
    for kind in ("contacts", "deals", "line_items"):
        expected = {r.id for r in sb.store.iter_records(kind)} | {
            r.id for r in sb.store.iter_records(kind, archived=True)
        }
        loaded = {r[0] for r in _query(db, f"SELECT id FROM raw.hubspot_{kind}")}
        assert expected <= loaded, (kind, sorted(expected - loaded)[:10])  # (merged-away ids are kept too)
    statuses = _query(db, "SELECT DISTINCT status FROM ops.sync_runs WHERE run_id = 'run-hostile'")
    assert statuses == [("success",)]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_value(hostile_portal, case):
    sb, record_for, db = hostile_portal
    kind, prop, record_id = case["object"], case["property"], record_for[case["name"]]
    table = f"raw.hubspot_{kind}"
    stored = _query(db, f'SELECT CAST("{prop}" AS VARCHAR) FROM {table} WHERE id = ?', [record_id])
    rejects = _query(
        db,
        "SELECT value, reason FROM ops.rejects WHERE run_id = 'run-hostile' AND record_id = ? AND field = ?",
        [str(record_id), prop],
    )
    if "reject" in case:
        assert stored == [(None,)]
        assert len(rejects) == 1, rejects
        value, reason = rejects[0]
        assert case["reject"] in reason and "stored as NULL" in reason, reason
        expected_value = warehouse.storable_text(raw_value(case), warehouse.REJECT_VALUE_CHARS)
        assert value == expected_value
    else:
        assert rejects == []
        assert stored == [(None if case.get("stored_null") else case["stored"],)]
    # The rest of the record loaded: its id and another property as the portal has them.
    other = "dealname" if kind == "deals" and prop != "dealname" else "createdate"
    if other != prop:
        portal_value = sb.store.get(kind, record_id).properties.get(other)
        loaded = _query(db, f'SELECT "{other}" IS NOT NULL FROM {table} WHERE id = ?', [record_id])
        assert loaded == [(portal_value is not None,)]
