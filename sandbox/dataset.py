"""The sandbox data set: CRM store, GA4 facts, the marketing-spend sheet and the ground truth.

Built by `sandbox.generator.generate`; served by the HubSpot and GA4 stand-ins; read by tests that compare
what the pipeline computes with what the generator put in (`ground_truth`).

Ground-truth rules (the models, with the sandbox's model settings `sandbox.generator.model_settings()`, must
match them):
- won revenue = sum of `amount_in_home_currency` (EUR) of closed-won, non-archived deals, by the
  first-touch channel of the deal's contact; refunds (negative amounts) and won deals without an amount are
  rejected by the pipeline and listed in `rejected_won_deals`, not counted;
- gross margin = for each such deal, (sum of line-item `amount` - sum of `quantity * hs_cost_of_goods_sold`)
  converted to EUR at the deal's fixed rate (EUR 1, USD 0.92, GBP 1.17), unrounded; deals without line items
  count `amount_in_home_currency` x their pipeline's margin rate (default 0.5, wholesale 0.36). Channel totals
  are rounded half-up to the cent;
- expected cost = Google Ads cost from GA4 for google / cpc campaigns, the spend file (good rows, converted to
  EUR at the fixed rates; the CHF row has no rate) for the rest.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sandbox.store import CrmStore

SPEND_CSV_COLUMNS = ("period_start", "period_end", "source", "medium", "campaign", "amount", "currency")
GA4_TIME_ZONE = "Europe/Paris"
GA4_CURRENCY = "EUR"
# How far the numbers of a "processing" day are from their final value on the n-th pull (then they stay at
# the last factor until the day settles): GA4 keeps revising the last 48 hours.
PROCESSING_FACTORS = (0.82, 0.88, 0.93, 0.97, 0.99)


@dataclass(frozen=True)
class SpendRow:
    """One row of the marketing-spend sheet, exactly as written (strings)."""

    period_start: str
    period_end: str
    source: str
    medium: str
    campaign: str
    amount: str
    currency: str


@dataclass
class Ga4Facts:
    """GA4 hits as columns, one row per contact session plus pre-aggregated anonymous daily rows.

    Dimension values are codes into `tables[dim]` (sorted strings, so code order is alphanumeric order);
    `contact` is the CRM contact id (0 = not set); currency metrics are integer cents.
    """

    first_day: dt.date
    day: np.ndarray
    dims: dict[str, np.ndarray]
    tables: dict[str, list[str]]
    contact: np.ndarray
    metrics: dict[str, np.ndarray]
    processing_days: list[dt.date] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.day)

    def day_dates(self) -> np.ndarray:
        return np.datetime64(self.first_day, "D") + self.day.astype("timedelta64[D]")

    def day_index(self, day: dt.date) -> int:
        return (day - self.first_day).days


@dataclass
class Ga4Quota:
    """The GA4 property's token buckets (configurable so tests can exhaust them) and what is spent."""

    tokens_per_day: int = 200_000
    tokens_per_hour: int = 40_000
    tokens_per_project_per_hour: int = 14_000
    concurrent_requests: int = 10
    server_errors_per_project_per_hour: int = 10
    potentially_thresholded_requests_per_hour: int = 120
    used_day: int = 0
    used_hour: int = 0
    used_thresholded_hour: int = 0
    in_flight: int = 0
    hour_started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        with self.lock:
            self.used_day = self.used_hour = self.used_thresholded_hour = 0
            self.hour_started = time.monotonic()


