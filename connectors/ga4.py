"""GA4 Data API (v1beta, official `google-analytics-data` client over REST) -> raw.ga4_* tables.

Declared reports (`REPORTS`), each in its own raw table, plus one row per day and report in
raw.ga4_report_days with the response metadata (currency, time zone, `(other)` row, thresholding, sampling):
- `traffic_daily`: sessions, users, key events and revenue per day and UTM combination, for every visitor;
- `ad_cost_daily` (optional): Google Ads cost, clicks and impressions per day and source / medium / campaign.
  Before it, GA4's checkCompatibility says whether the property serves advertiser metrics with these
  dimensions (no Google Ads link: it does not). When it cannot, the report is skipped, the answer is recorded
  in ops.ga4_capabilities and `result.cost` says why; the spend sheet then covers the cost (int_cost_daily).
  That is a property capability, not an incomplete extract: `result.complete` stays True.
- `contact_sessions` (optional, skipped when the property has no such custom dimension): sessions, key events
  and revenue per day and CRM contact id. `(not set)` and `(other)` rows are kept, so what cannot be tied to a
  contact is measured (mart ga4_contact_coverage). GA4 thresholds this report: its totals count rows it
  withholds, so rows adding up to less than the totals is expected there (`ReportResult.withheld_sessions`).

How days are pulled and replaced:
- GA4 keeps revising the last 48-72 h, so the nightly run re-pulls a trailing window (`ga4.trailing_days`,
  default 3) ending yesterday in the *property's* time zone, and replaces those days: delete + insert per
  chunk of days in one transaction, so a day is never half old, half new.
- The first nightly run of a report (no state yet) pulls `FIRST_RUN_HISTORY_DAYS` of history instead of the
  window, so ROI has its cost history from day one; later nightly runs pull the window only.
- A backfill (`start`/`end`) walks any date range in chunks (`ga4.backfill_chunk_days`) oldest first; each
  chunk commits together with the ranges still to do (ops.sync_state, stream `ga4.<report>`, `extra.pending`),
  so a crash or a quota stop resumes where it stopped, on the next run, whatever kind that run is.
- Pages: `limit`/`offset` up to `rowCount`, ordered on every dimension so pages never overlap; requests ask
  for metric totals and the rows of all pages must add up to them for additive metrics (a mismatch means GA4
  changed the data between pages: the chunk is pulled again once). Users are not additive and not checked.
- Response metadata is per request, so a chunk's flags are stored on each of its days. Currency metrics are
  computed by GA4 in floating point ("499.782208") and stored rounded half-even to the cent (DECIMAL(18,2)).

Quota policy (every request asks `returnPropertyQuota`):
- Full speed while the hourly token buckets (`tokensPerHour`, `tokensPerProjectPerHour`) have >= 25 % left.
- Below 25 % the extract pauses before each request, linearly longer as the bucket drains, up to
  `QUOTA_MAX_PAUSE_SECONDS` at 0 % (the hourly buckets refill continuously within the hour).
- If any bucket (hourly, project-hourly or daily) has less left than the previous request cost, or GA4 answers
  429 for a token or thresholded-request quota, the run stops cleanly: finished chunks stay committed, the
  rest is saved as pending and the result says `complete=False, stopped_reason=...`. A 429 for *concurrent*
  requests is transient and retried after a short wait.
- 5xx, timeouts and dropped connections are retried with exponential backoff and jitter (`MAX_ATTEMPTS`); the
  server-error quota is small (10 per hour on standard properties), so retries stay few and spaced. When they
  run out the error is raised, with the unfinished ranges saved as pending like a quota stop.
- 400/403 (bad names, no access) fail fast with the GA4 message: retrying cannot fix configuration; for an
  optional report a 400 skips that report only.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
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
    RunReportResponse,
)
from google.api_core import exceptions as google_errors

from connectors import warehouse
from connectors.config import Settings

log = logging.getLogger(__name__)

# --- settings -----------------------------------------------------------------------------------------------

API_SCOPES = ("https://www.googleapis.com/auth/analytics.readonly",)
DEFAULT_TIME_ZONE = "Europe/Paris"  # used until a response has told us the property's own time zone
FIRST_RUN_HISTORY_DAYS = 730  # a nightly run on an empty warehouse pulls two years once (about 25 requests)
PAGE_SIZE = 100_000  # GA4 returns at most 250k rows per request; 100k keeps responses a few MB
REQUEST_TIMEOUT_SECONDS = 120.0
MAX_ATTEMPTS = 5  # per request, for 5xx / transport errors / concurrent-request 429
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0
CONCURRENT_QUOTA_WAIT_SECONDS = 5.0
QUOTA_SLOW_BELOW = 0.25  # fraction of an hourly token bucket left under which we start pausing
QUOTA_MAX_PAUSE_SECONDS = 60.0
RUN_KIND = "ga4"
STREAM_PREFIX = "ga4."
REPORT_DAYS_TABLE = "raw.ga4_report_days"
CAPABILITIES_TABLE = "ops.ga4_capabilities"
COST_CAPABILITY = "advertiser_cost"  # the property serves Google Ads cost (advertiserAdCost) by UTM and day


# --- declared reports ---------------------------------------------------------------------------------------

INT = "int"
COUNT4 = "decimal(18,4)"
MONEY = "decimal(18,2)"
_ARROW_TYPES = {INT: pa.int64(), COUNT4: pa.decimal128(18, 4), MONEY: pa.decimal128(18, 2)}
_SCALES = {COUNT4: Decimal("0.0001"), MONEY: Decimal("0.01")}


@dataclass(frozen=True)
class ReportSpec:
    """One GA4 report: its API dimensions/metrics, the raw table it lands in and that table's key."""

    name: str
    target_table: str
    dimensions: tuple[tuple[str, str], ...]  # (GA4 API name, column)
    metrics: tuple[tuple[str, str, str], ...]  # (GA4 API name, column, kind)
    optional: bool = False  # skipped (with a warning) when the property cannot serve it
    stores_currency: bool = False  # the raw table has a currency_code column (the report currency per row)
    capability: str | None = None  # checked with checkCompatibility before any request (COST_CAPABILITY)
    required_metrics: tuple[str, ...] = ()  # with a capability: the metrics without which it is not pulled

    @property
    def stream(self) -> str:
        return STREAM_PREFIX + self.name

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The target table's key, as declared once in connectors.warehouse."""
        return warehouse.raw_tables()[self.target_table].keys


