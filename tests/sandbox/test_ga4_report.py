"""The GA4 Data API stand-in, driven by the official google-analytics-data client over real HTTP."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    DateRange,
    Dimension,
    Filter,
    FilterExpression,
    Metric,
    MetricAggregation,
    OrderBy,
    RunReportRequest,
)
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import BadRequest, Forbidden, TooManyRequests
from google.auth.credentials import AnonymousCredentials

from sandbox.dataset import Dataset, Ga4Restrictions
from sandbox.generator import HISTORY_START, LAST_DAY, generate
from sandbox.server import SandboxServer

CONTACTS = 1500
SEED = 11
UTM_DIMENSIONS = ("date", "sessionSource", "sessionMedium", "sessionCampaignName")


@contextlib.contextmanager
def serve(dataset: Dataset) -> Iterator[str]:
    """The sandbox app (HubSpot + GA4 routes) serving `dataset` on 127.0.0.1; yields the base URL."""
    with SandboxServer(dataset=dataset) as sandbox:
        assert sandbox.ga4_property_id == dataset.ga4_property_id
        yield sandbox.base_url


def client_for(base_url: str) -> BetaAnalyticsDataClient:
    return BetaAnalyticsDataClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=base_url),
    )


def report_request(
    dataset: Dataset, dims, metrics, start=HISTORY_START, end=LAST_DAY, **kw
) -> RunReportRequest:
    return RunReportRequest(
        property=f"properties/{dataset.ga4_property_id}",
        dimensions=[Dimension(name=d) for d in dims],
        metrics=[Metric(name=m) for m in metrics],
        date_ranges=[DateRange(start_date=start.isoformat(), end_date=end.isoformat())],
        **kw,
    )


def pull_all(client: BetaAnalyticsDataClient, request: RunReportRequest, page: int) -> tuple[list, int, int]:
    """Page with offset until rowCount, as a connector does: (rows, rowCount, number of calls)."""
    rows, offset, calls = [], 0, 0
    while True:
        request.limit, request.offset = page, offset
        response = client.run_report(request)
        calls += 1
        rows.extend(
            ([v.value for v in r.dimension_values], [v.value for v in r.metric_values]) for r in response.rows
        )
        offset += len(response.rows)
        if offset >= response.row_count or not response.rows:
            return rows, response.row_count, calls


@pytest.fixture(scope="module")
def settled() -> Iterator[tuple[Dataset, BetaAnalyticsDataClient]]:
    """A data set whose processing days have settled, so GA4 numbers are final."""
    dataset = generate(CONTACTS, SEED)
    dataset.advance_ga4_processing(2)
    with serve(dataset) as base_url:
        yield dataset, client_for(base_url)


def test_utm_report_pages_to_row_count_and_matches_ground_truth(settled) -> None:
    dataset, client = settled
    request = report_request(
        dataset,
        UTM_DIMENSIONS,
        ("sessions", "advertiserAdCost", "purchaseRevenue"),
        return_property_quota=True,
    )
    rows, row_count, calls = pull_all(client, request, page=700)
    assert len(rows) == row_count > 1400 and calls == -(-row_count // 700)
    keys = [tuple(d) for d, _ in rows]
    assert len(set(keys)) == len(keys), "paging must neither repeat nor skip rows"
    assert keys == sorted(keys), "default order is ascending dimension values"
    assert {d[0] for d in keys} <= {
        (HISTORY_START + dt.timedelta(days=i)).strftime("%Y%m%d") for i in range(600)
    }

    cost = sum(Decimal(m[1]) for d, m in rows if d[1:3] == ["google", "cpc"])
    assert cost == Decimal(dataset.ground_truth["ga4_ad_cost_by_channel"]["paid_search"])
    assert sum(Decimal(m[1]) for d, m in rows if d[1:3] != ["google", "cpc"]) == 0
    assert sum(int(m[0]) for _, m in rows) == int(dataset.ga4.metrics["sessions"].sum())
    # Online purchases: the revenue of every won 'default' pipeline deal (archived ones too, GA4 saw them),
    # but not the refunds and amount-less deals typed into the CRM by hand.
    won_online = sum(
        Decimal(r.properties["amount_in_home_currency"])
        for archived in (False, True)
        for r in dataset.crm.iter_records("deals", archived=archived)
        if r.properties["dealstage"] == "closedwon" and Decimal(r.properties.get("amount", "-1")) >= 0
    )
    assert sum(Decimal(m[2]) for _, m in rows) == won_online > 0
    # Messy spellings reach GA4 as typed (URL-decoded), canonical ones dominate.
    sources = {d[1] for d in keys}
    assert {"fb", "FB", "m.facebook.com", "news letter", "LinkedIn", "(direct)"} <= sources


def test_contact_report_is_thresholded_and_lists_crm_contacts(settled) -> None:
    dataset, client = settled
    # What the ids are, GA4 hiding none (thresholding, (other): tests/sandbox/test_ga4_restrictions.py).
    restrictions = dataset.ga4_restrictions
    dataset.ga4_restrictions = Ga4Restrictions.off()
    try:
        _check_contact_ids(dataset, client)
    finally:
        dataset.ga4_restrictions = restrictions


def _check_contact_ids(dataset: Dataset, client: BetaAnalyticsDataClient) -> None:
    request = report_request(
        dataset,
        ("customUser:crm_contact_id", "sessionSource", "sessionMedium"),
        ("sessions", "keyEvents"),
        order_bys=[OrderBy(metric=OrderBy.MetricOrderBy(metric_name="sessions"), desc=True)],
    )
    request.limit = 100_000
    response = client.run_report(request)
    assert response.metadata.subject_to_thresholding is True
    assert response.metadata.currency_code == "EUR" and response.metadata.time_zone == "Europe/Paris"
    sessions = [int(r.metric_values[0].value) for r in response.rows]
    assert sessions == sorted(sessions, reverse=True)
    ids = {r.dimension_values[0].value for r in response.rows}
    assert "(not set)" in ids  # anonymous visitors, and contacts' sessions on another device
    live = {str(r.id) for r in dataset.crm.iter_records("contacts")}
    archived = {str(r.id) for r in dataset.crm.iter_records("contacts", archived=True)}
    merged = {
        m
        for r in dataset.crm.iter_records("contacts")
        for m in (r.properties.get("hs_merged_object_ids") or "").split(";")
        if m
    }
    assert ids - {"(not set)"} <= live | archived | merged
    # A merge makes a new record; the sessions still carry the ids the people had before (either one).
    merged_records = [
        set(r.properties["hs_merged_object_ids"].split(";"))
        for r in dataset.crm.iter_records("contacts")
        if r.properties.get("hs_merged_object_ids")
    ]
    assert merged_records and all(old & ids for old in merged_records), "sessions carry pre-merge ids"
    web_contacts = {
        str(r.id)
        for r in dataset.crm.iter_records("contacts")
        # a merged record's sessions carry its old ids (checked above)
        if r.properties["hs_analytics_source"] != "OFFLINE" and not r.properties.get("hs_merged_object_ids")
    }
    assert web_contacts <= ids
    # Every web contact converted (form submit) once on its first session.
    key_events = {}
    for r in response.rows:
        cid = r.dimension_values[0].value
        key_events[cid] = key_events.get(cid, 0) + int(r.metric_values[1].value)
    assert all(key_events[c] >= 1 for c in web_contacts)


def test_unknown_metric_and_incompatible_request_are_bad_requests(settled) -> None:
    dataset, client = settled
    with pytest.raises(BadRequest, match="conversionz is not a valid metric"):
        client.run_report(report_request(dataset, ("date",), ("conversionz",)))
    with pytest.raises(BadRequest, match="sessionSorce is not a valid dimension"):
        client.run_report(report_request(dataset, ("sessionSorce",), ("sessions",)))
    with pytest.raises(BadRequest, match="remove advertiserAdCost"):
        client.run_report(report_request(dataset, ("customUser:crm_contact_id",), ("advertiserAdCost",)))
    wrong = report_request(dataset, ("date",), ("sessions",))
    wrong.property = "properties/999"
    with pytest.raises(Forbidden):
        client.run_report(wrong)


def test_hourly_token_budget_exhaustion_gives_429() -> None:
    dataset = generate(300, 5)
    dataset.ga4_quota.tokens_per_hour = 6
    with serve(dataset) as base_url:
        client = client_for(base_url)
        request = report_request(dataset, UTM_DIMENSIONS, ("sessions",), return_property_quota=True)
        remaining = []
        with pytest.raises(TooManyRequests, match="Exhausted property tokens per hour") as raised:
            for _ in range(10):
                response = client.run_report(request)
                quota = response.property_quota
                assert quota.tokens_per_hour.consumed > 1  # 18 months of daily rows cost more than one token
                remaining.append(quota.tokens_per_hour.remaining)
        assert raised.value.code == 429
        assert remaining and remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
        dataset.ga4_quota.reset()
        assert client.run_report(request).row_count > 0


def test_processing_days_change_between_pulls_until_settled() -> None:
    dataset = generate(600, 9)
    last_two = dataset.ga4_processing_days
    assert last_two == [LAST_DAY - dt.timedelta(days=1), LAST_DAY]
    with serve(dataset) as base_url:
        client = client_for(base_url)
        request = report_request(
            dataset, ("date",), ("sessions", "advertiserAdCost"), start=last_two[0] - dt.timedelta(days=1)
        )

        def pull() -> dict[str, tuple[int, Decimal]]:
            rows, _, _ = pull_all(client, request, page=2)  # two pages: one pull, one set of numbers
            return {d[0]: (int(m[0]), Decimal(m[1])) for d, m in rows}

        pulls = [pull() for _ in range(3)]
        settled_day = (last_two[0] - dt.timedelta(days=1)).strftime("%Y%m%d")
        processing_day = last_two[1].strftime("%Y%m%d")
        assert pulls[0][settled_day] == pulls[1][settled_day] == pulls[2][settled_day]
        sessions = [p[processing_day][0] for p in pulls]
        cost = [p[processing_day][1] for p in pulls]
        assert cost[0] < cost[1] < cost[2], "each pull of a processing day revises its numbers"
        assert sessions[0] <= sessions[1] <= sessions[2]
        dataset.advance_ga4_processing(2)
        final = pull()
        mask = dataset.ga4.day == dataset.ga4.day_index(last_two[1])
        assert final[processing_day][0] == int(dataset.ga4.metrics["sessions"][mask].sum()) > sessions[0]
        assert (
            final[processing_day][1] * 100
            == int(dataset.ga4.metrics["advertiserAdCost"][mask].sum())
            > cost[2] * 100
        )
        assert final == pull(), "settled days no longer move"


def test_filter_two_date_ranges_and_totals(settled) -> None:
    dataset, client = settled
    request = report_request(dataset, ("sessionSource", "sessionMedium"), ("sessions", "advertiserAdCost"))
    request.date_ranges = [
        DateRange(start_date="2025-12-01", end_date="2025-12-31", name="december"),
        DateRange(start_date="2026-01-01", end_date="2026-01-31", name="january"),
    ]
    request.dimension_filter = FilterExpression(
        filter=Filter(
            field_name="sessionMedium",
            string_filter=Filter.StringFilter(match_type=Filter.StringFilter.MatchType.EXACT, value="cpc"),
        )
    )
    request.metric_aggregations = [MetricAggregation.TOTAL]
    response = client.run_report(request)
    assert [h.name for h in response.dimension_headers] == ["sessionSource", "sessionMedium", "dateRange"]
    rows = [
        ([v.value for v in r.dimension_values], [v.value for v in r.metric_values]) for r in response.rows
    ]
    assert {d[2] for d, _ in rows} == {"december", "january"}
    assert {d[1].lower() for d, _ in rows} == {"cpc"}
    assert {"google", "linkedin", "facebook"} <= {d[0] for d, _ in rows}
    (total,) = response.totals
    assert int(total.metric_values[0].value) == sum(int(m[0]) for _, m in rows)
    assert Decimal(total.metric_values[1].value) == sum(Decimal(m[1]) for _, m in rows)
    # December alone, read directly from the facts: the filter and the ranges did not mix rows up.
    facts = dataset.ga4
    december = (facts.day >= facts.day_index(dt.date(2025, 12, 1))) & (
        facts.day <= facts.day_index(dt.date(2025, 12, 31))
    )
    google_cost = int(facts.metrics["advertiserAdCost"][december].sum())
    assert sum(Decimal(m[1]) for d, m in rows if d[0] == "google" and d[2] == "december") * 100 == google_cost
