"""GA4 Data API (v1beta) stand-in: `runReport`, `checkCompatibility` and `metadata`, as the official client's
REST transport calls them.

The official `google-analytics-data` client (transport="rest", api_endpoint="http://127.0.0.1:PORT",
AnonymousCredentials) sends `POST /v1beta/properties/{id}:runReport?$alt=json;enum-encoding=int` with a
camelCase JSON body (int64 fields such as limit/offset as strings, enums as ints). Answers follow
Google's shapes: all values are strings, `rowCount` for paging, `metadata`, `propertyQuota`, and Google's
error JSON (400 INVALID_ARGUMENT, 403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED).

Behaviour worth knowing (documented in docs/contracts.md section 2):
- rows are ordered by `orderBys` when given, else by the requested dimension values ascending;
- the last two days before the data set's `now` are "processing": every new pull (a request with offset 0
  that reads them) returns revised, slightly lower numbers until `Dataset.advance_ga4_processing()`
  settles them;
- requests with `customUser:crm_contact_id` report `subjectToThresholding` and count as potentially
  thresholded;
- GA4's restrictions (sandbox.ga4_restrictions, switched by `Dataset.ga4_restrictions`): advertiser metrics
  refused without a Google Ads link or next to a custom dimension; rows of the contact report withheld under
  the user threshold (totals still count them); a day's long tail of contact ids folded into `(other)`;
- token cost grows with the rows returned and the days read; spending a bucket gives 429.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox import ga4_restrictions as restrict
from sandbox.dataset import GA4_CURRENCY, GA4_TIME_ZONE, Dataset, Ga4Facts

# ---------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------
CONTACT_DIMENSION = "customUser:crm_contact_id"
FACT_DIMENSIONS = (
    "sessionSource",
    "sessionMedium",
    "sessionCampaignName",
    "sessionManualTerm",
    "sessionManualAdContent",
    "sessionDefaultChannelGroup",
)
DIMENSIONS = ("date", *FACT_DIMENSIONS, CONTACT_DIMENSION)
# name -> (MetricType enum value, enum name, is currency in cents)
METRICS = {
    "sessions": (1, "TYPE_INTEGER", False),
    "totalUsers": (1, "TYPE_INTEGER", False),
    "keyEvents": (2, "TYPE_FLOAT", False),
    "purchaseRevenue": (9, "TYPE_CURRENCY", True),
    "totalRevenue": (9, "TYPE_CURRENCY", True),
    "transactions": (1, "TYPE_INTEGER", False),
    "advertiserAdCost": (9, "TYPE_CURRENCY", True),
    "advertiserAdClicks": (1, "TYPE_INTEGER", False),
    "advertiserAdImpressions": (1, "TYPE_INTEGER", False),
}
ADVERTISER_METRICS = set(restrict.ADVERTISER_METRICS)
# uiName and category per field, as the Metadata / checkCompatibility answers carry them.
FIELD_INFO = {
    "date": ("Date", "Time"),
    "sessionSource": ("Session source", "Traffic source"),
    "sessionMedium": ("Session medium", "Traffic source"),
    "sessionCampaignName": ("Session campaign", "Traffic source"),
    "sessionManualTerm": ("Session manual term", "Traffic source"),
    "sessionManualAdContent": ("Session manual ad content", "Traffic source"),
    "sessionDefaultChannelGroup": ("Session default channel group", "Traffic source"),
    CONTACT_DIMENSION: ("crm_contact_id", "Custom"),
    "sessions": ("Sessions", "Session"),
    "totalUsers": ("Total users", "User"),
    "keyEvents": ("Key events", "Event"),
    "purchaseRevenue": ("Purchase revenue", "Revenue"),
    "totalRevenue": ("Total revenue", "Revenue"),
    "transactions": ("Transactions", "Ecommerce"),
    "advertiserAdCost": ("Ads cost", "Advertising"),
    "advertiserAdClicks": ("Ads clicks", "Advertising"),
    "advertiserAdImpressions": ("Ads impressions", "Advertising"),
}
COMPATIBILITY = {0: "COMPATIBILITY_UNSPECIFIED", 1: "COMPATIBLE", 2: "INCOMPATIBLE"}
MAX_DIMENSIONS, MAX_METRICS, MAX_DATE_RANGES = 9, 10, 4
DEFAULT_LIMIT, MAX_LIMIT = 10_000, 250_000
ROWS_PER_TOKEN = 500  # token cost: 1 + rows returned / 500 + days read / 90
DAYS_PER_TOKEN = 90
ENFORCE_THRESHOLDED_QUOTA = False  # counted and reported; enforced only when a test turns it on
CACHE_SIZE = 8
AGGREGATIONS = {1: "TOTAL", 4: "COUNT", 5: "MINIMUM", 6: "MAXIMUM"}
ORDER_TYPES = {0: "ALPHANUMERIC", 1: "ALPHANUMERIC", 2: "CASE_INSENSITIVE_ALPHANUMERIC", 3: "NUMERIC"}
MATCH_TYPES = {
    1: "EXACT",
    2: "BEGINS_WITH",
    3: "ENDS_WITH",
    4: "CONTAINS",
    5: "FULL_REGEXP",
    6: "PARTIAL_REGEXP",
}
SCHEMA_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema"
_RELATIVE_DAY = re.compile(r"^(\d+)daysAgo$")


class ApiError(Exception):
    """An error answered in Google's JSON shape."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message, "status": self.status}}
        return JSONResponse(body, status_code=self.code)


