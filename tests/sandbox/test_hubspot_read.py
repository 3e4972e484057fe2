"""Reading from the HubSpot stand-in with the official hubspot-api-client over real HTTP: paging, properties,
embedded associations, archived records, merged records, schema endpoints, v4 associations and auth."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId

from sandbox.server import SandboxServer
from sandbox.store import CrmStore

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def test_paging_all_contacts_returns_every_contact_exactly_once(sandbox, hubspot_client):
    seen: list[int] = []
    after = None
    calls_before = sandbox.request_log.count(method="GET", path="/crm/v3/objects/contacts")
    while True:
        page = hubspot_client.crm.contacts.basic_api.get_page(
            limit=100, after=after, properties=["email", "hs_analytics_source", "lifecyclestage"]
        )
        seen.extend(int(c.id) for c in page.results)
        for contact in page.results:
            # only what was asked for, plus HubSpot's always-returned ones; values are strings or None
            assert set(contact.properties) == {
                "email",
                "hs_analytics_source",
                "lifecyclestage",
                "createdate",
                "hs_object_id",
                "lastmodifieddate",
            }
            assert contact.properties["hs_object_id"] == contact.id
            assert all(v is None or isinstance(v, str) for v in contact.properties.values())
        if page.paging is None:
            break
        after = page.paging.next.after
    live = [r.id for r in sandbox.store.iter_records("contacts")]
    assert len(seen) == len(set(seen)) == sandbox.store.count("contacts") == len(live)
    assert seen == live  # id order, nothing archived or merged
    assert sandbox.store.count("contacts", archived=True) > 0  # archived ones exist and were left out
    pages = -(-len(live) // 100)
    assert sandbox.request_log.count(method="GET", path="/crm/v3/objects/contacts") - calls_before == pages


def test_comma_joined_properties_and_embedded_associations(sandbox):
    deal_id, contact_id = next(
        (d.id, sandbox.store.associations("deals", d.id, "contacts")[0][0])
        for d in sandbox.store.iter_records("deals")
    )
    url = f"{sandbox.base_url}/crm/v3/objects/contacts/{contact_id}"
    headers = {"Authorization": f"Bearer {sandbox.access_token}"}
    answer = httpx.get(
        url, params={"properties": "email,firstname", "associations": "deals"}, headers=headers
    )
    assert answer.status_code == 200
    body = answer.json()
    assert {"email", "firstname"} <= set(body["properties"])
    assert "lastname" not in body["properties"]
    linked = {a["id"]: a["type"] for a in body["associations"]["deals"]["results"]}
    assert linked[str(deal_id)] == "contact_to_deal"


def test_archived_listing_and_merged_records(sandbox, hubspot_client):
    archived = hubspot_client.crm.contacts.basic_api.get_page(limit=100, archived=True)
    expected = [r.id for r in sandbox.store.iter_records("contacts", archived=True)]
    assert [int(c.id) for c in archived.results] == expected[:100]
    assert all(c.archived for c in archived.results)

    # HubSpot's merge made a NEW record: reading any of the old ids answers with it, under its new id.
    merged = next(
        r for r in sandbox.store.iter_records("contacts") if r.properties.get("hs_merged_object_ids")
    )
    old_ids = merged.properties["hs_merged_object_ids"].split(";")
    assert len(old_ids) == 2 and str(merged.id) not in old_ids
    assert all(int(old) < merged.id for old in old_ids)  # ids only grow
    for old in old_ids:
        answer = hubspot_client.crm.contacts.basic_api.get_by_id(old, properties=["hs_merged_object_ids"])
        assert answer.id == str(merged.id)
        assert set(answer.properties["hs_merged_object_ids"].split(";")) == set(old_ids)
    listed = {
        int(c.id)
        for c in hubspot_client.crm.contacts.basic_api.get_page(limit=100, after=str(merged.id - 1)).results
    }
    assert merged.id in listed and not {int(o) for o in old_ids} & listed
    with pytest.raises(ContactsApiException) as gone:
        hubspot_client.crm.contacts.basic_api.get_by_id("999999999")
    assert gone.value.status == 404
    assert json.loads(gone.value.body)["category"] == "OBJECT_NOT_FOUND"


def test_batch_read_reports_missing_ids_in_a_207(sandbox, hubspot_client):
    first = next(sandbox.store.iter_records("contacts"))
    answer = hubspot_client.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": str(first.id)}, {"id": "999999999"}], properties=["email"]
        )
    )
    assert [r.id for r in answer.results] == [str(first.id)]
    assert answer.results[0].properties["email"] == first.properties["email"]
    assert answer.num_errors == 1
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert answer.errors[0].context == {"ids": ["999999999"]}


def test_properties_and_pipelines_endpoints(hubspot_client):
    props = {p.name: p for p in hubspot_client.crm.properties.core_api.get_all("contacts").results}
    assert props["createdate"].modification_metadata.read_only_value is True
    assert props["hs_analytics_source"].type == "enumeration"
    custom = props["how_did_you_hear_about_us"]
    assert custom.hubspot_defined is False
    assert {o.value for o in custom.options} >= {"salon_maison_objet", "bouche_a_oreille"}
    pipelines = {p.id: p for p in hubspot_client.crm.pipelines.pipelines_api.get_all("deals").results}
    assert set(pipelines) == {"default", "wholesale"}
    stages = {s.id: s.metadata for s in pipelines["wholesale"].stages}
    assert stages["wh_won"] == {"probability": "1.0", "isClosed": "true"}
    assert stages["wh_negotiation"]["isClosed"] == "false"


def test_v4_association_batch_read_pages_past_500_and_reports_missing():
    store = CrmStore()
    store.add("deals", 1, {"dealname": "big order"}, T0, T0)
    store.add("deals", 2, {"dealname": "no lines"}, T0, T0)
    for line_id in range(100, 100 + 620):
        store.add("line_items", line_id, {"name": "BOUGIE-CLASSIQUE"}, T0, T0)
        store.associate("deals", 1, "line_items", line_id, 19)
    dataset = type("MiniDataset", (), {"crm": store, "ga4_property_id": "1"})()
    with SandboxServer(dataset=dataset, rate_limits=False) as sb:
        client = HubSpot(access_token=sb.access_token, host=sb.base_url)
        batch = client.crm.associations.v4.batch_api.get_page
        first = batch(
            "deals",
            "line_items",
            BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": "1"}, {"id": "2"}, {"id": "77"}]),
        )
        assert len(first.results) == 1
        result = first.results[0]
        assert result._from.id == "1"
        assert len(result.to) == 500
        assert result.to[0].association_types[0].type_id == 19
        assert {e.category for e in first.errors} == {"OBJECT_NOT_FOUND"}
        assert sorted(i for e in first.errors for i in e.context["ids"]) == ["2", "77"]
        second = batch(
            "deals",
            "line_items",
            BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[{"id": "1", "after": result.paging.next.after}]
            ),
        )
        got = [int(t.to_object_id) for t in result.to] + [int(t.to_object_id) for t in second.results[0].to]
        assert got == list(range(100, 720))
        assert second.results[0].paging is None
        back = batch(
            "line_items", "deals", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": "150"}])
        )
        assert [(int(t.to_object_id), t.association_types[0].type_id) for t in back.results[0].to] == [
            (1, 20)
        ]
        assert sb.request_log.count(path="/crm/v4/associations/deals/line_items/batch/read") == 2
        assert [e.inputs for e in sb.request_log.entries][:2] == [3, 1]


def test_missing_or_wrong_token_gets_401_without_echoing_it(sandbox):
    url = f"{sandbox.base_url}/crm/v3/objects/contacts"
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401
    assert anonymous.json()["category"] == "INVALID_AUTHENTICATION"
    wrong_token = "pat-na1-not-the-right-one"
    with pytest.raises(ContactsApiException) as refused:
        HubSpot(access_token=wrong_token, host=sandbox.base_url).crm.contacts.basic_api.get_page(limit=1)
    assert refused.value.status == 401
    body = json.loads(refused.value.body)
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert wrong_token not in str(refused.value.body)
    assert sandbox.access_token not in str(refused.value.body)


def test_ga4_routes_share_the_app_and_the_request_log(sandbox):
    url = f"{sandbox.base_url}/v1beta/properties/{sandbox.ga4_property_id}:runReport"
    answer = httpx.post(
        url,
        json={
            "dateRanges": [{"startDate": "30daysAgo", "endDate": "yesterday"}],
            "dimensions": [{"name": "sessionSource"}],
            "metrics": [{"name": "sessions"}],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"]
    last = sandbox.request_log.entries[-1]
    assert (last.method, last.path, last.status) == ("POST", url.removeprefix(sandbox.base_url), 200)