TRAFFIC_DAILY = ReportSpec(
    name="traffic_daily",
    target_table="raw.ga4_traffic_daily",
    dimensions=(
        ("date", "date"),
        ("sessionSource", "session_source"),
        ("sessionMedium", "session_medium"),
        ("sessionCampaignName", "session_campaign_name"),
        ("sessionManualTerm", "session_manual_term"),
        ("sessionManualAdContent", "session_manual_ad_content"),
        ("sessionDefaultChannelGroup", "session_default_channel_group"),
    ),
    metrics=(
        ("sessions", "sessions", INT),
        ("totalUsers", "total_users", INT),
        ("keyEvents", "key_events", COUNT4),
        ("purchaseRevenue", "purchase_revenue", MONEY),
        ("totalRevenue", "total_revenue", MONEY),
        ("transactions", "transactions", INT),
    ),
    stores_currency=True,
)

# Advertiser metrics in their own optional report: a property without a Google Ads link (or a dimension that
# does not go with them) refuses the whole request, and sessions and revenue must not depend on that.
AD_COST_DAILY = ReportSpec(
    name="ad_cost_daily",
    target_table="raw.ga4_ad_cost_daily",
    dimensions=(
        ("date", "date"),
        ("sessionSource", "session_source"),
        ("sessionMedium", "session_medium"),
        ("sessionCampaignName", "session_campaign_name"),
    ),
    metrics=(
        ("advertiserAdCost", "advertiser_ad_cost", MONEY),
        ("advertiserAdClicks", "advertiser_ad_clicks", INT),
        ("advertiserAdImpressions", "advertiser_ad_impressions", INT),
    ),
    optional=True,
    stores_currency=True,
    capability=COST_CAPABILITY,
    required_metrics=("advertiserAdCost",),
)

CONTACT_DIMENSION = "customUser:crm_contact_id"


def contact_sessions_spec(contact_dimension: str = CONTACT_DIMENSION) -> ReportSpec:
    """Sessions per day and contact id. Every row is kept, `(not set)` and `(other)` included, so the sessions
    and revenue that cannot be tied to a contact are measured rather than lost (mart ga4_contact_coverage)."""
    return ReportSpec(
        name="contact_sessions",
        target_table="raw.ga4_contact_sessions",
        dimensions=(
            ("date", "date"),
            (contact_dimension, "contact_id"),
            ("sessionSource", "session_source"),
            ("sessionMedium", "session_medium"),
            ("sessionCampaignName", "session_campaign_name"),
        ),
        metrics=(
            ("sessions", "sessions", INT),
            ("keyEvents", "key_events", COUNT4),
            ("purchaseRevenue", "purchase_revenue", MONEY),
        ),
        optional=True,
    )


REPORTS: dict[str, ReportSpec] = {
    TRAFFIC_DAILY.name: TRAFFIC_DAILY,
    AD_COST_DAILY.name: AD_COST_DAILY,
    "contact_sessions": contact_sessions_spec(),
}


# --- errors and results -------------------------------------------------------------------------------------


class GA4ConfigError(ValueError):
    """GA4 refused the request for a reason retrying cannot fix (bad property, names, no access)."""


class QuotaStop(Exception):
    """A GA4 quota is (about to be) exhausted: stop cleanly and resume on the next run."""


@dataclass
class ReportResult:
    report: str
    rows: int = 0
    rejected: int = 0
    days: int = 0
    pages: int = 0
    chunks: int = 0
    skipped: str | None = None  # why an optional report was not pulled (a property capability, not a failure)
    withheld_sessions: int = 0  # sessions GA4 counted in its totals but withheld from the rows (thresholding)


@dataclass(frozen=True)
class CostAvailability:
    """Whether GA4 serves Google Ads cost for this property, as checkCompatibility (or runReport) said."""

    available: bool
    reason: str | None = None  # why not, in GA4's words where it gave some
    metrics: tuple[str, ...] = ()  # the advertiser metrics it serves with the cost report's dimensions


@dataclass
class GA4ExtractResult:
    property_id: str
    mode: str  # "nightly" | "backfill"
    start: date
    end: date
    complete: bool = True
    stopped_reason: str | None = None
    pending: dict[str, list[tuple[date, date]]] = field(default_factory=dict)  # per report, left for next run
    reports: dict[str, ReportResult] = field(default_factory=dict)
    calls: int = 0
    retries: int = 0
    quota_pause_seconds: float = 0.0
    tokens_consumed: int = 0
    time_zone: str | None = None
    currency_code: str | None = None
    # Google Ads cost availability (None: the cost report was not asked for or not reached). Unavailable
    # cost is a property capability, not incompleteness: `complete` stays True, the spend sheet covers it.
    cost: CostAvailability | None = None

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.reports.values())

    @property
    def skipped(self) -> dict[str, str]:
        """Optional reports the property cannot serve, with the reason (not incompleteness either)."""
        return {name: r.skipped for name, r in self.reports.items() if r.skipped}