def _bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


# ---------------------------------------------------------------------------------------------------------
# Request parsing
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportRequest:
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    date_ranges: tuple[tuple[dt.date, dt.date, str], ...]
    dimension_filter: str  # canonical JSON (the filter expression), "" when none
    order_bys: str  # canonical JSON
    aggregations: tuple[str, ...]
    keep_empty_rows: bool
    limit: int
    offset: int
    return_quota: bool

    def report_key(self) -> tuple:
        """What identifies the result set (everything but the page window)."""
        return (
            self.dimensions,
            self.metrics,
            self.date_ranges,
            self.dimension_filter,
            self.order_bys,
            self.aggregations,
            self.keep_empty_rows,
        )


def _int_field(body: dict, name: str, default: int) -> int:
    value = body.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad(f"Invalid value at '{name}' (TYPE_INT64), \"{value}\"") from None


def _resolve_date(text: str, today: dt.date, field_name: str) -> dt.date:
    if text == "today":
        return today
    if text == "yesterday":
        return today - dt.timedelta(days=1)
    match = _RELATIVE_DAY.match(text)
    if match:
        return today - dt.timedelta(days=int(match.group(1)))
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _bad(
            f"Invalid {field_name}: '{text}'. Use the format YYYY-MM-DD, NdaysAgo, yesterday, or today."
        ) from None


def registered_dimensions(dataset: Any) -> tuple[str, ...]:
    """The dimensions this property serves: the contact dimension only once registered."""
    if getattr(dataset, "ga4_contact_dimension_registered", True):
        return DIMENSIONS
    return tuple(d for d in DIMENSIONS if d != CONTACT_DIMENSION)


