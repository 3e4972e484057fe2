"""GA4's restrictions in the stand-in, through the official client over HTTP: advertiser metrics a property
cannot serve (runReport 400, checkCompatibility), thresholding and the `(other)` row.

Expected rows are recomputed here from the generator's facts with plain Python, independently of the
stand-in's numpy engine.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator

import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    CheckCompatibilityRequest,
    Compatibility,
    DateRange,
    Dimension,
    Metric,
    MetricAggregation,
    OrderBy,
    RunReportRequest,
)
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import BadRequest, Forbidden
from google.auth.credentials import AnonymousCredentials

from sandbox.dataset import Dataset, Ga4Restrictions
from sandbox.generator import generate
from sandbox.server import SandboxServer

CONTACTS = 900
SEED = 5
ADVERTISER = ("advertiserAdCost", "advertiserAdClicks", "advertiserAdImpressions")
CONTACT = "customUser:crm_contact_id"
CONTACT_REPORT = ("date", CONTACT, "sessionSource", "sessionMedium", "sessionCampaignName")
MONTH = (dt.date(2026, 3, 1), dt.date(2026, 4, 30))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Dataset, BetaAnalyticsDataClient]]:
    dataset = generate(CONTACTS, SEED)
    dataset.advance_ga4_processing(2)
    with SandboxServer(dataset=dataset, rate_limits=False) as sandbox:
        client = BetaAnalyticsDataClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(api_endpoint=sandbox.base_url),
        )
        yield dataset, client


@pytest.fixture
def ga4(served) -> Iterator[tuple[Dataset, BetaAnalyticsDataClient]]:
    """The shared sandbox with its default restrictions back after each test."""
    dataset, client = served
    yield dataset, client
    dataset.ga4_restrictions = Ga4Restrictions()


def prop(dataset: Dataset) -> str:
    return f"properties/{dataset.ga4_property_id}"


def check(client, dataset, dims=(), metrics=(), only=None):
    request = CheckCompatibilityRequest(
        property=prop(dataset),
        dimensions=[Dimension(name=d) for d in dims],
        metrics=[Metric(name=m) for m in metrics],
    )
    if only is not None:
        request.compatibility_filter = only
    response = client.check_compatibility(request)
    return (
        {c.dimension_metadata.api_name: c.compatibility for c in response.dimension_compatibilities},
        {c.metric_metadata.api_name: c.compatibility for c in response.metric_compatibilities},
    )


def report(dataset, dims, metrics, span=MONTH, **kw) -> RunReportRequest:
    return RunReportRequest(
        property=prop(dataset),
        dimensions=[Dimension(name=d) for d in dims],
        metrics=[Metric(name=m) for m in metrics],
        date_ranges=[DateRange(start_date=span[0].isoformat(), end_date=span[1].isoformat())],
        order_bys=[OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name=d)) for d in dims],
        metric_aggregations=[MetricAggregation.TOTAL],
        **{"limit": 100_000, **kw},
    )


def rows_of(response) -> dict[tuple[str, ...], tuple[int, ...]]:
    return {
        tuple(v.value for v in r.dimension_values): tuple(int(float(v.value) * 100) for v in r.metric_values)
        for r in response.rows
    }


# --- advertiser metrics -------------------------------------------------------------------------------------


def test_check_compatibility_lists_what_can_be_added_like_the_data_api(ga4) -> None:
    dataset, client = ga4
    dims, metrics = check(client, dataset, ("date", "sessionSource", "sessionMedium", "sessionCampaignName"))
    assert {m: metrics[m] for m in ADVERTISER} == dict.fromkeys(ADVERTISER, Compatibility.COMPATIBLE)
    assert metrics["sessions"] == Compatibility.COMPATIBLE and dims[CONTACT] == Compatibility.COMPATIBLE
    assert set(metrics) == {
        "sessions", "totalUsers", "keyEvents", "purchaseRevenue", "totalRevenue", "transactions", *ADVERTISER
    }  # fmt: skip

    # With the contact dimension, the advertiser metrics could not be added; the filter keeps just those.
    dims, metrics = check(client, dataset, (CONTACT,), only=Compatibility.INCOMPATIBLE)
    assert dims == {} and metrics == dict.fromkeys(ADVERTISER, Compatibility.INCOMPATIBLE)
    # With advertiser metrics asked, the contact dimension is the one that cannot be added.
    dims, _ = check(client, dataset, ("date",), ("advertiserAdCost",), only=Compatibility.INCOMPATIBLE)
    assert dims == {CONTACT: Compatibility.INCOMPATIBLE}

    # The method itself fails when the request is incompatible, and on unknown names or another property.
    with pytest.raises(BadRequest, match="Please remove advertiserAdCost to make the request compatible"):
        check(client, dataset, (CONTACT,), ("advertiserAdCost",))
    with pytest.raises(BadRequest, match="advertiserAdKost is not a valid metric"):
        check(client, dataset, ("date",), ("advertiserAdKost",))
    other = CheckCompatibilityRequest(property="properties/999", dimensions=[Dimension(name="date")])
    with pytest.raises(Forbidden):
        client.check_compatibility(other)


def test_a_property_without_google_ads_refuses_advertiser_metrics_and_serves_the_rest(ga4) -> None:
    dataset, client = ga4
    dataset.ga4_restrictions = Ga4Restrictions(ads_linked=False)
    utm = ("date", "sessionSource", "sessionMedium", "sessionCampaignName")
    _, metrics = check(client, dataset, utm)
    assert {m: metrics[m] for m in ADVERTISER} == dict.fromkeys(ADVERTISER, Compatibility.INCOMPATIBLE)
    assert metrics["sessions"] == metrics["purchaseRevenue"] == Compatibility.COMPATIBLE
    with pytest.raises(BadRequest, match="Please remove advertiserAdCost") as refused:
        client.run_report(report(dataset, utm, ("sessions", "advertiserAdCost")))
    assert refused.value.code == 400 and "INVALID_ARGUMENT" in str(refused.value.response.json())
    sessions = client.run_report(report(dataset, utm, ("sessions",)))
    assert sum(int(r.metric_values[0].value) for r in sessions.rows) > 0

    # Reported against the real API: the check says yes, the report says no.
    dataset.ga4_restrictions = Ga4Restrictions(ads_linked=False, check_disagrees=True)
    _, metrics = check(client, dataset, utm)
    assert metrics["advertiserAdCost"] == Compatibility.COMPATIBLE
    with pytest.raises(BadRequest, match="Please remove advertiserAdCost"):
        client.run_report(report(dataset, utm, ("advertiserAdCost",)))


# --- thresholding and (other) -------------------------------------------------------------------------------


def expected_contact_report(dataset: Dataset, threshold: int, limit: int):
    """(rows kept, the (other) rows, total sessions) of the contact report over MONTH, from the facts."""
    facts = dataset.ga4
    dims = ("sessionSource", "sessionMedium", "sessionCampaignName")
    first, last = facts.day_index(MONTH[0]), facts.day_index(MONTH[1])
    per_value: dict[tuple[int, int], int] = defaultdict(int)  # (day, contact) -> sessions
    cohort_users: dict[tuple, int] = defaultdict(int)  # (day, source, medium, campaign) -> users
    facts_in_month = []
    for i in range(len(facts)):
        day = int(facts.day[i])
        if not first <= day <= last:
            continue
        utm = tuple(facts.tables[d][int(facts.dims[d][i])] for d in dims)
        contact, sessions = int(facts.contact[i]), int(facts.metrics["sessions"][i])
        per_value[(day, contact)] += sessions
        cohort_users[(day, *utm)] += int(facts.metrics["totalUsers"][i])
        facts_in_month.append((day, contact, utm, sessions))
    kept_values: set[tuple[int, int]] = set()
    by_day: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (day, contact), sessions in per_value.items():
        by_day[day].append((-sessions, contact))
    for day, ranked in by_day.items():
        kept_values |= {(day, contact) for _, contact in sorted(ranked)[:limit]}
    rows: dict[tuple[str, ...], int] = defaultdict(int)
    other: dict[str, int] = defaultdict(int)
    for day, contact, utm, sessions in facts_in_month:
        date = (facts.first_day + dt.timedelta(days=day)).strftime("%Y%m%d")
        if (day, contact) not in kept_values:
            other[date] += sessions
            continue
        if cohort_users[(day, *utm)] >= threshold:
            rows[(date, "(not set)" if contact == 0 else str(contact), *utm)] += sessions
    total = sum(s for *_, s in facts_in_month)
    return {k: v for k, v in rows.items() if v}, {k: v for k, v in other.items() if v}, total


def test_contact_report_withholds_small_cohorts_and_folds_the_long_tail_into_other(ga4) -> None:
    dataset, client = ga4
    dataset.ga4_restrictions = Ga4Restrictions(threshold_users=3, other_values_per_day=4)
    response = client.run_report(report(dataset, CONTACT_REPORT, ("sessions",)))
    rows, other, total = expected_contact_report(dataset, threshold=3, limit=4)
    served = {k: v[0] // 100 for k, v in rows_of(response).items()}
    served_other = {k[0]: v for k, v in served.items() if k[1] == "(other)"}
    assert {k: v for k, v in served.items() if k[1] != "(other)"} == rows
    assert served_other == other and len(other) > 10, "busy days fold their long tail"
    assert all(set(k[1:]) == {"(other)"} for k in served if k[1] == "(other)")
    # Withheld rows are missing from the rows and from rowCount, but the totals still count them.
    assert response.row_count == len(response.rows) == len(rows) + len(other)
    assert int(response.totals[0].metric_values[0].value) == total > sum(served.values())
    assert response.metadata.subject_to_thresholding and response.metadata.data_loss_from_other_row
    # Never more than 4 contact values a day, plus the (other) row.
    values_per_day: dict[str, set[str]] = defaultdict(set)
    for key in served:
        values_per_day[key[0]].add(key[1])
    assert max(len(v - {"(other)"}) for v in values_per_day.values()) == 4

    # Paged the way the extract pages, the rows are the same: the (other) row sorts like any value.
    paged, offset = {}, 0
    while True:
        page = client.run_report(report(dataset, CONTACT_REPORT, ("sessions",), offset=offset, limit=37))
        paged.update({k: v[0] // 100 for k, v in rows_of(page).items()})
        offset += len(page.rows)
        if offset >= page.row_count:
            break
    assert paged == served


def test_restrictions_off_or_a_report_without_the_contact_dimension_hide_nothing(ga4) -> None:
    dataset, client = ga4
    rows, other, total = expected_contact_report(dataset, threshold=0, limit=10**9)
    assert other == {}
    dataset.ga4_restrictions = Ga4Restrictions.off()
    response = client.run_report(report(dataset, CONTACT_REPORT, ("sessions",)))
    assert {k: v[0] // 100 for k, v in rows_of(response).items()} == rows
    assert sum(rows.values()) == total and not response.metadata.data_loss_from_other_row

    # Defaults on: the traffic report (no user-scoped dimension) is neither thresholded nor folded.
    dataset.ga4_restrictions = Ga4Restrictions()
    traffic = client.run_report(report(dataset, ("date", "sessionSource", "sessionMedium"), ("sessions",)))
    assert not traffic.metadata.subject_to_thresholding and not traffic.metadata.data_loss_from_other_row
    assert sum(int(r.metric_values[0].value) for r in traffic.rows) == total
    assert int(traffic.totals[0].metric_values[0].value) == total


def test_default_restrictions_scale_with_the_data_set(ga4) -> None:
    dataset, client = ga4
    assert dataset.ga4_other_values_per_day == 6  # 900 contacts // 150
    assert generate(300, 1).ga4_other_values_per_day == 5
    response = client.run_report(report(dataset, CONTACT_REPORT, ("sessions",)))
    rows, other, _ = expected_contact_report(dataset, threshold=2, limit=6)
    served = {k: v[0] // 100 for k, v in rows_of(response).items()}
    assert {k: v for k, v in served.items() if k[1] != "(other)"} == rows
    assert {k[0]: v for k, v in served.items() if k[1] == "(other)"} == other
    tied = sum(v for k, v in rows.items() if k[1] != "(not set)")
    # Most of the contacts' traffic stays tied by default; a visible part does not.
    facts = dataset.ga4
    first, last = facts.day_index(MONTH[0]), facts.day_index(MONTH[1])
    truly_tied = sum(
        int(facts.metrics["sessions"][i])
        for i in range(len(facts))
        if first <= int(facts.day[i]) <= last and facts.contact[i]
    )
    assert 0.5 * truly_tied < tied < truly_tied


def test_a_server_can_start_as_a_property_without_google_ads() -> None:
    with SandboxServer(contacts=300, seed=2, ga4_restrictions=Ga4Restrictions(ads_linked=False)) as sandbox:
        client = BetaAnalyticsDataClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(api_endpoint=sandbox.base_url),
        )
        utm = ("date", "sessionSource")
        _, metrics = check(client, sandbox.dataset, utm, only=Compatibility.INCOMPATIBLE)
    assert metrics == dict.fromkeys(ADVERTISER, Compatibility.INCOMPATIBLE)


def test_contacts_later_sessions_are_sometimes_untied_their_first_never(served) -> None:
    """GA4's (not set) for contacts: ~15 % of a contact's later sessions come without the id (another device),
    purchases included; the first session (the form that sets the id) always has it."""
    dataset, _ = served
    generated = generate(CONTACTS, SEED)  # the same data set, before GA4 saw it
    facts = generated.ga4
    # Records created by a merge have no session of their own (their sessions carry the merged ids).
    web_ids = {
        r.id
        for archived in (False, True)
        for r in generated.crm.iter_records("contacts", archived=archived)
        if r.properties.get("hs_analytics_source") != "OFFLINE"
        and not r.properties.get("hs_merged_object_ids")
    }
    seen = {int(c) for c in facts.contact.tolist() if c}
    assert len(web_ids) > 500 and web_ids <= seen, "every web contact's first session carries its id"
    anonymous_share = facts.metrics["sessions"][facts.contact == 0].sum() / facts.metrics["sessions"].sum()
    assert 0.75 < anonymous_share < 0.9
    # Untied purchases exist: revenue under (not set), although anonymous visitors never buy here.
    untied_revenue = int(facts.metrics["purchaseRevenue"][facts.contact == 0].sum())
    total_revenue = int(facts.metrics["purchaseRevenue"].sum())
    assert 0.05 < untied_revenue / total_revenue < 0.3
    assert dataset.ga4_restrictions == Ga4Restrictions()