@dataclass
class Ga4Restrictions:
    """What the GA4 property refuses or hides, as real GA4 does (docs/contracts.md section 2).

    - `ads_linked=False`: a property without a Google Ads link (and no cost import): checkCompatibility lists
      the advertiser metrics as INCOMPATIBLE and a report asking for them answers 400 INVALID_ARGUMENT.
    - `threshold_users`: in a report with a user-scoped custom dimension (subject to thresholding), a row
      whose cohort (the same day and other dimensions, every user) has fewer users is withheld: it is
      missing from the rows and from `rowCount`, but still counted in the totals. 0 switches it off.
    - `other_values_per_day`: a custom dimension keeps this many values per day (most sessions first); the
      rows of the other values fold into one `(other)` row per day (`dataLossFromOtherRow`). None scales the
      limit to the data set (`contacts // 150`, at least 5), so the same share folds at every sandbox size,
      as GA4's limits bite at production scale; 0 switches folding off.
    - `check_disagrees=True`: checkCompatibility says COMPATIBLE for advertiser metrics that runReport then
      refuses (reported against the real API in ga-dev-tools#2187).
    """

    ads_linked: bool = True
    threshold_users: int = 2
    other_values_per_day: int | None = None
    check_disagrees: bool = False

    @classmethod
    def off(cls) -> Ga4Restrictions:
        """A property that hides nothing (ads linked, no thresholding, no `(other)` row)."""
        return cls(ads_linked=True, threshold_users=0, other_values_per_day=0)


OTHER_VALUES_PER_CONTACTS = (
    150  # default (other) limit: one kept custom-dimension value per day per 150 contacts
)
MIN_OTHER_VALUES_PER_DAY = 5


@dataclass
class Dataset:
    seed: int
    contacts: int
    now: dt.datetime
    ga4_property_id: str
    ga4: Ga4Facts
    spend_rows: list[SpendRow]
    crm: CrmStore = field(default_factory=CrmStore)
    ground_truth: dict = field(default_factory=dict)
    first_touch_channel_by_contact: dict[int, int] = field(default_factory=dict)
    ga4_quota: Ga4Quota = field(default_factory=Ga4Quota)
    # How many report pulls have read the processing days so far (each pull sees revised numbers).
    ga4_processing_pulls: int = 0
    # False: a property where nobody registered the CRM contact id as a custom dimension (metadata lacks it,
    # reports asking for it answer 400), as on a fresh GA4 property.
    ga4_contact_dimension_registered: bool = True
    ga4_restrictions: Ga4Restrictions = field(default_factory=Ga4Restrictions)

    @property
    def ga4_other_values_per_day(self) -> int:
        """How many values of a custom dimension a day keeps before the rest folds into `(other)` (0: off)."""
        limit = self.ga4_restrictions.other_values_per_day
        if limit is None:
            return max(MIN_OTHER_VALUES_PER_DAY, self.contacts // OTHER_VALUES_PER_CONTACTS)
        return max(limit, 0)

    # -- GA4 processing window ------------------------------------------------------------------------
    @property
    def ga4_processing_days(self) -> list[dt.date]:
        return list(self.ga4.processing_days)

    def advance_ga4_processing(self, days: int = 1) -> list[dt.date]:
        """Let `days` of the processing days settle (oldest first); returns the days that became final."""
        settled = self.ga4.processing_days[:days]
        self.ga4.processing_days = self.ga4.processing_days[days:]
        if not self.ga4.processing_days:
            self.ga4_processing_pulls = 0
        return settled

    def ga4_processing_factor(self, pulls: int) -> float:
        return PROCESSING_FACTORS[min(pulls, len(PROCESSING_FACTORS) - 1)]

    # -- files ----------------------------------------------------------------------------------------
    def write_spend_csv(self, path: str | Path) -> Path:
        """The marketing-spend sheet as exported to CSV (bad rows included, as people leave them)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(SPEND_CSV_COLUMNS)
            for row in self.spend_rows:
                writer.writerow([getattr(row, c) for c in SPEND_CSV_COLUMNS])
        return path

    def write_ground_truth(self, path: str | Path) -> Path:
        """Write ground_truth.json at `path` and ground_truth_contacts.csv (id, channel) beside it."""
        from sandbox.generator import CHANNEL_IDS

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        contacts_csv = path.with_name("ground_truth_contacts.csv")
        truth = dict(self.ground_truth)
        truth["first_touch_channel_by_contact"] = contacts_csv.name
        path.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        with contacts_csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("contact_id", "first_touch_channel"))
            for contact_id, channel in sorted(self.first_touch_channel_by_contact.items()):
                writer.writerow((contact_id, CHANNEL_IDS[channel]))
        return path

    def first_touch_channel(self, contact_id: int) -> str | None:
        from sandbox.generator import CHANNEL_IDS

        code = self.first_touch_channel_by_contact.get(contact_id)
        return None if code is None else CHANNEL_IDS[code]
