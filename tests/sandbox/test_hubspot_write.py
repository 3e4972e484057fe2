"""Writing to the HubSpot stand-in with the official client: batch update (200, 207, whole-batch 400/404),
value validation, read-only properties, and creating a custom property then writing it.

These tests change data, so they run on their own small server, not the shared session sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput
from hubspot.crm.deals import ApiException as DealsApiException
from hubspot.crm.properties import ApiException as PropertiesApiException

from sandbox.server import SandboxServer
from sandbox.store import CrmStore, format_hubspot_datetime

T0 = datetime(2025, 2, 3, 8, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    store = CrmStore()
    for record_id in range(1, 21):
        store.add(
            "contacts", record_id, {"email": f"c{record_id}@exemple.fr", "lifecyclestage": "lead"}, T0, T0
        )
    store.add(
        "deals",
        500,
        {
            "dealname": "Coffrets Noël",
            "amount": "350.00",
            "pipeline": "default",
            "dealstage": "qualifiedtobuy",
        },
        T0,
        T0,
    )
    dataset = type("MiniDataset", (), {"crm": store, "ga4_property_id": "1"})()
    with SandboxServer(dataset=dataset, rate_limits=False) as sb:
        yield sb


@pytest.fixture(scope="module")
def client(server):
    return HubSpot(access_token=server.access_token, host=server.base_url)


def _update(client, inputs):
    return client.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))


def _error(exc) -> dict:
    return json.loads(exc.value.body)


def test_batch_update_with_a_bad_id_returns_207_and_moves_lastmodifieddate_of_the_good_ones(server, client):
    before = format_hubspot_datetime(T0)
    assert server.store.get("contacts", 3).properties["lastmodifieddate"] == before
    answer = _update(
        client,
        [
            {"id": "3", "properties": {"lifecyclestage": "customer"}},
            {"id": "4", "properties": {"lifecyclestage": "opportunity", "firstname": "Léa"}},
            {"id": "424242", "properties": {"lifecyclestage": "customer"}},
        ],
    )
    assert answer.num_errors == 1
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert answer.errors[0].context == {"ids": ["424242"]}
    assert sorted(r.id for r in answer.results) == ["3", "4"]
    for record_id, stage in ((3, "customer"), (4, "opportunity")):
        record = server.store.get("contacts", record_id)
        assert record.properties["lifecyclestage"] == stage
        assert record.properties["lastmodifieddate"] > before
        assert record.updated_at > T0
    assert server.store.get("contacts", 5).properties["lastmodifieddate"] == before  # untouched
    entry = server.request_log.entries[-1]
    assert (entry.path, entry.status, entry.inputs) == ("/crm/v3/objects/contacts/batch/update", 207, 3)


def test_batch_update_of_only_missing_ids_is_a_404(client):
    with pytest.raises(ContactsApiException) as refused:
        _update(client, [{"id": "777", "properties": {"firstname": "x"}}])
    assert refused.value.status == 404
    assert _error(refused)["category"] == "OBJECT_NOT_FOUND"


def test_read_only_unknown_and_invalid_values_refuse_the_whole_batch(server, client):
    bad_values = [
        ({"createdate": "1735689600000"}, "READ_ONLY_VALUE"),
        ({"hs_analytics_source": "PAID_SEARCH"}, "READ_ONLY_VALUE"),
        ({"favourite_candle": "vanille"}, "PROPERTY_DOESNT_EXIST"),
        ({"lifecyclestage": "superfan"}, "INVALID_OPTION"),
    ]
    for properties, code in bad_values:
        with pytest.raises(ContactsApiException) as refused:
            _update(
                client,
                [{"id": "6", "properties": {"firstname": "Zoé"}}, {"id": "7", "properties": properties}],
            )
        assert refused.value.status == 400, properties
        body = _error(refused)
        assert body["category"] == "VALIDATION_ERROR"
        assert [e["code"] for e in body["errors"]] == [code]
        assert body["errors"][0]["context"]["propertyName"] == list(properties)
    # nothing at all was written, not even the good input
    assert server.store.get("contacts", 6).properties.get("firstname") is None


def test_batch_over_100_inputs_is_refused(client):
    with pytest.raises(ContactsApiException) as refused:
        _update(client, [{"id": str(i), "properties": {"firstname": "x"}} for i in range(101)])
    assert refused.value.status == 400
    assert "100" in _error(refused)["message"]


def test_deal_values_are_checked_and_stage_moves_derived_fields(server, client):
    deals = client.crm.deals.batch_api
    with pytest.raises(DealsApiException) as refused:
        deals.update({"inputs": [{"id": "500", "properties": {"amount": "trois cents"}}]})
    assert _error(refused)["errors"][0]["code"] == "INVALID_DECIMAL"
    with pytest.raises(DealsApiException) as refused:
        deals.update({"inputs": [{"id": "500", "properties": {"dealstage": "wh_nowhere"}}]})
    assert _error(refused)["errors"][0]["code"] == "INVALID_OPTION"
    with pytest.raises(DealsApiException) as refused:
        deals.update(
            {
                "inputs": [
                    {
                        "id": "500",
                        "properties": {"closedate": "2025-01-01T10:00:00Z", "hs_is_closed_won": "true"},
                    }
                ]
            }
        )
    assert sorted(e["code"] for e in _error(refused)["errors"]) == ["READ_ONLY_VALUE"]
    done = deals.update(
        {"inputs": [{"id": "500", "properties": {"dealstage": "closedwon", "closedate": "1738598400000"}}]}
    )
    assert done.results[0].properties["closedate"] == "2025-02-03T16:00:00.000Z"  # epoch ms stored as ISO
    deal = server.store.get("deals", 500).properties
    assert (deal["hs_is_closed_won"], deal["hs_is_closed"], deal["hs_deal_stage_probability"]) == (
        "true",
        "true",
        "1.0",
    )
    assert deal["hs_lastmodifieddate"] > format_hubspot_datetime(T0)


def test_create_custom_property_then_write_it(server, client):
    properties = client.crm.properties
    properties.groups_api.create("contacts", {"name": "roi", "label": "ROI", "displayOrder": 1})
    created = properties.core_api.create(
        "contacts",
        {
            "name": "roi_first_touch_channel",
            "label": "ROI first-touch channel",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "roi",
            "options": [
                {"label": "Paid search", "value": "paid_search"},
                {"label": "E-mail", "value": "email"},
            ],
        },
    )
    assert created.hubspot_defined is False and created.modification_metadata.read_only_value is False
    revenue = properties.core_api.create(
        "contacts",
        {
            "name": "roi_attributed_revenue",
            "label": "Attributed revenue",
            "type": "number",
            "fieldType": "number",
            "groupName": "roi",
            "numberDisplayHint": "currency",
        },
    )
    assert revenue.type == "number"
    with pytest.raises(PropertiesApiException) as duplicate:
        properties.core_api.create(
            "contacts",
            {
                "name": "roi_attributed_revenue",
                "label": "again",
                "type": "number",
                "fieldType": "number",
                "groupName": "roi",
            },
        )
    assert duplicate.value.status == 409
    with pytest.raises(PropertiesApiException) as mismatched:
        properties.core_api.create(
            "contacts",
            {"name": "roi_x", "label": "x", "type": "number", "fieldType": "select", "groupName": "roi"},
        )
    assert mismatched.value.status == 400
    answer = _update(
        client,
        [
            {
                "id": "8",
                "properties": {"roi_first_touch_channel": "email", "roi_attributed_revenue": "1234.56"},
            }
        ],
    )
    assert answer.results[0].properties["roi_attributed_revenue"] == "1234.56"
    read = client.crm.contacts.basic_api.get_by_id("8", properties=["roi_first_touch_channel"])
    assert read.properties["roi_first_touch_channel"] == "email"
    with pytest.raises(ContactsApiException):
        _update(client, [{"id": "8", "properties": {"roi_first_touch_channel": "telepathy"}}])
    # options can be extended (PATCH), then the new value is accepted
    properties.core_api.update(
        "contacts",
        "roi_first_touch_channel",
        {
            "options": [
                {"label": "Paid search", "value": "paid_search"},
                {"label": "E-mail", "value": "email"},
                {"label": "Events", "value": "events"},
            ]
        },
    )
    _update(client, [{"id": "8", "properties": {"roi_first_touch_channel": "events"}}])
    assert server.store.get("contacts", 8).properties["roi_first_touch_channel"] == "events"
    # clearing with an empty string
    _update(client, [{"id": "8", "properties": {"roi_attributed_revenue": ""}}])
    assert server.store.get("contacts", 8).properties["roi_attributed_revenue"] is None


def test_hubspot_defined_property_definition_cannot_be_changed(client):
    with pytest.raises(PropertiesApiException) as refused:
        client.crm.properties.core_api.update("contacts", "createdate", {"label": "Born"})
    assert refused.value.status == 400


def test_date_property_must_be_midnight_utc(server, client):
    client.crm.properties.core_api.create(
        "contacts",
        {
            "name": "roi_first_order_on",
            "label": "First order",
            "type": "date",
            "fieldType": "date",
            "groupName": "contactinformation",
        },
    )
    with pytest.raises(ContactsApiException) as refused:
        _update(client, [{"id": "9", "properties": {"roi_first_order_on": "1738598400000"}}])  # 16:00 UTC
    problem = _error(refused)["errors"][0]
    assert problem["code"] == "INVALID_DATE" and "not midnight" in problem["message"]
    _update(client, [{"id": "9", "properties": {"roi_first_order_on": "1738540800000"}}])
    _update(client, [{"id": "10", "properties": {"roi_first_order_on": "2025-02-04"}}])
    assert server.store.get("contacts", 9).properties["roi_first_order_on"] == "2025-02-03"
    assert server.store.get("contacts", 10).properties["roi_first_order_on"] == "2025-02-04"
