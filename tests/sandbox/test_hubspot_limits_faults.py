"""Rate limits (per-tier 10-second rolling window, search per second, daily quota) and injected faults
(errors, dropped connections, latency, "fail request N"), seen through the official client over real HTTP."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import PublicObjectSearchRequest

from sandbox.faults import Faults, parse_fault_spec
from sandbox.requestlog import DROPPED
from sandbox.server import SandboxServer
from sandbox.store import CrmStore

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _mini_dataset(contacts: int = 30):
    store = CrmStore()
    for record_id in range(1, contacts + 1):
        store.add("contacts", record_id, {"email": f"c{record_id}@exemple.fr"}, T0, T0)
    return type("MiniDataset", (), {"crm": store, "ga4_property_id": "1"})()


def _client(sb: SandboxServer) -> HubSpot:
    return HubSpot(access_token=sb.access_token, host=sb.base_url)


def test_eleven_seconds_above_the_starter_rate_get_429s_then_the_window_rolls():
    with SandboxServer(dataset=_mini_dataset(), tier="starter", rate_limits=True) as sb:
        api = _client(sb).crm.contacts.basic_api
        outcomes: list[tuple[float, int, Any, dict]] = []  # (sent at, status, headers, body)
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic() - start) < 11.0:
            target = sent * 0.05  # 20 requests per second: twice the starter tier's 100 per 10 s
            if now < target:
                time.sleep(target - now)
            sent += 1
            try:
                _, status, headers = api.get_page_with_http_info(limit=1)
                outcomes.append((time.monotonic() - start, status, headers, {}))
            except ContactsApiException as refused:
                outcomes.append(
                    (time.monotonic() - start, refused.status, refused.headers, json.loads(refused.body))
                )
    statuses = [o[1] for o in outcomes]
    assert set(statuses) == {200, 429}
    assert statuses[:100] == [200] * 100
    assert statuses[100] == 429
    ok_headers = outcomes[0][2]
    assert ok_headers["X-HubSpot-RateLimit-Max"] == "100"
    assert ok_headers["X-HubSpot-RateLimit-Remaining"] == "99"
    assert ok_headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert ok_headers["X-HubSpot-RateLimit-Daily"] == "250000"
    assert outcomes[99][2]["X-HubSpot-RateLimit-Remaining"] == "0"
    for _, status, headers, body in outcomes:
        if status == 429:
            assert body["policyName"] == "TEN_SECONDLY_ROLLING"
            assert body["errorType"] == "RATE_LIMIT" and body["status"] == "error"
            assert "ten_secondly_rolling" in body["message"]
            assert headers["X-HubSpot-RateLimit-Remaining"] == "0"
            assert headers["X-HubSpot-RateLimit-Max"] == "100"
    first_429 = statuses.index(429)
    later_ok = [o for o in outcomes[first_429:] if o[1] == 200]
    assert later_ok, "the rolling window should let requests through again after 10 s"
    assert min(o[0] for o in later_ok) >= 9.9  # ...and not before the first request's 10 s are over
    # never more than 100 allowed within the first 10 seconds of the run
    assert sum(1 for t, s, _, _ in outcomes if s == 200 and t < 9.9) <= 100


def test_search_has_its_own_per_second_limit_without_headers():
    with SandboxServer(dataset=_mini_dataset(), tier="professional", rate_limits=True) as sb:
        search = _client(sb).crm.contacts.search_api
        statuses, refusals = [], []
        for _ in range(12):  # well above 5 per second, even on a loaded machine
            try:
                search.do_search(public_object_search_request=PublicObjectSearchRequest(limit=1))
                statuses.append(200)
            except ContactsApiException as refused:
                statuses.append(refused.status)
                refusals.append(refused)
        assert statuses[:5] == [200] * 5 and 429 in statuses[5:]
        body = json.loads(refusals[0].body)
        assert body["policyName"] == "SECONDLY"
        assert "X-HubSpot-RateLimit-Max" not in refusals[0].headers
        # ordinary calls are not held back by the search limit
        assert _client(sb).crm.contacts.basic_api.get_page_with_http_info(limit=1)[1] == 200
        time.sleep(1.05)
        search.do_search(public_object_search_request=PublicObjectSearchRequest(limit=1))


def test_daily_quota_answers_daily_429():
    with SandboxServer(dataset=_mini_dataset(), rate_limits=True, daily_limit=3) as sb:
        api = _client(sb).crm.contacts.basic_api
        for _ in range(3):
            api.get_page(limit=1)
        with pytest.raises(ContactsApiException) as refused:
            api.get_page(limit=1)
        assert refused.value.status == 429
        assert json.loads(refused.value.body)["policyName"] == "DAILY"
        assert refused.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
        sb.rate_limits = False  # switched off: everything passes
        api.get_page(limit=1)


def test_fault_spec_parsing():
    assert parse_fault_spec("error_rate=0.2,latency_ms=80,drop_rate=0.05,fail=3+7") == {
        "error_rate": 0.2,
        "latency_ms": 80,
        "drop_rate": 0.05,
        "fail_requests": {3, 7},
    }
    assert parse_fault_spec("statuses=502+503,seed=9") == {"statuses": (502, 503), "seed": 9}
    for bad in ("error_rate=lots", "explode=1", "fail"):
        with pytest.raises(ValueError, match="bad fault spec"):
            parse_fault_spec(bad)
    with pytest.raises(ValueError):
        Faults().configure(error_rate=1.5)


def test_fail_requests_drop_and_latency():
    with SandboxServer(dataset=_mini_dataset(), rate_limits=False, faults="fail=2+4") as sb:
        url = f"{sb.base_url}/crm/v3/objects/contacts"
        headers = {"Authorization": f"Bearer {sb.access_token}"}
        with httpx.Client(headers=headers) as http:
            assert [http.get(url).status_code for _ in range(5)] == [200, 500, 200, 500, 200]
            assert [e.status for e in sb.request_log.entries] == [200, 500, 200, 500, 200]

            sb.faults.configure(drop_rate=1.0)
            with pytest.raises(httpx.RemoteProtocolError):
                http.get(url)
            assert sb.request_log.entries[-1].status == DROPPED

            sb.faults.configure(latency_ms=150)
            started = time.monotonic()
            assert http.get(url).status_code == 200
            assert time.monotonic() - started >= 0.15

            # faults hit the GA4 routes as well, with Google's error shape
            sb.faults.configure(fail_requests={1}, statuses=(503,))
            ga4 = http.post(f"{sb.base_url}/v1beta/properties/1:runReport", json={})
            assert ga4.status_code == 503 and ga4.json()["error"]["status"] == "UNAVAILABLE"
            sb.faults.clear()
            assert http.get(url).status_code == 200


def test_error_rate_is_seeded_and_repeatable():
    runs = []
    with SandboxServer(dataset=_mini_dataset(), rate_limits=False) as sb:
        headers = {"Authorization": f"Bearer {sb.access_token}"}
        with httpx.Client(headers=headers) as http:
            for _ in range(2):
                sb.faults.configure(**parse_fault_spec("error_rate=0.5,seed=3"))  # restarts the sequence
                runs.append(
                    [http.get(f"{sb.base_url}/crm/v3/objects/contacts").status_code for _ in range(40)]
                )
    assert runs[0] == runs[1]
    errors = [s for s in runs[0] if s != 200]
    assert 8 <= len(errors) <= 32
    assert set(errors) <= {500, 502, 503, 504}
