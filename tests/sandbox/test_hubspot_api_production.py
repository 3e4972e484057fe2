"""The HubSpot stand-in behaves like production where a friendly stand-in would hide data loss: offset search
shifts under writes, the search index lags, merges make new records (chains too), deletions are archived
then purged, rate limits per tier and plan, 207 error items shaped like HubSpot's StandardError, and a churn
writer. Everything through the official hubspot-api-client over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import PublicGdprDeleteInput, PublicMergeInput

from sandbox.churn import DEFAULT_MIX, Churn
from sandbox.ratelimits import RateLimiter
from sandbox.server import SandboxServer
from sandbox.store import CrmStore

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
# HubSpot's StandardError (spec collection, CRM objects v3): the fields every errors[] item must carry.
STANDARD_ERROR_REQUIRED = {"category", "context", "errors", "links", "message", "status"}


def _store(contacts: int, deals: int = 0) -> CrmStore:
    store = CrmStore()
    for i in range(1, contacts + 1):
        at = T0 + timedelta(minutes=i)
        store.add("contacts", i, {"email": f"c{i}@exemple.fr", "firstname": f"C{i}"}, at, at)
    for d in range(1, deals + 1):
        store.add("deals", 100 + d, {"dealname": f"D{d}", "amount": "10.00"}, T0, T0)
        store.associate("deals", 100 + d, "contacts", d, 3)
    return store


def _serve(store: CrmStore, **kwargs) -> SandboxServer:
    dataset = type("Data", (), {"crm": store, "ga4_property_id": "1"})()
    return SandboxServer(dataset=dataset, rate_limits=False, **kwargs)


def _client(sb: SandboxServer) -> HubSpot:
    return HubSpot(access_token=sb.access_token, host=sb.base_url)


def _search(client: HubSpot, after: int, filters: list[dict], sort: str) -> dict:
    body = {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": ["lastmodifieddate"],
        "limit": 100,
        "after": str(after),
    }
    answer = client.crm.contacts.search_api.do_search(
        public_object_search_request=body, _preload_content=False
    )
    return json.loads(answer.data)


def test_offset_paging_skips_a_record_when_one_already_read_is_modified_mid_read():
    # The data loss of issue 10, reproduced: search pages are offsets into the result as it is NOW.
    store = _store(450)
    with _serve(store) as sb:
        client = _client(sb)
        since = [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(int(T0.timestamp() * 1000))}
        ]
        seen: list[int] = []
        offset = 0
        while True:
            page = _search(client, offset, since, "lastmodifieddate")
            seen.extend(int(r["id"]) for r in page["results"])
            if offset == 0:  # a workflow touches a record already read: it moves to the end
                store.update("contacts", seen[0], {"firstname": "changed"}, at=datetime.now(UTC))
            after = (page.get("paging") or {}).get("next", {}).get("after")
            if not after:
                break
            offset = int(after)
    missing = set(range(1, 451)) - set(seen)
    assert len(missing) == 1 and 101 in missing  # the record on the page boundary was never returned


def test_search_index_lags_writes_list_and_read_do_not():
    store = _store(20)
    store.search_lag_seconds = 0.6
    store.search_lag_spread = (1.0, 1.0)
    with _serve(store) as sb:
        client = _client(sb)
        everything = [{"propertyName": "hs_object_id", "operator": "GTE", "value": "0"}]
        store.update("contacts", 5, {"firstname": "Renamed"}, at=datetime.now(UTC))
        created = store.create("contacts", {"email": "new@exemple.fr"}, datetime.now(UTC))
        store.archive("contacts", 7, datetime.now(UTC))
        body = {"filterGroups": [{"filters": everything}], "properties": ["firstname"], "limit": 100}
        before = client.crm.contacts.search_api.do_search(public_object_search_request=body)
        ids = {int(r.id) for r in before.results}
        # The index still has the old world: the new record missing, the archived one present, the old name.
        assert created.id not in ids and 7 in ids
        assert next(r for r in before.results if r.id == "5").properties["firstname"] == "C5"
        # Reads by id and lists already show the write.
        assert client.crm.contacts.basic_api.get_by_id("5", properties=["firstname"]).properties[
            "firstname"
        ] == ("Renamed")
        time.sleep(0.7)
        after = client.crm.contacts.search_api.do_search(public_object_search_request=body)
        ids = {int(r.id) for r in after.results}
        assert created.id in ids and 7 not in ids
        assert next(r for r in after.results if r.id == "5").properties["firstname"] == "Renamed"


def test_merges_make_a_new_record_old_ids_resolve_to_it_and_chains_follow():
    store = _store(6, deals=4)
    with _serve(store) as sb:
        contacts = _client(sb).crm.contacts
        first = contacts.basic_api.merge(PublicMergeInput(primary_object_id="1", object_id_to_merge="2"))
        c = int(first.id)
        assert c > 6 and set(first.properties["hs_merged_object_ids"].split(";")) == {"1", "2"}
        second = contacts.basic_api.merge(PublicMergeInput(primary_object_id=str(c), object_id_to_merge="3"))
        e = int(second.id)
        assert e > c and set(second.properties["hs_merged_object_ids"].split(";")) == {"1", "2", "3", str(c)}
        for old in ("1", "2", "3", str(c)):
            assert contacts.basic_api.get_by_id(old).id == str(e)
        # The new record has every association of the merged ones; the old ids are listed nowhere.
        assert {d for d, _ in store.associations("contacts", e, "deals")} == {101, 102, 103}
        listed = [int(r.id) for r in contacts.basic_api.get_page(limit=100).results]
        assert listed == [4, 5, 6, e]
        assert contacts.basic_api.get_page(limit=100, archived=True).results == []
        # A write to an old id lands on the merged record, which answers under its own id.
        answer = contacts.batch_api.update({"inputs": [{"id": "1", "properties": {"firstname": "Ana"}}]})
        assert [r.id for r in answer.results] == [str(e)]
        assert store.get("contacts", e).properties["firstname"] == "Ana"
        assert store.resolve("contacts", 2) == e and store.merged_ids("contacts") == {
            1: e,
            2: e,
            3: e,
            c: e,
        }


def test_deleting_archives_then_a_purge_or_a_gdpr_delete_removes_everywhere():
    store = _store(5, deals=2)
    with _serve(store) as sb:
        contacts = _client(sb).crm.contacts
        contacts.basic_api.archive("1")  # HubSpot's "delete": archived, restorable
        archived = contacts.basic_api.get_page(limit=100, archived=True).results
        assert [r.id for r in archived] == ["1"] and archived[0].archived and archived[0].archived_at
        assert store.associations("deals", 101, "contacts") == []  # associations to it are hidden meanwhile
        store.restore("contacts", 1, datetime.now(UTC))
        assert [(d, t) for d, t in store.associations("deals", 101, "contacts")] == [(1, 3)]
        store.archive("contacts", 1, datetime.now(UTC))
        store.purge("contacts", 1)  # the 90-day retention is over
        contacts.basic_api.purge(PublicGdprDeleteInput(object_id="2"))  # GDPR: at once, never archived
        for gone in ("1", "2"):
            with pytest.raises(ContactsApiException) as missing:
                contacts.basic_api.get_by_id(gone)
            assert missing.value.status == 404
            with pytest.raises(ContactsApiException):
                contacts.basic_api.get_by_id(gone, archived=True)
        assert contacts.basic_api.get_page(limit=100, archived=True).results == []
        assert [r.id for r in contacts.basic_api.get_page(limit=100).results] == ["3", "4", "5"]
        assert store.new_id("contacts") == 6  # ids are never reused


def test_error_items_of_207_answers_carry_every_standard_error_field():
    store = _store(3, deals=1)
    with _serve(store) as sb:
        client = _client(sb)
        bodies = [
            client.crm.contacts.batch_api.read(
                {"inputs": [{"id": "1"}, {"id": "99"}], "properties": ["email"]}, _preload_content=False
            ),
            client.crm.contacts.batch_api.update(
                {"inputs": [{"id": "1", "properties": {"firstname": "x"}}, {"id": "98", "properties": {}}]},
                _preload_content=False,
            ),
            client.crm.associations.v4.batch_api.get_page(
                "contacts",
                "deals",
                {"inputs": [{"id": "1"}, {"id": "2"}, {"id": "97"}]},
                _preload_content=False,
            ),
        ]
        for answer in bodies:
            assert answer.status == 207
            payload = json.loads(answer.data)
            assert payload["errors"] and payload["numErrors"] == len(payload["errors"])
            for item in payload["errors"]:
                assert set(item) >= STANDARD_ERROR_REQUIRED, item
                assert isinstance(item["errors"], list) and isinstance(item["links"], dict)
                assert all(isinstance(v, list) for v in item["context"].values())


def test_rate_limits_follow_the_tier_the_limit_increase_and_the_portal_midnight():
    # Enterprise has Professional's burst; the API limit increase makes it 250 and adds a million a day.
    assert RateLimiter("enterprise").burst_limit == RateLimiter("professional").burst_limit == 190
    increased = RateLimiter("enterprise", api_limit_increase=True)
    assert increased.burst_limit == 250 and increased.daily_limit == 2_000_000
    with pytest.raises(ValueError, match="Professional and Enterprise"):
        RateLimiter("starter", api_limit_increase=True)
    # The daily allowance comes back at midnight in the portal's time zone, not UTC.
    now = [datetime(2026, 11, 30, 22, 59, tzinfo=UTC)]  # 23:59 in Paris
    clock = [0.0]

    def tick() -> float:
        clock[0] += 20.0  # far apart: only the daily limit can refuse
        return clock[0]

    daily = RateLimiter(
        "starter", daily_limit=2, time_zone="Europe/Paris", clock=tick, wall_clock=lambda: now[0]
    )
    assert [daily.check().allowed for _ in range(3)] == [True, True, False]
    assert daily.check().policy == "DAILY"
    now[0] = datetime(2026, 11, 30, 23, 0, 30, tzinfo=UTC)  # 00:00:30 in Paris, still the 30th in UTC
    assert daily.check().allowed
    with _serve(_store(1), api_limit_increase=True, tier="enterprise") as sb:
        sb.rate_limits = True
        answer = _client(sb).crm.contacts.basic_api.get_page_with_http_info(limit=1)
        assert answer[2]["X-HubSpot-RateLimit-Max"] == "250"


def test_churn_writes_every_kind_of_change_including_between_pages():
    store = _store(300, deals=120)
    store.search_lag_seconds = 0.05
    churn = Churn(store, rate=0, seed=4, mid_read=1.0)
    with _serve(store) as sb:
        sb.page_hooks.append(churn.between_pages)  # what SandboxServer(churn=...) wires itself
        churn.start()
        for _ in range(1500):
            churn.write_once()
        before = sum(churn.counts.values())
        for _ in range(10):  # mid_read=1: a write before each page is served (unless its pick finds nothing)
            _client(sb).crm.contacts.basic_api.get_page(limit=10)
        assert before + 5 <= sum(churn.counts.values()) <= before + 10
        churn.stop()
        assert churn.write_once() is None  # stopped: no more writes
    assert set(churn.counts) == set(DEFAULT_MIX), churn.counts
    assert store.merged_ids("contacts") and store.merged_ids("deals")
    assert store.count("contacts", archived=True) > 0


def test_roi_sandbox_serve_with_churn_changes_the_portal_while_it_is_read(tmp_path):
    command = [
        sys.executable, "-m", "flows.cli", "sandbox", "serve", "--port", "0", "--contacts", "200",
        "--churn", "40", "--search-lag", "0.2", "--out", str(tmp_path), "--no-rate-limits",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = {}
        while "churn" not in lines:
            line = server.stdout.readline()
            assert line, server.stderr.read()
            key, _, value = line.strip().partition(": ")
            lines[key] = value
        assert lines["churn"].startswith("40 writes/s") and "search_lag: 0.2 s" in lines["churn"]
        client = HubSpot(access_token=lines["access_token"], host=lines["base_url"])
        first = {r.id: r.updated_at for r in client.crm.contacts.basic_api.get_page(limit=100).results}
        time.sleep(1.5)
        second = {r.id: r.updated_at for r in client.crm.contacts.basic_api.get_page(limit=100).results}
        assert first != second  # created, changed, archived or merged meanwhile
    finally:
        server.send_signal(2)  # Ctrl-C
        _, err = server.communicate(timeout=20)
    assert "churn wrote:" in err and "update_contact" in err