# --- date ranges --------------------------------------------------------------------------------------------

DateSpan = tuple[date, date]


def merge_spans(spans: Sequence[DateSpan]) -> list[DateSpan]:
    """Sorted, non-overlapping, non-adjacent spans covering the same days."""
    merged: list[DateSpan] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract_span(spans: Sequence[DateSpan], done: DateSpan) -> list[DateSpan]:
    left: list[DateSpan] = []
    for start, end in spans:
        if end < done[0] or start > done[1]:
            left.append((start, end))
            continue
        if start < done[0]:
            left.append((start, done[0] - timedelta(days=1)))
        if end > done[1]:
            left.append((done[1] + timedelta(days=1), end))
    return left


def chunk_spans(spans: Sequence[DateSpan], chunk_days: int) -> Iterator[DateSpan]:
    for start, end in spans:
        cursor = start
        while cursor <= end:
            chunk_end = min(end, cursor + timedelta(days=chunk_days - 1))
            yield cursor, chunk_end
            cursor = chunk_end + timedelta(days=1)


def trailing_window(today: date, days: int) -> DateSpan:
    """The `days` days ending yesterday (relative to `today`, a date in the property's time zone)."""
    end = today - timedelta(days=1)
    return end - timedelta(days=max(days, 1) - 1), end


# --- client -------------------------------------------------------------------------------------------------


def make_client(endpoint: str | None, credentials_file: str | Path | None) -> BetaAnalyticsDataClient:
    """Official client, REST: anonymous for a plain-http endpoint (the sandbox), else service account."""
    from google.api_core.client_options import ClientOptions

    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    if endpoint and endpoint.startswith("http://"):
        from google.auth.credentials import AnonymousCredentials

        # Never send real credentials over plain http: only the local sandbox is reached that way.
        return BetaAnalyticsDataClient(
            credentials=AnonymousCredentials(), transport="rest", client_options=options
        )
    credentials = None
    if credentials_file:
        from google.oauth2 import service_account

        credentials = service_account.Credentials.from_service_account_file(
            str(credentials_file), scopes=API_SCOPES
        )
    return BetaAnalyticsDataClient(credentials=credentials, transport="rest", client_options=options)


def property_resource(property_id: str) -> str:
    text = str(property_id).strip()
    return text if text.startswith("properties/") else f"properties/{text}"


# --- calling the API with retries and quota awareness -------------------------------------------------------

_TRANSIENT = (
    google_errors.InternalServerError,
    google_errors.BadGateway,
    google_errors.ServiceUnavailable,
    google_errors.GatewayTimeout,
    google_errors.DeadlineExceeded,
)


def _transport_errors() -> tuple[type[BaseException], ...]:
    import requests

    return (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
    )


@dataclass
class QuotaPolicy:
    slow_below: float = QUOTA_SLOW_BELOW
    max_pause_seconds: float = QUOTA_MAX_PAUSE_SECONDS

    def pause_for(self, remaining: int, capacity: int) -> float:
        """Seconds to wait before the next request when an hourly bucket has `remaining` of `capacity`."""
        if capacity <= 0:
            return 0.0
        left = max(remaining, 0) / capacity
        if left >= self.slow_below:
            return 0.0
        return self.max_pause_seconds * (1 - left / self.slow_below)


