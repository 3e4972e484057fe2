"""The HubSpot extract stays right where production HubSpot is unkind: records modified between search pages,
a lagging search index, deletions (archived, purged after retention, GDPR-deleted), merges that create new
records (chains too), and the documented rate limits. Official SDK over real HTTP, real DuckDB files."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from connectors.config import ConfigError
from connectors.hubspot.client import daily_reset_hint
from connectors.hubspot.extract import extract_hubspot
from connectors.ratelimit import PortalRateLimiter
from sandbox.server import SandboxServer
from sandbox.store import CrmStore

SEARCH_PATH = "/crm/v3/objects/{}/search"


def _rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _stamp(store: CrmStore, object_type: str, record_id: int) -> datetime:
    prop = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
    return datetime.fromisoformat(store.get(object_type, record_id).properties[prop].replace("Z", "+00:00"))


def test_a_record_modified_between_search_pages_cannot_make_the_next_one_skipped(
    tmp_path, make_settings, fast_limiter
):
    with SandboxServer(contacts=1_500, seed=21, rate_limits=False) as sb:
        settings = make_settings(sb, hubspot={"overlap_minutes": 0})
        db = tmp_path / "roi.duckdb"
        extract_hubspot(settings, db, "r1", streams=["contacts"], limiter=fast_limiter())
        store = sb.store
        changed_at = datetime.now(UTC).replace(microsecond=0)
        ids = [r.id for r in store.iter_records("contacts")][:450]
        store.touch("contacts", ids, changed_at)
        served = []

        def workflow_touches_a_record_already_read() -> None:
            served.append(1)
            if len(served) == 2:  # between page 1 and page 2 of the contacts search
                store.update("contacts", ids[0], {"firstname": "Renamed"}, at=datetime.now(UTC))

        sb.page_hooks.append(workflow_touches_a_record_already_read)
        extract_hubspot(settings, db, "r2", streams=["contacts"], limiter=fast_limiter())
        sb.page_hooks.clear()
        loaded = dict(
            _rows(
                db,
                "SELECT id, lastmodifieddate FROM raw.hubspot_contacts "
                f"WHERE id IN ({','.join(map(str, ids))})",
            )
        )
        # Every one of the 450 changed contacts was read (offset paging lost the one on a page boundary).
        assert all(loaded[i] >= changed_at for i in ids)
        searches = [e for e in sb.request_log.entries if e.path == SEARCH_PATH.format("contacts")]
        assert len(searches) >= 3
        # The record modified mid-read is read by the next run (its stamp is after this run's cursor).
        extract_hubspot(settings, db, "r3", streams=["contacts"], limiter=fast_limiter())
        assert _rows(db, "SELECT firstname FROM raw.hubspot_contacts WHERE id = ?", [ids[0]]) == [
            ("Renamed",)
        ]


def test_the_overlap_catches_a_write_the_search_index_showed_late(tmp_path, make_settings, fast_limiter):
    def run_with(overlap_minutes: int) -> tuple[str | None, str]:
        with SandboxServer(contacts=300, seed=3, rate_limits=False) as sb:
            settings = make_settings(sb, hubspot={"overlap_minutes": overlap_minutes})
            db = tmp_path / f"overlap_{overlap_minutes}.duckdb"
            extract_hubspot(settings, db, "r1", streams=["contacts"], limiter=fast_limiter())
            store = sb.store
            store.search_lag_spread = (1.0, 1.0)
            slow, fast = [r.id for r in store.iter_records("contacts")][:2]
            store.search_lag_seconds = 3.0  # indexed late...
            store.update("contacts", slow, {"firstname": "Slow"}, at=datetime.now(UTC))
            store.search_lag_seconds = 0.1  # ... while a later write is indexed at once
            store.update("contacts", fast, {"firstname": "Fast"}, at=datetime.now(UTC) + timedelta(seconds=1))
            time.sleep(1.2)  # the fast one is searchable, the slow one not yet
            extract_hubspot(settings, db, "r2", streams=["contacts"], limiter=fast_limiter())
            time.sleep(3.0)  # the slow write is searchable now
            extract_hubspot(settings, db, "r3", streams=["contacts"], limiter=fast_limiter())
            names = dict(
                _rows(db, f"SELECT id, firstname FROM raw.hubspot_contacts WHERE id IN ({slow}, {fast})")
            )
            return names[slow], names[fast]

    # Without an overlap the cursor passed the slow write while it was not searchable: stale for good.
    assert run_with(0) != ("Slow", "Fast")
    assert run_with(1) == ("Slow", "Fast")


def test_deletions_archived_purged_and_gdpr_deleted_leave_the_warehouse(
    tmp_path, make_settings, fast_limiter
):
    with SandboxServer(contacts=800, seed=13, rate_limits=False) as sb:
        store = sb.store
        settings = make_settings(sb, hubspot={"purge_sweep_days": 7})
        db = tmp_path / "roi.duckdb"
        extract_hubspot(settings, db, "r1", limiter=fast_limiter())
        won = next(d for d in store.iter_records("deals") if d.properties.get("hs_is_closed_won") == "true")
        won_amount = Decimal(won.properties["amount_in_home_currency"])
        revenue = (
            "SELECT sum(amount_in_home_currency) FROM raw.hubspot_deals "
            "WHERE NOT archived AND merged_into_id IS NULL AND hs_is_closed_won"
        )
        before = _rows(db, revenue)[0][0]
        now = datetime.now(UTC)
        store.archive("deals", won.id, now)  # deleted in HubSpot: search never shows it again
        already_archived = next(store.iter_records("contacts", archived=True)).id
        store.purge("contacts", already_archived)  # its 90 days are over
        live = [
            r.id for r in store.iter_records("contacts") if not store.associations("contacts", r.id, "deals")
        ]
        gdpr = live[3]
        store.purge("contacts", gdpr)  # a GDPR delete: never on the archived list
        sb.request_log.clear()
        results = extract_hubspot(settings, db, "r2", limiter=fast_limiter())
        # One nightly: the deleted won deal is archived in the warehouse and stops counting.
        assert _rows(
            db, "SELECT archived, archived_at IS NOT NULL FROM raw.hubspot_deals WHERE id = ?", [won.id]
        ) == [(True, True)]
        assert _rows(db, revenue)[0][0] == before - won_amount
        # The archived contact that left the archived list is gone from the warehouse, confirmed by id first.
        assert _rows(db, "SELECT count(*) FROM raw.hubspot_contacts WHERE id = ?", [already_archived]) == [
            (0,)
        ]
        assert results["hubspot_contacts"].deleted == 1
        assert _rows(db, "SELECT record_id, how FROM ops.hubspot_deletions") == [
            (already_archived, "archived_list")
        ]
        reads = [e for e in sb.request_log.entries if e.path.endswith("/contacts/batch/read")]
        assert len(reads) == 2  # live, then archived: both answered "not found"
        # The GDPR delete is not on any list: the nightly cannot see it; the sweep (not due yet) will.
        assert _rows(db, "SELECT count(*) FROM raw.hubspot_contacts WHERE id = ?", [gdpr]) == [(1,)]
        assert "hubspot_purge_sweep" not in results

        sweeping = make_settings(sb, hubspot={"purge_sweep_days": 0})
        sb.request_log.clear()
        results = extract_hubspot(sweeping, db, "r3", limiter=fast_limiter())
        assert results["hubspot_purge_sweep"].deleted == 1
        assert _rows(db, "SELECT count(*) FROM raw.hubspot_contacts WHERE id = ?", [gdpr]) == [(0,)]
        assert _rows(db, "SELECT how FROM ops.hubspot_deletions WHERE record_id = ?", [gdpr]) == [("sweep",)]
        # The sweep lists ids only (one property, 100 per call): live and archived, every object type.
        sweep_lists = [e for e in sb.request_log.entries if "properties=hs_object_id" in e.query]
        expected = sum(
            max(1, -(-store.count(t) // 100)) + max(1, -(-store.count(t, archived=True) // 100))
            for t in ("contacts", "deals", "line_items")
        )
        assert len(sweep_lists) == expected


def test_merge_chains_end_on_the_surviving_record_for_extract_and_associations(
    tmp_path, make_settings, fast_limiter
):
    with SandboxServer(contacts=400, seed=17, rate_limits=False) as sb:
        store = sb.store
        settings = make_settings(sb)
        db = tmp_path / "roi.duckdb"
        extract_hubspot(settings, db, "r1", limiter=fast_limiter())
        with_deals = [
            r.id for r in store.iter_records("contacts") if store.associations("contacts", r.id, "deals")
        ]
        a, b, d = with_deals[:3]
        deals = {x for c in (a, b, d) for x, _ in store.associations("contacts", c, "deals")}
        c = store.merge("contacts", a, b, datetime.now(UTC)).id
        extract_hubspot(settings, db, "r2", limiter=fast_limiter())
        e = store.merge("contacts", c, d, datetime.now(UTC)).id  # a chain: A + B -> C, then C + D -> E
        d1, d2 = sorted(deals)[:2]
        merged_deal = store.merge("deals", d1, d2, datetime.now(UTC)).id
        extract_hubspot(settings, db, "r3", limiter=fast_limiter())
        aliases = dict(
            _rows(
                db,
                f"SELECT id, merged_into_id FROM raw.hubspot_contacts WHERE id IN ({a}, {b}, {c}, {d}, {e})",
            )
        )
        assert aliases == {a: e, b: e, c: e, d: e, e: None}
        assert _rows(db, f"SELECT merged_into_id FROM raw.hubspot_deals WHERE id IN ({d1}, {d2})") == [
            (merged_deal,),
            (merged_deal,),
        ]
        pairs = set(_rows(db, "SELECT contact_id, deal_id FROM raw.hubspot_contact_deals"))
        expected_deals = (deals - {d1, d2}) | {merged_deal}
        assert {x for (cid, x) in pairs if cid == e} == expected_deals
        assert not {(cid, x) for (cid, x) in pairs if cid in (a, b, c, d) or x in (d1, d2)}


def test_when_most_records_changed_the_nightly_lists_them_instead_of_searching(
    tmp_path, make_settings, fast_limiter
):
    with SandboxServer(contacts=1_000, seed=8, rate_limits=False) as sb:
        settings = make_settings(sb)
        db = tmp_path / "roi.duckdb"
        extract_hubspot(settings, db, "r1", streams=["contacts"], limiter=fast_limiter())
        store = sb.store
        ids = [r.id for r in store.iter_records("contacts")]
        at = datetime.now(UTC).replace(microsecond=0)
        store.touch("contacts", ids[: len(ids) * 6 // 10], at)  # e.g. the night after a publish
        sb.request_log.clear()
        result = extract_hubspot(settings, db, "r2", streams=["contacts"], limiter=fast_limiter())
        log = sb.request_log.entries
        searches = [e for e in log if e.path == SEARCH_PATH.format("contacts")]
        lists = [
            e for e in log if e.path == "/crm/v3/objects/contacts" and "archived=true" not in e.query.lower()
        ]
        assert len(searches) == 1 and len(lists) == -(-len(ids) // 100)  # 1 search said "most", then listed
        assert result["hubspot_contacts"].rows >= len(ids)
        touched = ",".join(map(str, ids[: len(ids) * 6 // 10]))
        stale = _rows(
            db,
            f"SELECT count(*) FROM raw.hubspot_contacts WHERE id IN ({touched}) AND lastmodifieddate < ?",
            [at],
        )
        assert stale == [(0,)]


def test_rate_limits_as_documented_and_the_daily_reset_at_portal_midnight(make_settings):
    assert (
        PortalRateLimiter.for_tier("enterprise").max_requests
        == PortalRateLimiter.for_tier("professional").max_requests
    )
    assert PortalRateLimiter.for_tier("enterprise").max_requests < 190
    increased = PortalRateLimiter.for_tier("enterprise", api_limit_increase=True)
    assert 240 <= increased.max_requests < 250
    with pytest.raises(ValueError, match="Professional and Enterprise"):
        PortalRateLimiter.for_tier("starter", api_limit_increase=True)
    from connectors.config import load_settings

    settings = load_settings(
        None,
        hubspot_access_token="pat-x",
        hubspot_tier="starter",
        hubspot_api_limit_increase=True,
        hubspot={"portal_time_zone": "America/New_York"},
    )
    with pytest.raises(ConfigError, match="API limit increase"):
        settings.validate_for("hubspot")
    hint = daily_reset_hint(settings, now=datetime(2026, 12, 2, 3, 30, tzinfo=UTC))  # 22:30 in New York
    assert "midnight America/New_York" in hint and "05:00 UTC" in hint and "in 1 h 30 min" in hint
    with pytest.raises(ValueError, match="IANA"):
        load_settings(None, hubspot={"portal_time_zone": "Paris"})
