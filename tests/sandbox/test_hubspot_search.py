"""CRM search on the HubSpot stand-in through the official client: filters (AND within a group, OR across),
numeric and date comparison, one sort, paging by offset and the 10,000-result cap."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import PublicObjectSearchRequest
from hubspot.crm.deals import PublicObjectSearchRequest as DealSearchRequest

from sandbox.hubspot_api import SEARCH_RESULT_CAP
from sandbox.server import SandboxServer
from sandbox.store import CrmStore, format_hubspot_datetime

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def _search_all(api, request_type, **body) -> list:
    """Every result of one search, following paging.next.after."""
    found, after = [], None
    while True:
        page = api.do_search(public_object_search_request=request_type(after=after, **body))
        found.extend(page.results)
        if page.paging is None:
            return found
        after = page.paging.next.after


def test_filter_groups_dates_and_sort_match_the_store(sandbox, hubspot_client):
    records = list(sandbox.store.iter_records("contacts"))
    modified = sorted(r.properties["lastmodifieddate"] for r in records)
    floor = modified[len(modified) // 2]  # the newer half, as an incremental sync would ask
    floor_ms = _ms(datetime.fromisoformat(floor.replace("Z", "+00:00")))
    body = {
        "filter_groups": [
            {
                "filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": floor_ms},
                    {
                        "propertyName": "hs_analytics_source",
                        "operator": "IN",
                        "values": ["paid_search", "paid_social"],
                    },
                ]
            },
            {
                "filters": [
                    {"propertyName": "how_did_you_hear_about_us", "operator": "EQ", "value": "salon_bijorhca"}
                ]
            },
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
        "properties": ["lastmodifieddate", "hs_analytics_source", "how_did_you_hear_about_us"],
        "limit": 200,
    }
    found = _search_all(hubspot_client.crm.contacts.search_api, PublicObjectSearchRequest, **body)

    def wanted(r) -> bool:
        p = r.properties
        newer_paid = p["lastmodifieddate"] >= floor and p.get("hs_analytics_source") in (
            "PAID_SEARCH",
            "PAID_SOCIAL",
        )
        return newer_paid or p.get("how_did_you_hear_about_us") == "salon_bijorhca"

    expected = [r for r in records if wanted(r)]
    assert expected, "the seeded data should hold matching contacts"
    assert sorted(int(c.id) for c in found) == sorted(r.id for r in expected)
    stamps = [c.properties["lastmodifieddate"] for c in found]
    assert stamps == sorted(stamps, reverse=True)
    first = hubspot_client.crm.contacts.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(**{**body, "limit": 5})
    )
    assert first.total == len(expected)
    assert sandbox.request_log.entries[-1].inputs == 3  # filters counted in the request log


def test_numeric_between_and_has_property_on_deals(sandbox, hubspot_client):
    deals = list(sandbox.store.iter_records("deals"))
    found = _search_all(
        hubspot_client.crm.deals.search_api,
        DealSearchRequest,
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "amount", "operator": "BETWEEN", "value": "20", "highValue": "150.5"},
                    {"propertyName": "closedate", "operator": "HAS_PROPERTY"},
                ]
            }
        ],
        sorts=[{"propertyName": "amount", "direction": "ASCENDING"}],
        properties=["amount", "closedate"],
        limit=100,
    )
    expected = [
        d.id
        for d in deals
        if d.properties.get("amount")
        and d.properties.get("closedate")
        and Decimal("20") <= Decimal(d.properties["amount"]) <= Decimal("150.5")
    ]
    assert expected
    assert sorted(int(d.id) for d in found) == sorted(expected)
    amounts = [Decimal(d.properties["amount"]) for d in found]
    assert amounts == sorted(amounts)  # numeric order, not string order


def test_paging_past_10000_results_is_refused_with_400():
    store = CrmStore()
    base = T0
    for record_id in range(1, SEARCH_RESULT_CAP + 51):
        store.add("contacts", record_id, {"email": f"c{record_id}@exemple.fr"}, base, base)
    store.touch("contacts", range(1, SEARCH_RESULT_CAP + 51), T0 + timedelta(days=1))  # one bulk timestamp
    dataset = type("MiniDataset", (), {"crm": store, "ga4_property_id": "1"})()
    with SandboxServer(dataset=dataset, rate_limits=False) as sb:
        api = HubSpot(access_token=sb.access_token, host=sb.base_url).crm.contacts.search_api
        body = {
            "filter_groups": [
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "EQ",
                            "value": format_hubspot_datetime(T0 + timedelta(days=1)),
                        },
                    ]
                }
            ],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "limit": 200,
        }
        near_cap = api.do_search(public_object_search_request=PublicObjectSearchRequest(after="9800", **body))
        assert near_cap.total == SEARCH_RESULT_CAP + 50
        assert [int(r.id) for r in near_cap.results] == list(range(9801, 10001))
        assert near_cap.paging.next.after == "10000"
        with pytest.raises(ContactsApiException) as refused:
            api.do_search(public_object_search_request=PublicObjectSearchRequest(after="10000", **body))
        assert refused.value.status == 400
        error = json.loads(refused.value.body)
        assert error["status"] == "error" and error["category"] == "VALIDATION_ERROR"
        assert "10,000" in error["message"]
        # the way out: window on the sort key, which the cap does not stop
        rest = api.do_search(
            public_object_search_request=PublicObjectSearchRequest(
                **{
                    **body,
                    "filter_groups": [
                        {
                            "filters": [
                                *body["filter_groups"][0]["filters"],
                                {"propertyName": "hs_object_id", "operator": "GT", "value": "10000"},
                            ]
                        }
                    ],
                }
            )
        )
        assert [int(r.id) for r in rest.results] == list(range(10001, 10051))
        assert sb.request_log.count(path="/crm/v3/objects/contacts/search", status=400) == 1


def test_archived_records_never_appear_in_search(sandbox, hubspot_client):
    archived_ids = {r.id for r in sandbox.store.iter_records("contacts", archived=True)}
    assert archived_ids
    found = _search_all(
        hubspot_client.crm.contacts.search_api,
        PublicObjectSearchRequest,
        filter_groups=[
            {
                "filters": [
                    {
                        "propertyName": "hs_object_id",
                        "operator": "IN",
                        "values": [str(i) for i in archived_ids],
                    }
                ]
            }
        ],
        limit=200,
    )
    assert found == []


def test_bad_filters_are_refused(hubspot_client):
    api = hubspot_client.crm.contacts.search_api
    too_many_groups = [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}] * 6
    cases = [
        {"filter_groups": too_many_groups},
        {"filter_groups": [{"filters": [{"propertyName": "no_such_prop", "operator": "EQ", "value": "x"}]}]},
        {
            "filter_groups": [
                {"filters": [{"propertyName": "createdate", "operator": "GT", "value": "yesterday"}]}
            ]
        },
        {"limit": 201},
    ]
    for body in cases:
        with pytest.raises(ContactsApiException) as refused:
            api.do_search(public_object_search_request=PublicObjectSearchRequest(**body))
        assert refused.value.status == 400, body
        assert json.loads(refused.value.body)["category"] == "VALIDATION_ERROR"


def test_id_windows_cut_the_same_query_consistently(sandbox, hubspot_client):
    records = list(sandbox.store.iter_records("contacts"))
    middle = records[len(records) // 2].id
    api = hubspot_client.crm.contacts.search_api
    for direction in ("ASCENDING", "DESCENDING"):
        found = _search_all(
            api,
            PublicObjectSearchRequest,
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "hs_object_id", "operator": "GTE", "value": str(middle)},
                        {"propertyName": "lifecyclestage", "operator": "NEQ", "value": "subscriber"},
                    ]
                }
            ],
            sorts=[{"propertyName": "hs_object_id", "direction": direction}],
            limit=200,
        )
        expected = [
            r.id for r in records if r.id >= middle and r.properties.get("lifecyclestage") != "subscriber"
        ]
        assert expected
        assert [int(c.id) for c in found] == (expected if direction == "ASCENDING" else expected[::-1])