class ReportCaller:
    """Sends runReport requests: retries transient failures, reads propertyQuota, paces or stops on quota."""

    HOURLY_BUCKETS = ("tokens_per_hour", "tokens_per_project_per_hour")
    ALL_BUCKETS = (*HOURLY_BUCKETS, "tokens_per_day")

    def __init__(
        self,
        client: BetaAnalyticsDataClient,
        *,
        policy: QuotaPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry_base_seconds: float = RETRY_BASE_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.client = client
        self.policy = policy or QuotaPolicy()
        self.sleep = sleep
        self._jitter = random.Random()  # its own: the process-wide random is a test's or a library's
        self.retry_base_seconds = retry_base_seconds
        self.max_attempts = max_attempts
        self.calls = 0
        self.retries = 0
        self.paused_seconds = 0.0
        self.tokens_consumed = 0
        self._capacity: dict[str, int] = {}
        self._remaining: dict[str, int] = {}
        self._last_cost = 0

    def _before_request(self) -> None:
        for bucket, remaining in self._remaining.items():
            if self._last_cost and remaining < self._last_cost:
                raise QuotaStop(f"GA4 quota {bucket} nearly exhausted ({remaining} tokens left)")
        pause = max(
            (
                self.policy.pause_for(self._remaining[b], self._capacity.get(b, 0))
                for b in self.HOURLY_BUCKETS
                if b in self._remaining
            ),
            default=0.0,
        )
        if pause > 0:
            log.info("GA4 hourly token quota running low: pausing %.1f s before the next request", pause)
            self.paused_seconds += pause
            self.sleep(pause)

    def _after_response(self, response: RunReportResponse) -> None:
        quota = response.property_quota
        cost = 0
        for bucket in self.ALL_BUCKETS:
            status = getattr(quota, bucket, None)
            if status is None or (not status.consumed and not status.remaining):
                continue
            self._remaining[bucket] = status.remaining
            # Capacity of a bucket = the most we have seen it hold: remaining after a request + its cost.
            self._capacity[bucket] = max(self._capacity.get(bucket, 0), status.remaining + status.consumed)
            cost = max(cost, status.consumed)
        self._last_cost = cost
        self.tokens_consumed += cost

    def run(self, request: RunReportRequest) -> RunReportResponse:
        self._before_request()
        response = self._send(self.client.run_report, request, "report")
        self._after_response(response)
        return response

    def check_compatibility(self, request: CheckCompatibilityRequest) -> Any:
        """checkCompatibility with the same retries and error mapping as a report (it reports no quota)."""
        self._before_request()
        return self._send(self.client.check_compatibility, request, "compatibility check")

    def _send(self, method: Callable[..., Any], request: Any, what: str) -> Any:
        transport_errors = _transport_errors()
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            try:
                return method(request=request, timeout=REQUEST_TIMEOUT_SECONDS)
            except google_errors.TooManyRequests as exc:
                message = str(getattr(exc, "message", exc))
                if "concurrent" in message.lower() and attempt < self.max_attempts:
                    self._wait(attempt, CONCURRENT_QUOTA_WAIT_SECONDS)
                    continue
                raise QuotaStop(f"GA4 answered 429 RESOURCE_EXHAUSTED: {message}") from exc
            except (
                google_errors.BadRequest,
                google_errors.Forbidden,
                google_errors.Unauthorized,
                google_errors.NotFound,
            ) as exc:
                raise GA4ConfigError(
                    f"GA4 refused the {request.property} {what} ({exc.code}): {getattr(exc, 'message', exc)}"
                ) from exc
            except (*_TRANSIENT, *transport_errors) as exc:
                if attempt >= self.max_attempts:
                    raise
                log.warning(
                    "GA4 request failed (%s), attempt %d/%d; retrying",
                    type(exc).__name__,
                    attempt,
                    self.max_attempts,
                )
                self._wait(attempt, self.retry_base_seconds)
                continue

    def _wait(self, attempt: int, base: float) -> None:
        self.retries += 1
        # Full jitter: spread retries so parallel runs do not hit the server errors quota together.
        self.sleep(self._jitter.uniform(0, min(RETRY_MAX_SECONDS, base * 2 ** (attempt - 1))))


# --- what the property can serve ---------------------------------------------------------------------------


def check_cost_availability(
    caller: ReportCaller, property_id: str, spec: ReportSpec = AD_COST_DAILY
) -> CostAvailability:
    """Ask GA4 (checkCompatibility) which advertiser metrics go with the cost report's dimensions.

    The request carries the dimensions only: the method fails when the request itself is incompatible, so it
    is asked which metrics *could be added*. Unavailable when a required metric is not COMPATIBLE (no Google
    Ads link or cost import, or dimensions that do not go with it) or when GA4 refuses the dimensions.
    Permission and property errors are raised: they concern every report, not the cost.
    """
    request = CheckCompatibilityRequest(
        property=property_resource(property_id),
        dimensions=[Dimension(name=name) for name, _ in spec.dimensions],
    )
    try:
        response = caller.check_compatibility(request)
    except GA4ConfigError as exc:
        if not isinstance(exc.__cause__, google_errors.BadRequest):
            raise
        return CostAvailability(False, f"GA4 refused the cost report's dimensions: {exc}")
    verdicts = {item.metric_metadata.api_name: item.compatibility for item in response.metric_compatibilities}
    wanted = [name for name, _, _ in spec.metrics]
    served = tuple(name for name in wanted if verdicts.get(name) == Compatibility.COMPATIBLE)
    missing = [name for name in spec.required_metrics if name not in served]
    if missing:
        dimensions = ", ".join(name for name, _ in spec.dimensions)
        said = ", ".join(f"{name} {_verdict_name(verdicts.get(name))}" for name in missing)
        return CostAvailability(
            False,
            f"GA4 property {property_id} cannot serve {', '.join(missing)} by {dimensions} "
            f"(checkCompatibility: {said}); link Google Ads to the property (or import cost data) to read "
            "ad cost from GA4, otherwise the spend sheet covers it",
        )
    return CostAvailability(True, None, served)


def _verdict_name(verdict: Any) -> str:
    return "not listed" if verdict is None else Compatibility(verdict).name


def record_capability(
    con: Any, run_id: str, property_id: str, capability: str, found: CostAvailability
) -> None:
    """One row per check in ops.ga4_capabilities: `roi status` and the run summary read the latest."""
    con.execute(
        f"INSERT INTO {CAPABILITIES_TABLE} (property_id, capability, available, reason, metrics, checked_at, "
        "run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            property_id,
            capability,
            found.available,
            found.reason,
            list(found.metrics),
            datetime.now(UTC),
            run_id,
        ],
    )


def _with_metrics(spec: ReportSpec, metrics: Sequence[str]) -> ReportSpec:
    """The spec restricted to the metrics the property serves (the others load as NULL)."""
    return replace(spec, metrics=tuple(m for m in spec.metrics if m[0] in metrics))


# --- pages and rows -----------------------------------------------------------------------------------------


@dataclass
class ReportPage:
    rows: list[tuple[list[str], list[str]]]  # (dimension values, metric values) as GA4 sent them
    row_count: int
    offset: int
    metadata: dict[str, Any]
    totals: list[str] | None  # metric totals over the whole result, first page only