def _field_names(
    body: dict, dimensions: tuple[str, ...] = DIMENSIONS
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The request's dimension and metric names, each checked against the property's metadata."""
    dims = tuple(str(d.get("name", "")) for d in body.get("dimensions", []))
    mets = tuple(str(m.get("name", "")) for m in body.get("metrics", []))
    for name in dims:
        if name not in dimensions:
            raise _bad(
                f"Field {name} is not a valid dimension. For a list of valid dimensions and metrics, "
                f"see {SCHEMA_URL}"
            )
    for name in mets:
        if name not in METRICS:
            raise _bad(
                f"Field {name} is not a valid metric. For a list of valid dimensions and metrics, "
                f"see {SCHEMA_URL}"
            )
    return dims, mets


def parse_request(
    body: dict, today: dt.date, dimensions: tuple[str, ...] = DIMENSIONS, *, ads_linked: bool = True
) -> ReportRequest:
    if not isinstance(body, dict):
        raise _bad("Invalid JSON payload received.")
    dims, mets = _field_names(body, dimensions)
    if not mets and not dims:
        raise _bad("Requests must have at least one metric or dimension.")
    if len(dims) > MAX_DIMENSIONS:
        raise _bad(f"Requests are limited to {MAX_DIMENSIONS} dimensions; this request has {len(dims)}.")
    if len(mets) > MAX_METRICS:
        raise _bad(f"Requests are limited to {MAX_METRICS} metrics; this request has {len(mets)}.")
    if len(set(dims)) != len(dims) or len(set(mets)) != len(mets):
        raise _bad("Duplicate dimension or metric names are not allowed in a request.")
    incompatible = restrict.incompatible_fields(dims, mets, ads_linked=ads_linked)
    if incompatible:
        raise _bad(restrict.incompatibility_message(incompatible))
    raw_ranges = body.get("dateRanges") or []
    if not raw_ranges:
        raise _bad("Requests must specify at least one date range.")
    if len(raw_ranges) > MAX_DATE_RANGES:
        raise _bad(f"Requests are limited to {MAX_DATE_RANGES} date ranges.")
    ranges = []
    for i, r in enumerate(raw_ranges):
        start = _resolve_date(str(r.get("startDate", "")), today, "startDate")
        end = _resolve_date(str(r.get("endDate", "")), today, "endDate")
        if end < start:
            raise _bad(f"The dateRange's endDate ({end}) must not be before its startDate ({start}).")
        ranges.append((start, end, str(r.get("name") or f"date_range_{i}")))
    limit = _int_field(body, "limit", 0) or DEFAULT_LIMIT
    offset = _int_field(body, "offset", 0)
    if limit < 0:
        raise _bad(f"limit must be positive; got {limit}.")
    if offset < 0:
        raise _bad(f"offset must be non-negative; got {offset}.")
    aggregations = []
    for agg in body.get("metricAggregations", []):
        name = AGGREGATIONS.get(agg) if isinstance(agg, int) else str(agg)
        if name not in AGGREGATIONS.values():
            raise _bad(f"Invalid metricAggregation: {agg}")
        aggregations.append(name)
    order_bys = body.get("orderBys") or []
    for ob in order_bys:
        if "metric" in ob and ob["metric"].get("metricName") not in mets:
            raise _bad(
                f"The orderBy metric {ob['metric'].get('metricName')} must be one of the request's metrics."
            )
        if "dimension" in ob and ob["dimension"].get("dimensionName") not in dims:
            raise _bad(
                f"The orderBy dimension {ob['dimension'].get('dimensionName')} must be one of the request's "
                "dimensions."
            )
    dim_filter = body.get("dimensionFilter")
    if dim_filter:
        _check_filter(dim_filter)
    return ReportRequest(
        dimensions=dims,
        metrics=mets,
        date_ranges=tuple(ranges),
        dimension_filter=json.dumps(dim_filter, sort_keys=True) if dim_filter else "",
        order_bys=json.dumps(order_bys, sort_keys=True),
        aggregations=tuple(aggregations),
        keep_empty_rows=bool(body.get("keepEmptyRows", False)),
        limit=min(limit, MAX_LIMIT),
        offset=offset,
        return_quota=bool(body.get("returnPropertyQuota", False)),
    )


def _check_filter(expr: dict) -> None:
    for group in ("andGroup", "orGroup"):
        if group in expr:
            for e in expr[group].get("expressions", []):
                _check_filter(e)
            return
    if "notExpression" in expr:
        _check_filter(expr["notExpression"])
        return
    f = expr.get("filter")
    if not f or f.get("fieldName") not in DIMENSIONS:
        raise _bad(f"Invalid dimension filter: unknown field {f.get('fieldName') if f else None!r}.")
    if not ({"stringFilter", "inListFilter"} & f.keys()):
        raise _bad("Only stringFilter and inListFilter are supported in dimension filters.")


# ---------------------------------------------------------------------------------------------------------
# The report engine (numpy: group-by over coded columns)
# ---------------------------------------------------------------------------------------------------------
class _ContactCodes:
    """Contact ids coded like the other dimensions (computed once per facts object)."""

    def __init__(self, facts: Ga4Facts) -> None:
        ids, inverse = np.unique(facts.contact, return_inverse=True)
        self.codes = inverse.astype(np.int64)
        self.table = ["(not set)" if i == 0 else str(i) for i in ids.tolist()]


@dataclass
class _Result:
    keys: np.ndarray  # rows x dimensions, codes into `tables` (strings are made only for the page served)
    tables: list[list[str]]
    metric_values: np.ndarray  # rows x metrics, int64 (cents for currency)
    days_read: int
    totals: np.ndarray  # per metric, over every row including the withheld ones (GA4 totals count them)
    other_row: bool = False  # some rows were folded into an (other) row
    withheld_rows: int = 0  # rows withheld under the privacy threshold

    def __len__(self) -> int:
        return len(self.keys)

    def dimension_values(self, start: int, stop: int) -> list[list[str]]:
        tables = self.tables
        return [[tables[j][c] for j, c in enumerate(row)] for row in self.keys[start:stop].tolist()]


class ReportEngine:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._contacts: _ContactCodes | None = None
        self._cache: OrderedDict[tuple, _Result] = OrderedDict()
        self._pull_of_report: dict[tuple, int] = {}
        self.lock = threading.Lock()

    def _dimension(self, name: str) -> tuple[np.ndarray, list[str]]:
        facts = self.dataset.ga4
        if name == "date":
            n_days = int(facts.day.max()) + 1 if len(facts) else 0
            first = facts.first_day
            return facts.day.astype(np.int64), [
                (first + dt.timedelta(days=i)).strftime("%Y%m%d") for i in range(n_days)
            ]
        if name == CONTACT_DIMENSION:
            if self._contacts is None:
                self._contacts = _ContactCodes(facts)
            return self._contacts.codes, self._contacts.table
        return facts.dims[name].astype(np.int64), facts.tables[name]

    def _filter_mask(self, expr: dict) -> np.ndarray:
        n = len(self.dataset.ga4)
        if "andGroup" in expr:
            mask = np.ones(n, dtype=bool)
            for e in expr["andGroup"].get("expressions", []):
                mask &= self._filter_mask(e)
            return mask
        if "orGroup" in expr:
            mask = np.zeros(n, dtype=bool)
            for e in expr["orGroup"].get("expressions", []):
                mask |= self._filter_mask(e)
            return mask
        if "notExpression" in expr:
            return ~self._filter_mask(expr["notExpression"])
        f = expr["filter"]
        codes, table = self._dimension(f["fieldName"])
        keep = np.array([_matches(f, value) for value in table], dtype=bool)
        return keep[codes] if len(table) else np.zeros(n, dtype=bool)

    def run(self, request: ReportRequest) -> tuple[_Result, bool]:
        """The full (unpaged) result of a report, and whether it read processing days."""
        dataset = self.dataset
        processing = {dataset.ga4.day_index(d) for d in dataset.ga4.processing_days}
        reads_processing = any(
            start <= d <= end for d in dataset.ga4.processing_days for start, end, _ in request.date_ranges
        )
        key = request.report_key()
        with self.lock:
            if reads_processing and request.offset == 0:
                # A new pull of the processing days: numbers move a little with every pull.
                pull = dataset.ga4_processing_pulls
                dataset.ga4_processing_pulls += 1
                self._pull_of_report[key] = pull
            else:
                pull = self._pull_of_report.get(key, max(dataset.ga4_processing_pulls - 1, 0))
            limits = (dataset.ga4_restrictions.threshold_users, dataset.ga4_other_values_per_day)
            cache_key = (key, pull if reads_processing else -1, tuple(sorted(processing)), limits)
            cached = self._cache.get(cache_key)
            if cached is not None:
                self._cache.move_to_end(cache_key)
                return cached, reads_processing
        result = self._compute(request, processing, dataset.ga4_processing_factor(pull))
        with self.lock:
            self._cache[cache_key] = result
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return result, reads_processing

    def _compute(self, request: ReportRequest, processing: set[int], factor: float) -> _Result:
        facts = self.dataset.ga4
        base_mask = (
            self._filter_mask(json.loads(request.dimension_filter)) if request.dimension_filter else None
        )
        dims = list(request.dimensions)
        multi = len(request.date_ranges) > 1
        metric_cols = (
            np.stack([facts.metrics[m] for m in request.metrics], axis=1)
            if request.metrics
            else (np.zeros((len(facts), 0), dtype=np.int64))
        )
        is_processing = np.isin(facts.day, np.array(sorted(processing), dtype=np.int32))
        parts_keys, parts_metrics, parts_proc, parts_idx = [], [], [], []
        days_read = 0
        for ri, (start, end, _) in enumerate(request.date_ranges):
            lo, hi = facts.day_index(start), facts.day_index(end)
            days_read += hi - lo + 1
            mask = (facts.day >= lo) & (facts.day <= hi)
            if base_mask is not None:
                mask &= base_mask
            idx = np.flatnonzero(mask)
            cols = [self._dimension(d)[0][idx] for d in dims]
            if multi:
                cols.append(np.full(len(idx), ri, dtype=np.int64))
            parts_keys.append(np.stack(cols, axis=1) if cols else np.zeros((len(idx), 0), dtype=np.int64))
            parts_metrics.append(metric_cols[idx])
            parts_proc.append(is_processing[idx])
            parts_idx.append(idx)
        keys = np.concatenate(parts_keys)
        values = np.concatenate(parts_metrics)
        proc = np.concatenate(parts_proc)
        fact_rows = np.concatenate(parts_idx)
        tables = [self._dimension(d)[1] for d in dims]
        if multi:
            tables.append([name for _, _, name in request.date_ranges])
        # GA4's restrictions work on the facts: a day's long tail of custom-dimension values becomes (other)
        # before anything is summed; the folded rows keep a flag so thresholding leaves them alone.
        keys, cohort_keys, folded, tables = self._fold_into_other(request, keys, fact_rows, tables)
        # Group with the flags last, revise the processing groups, then fold the processing flag away.
        flagged = np.column_stack([keys, folded.astype(np.int64), proc.astype(np.int64)])
        g_keys, g_values = _group(flagged, values)
        revised = g_keys[:, -1] == 1
        if revised.any():
            g_values[revised] = _revise(g_values[revised], request.metrics, factor)
        g_keys, g_values = _group(g_keys[:, :-1], g_values)
        if not request.keep_empty_rows and g_values.shape[1]:
            nonzero = (g_values != 0).any(axis=1)
            g_keys, g_values = g_keys[nonzero], g_values[nonzero]
        g_keys, g_folded = g_keys[:, :-1], g_keys[:, -1] == 1
        # GA4 totals count the rows thresholding withholds (the total can exceed the sum of the rows).
        totals = g_values.sum(axis=0) if len(g_values) else np.zeros(g_values.shape[1], dtype=np.int64)
        withhold = ~g_folded & self._below_threshold(request, g_keys, cohort_keys, fact_rows)
        withheld = int(withhold.sum())
        g_keys, g_values = g_keys[~withhold], g_values[~withhold]
        order = _order(g_keys, g_values, tables, dims + (["dateRange"] if multi else []), request)
        return _Result(
            g_keys[order], tables, g_values[order], days_read, totals, bool(g_folded.any()), withheld
        )

    def _fold_into_other(
        self, request: ReportRequest, keys: np.ndarray, fact_rows: np.ndarray, tables: list[list[str]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[str]]]:
        """(keys with folded facts set to (other), keys as they were, which facts folded, tables)."""
        dims = list(request.dimensions)
        folded = np.zeros(len(keys), dtype=bool)
        custom_cols = [j for j, d in enumerate(dims) if restrict.is_custom(d)]
        limit = self.dataset.ga4_other_values_per_day
        if not custom_cols or not limit or not len(keys):
            return keys, keys, folded, tables
        multi = len(request.date_ranges) > 1
        periods = self.dataset.ga4.day[fact_rows].astype(np.int64).reshape(-1, 1)
        if multi:
            periods = np.column_stack([periods, keys[:, -1]])
        sessions = self.dataset.ga4.metrics["sessions"][fact_rows]
        kept = restrict.kept_values(periods, keys[:, custom_cols], sessions, limit)
        if kept.all():
            return keys, keys, folded, tables
        fold_cols = [j for j, d in enumerate(dims) if d != "date"]
        tables, positions = restrict.insert_other(tables, fold_cols)
        cohort_keys = restrict.shift_codes(keys, positions)
        keys = cohort_keys.copy()
        for j in fold_cols:
            keys[~kept, j] = restrict.other_code(positions, j)
        return keys, cohort_keys, ~kept, tables

    def _below_threshold(
        self, request: ReportRequest, g_keys: np.ndarray, cohort_keys: np.ndarray, fact_rows: np.ndarray
    ) -> np.ndarray:
        """Rows to withhold: in a thresholded report, those whose cohort (same values of every dimension but
        the user-scoped ones, all users) has fewer users than the threshold."""
        threshold = self.dataset.ga4_restrictions.threshold_users
        dims = list(request.dimensions)
        if threshold <= 0 or not restrict.subject_to_thresholding(dims) or not len(g_keys):
            return np.zeros(len(g_keys), dtype=bool)
        user_cols = {j for j, d in enumerate(dims) if d.startswith(restrict.USER_SCOPED_PREFIX)}
        cohort_cols = [j for j in range(g_keys.shape[1]) if j not in user_cols]
        fact_users = self.dataset.ga4.metrics["totalUsers"][fact_rows]
        users = restrict.cohort_users(g_keys, cohort_keys, fact_users, cohort_cols)
        return users < threshold


def _matches(f: dict, value: str) -> bool:
    if "inListFilter" in f:
        spec = f["inListFilter"]
        values = spec.get("values", [])
        if spec.get("caseSensitive"):
            return value in values
        return value.lower() in {v.lower() for v in values}
    spec = f["stringFilter"]
    target = str(spec.get("value", ""))
    match_type = spec.get("matchType", 1)
    match_type = MATCH_TYPES.get(match_type, "EXACT") if isinstance(match_type, int) else match_type
    if not spec.get("caseSensitive") and "REGEXP" not in match_type:
        value, target = value.lower(), target.lower()
    if match_type == "EXACT":
        return value == target
    if match_type == "BEGINS_WITH":
        return value.startswith(target)
    if match_type == "ENDS_WITH":
        return value.endswith(target)
    if match_type == "CONTAINS":
        return target in value
    flags = 0 if spec.get("caseSensitive") else re.IGNORECASE
    if match_type == "FULL_REGEXP":
        return re.fullmatch(target, value, flags) is not None
    return re.search(target, value, flags) is not None


def _group(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum `values` by unique rows of `keys`; result sorted by key columns (first column most significant)."""
    if len(keys) == 0:
        return keys.reshape(0, keys.shape[1]), values.reshape(0, values.shape[1])
    if keys.shape[1] == 0:
        return np.zeros((1, 0), dtype=np.int64), values.sum(axis=0, keepdims=True)
    order = np.lexsort(keys.T[::-1])
    sk = keys[order]
    boundary = np.r_[True, (sk[1:] != sk[:-1]).any(axis=1)]
    starts = np.flatnonzero(boundary)
    sums = np.add.reduceat(values[order], starts, axis=0) if values.shape[1] else values[starts]
    return sk[starts], sums


def _revise(values: np.ndarray, metrics: tuple[str, ...], factor: float) -> np.ndarray:
    out = values.astype(np.float64) * factor
    for j, name in enumerate(metrics):
        out[:, j] = np.rint(out[:, j]) if METRICS[name][2] else np.floor(out[:, j])
    return out.astype(np.int64)


def _order(
    keys: np.ndarray, values: np.ndarray, tables: list[list[str]], names: list[str], request: ReportRequest
) -> np.ndarray:
    order_bys = json.loads(request.order_bys)
    if not order_bys:
        return np.arange(len(keys))  # already ascending by dimension values (tables are sorted)
    sort_keys = []
    for ob in order_bys:
        desc = bool(ob.get("desc", False))
        if "metric" in ob:
            col = values[:, request.metrics.index(ob["metric"]["metricName"])].astype(np.float64)
        else:
            spec = ob["dimension"]
            j = names.index(spec["dimensionName"])
            order_type = spec.get("orderType", 1)
            order_type = (
                ORDER_TYPES.get(order_type, "ALPHANUMERIC") if isinstance(order_type, int) else order_type
            )
            table = tables[j]
            if order_type == "NUMERIC":
                rank = np.array([_number(v) for v in table], dtype=np.float64)
            else:
                text = [v.lower() for v in table] if order_type == "CASE_INSENSITIVE_ALPHANUMERIC" else table
                rank = np.empty(len(table), dtype=np.float64)
                rank[np.argsort(np.array(text, dtype=object), kind="stable")] = np.arange(len(table))
            col = rank[keys[:, j]] if len(table) else np.zeros(len(keys))
        sort_keys.append(-col if desc else col)
    # np.lexsort: last key is primary; ties fall back to the dimension order (stable).
    return np.lexsort([np.arange(len(keys)), *sort_keys[::-1]])


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("-inf")


def _format(value: int, currency: bool) -> str:
    if not currency:
        return str(int(value))
    sign = "-" if value < 0 else ""
    whole, cents = divmod(abs(int(value)), 100)
    return f"{sign}{whole}" if cents == 0 else f"{sign}{whole}.{cents:02d}".rstrip("0")


# ---------------------------------------------------------------------------------------------------------
# Quota
# ---------------------------------------------------------------------------------------------------------
def _roll_hour(dataset: Dataset) -> None:
    quota = dataset.ga4_quota
    if time.monotonic() - quota.hour_started >= 3600:
        quota.used_hour = quota.used_thresholded_hour = 0
        quota.hour_started = time.monotonic()


def _check_quota(dataset: Dataset, thresholded: bool) -> None:
    q = dataset.ga4_quota
    _roll_hour(dataset)
    if q.used_day >= q.tokens_per_day:
        raise ApiError(429, "RESOURCE_EXHAUSTED", "Exhausted property tokens per day.")
    if q.used_hour >= q.tokens_per_hour:
        raise ApiError(429, "RESOURCE_EXHAUSTED", "Exhausted property tokens per hour.")
    if q.used_hour >= q.tokens_per_project_per_hour:
        raise ApiError(429, "RESOURCE_EXHAUSTED", "Exhausted property tokens for a project per hour.")
    if q.in_flight > q.concurrent_requests:
        raise ApiError(429, "RESOURCE_EXHAUSTED", "Exhausted concurrent requests quota.")
    if (
        thresholded
        and ENFORCE_THRESHOLDED_QUOTA
        and (q.used_thresholded_hour >= q.potentially_thresholded_requests_per_hour)
    ):
        raise ApiError(429, "RESOURCE_EXHAUSTED", "Exhausted potentially thresholded requests quota.")


def _charge(dataset: Dataset, tokens: int, thresholded: bool) -> dict:
    q = dataset.ga4_quota
    with q.lock:
        q.used_day += tokens
        q.used_hour += tokens
        q.used_thresholded_hour += int(thresholded)
        return {
            "tokensPerDay": {"consumed": tokens, "remaining": max(q.tokens_per_day - q.used_day, 0)},
            "tokensPerHour": {"consumed": tokens, "remaining": max(q.tokens_per_hour - q.used_hour, 0)},
            "concurrentRequests": {
                "consumed": 0,
                "remaining": max(q.concurrent_requests - q.in_flight + 1, 0),
            },
            "serverErrorsPerProjectPerHour": {
                "consumed": 0,
                "remaining": q.server_errors_per_project_per_hour,
            },
            "potentiallyThresholdedRequestsPerHour": {
                "consumed": int(thresholded),
                "remaining": max(q.potentially_thresholded_requests_per_hour - q.used_thresholded_hour, 0),
            },
            "tokensPerProjectPerHour": {
                "consumed": tokens,
                "remaining": max(q.tokens_per_project_per_hour - q.used_hour, 0),
            },
        }


# ---------------------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------------------
def _property_today(dataset: Dataset) -> dt.date:
    from zoneinfo import ZoneInfo

    return dataset.now.astimezone(ZoneInfo(GA4_TIME_ZONE)).date()


def _check_property(dataset: Dataset, property_id: str) -> None:
    if property_id != dataset.ga4_property_id:
        raise ApiError(
            403,
            "PERMISSION_DENIED",
            "User does not have sufficient permissions for this property. "
            "To learn more about Property ID, see https://developers.google.com/analytics/"
            "devguides/reporting/data/v1/property-id.",
        )


def ga4_routes(dataset: Dataset) -> list[Route]:
    """Starlette routes of the GA4 Data API stand-in, serving `dataset`."""
    engine = ReportEngine(dataset)

    async def run_report(request: Request) -> JSONResponse:
        quota = dataset.ga4_quota
        with quota.lock:
            quota.in_flight += 1
        try:
            _check_property(dataset, request.path_params["property_id"])
            try:
                body = json.loads(await request.body() or b"{}")
            except json.JSONDecodeError:
                raise _bad("Invalid JSON payload received.") from None
            report = parse_request(
                body,
                _property_today(dataset),
                registered_dimensions(dataset),
                ads_linked=dataset.ga4_restrictions.ads_linked,
            )
            thresholded = restrict.subject_to_thresholding(report.dimensions)
            _check_quota(dataset, thresholded)
            # Off the event loop: a big report must not stall the HubSpot routes served by the same app.
            result, _ = await run_in_threadpool(engine.run, report)
            enum_as_int = "enum-encoding=int" in request.url.query.replace("%3D", "=")
            return JSONResponse(_response(report, result, dataset, thresholded, enum_as_int))
        except ApiError as error:
            return error.response()
        finally:
            with quota.lock:
                quota.in_flight -= 1

    async def metadata(request: Request) -> JSONResponse:
        try:
            _check_property(dataset, request.path_params["property_id"])
        except ApiError as error:
            return error.response()
        return JSONResponse(
            {
                "name": f"properties/{dataset.ga4_property_id}/metadata",
                "dimensions": [
                    {
                        "apiName": d,
                        "uiName": FIELD_INFO[d][0],
                        "category": FIELD_INFO[d][1],
                        "customDefinition": restrict.is_custom(d),
                    }
                    for d in registered_dimensions(dataset)
                ],
                "metrics": [
                    {
                        "apiName": m,
                        "uiName": FIELD_INFO[m][0],
                        "category": FIELD_INFO[m][1],
                        "type": METRICS[m][1],
                    }
                    for m in METRICS
                ],
            }
        )

    async def check_compatibility(request: Request) -> JSONResponse:
        try:
            _check_property(dataset, request.path_params["property_id"])
            try:
                body = json.loads(await request.body() or b"{}")
            except json.JSONDecodeError:
                raise _bad("Invalid JSON payload received.") from None
            if not isinstance(body, dict):
                raise _bad("Invalid JSON payload received.")
            # A core method: refused like runReport when a quota is spent (it reports no token cost).
            _check_quota(dataset, thresholded=False)
            enum_as_int = "enum-encoding=int" in request.url.query.replace("%3D", "=")
            return JSONResponse(compatibility_response(body, dataset, enum_as_int))
        except ApiError as error:
            return error.response()

    return [
        Route("/v1beta/properties/{property_id}:runReport", run_report, methods=["POST"]),
        Route("/v1beta/properties/{property_id}:checkCompatibility", check_compatibility, methods=["POST"]),
        Route("/v1beta/properties/{property_id}/metadata", metadata, methods=["GET"]),
    ]


def compatibility_response(body: dict, dataset: Dataset, enum_as_int: bool) -> dict:
    """checkCompatibility: every dimension and metric, COMPATIBLE when adding it keeps the request valid.

    Like GA4, the method itself fails (400) when the request's own dimensions and metrics are incompatible.
    """
    registered = registered_dimensions(dataset)
    dims, mets = _field_names(body, registered)
    restrictions = dataset.ga4_restrictions
    # check_disagrees: the check reasons as if the property had a Google Ads link (ga-dev-tools#2187).
    linked = restrictions.ads_linked or restrictions.check_disagrees
    incompatible = restrict.incompatible_fields(dims, mets, ads_linked=linked)
    if incompatible:
        raise _bad(restrict.incompatibility_message(incompatible))
    wanted = body.get("compatibilityFilter", 0)
    if isinstance(wanted, str):
        wanted = next((k for k, v in COMPATIBILITY.items() if v == wanted), 0)

    def verdict(extra_dims: tuple[str, ...], extra_mets: tuple[str, ...]) -> int:
        clash = restrict.incompatible_fields(dims + extra_dims, mets + extra_mets, ads_linked=linked)
        return 2 if clash else 1

    def encoded(value: int) -> int | str:
        return value if enum_as_int else COMPATIBILITY[value]

    dimension_rows = []
    for name in registered:
        value = verdict((name,), ())
        if wanted in (0, value):
            ui_name, category = FIELD_INFO[name]
            metadata = {"apiName": name, "uiName": ui_name, "category": category}
            if restrict.is_custom(name):
                metadata["customDefinition"] = True
            dimension_rows.append({"dimensionMetadata": metadata, "compatibility": encoded(value)})
    metric_rows = []
    for name, (type_int, type_name, _) in METRICS.items():
        value = verdict((), (name,))
        if wanted in (0, value):
            ui_name, category = FIELD_INFO[name]
            metadata = {
                "apiName": name,
                "uiName": ui_name,
                "type": type_int if enum_as_int else type_name,
                "category": category,
            }
            metric_rows.append({"metricMetadata": metadata, "compatibility": encoded(value)})
    return {"dimensionCompatibilities": dimension_rows, "metricCompatibilities": metric_rows}


def _response(
    report: ReportRequest, result: _Result, dataset: Dataset, thresholded: bool, enum_as_int: bool
) -> dict:
    stop = report.offset + report.limit
    rows_dims = result.dimension_values(report.offset, stop)
    rows_vals = result.metric_values[report.offset : stop]
    currency = [METRICS[m][2] for m in report.metrics]
    rows = [
        {
            "dimensionValues": [{"value": v} for v in dims],
            "metricValues": [{"value": _format(v, currency[j])} for j, v in enumerate(vals)],
        }
        for dims, vals in zip(rows_dims, rows_vals.tolist(), strict=True)
    ]
    dim_names = list(report.dimensions) + (["dateRange"] if len(report.date_ranges) > 1 else [])
    body: dict = {
        "dimensionHeaders": [{"name": d} for d in dim_names],
        "metricHeaders": [
            {"name": m, "type": METRICS[m][0] if enum_as_int else METRICS[m][1]} for m in report.metrics
        ],
        "rows": rows,
        "rowCount": len(result),
        "metadata": {
            "currencyCode": GA4_CURRENCY,
            "timeZone": GA4_TIME_ZONE,
            "subjectToThresholding": thresholded,
            "dataLossFromOtherRow": result.other_row,
        },
        "kind": "analyticsData#runReport",
    }
    values = result.metric_values
    for name, key in (("TOTAL", "totals"), ("MAXIMUM", "maximums"), ("MINIMUM", "minimums")):
        if name in report.aggregations and len(values):
            # Totals count the withheld rows too (GA4: the total can exceed the sum of the rows returned).
            agg = {"TOTAL": result.totals, "MAXIMUM": values.max(axis=0), "MINIMUM": values.min(axis=0)}[name]
            body[key] = [
                {
                    "dimensionValues": [{"value": f"RESERVED_{name}"} for _ in dim_names],
                    "metricValues": [{"value": _format(v, currency[j])} for j, v in enumerate(agg.tolist())],
                }
            ]
    tokens = 1 + len(rows) // ROWS_PER_TOKEN + result.days_read // DAYS_PER_TOKEN
    quota = _charge(dataset, tokens, thresholded)
    if report.return_quota:
        body["propertyQuota"] = quota
    return body
