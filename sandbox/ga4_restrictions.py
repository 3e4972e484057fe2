"""What real GA4 refuses or hides, for the GA4 stand-in: compatibility, `(other)` rows and thresholding.

- Compatibility: advertiser metrics (Google Ads cost, clicks, impressions) need a Google Ads link and do not
  go with custom (user- or event-scoped) dimensions. runReport answers 400 INVALID_ARGUMENT naming the field
  to remove; checkCompatibility lists every dimension and metric with COMPATIBLE / INCOMPATIBLE.
- `(other)`: a high-cardinality custom dimension keeps its top values per day (most sessions first); the
  rows of the other values fold into one row per day whose dimensions all read `(other)`.
- Thresholding: in a report with a user-scoped custom dimension, a row whose cohort (same day and non-user
  dimensions, all users) has fewer users than the threshold is withheld; the totals still count it.

All functions work on integer-coded rows (codes into per-dimension string tables), as the report engine does.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

ADVERTISER_METRICS = ("advertiserAdCost", "advertiserAdClicks", "advertiserAdImpressions")
CUSTOM_PREFIXES = ("customUser:", "customEvent:")
USER_SCOPED_PREFIX = "customUser:"
OTHER = "(other)"


def is_custom(dimension: str) -> bool:
    return dimension.startswith(CUSTOM_PREFIXES)


def subject_to_thresholding(dimensions: Sequence[str]) -> bool:
    """Reports with a user-scoped custom dimension can single people out: GA4 thresholds them."""
    return any(d.startswith(USER_SCOPED_PREFIX) for d in dimensions)


def incompatible_fields(dimensions: Sequence[str], metrics: Sequence[str], *, ads_linked: bool) -> list[str]:
    """The fields GA4 would ask to remove from this request (empty when the request is compatible)."""
    advertiser = [m for m in metrics if m in ADVERTISER_METRICS]
    if not advertiser:
        return []
    if not ads_linked or any(is_custom(d) for d in dimensions):
        return advertiser
    return []


def incompatibility_message(fields: Sequence[str]) -> str:
    """GA4's INVALID_ARGUMENT text for an incompatible request (it names the first field to remove)."""
    return (
        f"Please remove {fields[0]} to make the request compatible. The request's dimensions & metrics are "
        "incompatible. To learn more, see https://ga-dev-tools.web.app/ga4/dimensions-metrics-explorer/"
    )


# ---------------------------------------------------------------------------------------------------------
# (other) rows
# ---------------------------------------------------------------------------------------------------------
def _codes_of(rows: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One shared code per distinct row across `reference` and `rows`: (codes of reference, codes of rows)."""
    both = np.concatenate([reference, rows])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse[: len(reference)], inverse[len(reference) :]


def kept_values(periods: np.ndarray, values: np.ndarray, sessions: np.ndarray, limit: int) -> np.ndarray:
    """Per fact: is its custom-dimension value among the `limit` values with most sessions in its period (a
    day, and the date range when there are several)? Ties go to the smaller code, so the ranking is stable."""
    n_period = periods.shape[1]
    unique, inverse = np.unique(np.column_stack([periods, values]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    totals = np.bincount(inverse, weights=sessions, minlength=len(unique))
    # np.lexsort: the last key is the primary one. Period first, then most sessions, then the value.
    sort_keys = [unique[:, j] for j in range(unique.shape[1] - 1, n_period - 1, -1)]
    sort_keys.append(-totals)
    sort_keys += [unique[:, j] for j in range(n_period - 1, -1, -1)]
    order = np.lexsort(sort_keys)
    ranked_periods = unique[order][:, :n_period]
    position = np.arange(len(order))
    starts = np.r_[True, (ranked_periods[1:] != ranked_periods[:-1]).any(axis=1)]
    rank = position - np.maximum.accumulate(np.where(starts, position, 0))
    kept_unique = np.zeros(len(unique), dtype=bool)
    kept_unique[order] = rank < limit
    return kept_unique[inverse]


def insert_other(tables: list[list[str]], columns: list[int]) -> tuple[list[list[str]], dict[int, int]]:
    """Tables with `(other)` inserted at its sorted place in each of `columns`; {column: its code}.

    Codes at or after that place move up by one (apply `shift_codes` to every array coded on these tables).
    """
    new_tables = list(tables)
    positions: dict[int, int] = {}
    for j in columns:
        table = tables[j]
        position = bisect.bisect_left(table, OTHER)
        if position < len(table) and table[position] == OTHER:
            positions[j] = -position - 1  # already there: no shift, code = position
            continue
        new_tables[j] = [*table[:position], OTHER, *table[position:]]
        positions[j] = position
    return new_tables, positions


def shift_codes(keys: np.ndarray, positions: dict[int, int]) -> np.ndarray:
    keys = keys.copy()
    for j, position in positions.items():
        if position >= 0:
            keys[:, j] += keys[:, j] >= position
    return keys


def other_code(positions: dict[int, int], j: int) -> int:
    position = positions[j]
    return position if position >= 0 else -position - 1


# ---------------------------------------------------------------------------------------------------------
# Thresholding
# ---------------------------------------------------------------------------------------------------------
def cohort_users(
    row_keys: np.ndarray, fact_keys: np.ndarray, fact_users: np.ndarray, cohort_cols: list[int]
) -> np.ndarray:
    """Users of each row's cohort: every fact with the same values in `cohort_cols`, whoever the user is."""
    if not cohort_cols:
        return np.full(len(row_keys), float(fact_users.sum()))
    fact_codes, row_codes = _codes_of(row_keys[:, cohort_cols], fact_keys[:, cohort_cols])
    size = int(max(fact_codes.max(initial=0), row_codes.max(initial=0))) + 1
    users = np.bincount(fact_codes, weights=fact_users, minlength=size)
    return users[row_codes]