def build_request(
    property_id: str, spec: ReportSpec, span: DateSpan, *, offset: int = 0, limit: int = PAGE_SIZE
) -> RunReportRequest:
    return RunReportRequest(
        property=property_resource(property_id),
        date_ranges=[DateRange(start_date=span[0].isoformat(), end_date=span[1].isoformat())],
        dimensions=[Dimension(name=name) for name, _ in spec.dimensions],
        metrics=[Metric(name=name) for name, _, _ in spec.metrics],
        # Every dimension in the order: without a total order, rows can shift between pages.
        order_bys=[
            OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name=name)) for name, _ in spec.dimensions
        ],
        # Totals on every page keep the request identical but for the window (and let us check the sum).
        metric_aggregations=[MetricAggregation.TOTAL],
        offset=offset,
        limit=limit,
        return_property_quota=True,
    )


def iter_report_pages(
    caller: ReportCaller, property_id: str, spec: ReportSpec, span: DateSpan, *, page_size: int = PAGE_SIZE
) -> Iterator[ReportPage]:
    """Yield the report's pages for `span`, `offset` stepping by the rows received until `rowCount`."""
    offset = 0
    while True:
        response = caller.run(build_request(property_id, spec, span, offset=offset, limit=page_size))
        # Read the raw protobuf: the proto-plus wrappers cost ~10x more per value on big pages.
        raw = RunReportResponse.pb(response)
        rows = [
            ([v.value for v in row.dimension_values], [v.value for v in row.metric_values])
            for row in raw.rows
        ]
        meta = response.metadata
        totals = (
            [v.value for v in response.totals[0].metric_values] if offset == 0 and response.totals else None
        )
        yield ReportPage(
            rows=rows,
            row_count=response.row_count,
            offset=offset,
            metadata={
                "currency_code": meta.currency_code or None,
                "time_zone": meta.time_zone or None,
                "data_loss_from_other_row": bool(meta.data_loss_from_other_row),
                "subject_to_thresholding": bool(meta.subject_to_thresholding),
                "sampled": len(meta.sampling_metadatas) > 0,
            },
            totals=totals,
        )
        offset += len(rows)
        if not rows or offset >= response.row_count:
            return


def _parse_metric(raw: str, kind: str) -> int | Decimal:
    """A GA4 metric string -> int or Decimal (via the warehouse's typed conversions); ValueError if bad."""
    if kind == INT:
        # GA4 sometimes sends integer metrics as "12.0": to_bigint accepts whole decimals, refuses "12.5".
        value = warehouse.to_bigint(raw)
        if value is None:
            raise ValueError("empty value")
        return value
    # GA4 computes currency metrics in floating point ("499.782208"): read exactly, then round to the column's
    # scale (cents for money) half-even, which is what the DECIMAL column can hold.
    exact = warehouse.to_decimal(raw, scale=12, precision=30)
    if exact is None:
        raise ValueError("empty value")
    return exact.quantize(_SCALES[kind], rounding=ROUND_HALF_EVEN)


@functools.lru_cache(maxsize=4096)
def _parse_ga4_date(raw: str) -> date:
    try:
        return datetime.strptime(raw, "%Y%m%d").date()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expected a YYYYMMDD date, got {raw!r}") from exc


@dataclass
class ParsedChunk:
    columns: dict[str, list[Any]]
    rejects: list[warehouse.Reject]
    rows_by_day: dict[date, int]
    metadata: dict[str, Any]
    metric_sums: list[Decimal]
    pages: int = 0


def parse_pages(
    pages: Iterator[ReportPage], spec: ReportSpec, property_id: str, span: DateSpan
) -> tuple[ParsedChunk, list[str] | None]:
    """Typed columns for the raw table; each bad row goes to the rejects list with its field and reason."""
    dim_columns = [column for _, column in spec.dimensions]
    metric_columns = [column for _, column, _ in spec.metrics]
    extra_columns = ("currency_code",) if spec.stores_currency else ()
    columns: dict[str, list[Any]] = {
        c: [] for c in ("property_id", *dim_columns, *metric_columns, *extra_columns)
    }
    rejects: list[warehouse.Reject] = []
    rows_by_day: dict[date, int] = {}
    metric_sums = [Decimal(0)] * len(spec.metrics)
    metadata: dict[str, Any] = {}
    totals: list[str] | None = None
    page_count = 0
    for page in pages:
        page_count += 1
        if page.totals is not None:
            totals = page.totals
        for key, value in page.metadata.items():
            if isinstance(value, bool):
                metadata[key] = metadata.get(key, False) or value
            else:
                metadata.setdefault(key, value)
        for dims, metrics in page.rows:
            record_id = "|".join(dims)
            if len(dims) != len(spec.dimensions) or len(metrics) != len(spec.metrics):
                rejects.append(_reject(spec, record_id, None, None, "row has the wrong number of values"))
                continue
            for position, raw in enumerate(metrics):
                metric_sums[position] += _decimal_or_zero(raw)
            try:
                day = _parse_ga4_date(dims[0])
                if not span[0] <= day <= span[1]:
                    raise ValueError(f"date {day} is outside the requested {span[0]}..{span[1]}")
            except ValueError as exc:
                rejects.append(_reject(spec, record_id, "date", dims[0], str(exc)))
                continue
            typed: list[Any] = []
            try:
                for (api_name, _, kind), raw in zip(spec.metrics, metrics, strict=True):
                    field_name = api_name
                    typed.append(_parse_metric(raw, kind))
            except ValueError as exc:
                rejects.append(_reject(spec, record_id, field_name, raw, f"{field_name}: {exc}"))
                continue
            columns["property_id"].append(property_id)
            columns["date"].append(day)
            for column, raw_dim in zip(dim_columns[1:], dims[1:], strict=True):
                columns[column].append(raw_dim)
            for column, value in zip(metric_columns, typed, strict=True):
                columns[column].append(value)
            if spec.stores_currency:
                columns["currency_code"].append(page.metadata.get("currency_code"))
            rows_by_day[day] = rows_by_day.get(day, 0) + 1
    return ParsedChunk(columns, rejects, rows_by_day, metadata, metric_sums, page_count), totals


