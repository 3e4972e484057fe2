"""Helpers for the publish tests: sandbox portals and settings, one pipeline run, and readers of what the
sandbox
received (request log, CRM store) and what HubSpot holds (through the official client)."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from hubspot import HubSpot

from connectors.config import Settings, load_settings
from connectors.hubspot.properties import PIPELINE_PROPERTIES, owned_property_names
from sandbox.generator import model_settings
from sandbox.server import SandboxServer

# Small on purpose (the whole suite shares 2 cores): still more than 100 contacts, so batching is exercised.
SANDBOX_CONTACTS = 240
SANDBOX_SEED = 11
BATCH_UPDATE_SUFFIX = "/batch/update"
# HubSpot moves these itself on every write; any other change to a record must be one of our properties.
HUBSPOT_MANAGED = {"lastmodifieddate", "hs_lastmodifieddate"}


def start_sandbox(**kwargs: Any) -> SandboxServer:
    return SandboxServer(contacts=SANDBOX_CONTACTS, seed=SANDBOX_SEED, tier="professional", **kwargs)


def sandbox_settings(sb: SandboxServer, db_path: Path) -> Settings:
    return load_settings(
        None,
        hubspot_access_token=sb.access_token,
        hubspot_base_url=sb.base_url,
        ga4_property_id=str(sb.ga4_property_id),
        ga4_api_endpoint=sb.base_url,
        database=db_path,
        spend_file=Path(sb.out_dir) / "spend.csv",
        models=model_settings(),
    )


def sandbox_today(sb: SandboxServer) -> date:
    now = sb.dataset.now
    return now.date() if hasattr(now, "date") else now


def extract_and_build(settings: Settings, db_path: Path, run_id: str, today: date) -> None:
    """One pipeline run up to the marts: HubSpot (incremental after the first), GA4, spend sheet, models."""
    from connectors.ga4 import extract_ga4
    from connectors.hubspot.extract import extract_hubspot
    from connectors.spend import load_spend
    from models.runner import build

    extract_hubspot(settings, db_path, run_id)
    extract_ga4(settings, db_path, run_id, today=today)
    load_spend(Path(settings.spend_file), db_path, run_id)
    # Failing data tests are the models' business (the flow then skips publishing); here only the marts count.
    build(db_path, tagging_plan=settings.tagging_plan, params=settings.models.model_dump())


def client_for(sb: SandboxServer) -> HubSpot:
    return HubSpot(access_token=sb.access_token, host=sb.base_url)


def desired_values(db_path: Path) -> dict[tuple[str, int, str], str]:
    with duckdb.connect(str(db_path)) as con:
        rows = con.execute(
            "SELECT object_type, record_id, property, value FROM main.crm_property_values"
        ).fetchall()
    return {(obj, rid, prop): value for obj, rid, prop, value in rows if value is not None}


def records_by_type(values: dict[tuple[str, int, str], str]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {"contacts": set(), "deals": set()}
    for obj, rid, _prop in values:
        found[obj].add(rid)
    return found


def min_update_calls(records: dict[str, set[int]]) -> int:
    return sum(math.ceil(len(ids) / 100) for ids in records.values())


def batch_updates(sb: SandboxServer) -> list[Any]:
    return [e for e in sb.request_log.entries if e.method == "POST" and e.path.endswith(BATCH_UPDATE_SUFFIX)]


def accepted_inputs(sb: SandboxServer) -> int:
    """Inputs of batch updates the sandbox applied (200, or 207 whose other records were applied)."""
    return sum(e.inputs or 0 for e in batch_updates(sb) if e.status in (200, 207))


def assert_batch_writes_only_our_properties(sb: SandboxServer) -> None:
    """From the sandbox's request log: every batch/update carried only property names the pipeline owns."""
    # Requests a fault answered before the handler read them carry nothing (inputs None): nothing was written.
    updates = [e for e in batch_updates(sb) if e.inputs is not None]
    assert updates, "no batch update reached the handler"
    for entry in updates:
        object_type = entry.path.split("/")[4]  # /crm/v3/objects/<type>/batch/update
        assert entry.properties, f"no property names logged for {entry}"
        foreign = set(entry.properties) - owned_property_names(object_type)
        assert not foreign, f"{entry.path} wrote properties the pipeline does not own: {sorted(foreign)}"


def store_snapshot(sb: SandboxServer) -> dict[tuple[str, int], dict[str, Any]]:
    crm = sb.dataset.crm
    return {
        (obj, record.id): dict(record.properties)
        for obj in ("contacts", "deals", "line_items")
        for record in crm.iter_records(obj)
    }


def assert_only_our_properties_changed(before: dict, after: dict) -> set[tuple[str, int]]:
    """Every property whose value changed on any record is one of ours; returns the changed records."""
    changed_records = set()
    for key, props in after.items():
        old = before.get(key, {})
        changed = {
            name for name in set(props) | set(old) if props.get(name) != old.get(name)
        } - HUBSPOT_MANAGED
        if changed:
            object_type = key[0]
            allowed = owned_property_names(object_type) if object_type in PIPELINE_PROPERTIES else set()
            assert changed <= allowed, f"{key} had foreign properties written: {sorted(changed - allowed)}"
            changed_records.add(key)
    return changed_records


def hubspot_values(sb: SandboxServer, object_type: str) -> dict[int, dict[str, str | None]]:
    """Every record's roi_* values, read back through the official client (list endpoint, paged)."""
    api = getattr(client_for(sb).crm, object_type).basic_api
    names = sorted(owned_property_names(object_type))
    found: dict[int, dict[str, str | None]] = {}
    after = None
    while True:
        page = api.get_page(limit=100, properties=names, after=after)
        for record in page.results:
            found[int(record.id)] = {n: record.properties.get(n) for n in names}
        if not (page.paging and page.paging.next):
            return found
        after = page.paging.next.after