def _decimal_or_zero(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except (InvalidOperation, TypeError):
        return Decimal(0)
    return value if value.is_finite() else Decimal(0)


def _reject(
    spec: ReportSpec, record_id: str, field_name: str | None, value: Any, reason: str
) -> warehouse.Reject:
    return warehouse.Reject(
        record_id=record_id,
        field=field_name,
        value=None if value is None else str(value),
        reason=f"GA4 {spec.name} row {record_id}: {reason}; the row was not loaded",
    )


# Users are counted once over the whole result, so their total is not the sum of the rows.
NON_ADDITIVE_METRICS = frozenset({"totalUsers", "newUsers", "activeUsers"})


def _totals_match(
    spec: ReportSpec, sums: list[Decimal], totals: list[str] | None, *, thresholded: bool = False
) -> bool:
    """Do the rows add up to GA4's totals? Under thresholding the totals also count the withheld rows, so
    the rows may add up to less, never to more."""
    if totals is None:
        return True
    # Float metrics may differ in the last digits between a total and the sum of its rows.
    tolerance = Decimal("0.01")
    for (api_name, _, _), total_of_rows, total in zip(spec.metrics, sums, totals, strict=False):
        if api_name in NON_ADDITIVE_METRICS:
            continue
        gap = _decimal_or_zero(total) - total_of_rows
        if gap < -tolerance or (gap > tolerance and not thresholded):
            return False
    return True


def _withheld_sessions(spec: ReportSpec, parsed: ParsedChunk, totals: list[str] | None) -> int:
    """Sessions GA4 counted in the totals of a thresholded chunk but did not return as rows."""
    if totals is None or not parsed.metadata.get("subject_to_thresholding"):
        return 0
    for position, (api_name, _, _) in enumerate(spec.metrics):
        if api_name == "sessions" and position < len(totals):
            return max(int(_decimal_or_zero(totals[position]) - parsed.metric_sums[position]), 0)
    return 0


def _arrow_table(spec: ReportSpec, columns: dict[str, list[Any]]) -> pa.Table:
    fields = [pa.field("property_id", pa.string())]
    for _, column in spec.dimensions:
        fields.append(pa.field(column, pa.date32() if column == "date" else pa.string()))
    for _, column, kind in spec.metrics:
        fields.append(pa.field(column, _ARROW_TYPES[kind]))
    if spec.stores_currency:
        fields.append(pa.field("currency_code", pa.string()))
    schema = pa.schema(fields)
    return pa.table({f.name: columns[f.name] for f in fields}, schema=schema)


# --- state --------------------------------------------------------------------------------------------------


def _read_state(con: Any, stream: str) -> tuple[str | None, dict[str, Any]]:
    cursor = warehouse.get_cursor(con, stream)
    return (cursor.value, dict(cursor.extra)) if cursor else (None, {})


def _pending_from_state(extra: dict[str, Any]) -> list[DateSpan]:
    return [(date.fromisoformat(s), date.fromisoformat(e)) for s, e in extra.get("pending", [])]


def pending_spans(con: Any) -> dict[str, list[DateSpan]]:
    """Per report, the day spans an earlier run left to pull (ops.sync_state): what GA4 still owes us."""
    rows = con.execute(
        "SELECT stream, extra FROM ops.sync_state WHERE stream LIKE ? ORDER BY stream", [STREAM_PREFIX + "%"]
    ).fetchall()
    found = {}
    for stream, extra in rows:
        spans = _pending_from_state(json.loads(extra) if extra else {})
        if spans:
            found[stream.removeprefix(STREAM_PREFIX)] = merge_spans(spans)
    return found


def _write_state(con: Any, stream: str, cursor: str | None, extra: dict[str, Any]) -> None:
    """cursor_value = latest day loaded; extra.pending = spans still to pull (resumed by the next run)."""
    warehouse.set_cursor(con, stream, warehouse.Cursor(value=cursor, extra=extra))


def _state_extra(
    pending: list[DateSpan], time_zone: str | None, stopped: str | None, job: DateSpan | None
) -> dict[str, Any]:
    """`job` = the backfill that left `pending`: the same backfill asked again only does what is left."""
    return {
        "pending": [[s.isoformat(), e.isoformat()] for s, e in pending],
        "job": [job[0].isoformat(), job[1].isoformat()] if job and pending else None,
        "time_zone": time_zone,
        "stopped_reason": stopped,
    }


def _work_to_do(extra: dict[str, Any], requested: DateSpan, mode: str) -> list[DateSpan]:
    """Spans to pull: what a previous run left pending + the requested range (resumed backfill: the rest)."""
    pending = _pending_from_state(extra)
    job = extra.get("job")
    if mode == "backfill" and pending and job == [requested[0].isoformat(), requested[1].isoformat()]:
        return merge_spans(pending)
    return merge_spans([*pending, requested])


# --- loading ------------------------------------------------------------------------------------------------


def replace_days(
    con: Any,
    spec: ReportSpec,
    property_id: str,
    span: DateSpan,
    parsed: ParsedChunk,
    run_id: str,
    *,
    cursor_after: str | None,
    state_after: dict[str, Any],
) -> None:
    """One transaction: the span's old rows out, the new rows in, per-day metadata, rejects, and the state."""
    table = _arrow_table(spec, parsed.columns)
    days = [span[0] + timedelta(days=i) for i in range((span[1] - span[0]).days + 1)]
    meta = parsed.metadata
    day_rows = pa.table(
        {
            "property_id": [property_id] * len(days),
            "report": [spec.name] * len(days),
            "date": days,
            "currency_code": [meta.get("currency_code")] * len(days),
            "time_zone": [meta.get("time_zone")] * len(days),
            "data_loss_from_other_row": [bool(meta.get("data_loss_from_other_row"))] * len(days),
            "subject_to_thresholding": [bool(meta.get("subject_to_thresholding"))] * len(days),
            "sampled": [bool(meta.get("sampled"))] * len(days),
            "row_count": [parsed.rows_by_day.get(d, 0) for d in days],
        }
    )
    day_filter = "property_id = ? AND date BETWEEN ? AND ?"
    with warehouse.transaction(con):
        warehouse.replace_partition(
            con, spec.target_table, table, day_filter, [property_id, span[0], span[1]], run_id=run_id
        )
        warehouse.replace_partition(
            con,
            REPORT_DAYS_TABLE,
            day_rows,
            day_filter + " AND report = ?",
            [property_id, span[0], span[1], spec.name],
            run_id=run_id,
        )
        warehouse.record_rejects(con, run_id, spec.stream, parsed.rejects)
        _write_state(con, spec.stream, cursor_after, state_after)


# --- entry point --------------------------------------------------------------------------------------------


def _property_today(time_zone: str | None) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(time_zone or DEFAULT_TIME_ZONE)).date()


def extract_ga4(
    settings: Settings,
    db_path: str | Path,
    run_id: str,
    start: date | None = None,
    end: date | None = None,
    today: date | None = None,
    *,
    reports: Sequence[str] | None = None,
    client: BetaAnalyticsDataClient | None = None,
    page_size: int = PAGE_SIZE,
    chunk_days: int | None = None,
    quota_policy: QuotaPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retry_base_seconds: float = RETRY_BASE_SECONDS,
    first_run_days: int = FIRST_RUN_HISTORY_DAYS,
) -> GA4ExtractResult:
    """Pull GA4 reports into the warehouse and return what was done.

    Nightly (no `start`/`end`): the trailing window ending yesterday in the property's time zone (`today`
    may be injected, as a date in that time zone); a report never loaded before gets `first_run_days` of
    history instead. Backfill: `start`..`end` inclusive. Either way, ranges a
    previous run left pending (quota stop, crash) are done first. Raises GA4ConfigError for configuration
    problems; a quota stop is not an error: the result has `complete=False` and the next run resumes.
    """
    property_id = (settings.ga4_property_id or "").removeprefix("properties/").strip()
    if not property_id:
        raise GA4ConfigError("GA4 property id is missing: set GA4_PROPERTY_ID or ga4_property_id in roi.toml")
    if (start is None) != (end is None):
        raise ValueError("A GA4 backfill needs both start and end dates (inclusive)")
    if start is not None and end is not None and end < start:
        raise ValueError(f"GA4 backfill end {end} is before start {start}")
    own_client = client is None
    if client is None:
        client = make_client(settings.ga4_api_endpoint, settings.google_application_credentials)
    chunk_days = chunk_days or settings.ga4.backfill_chunk_days
    trailing_days = settings.ga4.trailing_days
    contact_dimension = settings.ga4.contact_dimension
    specs = {
        TRAFFIC_DAILY.name: TRAFFIC_DAILY,
        AD_COST_DAILY.name: AD_COST_DAILY,
        "contact_sessions": contact_sessions_spec(contact_dimension),
    }
    wanted = list(reports or specs)
    unknown = [r for r in wanted if r not in specs]
    if unknown:
        raise ValueError(f"Unknown GA4 report(s) {unknown}; declared: {sorted(specs)}")

    caller = ReportCaller(client, policy=quota_policy, sleep=sleep, retry_base_seconds=retry_base_seconds)
    con = warehouse.connect(db_path)
    try:
        _, first_extra = _read_state(con, TRAFFIC_DAILY.stream)
        time_zone = first_extra.get("time_zone") or DEFAULT_TIME_ZONE
        if start is not None and end is not None:
            mode, requested = "backfill", (start, end)
        else:
            mode, requested = "nightly", trailing_window(today or _property_today(time_zone), trailing_days)
        result = GA4ExtractResult(property_id=property_id, mode=mode, start=requested[0], end=requested[1])
        stop: str | None = None
        for name in wanted:
            spec = specs[name]
            report_result = result.reports.setdefault(name, ReportResult(report=name))
            cursor, extra = _read_state(con, spec.stream)
            wanted_span = requested
            if mode == "nightly" and cursor is None and not extra:
                # Never loaded: a 3-day window would leave ROI without cost history; pull the history once.
                wanted_span = (
                    requested[1] - timedelta(days=max(first_run_days, trailing_days) - 1),
                    requested[1],
                )
                result.start = min(result.start, wanted_span[0])
            todo = _work_to_do(extra, wanted_span, mode)
            job = requested if mode == "backfill" else None
            if stop is not None:
                _write_state(con, spec.stream, cursor, _state_extra(todo, extra.get("time_zone"), stop, job))
                result.pending[name] = todo
                continue
            run = warehouse.start_run(con, run_id, RUN_KIND, spec.stream)
            calls0, retries0 = caller.calls, caller.retries
            status, error = "success", None
            try:
                if spec.capability == COST_CAPABILITY:
                    result.cost = _cost_availability(con, caller, settings, property_id, run_id, spec)
                    if not result.cost.available:
                        raise _NotServed(result.cost.reason or "GA4 does not serve ad cost")
                    spec = _with_metrics(spec, result.cost.metrics)
                stop = _extract_report(
                    con,
                    caller,
                    spec,
                    property_id,
                    todo,
                    cursor,
                    run_id,
                    report_result,
                    result,
                    page_size=page_size,
                    chunk_days=chunk_days,
                    job=job,
                )
                if stop is not None:
                    status, error = "stopped", stop
            except (GA4ConfigError, _NotServed) as exc:
                if spec.optional:
                    report_result.skipped = str(exc)
                    status, error = "skipped", str(exc)
                    log.warning("GA4 optional report %s skipped (the run goes on): %s", name, exc)
                    if spec.capability == COST_CAPABILITY and isinstance(exc, GA4ConfigError):
                        # checkCompatibility said yes and runReport said no (it happens): GA4's answer wins.
                        result.cost = CostAvailability(False, f"runReport refused the cost report: {exc}")
                        record_capability(con, run_id, property_id, COST_CAPABILITY, result.cost)
                else:
                    status, error = "failed", str(exc)
                    raise
            except BaseException as exc:
                status, error = "failed", f"{type(exc).__name__}: {exc}"
                raise
            finally:
                run.rows, run.calls, run.retries = (
                    report_result.rows,
                    caller.calls - calls0,
                    caller.retries - retries0,
                )
                warehouse.finish_run(con, run, status=status, error=error)
            if stop is not None:
                _, extra = _read_state(con, spec.stream)
                result.pending[name] = _pending_from_state(extra)
        result.complete = stop is None
        result.stopped_reason = stop
        result.calls, result.retries = caller.calls, caller.retries
        result.quota_pause_seconds = caller.paused_seconds
        result.tokens_consumed = caller.tokens_consumed
        return result
    finally:
        con.close()
        if own_client:
            client.transport.close()  # the HTTP session's pooled connections


class _NotServed(Exception):
    """The property cannot serve an optional report (a capability, decided before any report request)."""


def _cost_availability(
    con: Any, caller: ReportCaller, settings: Settings, property_id: str, run_id: str, spec: ReportSpec
) -> CostAvailability:
    if not settings.ga4.read_cost:
        found = CostAvailability(False, "reading ad cost from GA4 is off ([ga4] read_cost = false)")
    else:
        found = check_cost_availability(caller, property_id, spec)
    record_capability(con, run_id, property_id, COST_CAPABILITY, found)
    return found


def _extract_report(
    con: Any,
    caller: ReportCaller,
    spec: ReportSpec,
    property_id: str,
    todo: list[DateSpan],
    cursor: str | None,
    run_id: str,
    report_result: ReportResult,
    result: GA4ExtractResult,
    *,
    page_size: int,
    chunk_days: int,
    job: DateSpan | None,
) -> str | None:
    """Pull and replace `todo` chunk by chunk; returns the quota-stop reason, or None when all was done."""
    pending = list(todo)

    def read_span(span: DateSpan) -> tuple[ParsedChunk, list[str] | None]:
        pages = iter_report_pages(caller, property_id, spec, span, page_size=page_size)
        return parse_pages(pages, spec, property_id, span)

    def adds_up(chunk: ParsedChunk, chunk_totals: list[str] | None) -> bool:
        thresholded = bool(chunk.metadata.get("subject_to_thresholding"))
        return _totals_match(spec, chunk.metric_sums, chunk_totals, thresholded=thresholded)

    for span in list(chunk_spans(todo, chunk_days)):
        try:
            parsed, totals = read_span(span)
            if not adds_up(parsed, totals):
                log.warning(
                    "GA4 %s %s..%s: pages do not add up to the totals; pulling the chunk again",
                    spec.name,
                    span[0],
                    span[1],
                )
                parsed, totals = read_span(span)
                if not adds_up(parsed, totals):
                    log.warning("GA4 %s %s..%s: totals still differ; loading what was read", spec.name, *span)
        except QuotaStop as exc:
            reason = str(exc)
            log.warning(
                "GA4 extract stopped at %s (%s); the rest is resumed by the next run", span[0], reason
            )
            _write_state(con, spec.stream, cursor, _state_extra(pending, result.time_zone, reason, job))
            return reason
        except Exception as exc:
            # Retries exhausted or GA4 refused: keep what is left as pending, so the next run picks it up.
            failure = f"{type(exc).__name__}: {exc}"
            _write_state(con, spec.stream, cursor, _state_extra(pending, result.time_zone, failure, job))
            raise
        pending = subtract_span(pending, span)
        cursor = max(cursor or "", span[1].isoformat())
        state_after = _state_extra(pending, parsed.metadata.get("time_zone"), None, job)
        replace_days(
            con, spec, property_id, span, parsed, run_id, cursor_after=cursor, state_after=state_after
        )
        report_result.rows += len(parsed.columns["property_id"])
        report_result.rejected += len(parsed.rejects)
        report_result.days += (span[1] - span[0]).days + 1
        report_result.chunks += 1
        report_result.pages += parsed.pages
        report_result.withheld_sessions += _withheld_sessions(spec, parsed, totals)
        result.time_zone = parsed.metadata.get("time_zone") or result.time_zone
        result.currency_code = parsed.metadata.get("currency_code") or result.currency_code
    return None
