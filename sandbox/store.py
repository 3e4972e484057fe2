"""In-memory CRM store behind the HubSpot stand-in: objects, associations, properties, pipelines.

The generator (sandbox.generator) fills it; the API (sandbox.hubspot_api) serves it. Values are kept exactly
as HubSpot returns them (strings or None), so the API layer only has to pick and serialise.

Sized for 1,000,000 contacts: records live in a dict keyed by id, and each object type keeps its live ids and
its archived ids in two sorted lists, so a list page is one bisect plus `limit` steps (O(page)).

Like production HubSpot (docs/operations.md):
- merging two records creates a NEW record with a new id; both old ids become aliases that resolve to it
  (chains too: A+B -> C, then C+D -> E, and A, B, C, D all resolve to E); the new record lists every id merged
  into it in ``hs_merged_object_ids`` and takes over the associations of both;
- archived records stay listable (``archived=true``, with ``archivedAt``) until purged (retention or a GDPR
  delete); a purged record is gone from every endpoint;
- search reads an index that lags writes by ``search_lag_seconds``: until a write is that old, search sees
  the record as it was before (``search_records`` / ``search_get``).
"""

from __future__ import annotations

import bisect
import heapq
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

OBJECT_TYPES = ("contacts", "deals", "line_items")

# HubSpot-defined association type ids (HUBSPOT_DEFINED category), both directions.
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "deals"): 4,
    ("deals", "contacts"): 3,
    ("deals", "line_items"): 19,
    ("line_items", "deals"): 20,
}
# Association labels as HubSpot names them in v3 embedded associations ("type" field).
ASSOCIATION_TYPE_NAMES: dict[tuple[str, str], str] = {
    ("contacts", "deals"): "contact_to_deal",
    ("deals", "contacts"): "deal_to_contact",
    ("deals", "line_items"): "deal_to_line_item",
    ("line_items", "deals"): "line_item_to_deal",
}

# The property that records the last change: contacts use the legacy name, every other object the hs_ one.
LAST_MODIFIED_PROPERTY = {
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "line_items": "hs_lastmodifieddate",
}

# Properties HubSpot returns on every record even when not asked for (list, read and search).
DEFAULT_RETURNED_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "line_items": (
        "amount",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "name",
        "price",
        "quantity",
    ),
}

VALID_PROPERTY_TYPES = ("string", "number", "date", "datetime", "enumeration", "bool", "phone_number")
VALID_FIELD_TYPES = (
    "text",
    "textarea",
    "number",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "date",
    "file",
    "html",
    "phonenumber",
    "calculation_equation",
)
# Which fieldTypes make sense for each type (HubSpot refuses e.g. type=number with fieldType=select).
FIELD_TYPES_BY_TYPE: dict[str, tuple[str, ...]] = {
    "string": ("text", "textarea", "file", "html", "phonenumber"),
    "number": ("number", "calculation_equation"),
    "date": ("date",),
    "datetime": ("date",),
    "enumeration": ("select", "radio", "checkbox", "booleancheckbox", "calculation_equation"),
    "bool": ("booleancheckbox", "select", "radio"),
    "phone_number": ("phonenumber", "text"),
}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_hubspot_datetime(value: datetime) -> str:
    """ISO string the way HubSpot writes datetime property values: UTC, milliseconds, trailing Z."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    # isoformat is several times faster than strftime, and this runs twice per record served
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_hubspot_datetime(value: str) -> datetime:
    """Parse an ISO datetime (with Z or offset), a date, or epoch milliseconds into an aware UTC datetime."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_epoch_ms(value: datetime) -> int:
    return (value - EPOCH) // _ONE_MS


_ONE_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - EPOCH


@dataclass(slots=True)
class CrmRecord:
    id: int
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    archived_at: datetime | None = None


def _prop(
    name: str,
    label: str,
    type_: str,
    field_type: str,
    group: str,
    *,
    read_only: bool = False,
    hubspot_defined: bool = True,
    options: list[dict] | None = None,
    display_hint: str | None = None,
) -> dict:
    definition = {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "groupName": group,
        "description": "",
        "options": options or [],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": name == "hs_object_id",
        "hidden": False,
        "hubspotDefined": hubspot_defined,
        "formField": False,
        "archived": False,
        "createdAt": "2019-08-06T02:41:52.000Z",
        "updatedAt": "2019-08-06T02:41:52.000Z",
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": read_only,
        },
    }
    if display_hint:
        definition["numberDisplayHint"] = display_hint
    return definition


def _options(values: Iterable[tuple[str, str]]) -> list[dict]:
    return [
        {"label": label, "value": value, "displayOrder": i, "hidden": False}
        for i, (value, label) in enumerate(values)
    ]


ANALYTICS_SOURCE_OPTIONS = _options(
    [
        ("ORGANIC_SEARCH", "Organic Search"),
        ("PAID_SEARCH", "Paid Search"),
        ("EMAIL_MARKETING", "Email Marketing"),
        ("SOCIAL_MEDIA", "Social Media"),
        ("REFERRALS", "Referrals"),
        ("OTHER_CAMPAIGNS", "Other Campaigns"),
        ("DIRECT_TRAFFIC", "Direct Traffic"),
        ("OFFLINE", "Offline Sources"),
        ("PAID_SOCIAL", "Paid Social"),
        ("AI_REFERRALS", "AI Referrals"),
    ]
)
# HubSpot's default lifecycle stages, in order (value, label): the property's options and its date properties.
LIFECYCLE_STAGES = (
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)
LIFECYCLE_OPTIONS = _options(LIFECYCLE_STAGES)
HOW_DID_YOU_HEAR_OPTIONS = _options(
    [
        ("salon_maison_objet", "Salon Maison&Objet"),
        ("salon_bijorhca", "Salon Bijorhca"),
        ("bouche_a_oreille", "Bouche à oreille"),
        ("recommandation_client", "Recommandation d'un client"),
    ]
)
BOOL_OPTIONS = _options([("true", "Yes"), ("false", "No")])
CURRENCY_OPTIONS = _options([("EUR", "Euro"), ("USD", "US Dollar"), ("GBP", "British Pound")])


def default_property_definitions(object_type: str) -> list[dict]:
    """HubSpot-defined properties the pipeline reads (plus the sandbox's custom contact property)."""
    common = [
        _prop(
            "hs_object_id", "Record ID", "number", "number", f"{object_type[:-1]}information", read_only=True
        ),
        _prop(
            "createdate", "Create Date", "datetime", "date", f"{object_type[:-1]}information", read_only=True
        ),
    ]
    if object_type == "contacts":
        info, analytics = "contactinformation", "analyticsinformation"
        lifecycle_dates = [
            _prop(
                f"hs_lifecyclestage_{stage}_date",
                f"Became a {label} Date",
                "datetime",
                "date",
                info,
                read_only=True,
            )
            for stage, label in LIFECYCLE_STAGES
        ]
        return [
            *common,
            _prop("lastmodifieddate", "Last Modified Date", "datetime", "date", info, read_only=True),
            _prop("email", "Email", "string", "text", info),
            _prop("firstname", "First Name", "string", "text", info),
            _prop("lastname", "Last Name", "string", "text", info),
            _prop(
                "lifecyclestage", "Lifecycle Stage", "enumeration", "radio", info, options=LIFECYCLE_OPTIONS
            ),
            *lifecycle_dates,
            _prop(
                "hs_analytics_source",
                "Original Source",
                "enumeration",
                "select",
                analytics,
                read_only=True,
                options=ANALYTICS_SOURCE_OPTIONS,
            ),
            _prop(
                "hs_analytics_source_data_1",
                "Original Source Drill-Down 1",
                "string",
                "text",
                analytics,
                read_only=True,
            ),
            _prop(
                "hs_analytics_source_data_2",
                "Original Source Drill-Down 2",
                "string",
                "text",
                analytics,
                read_only=True,
            ),
            _prop("hs_analytics_first_url", "First Page Seen", "string", "text", analytics, read_only=True),
            _prop(
                "hs_analytics_first_referrer",
                "First Referring Site",
                "string",
                "text",
                analytics,
                read_only=True,
            ),
            _prop(
                "hs_analytics_first_timestamp",
                "Time First Seen",
                "datetime",
                "date",
                analytics,
                read_only=True,
            ),
            _prop(
                "hs_latest_source",
                "Latest Traffic Source",
                "enumeration",
                "select",
                analytics,
                read_only=True,
                options=ANALYTICS_SOURCE_OPTIONS,
            ),
            _prop(
                "hs_latest_source_data_1",
                "Latest Traffic Source Drill-Down 1",
                "string",
                "text",
                analytics,
                read_only=True,
            ),
            _prop(
                "hs_latest_source_data_2",
                "Latest Traffic Source Drill-Down 2",
                "string",
                "text",
                analytics,
                read_only=True,
            ),
            _prop(
                "hs_latest_source_timestamp",
                "Latest Traffic Source Date",
                "datetime",
                "date",
                analytics,
                read_only=True,
            ),
            _prop(
                "hs_merged_object_ids", "Merged Contact IDs", "enumeration", "checkbox", info, read_only=True
            ),
            _prop(
                "how_did_you_hear_about_us",
                "How did you hear about us?",
                "enumeration",
                "select",
                info,
                hubspot_defined=False,
                options=HOW_DID_YOU_HEAR_OPTIONS,
            ),
        ]
    if object_type == "deals":
        info = "dealinformation"
        return [
            *common,
            _prop("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", info, read_only=True),
            _prop("dealname", "Deal Name", "string", "text", info),
            _prop("amount", "Amount", "number", "number", info, display_hint="currency"),
            _prop("deal_currency_code", "Currency", "enumeration", "select", info, options=CURRENCY_OPTIONS),
            _prop(
                "amount_in_home_currency",
                "Amount in company currency",
                "number",
                "number",
                info,
                read_only=True,
                display_hint="currency",
            ),
            _prop("dealstage", "Deal Stage", "enumeration", "radio", info),
            _prop("pipeline", "Pipeline", "enumeration", "select", info),
            _prop("closedate", "Close Date", "datetime", "date", info),
            _prop(
                "hs_is_closed_won",
                "Is Closed Won",
                "bool",
                "booleancheckbox",
                info,
                read_only=True,
                options=BOOL_OPTIONS,
            ),
            _prop(
                "hs_is_closed",
                "Is Deal Closed?",
                "bool",
                "booleancheckbox",
                info,
                read_only=True,
                options=BOOL_OPTIONS,
            ),
            _prop(
                "hs_deal_stage_probability",
                "Deal Stage Probability",
                "number",
                "number",
                info,
                read_only=True,
                display_hint="probability",
            ),
            _prop("hs_merged_object_ids", "Merged Deal IDs", "enumeration", "checkbox", info, read_only=True),
        ]
    if object_type == "line_items":
        info = "lineiteminformation"
        return [
            *common,
            _prop("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", info, read_only=True),
            _prop("name", "Name", "string", "text", info),
            _prop("hs_sku", "SKU", "string", "text", info),
            _prop("price", "Unit price", "number", "number", info, display_hint="currency"),
            _prop("quantity", "Quantity", "number", "number", info),
            _prop("amount", "Net price", "number", "number", info, read_only=True, display_hint="currency"),
            _prop("hs_cost_of_goods_sold", "Unit cost", "number", "number", info, display_hint="currency"),
            _prop(
                "hs_line_item_currency_code",
                "Currency",
                "enumeration",
                "select",
                info,
                options=CURRENCY_OPTIONS,
            ),
        ]
    raise ValueError(f"unknown object type {object_type!r}: expected one of {OBJECT_TYPES}")


def default_property_groups(object_type: str) -> list[dict]:
    names = {
        "contacts": [
            ("contactinformation", "Contact information"),
            ("analyticsinformation", "Web analytics"),
        ],
        "deals": [("dealinformation", "Deal information")],
        "line_items": [("lineiteminformation", "Line item information")],
    }[object_type]
    return [
        {"name": n, "label": label, "displayOrder": i, "archived": False}
        for i, (n, label) in enumerate(names)
    ]


def _stage(stage_id: str, label: str, order: int, probability: str, closed: bool) -> dict:
    return {
        "id": stage_id,
        "label": label,
        "displayOrder": order,
        "archived": False,
        "metadata": {"probability": probability, "isClosed": "true" if closed else "false"},
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        "createdAt": "2020-01-01T00:00:00.000Z",
        "updatedAt": "2020-01-01T00:00:00.000Z",
    }


# The sandbox deal pipelines (docs/contracts.md): id -> (label, [(stage id, label, probability, closed)]).
SANDBOX_PIPELINES: dict[str, tuple[str, list[tuple[str, str, str, bool]]]] = {
    "default": (
        "Vente en ligne",
        [
            ("appointmentscheduled", "Rendez-vous fixé", "0.2", False),
            ("qualifiedtobuy", "Qualifié", "0.4", False),
            ("presentationscheduled", "Présentation prévue", "0.6", False),
            ("decisionmakerboughtin", "Décideur convaincu", "0.8", False),
            ("closedwon", "Gagné", "1.0", True),
            ("closedlost", "Perdu", "0.0", True),
        ],
    ),
    "wholesale": (
        "Revendeurs",
        [
            ("wh_prospect", "Prospect", "0.1", False),
            ("wh_sample_sent", "Échantillon envoyé", "0.3", False),
            ("wh_negotiation", "Négociation", "0.7", False),
            ("wh_won", "Gagné", "1.0", True),
            ("wh_lost", "Perdu", "0.0", True),
        ],
    ),
}


def default_deal_pipelines() -> list[dict]:
    """SANDBOX_PIPELINES as HubSpot's pipelines API returns them."""
    return [
        {
            "id": pipeline_id,
            "label": label,
            "displayOrder": order,
            "archived": False,
            "createdAt": "2020-01-01T00:00:00.000Z",
            "updatedAt": "2020-01-01T00:00:00.000Z",
            "stages": [_stage(*stage[:2], i, *stage[2:]) for i, stage in enumerate(stages)],
        }
        for order, (pipeline_id, (label, stages)) in enumerate(SANDBOX_PIPELINES.items())
    ]


class UnknownObjectType(KeyError):
    pass


class _ObjectTable:
    """One object type: records by id plus sorted id lists for live and archived records."""

    __slots__ = ("archived_ids", "lagged", "live_ids", "max_id", "merged_into", "records")

    def __init__(self) -> None:
        self.records: dict[int, CrmRecord] = {}
        self.live_ids: list[int] = []
        self.archived_ids: list[int] = []
        # merged-away id -> id of the record that holds it now (always the end of the chain)
        self.merged_into: dict[int, int] = {}
        self.max_id = 0  # ids are never reused, even after a purge
        # Search index lag: id -> [state search sees, [(due monotonic time, state after a write), ...]];
        # a state is a frozen copy of a live record, or None (not in search).
        self.lagged: dict[int, list] = {}


def _frozen(record: CrmRecord | None) -> CrmRecord | None:
    """What search would index for ``record``: a copy of a live record, None for anything else."""
    if record is None or record.archived:
        return None
    return replace(record, properties=dict(record.properties))


def _insert_sorted(ids: list[int], record_id: int) -> None:
    # The generator adds ids in increasing order: appending keeps this O(1) in the common case.
    if not ids or ids[-1] < record_id:
        ids.append(record_id)
    else:
        position = bisect.bisect_left(ids, record_id)
        if position == len(ids) or ids[position] != record_id:
            ids.insert(position, record_id)


def _remove_sorted(ids: list[int], record_id: int) -> None:
    position = bisect.bisect_left(ids, record_id)
    if position < len(ids) and ids[position] == record_id:
        del ids[position]


class CrmStore:
    """Thread-safe in-memory CRM (one re-entrant lock; the API server and tests share it)."""

    OBJECT_TYPES = OBJECT_TYPES

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        # Seconds before search sees a write (HubSpot's index is eventually consistent). 0 = at once. Each
        # write waits search_lag_seconds x a factor drawn in search_lag_spread: lags differ between writes, so
        # a later write can become searchable before an earlier one (why the cursor needs an overlap).
        self.search_lag_seconds = 0.0
        self.search_lag_spread = (0.2, 1.0)
        self._lag_rng = random.Random(20261201)
        # Bumped whenever what search sees changes because lagged writes became visible.
        self.index_version = 0
        # Called with (object_type, record_id) after every change: the churn writer and tests listen here.
        self._listeners: list[Callable[[str, str, int], None]] = []
        self._tables: dict[str, _ObjectTable] = {t: _ObjectTable() for t in OBJECT_TYPES}
        # (from_type, to_type) -> from_id -> {to_id: type_id}
        self._associations: dict[tuple[str, str], dict[int, dict[int, int]]] = {
            pair: {} for pair in ASSOCIATION_TYPE_IDS
        }
        self._properties: dict[str, dict[str, dict]] = {t: {} for t in OBJECT_TYPES}
        self._groups: dict[str, dict[str, dict]] = {t: {} for t in OBJECT_TYPES}
        self._pipelines: dict[str, list[dict]] = {t: [] for t in OBJECT_TYPES}
        # The portal's currencies (account-info): a deal without deal_currency_code is in company_currency,
        # and so is HubSpot's amount_in_home_currency.
        self.company_currency = "EUR"
        self.additional_currencies: tuple[str, ...] = ("USD", "GBP")
        # Bumped on every change: the search layer caches filtered id lists per version.
        self.version = 0
        for object_type in OBJECT_TYPES:
            for group in default_property_groups(object_type):
                self.define_group(object_type, group)
            for definition in default_property_definitions(object_type):
                self.define_property(object_type, definition)
        self.set_pipelines("deals", default_deal_pipelines())

    # ----------------------------------------------------------------- helpers
    def _table(self, object_type: str) -> _ObjectTable:
        try:
            return self._tables[object_type]
        except KeyError:
            raise UnknownObjectType(object_type) from None

    def _stamp(self, object_type: str, record: CrmRecord, at: datetime) -> None:
        record.updated_at = at
        record.properties[LAST_MODIFIED_PROPERTY[object_type]] = format_hubspot_datetime(at)

    def _before_write(self, table: _ObjectTable, record_id: int) -> None:
        """With search lag on: remember what search sees of the record before it changes (caller locks)."""
        if self.search_lag_seconds > 0 and record_id not in table.lagged:
            table.lagged[record_id] = [_frozen(table.records.get(record_id)), []]

    def _after_write(self, object_type: str, table: _ObjectTable, record_id: int, change: str) -> None:
        """With search lag on: the record's new state reaches search ``search_lag_seconds`` from now."""
        entry = table.lagged.get(record_id)
        if entry is not None:
            low, high = self.search_lag_spread
            due = self._clock() + self.search_lag_seconds * self._lag_rng.uniform(low, high)
            if entry[1] and due < entry[1][-1][0]:
                due = entry[1][-1][0]  # one record's writes reach the index in order
            entry[1].append((due, _frozen(table.records.get(record_id))))
        for listener in self._listeners:
            listener(object_type, change, record_id)

    def add_listener(self, listener: Callable[[str, str, int], None]) -> None:
        """``listener(object_type, change, record_id)`` after every write (change: create, update, archive,
        restore, purge, merge)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str, str, int], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def new_id(self, object_type: str) -> int:
        """The next record id: above every id this object type ever had (HubSpot never reuses ids)."""
        table = self._table(object_type)
        with self.lock:
            table.max_id += 1
            return table.max_id

    def resolve(self, object_type: str, record_id: int) -> int:
        """The id that answers for ``record_id``: itself, or the record it was merged into."""
        return self._table(object_type).merged_into.get(record_id, record_id)

    def merged_ids(self, object_type: str) -> dict[int, int]:
        """Every merged-away id -> the id of the record that holds it now."""
        with self.lock:
            return dict(self._table(object_type).merged_into)

    # ----------------------------------------------------------------- objects
    def add(
        self,
        object_type: str,
        record_id: int,
        properties: dict[str, str | None],
        created_at: datetime,
        updated_at: datetime,
        archived: bool = False,
    ) -> CrmRecord:
        """Add (or replace) a record. createdate, the last-modified property and hs_object_id are filled in
        from the arguments when the caller leaves them out, as HubSpot always has them."""
        table = self._table(object_type)
        props = dict(properties)
        props.setdefault("hs_object_id", str(record_id))
        # Only format when missing: the generator passes them, and formatting 1M datetimes costs ~10 s.
        if "createdate" not in props:
            props["createdate"] = format_hubspot_datetime(created_at)
        if LAST_MODIFIED_PROPERTY[object_type] not in props:
            props[LAST_MODIFIED_PROPERTY[object_type]] = format_hubspot_datetime(updated_at)
        record = CrmRecord(
            record_id, props, created_at, updated_at, archived, updated_at if archived else None
        )
        with self.lock:
            self._before_write(table, record_id)
            previous = table.records.get(record_id)
            if previous is not None:
                _remove_sorted(table.archived_ids if previous.archived else table.live_ids, record_id)
            table.records[record_id] = record
            table.max_id = max(table.max_id, record_id)
            _insert_sorted(table.archived_ids if archived else table.live_ids, record_id)
            self.version += 1
            self._after_write(object_type, table, record_id, "create")
        return record

    def create(
        self, object_type: str, properties: dict[str, str | None], at: datetime | None = None
    ) -> CrmRecord:
        """A new record with the next id, created (and last modified) at ``at``."""
        at = at or datetime.now(UTC)
        with self.lock:
            record_id = self.new_id(object_type)
            props = {k: v for k, v in properties.items() if v not in (None, "")}
            props["createdate"] = format_hubspot_datetime(at)
            props.pop(LAST_MODIFIED_PROPERTY[object_type], None)
            return self.add(object_type, record_id, props, at, at)

    def get(self, object_type: str, record_id: int) -> CrmRecord | None:
        """The record, archived or not; None when it never existed or was merged away."""
        return self._table(object_type).records.get(record_id)

    def update(
        self, object_type: str, record_id: int, properties: dict[str, str | None], at: datetime | None = None
    ) -> CrmRecord:
        table = self._table(object_type)
        at = at or datetime.now(UTC)
        with self.lock:
            record = table.records.get(record_id)
            if record is None or record.archived:
                raise KeyError(f"{object_type} {record_id} does not exist")
            self._before_write(table, record_id)
            for name, value in properties.items():
                # HubSpot clears a property when it is sent an empty string.
                record.properties[name] = None if value == "" else value
            self._stamp(object_type, record, at)
            self.version += 1
            self._after_write(object_type, table, record_id, "update")
            return record

    def touch(self, object_type: str, ids: Iterable[int], at: datetime) -> None:
        """A bulk change that gives many records the same modification timestamp (e.g. a workflow)."""
        table = self._table(object_type)
        with self.lock:
            for record_id in ids:
                record = table.records.get(record_id)
                if record is not None:
                    self._before_write(table, record_id)
                    self._stamp(object_type, record, at)
                    self._after_write(object_type, table, record_id, "update")
            self.version += 1

    def archive(self, object_type: str, record_id: int, at: datetime) -> None:
        table = self._table(object_type)
        with self.lock:
            record = table.records.get(record_id)
            if record is None:
                raise KeyError(f"{object_type} {record_id} does not exist")
            if record.archived:
                return
            self._before_write(table, record_id)
            record.archived = True
            record.archived_at = at
            record.updated_at = at
            _remove_sorted(table.live_ids, record_id)
            _insert_sorted(table.archived_ids, record_id)
            self.version += 1
            self._after_write(object_type, table, record_id, "archive")

    def restore(self, object_type: str, record_id: int, at: datetime) -> CrmRecord:
        """Bring an archived record back (HubSpot allows it during the retention period): same id, live,
        last modified now."""
        table = self._table(object_type)
        with self.lock:
            record = table.records.get(record_id)
            if record is None or not record.archived:
                raise KeyError(f"{object_type} {record_id} is not archived")
            self._before_write(table, record_id)
            record.archived = False
            record.archived_at = None
            self._stamp(object_type, record, at)
            _remove_sorted(table.archived_ids, record_id)
            _insert_sorted(table.live_ids, record_id)
            self.version += 1
            self._after_write(object_type, table, record_id, "restore")
            return record

    def purge(self, object_type: str, record_id: int) -> None:
        """Delete for good (after the retention period, or a GDPR delete): the id answers 404 everywhere,
        lists and the archived list included, and its associations go."""
        table = self._table(object_type)
        with self.lock:
            record = table.records.get(record_id)
            if record is None:
                raise KeyError(f"{object_type} {record_id} does not exist")
            self._before_write(table, record_id)
            del table.records[record_id]
            _remove_sorted(table.archived_ids if record.archived else table.live_ids, record_id)
            self._drop_links(object_type, record_id)
            # The ids merged into it go with it (a GDPR delete leaves nothing that answers for the person).
            for alias in [a for a, target in table.merged_into.items() if target == record_id]:
                del table.merged_into[alias]
            self.version += 1
            self._after_write(object_type, table, record_id, "purge")

    def _drop_links(self, object_type: str, record_id: int) -> dict[tuple[str, str], dict[int, int]]:
        """Remove every association of the record, both directions; returns what it had, by pair."""
        had: dict[tuple[str, str], dict[int, int]] = {}
        for (from_type, to_type), links in self._associations.items():
            if from_type != object_type or record_id not in links:
                continue
            had[(from_type, to_type)] = links.pop(record_id)
            for to_id in had[(from_type, to_type)]:
                back = self._associations[(to_type, from_type)].get(to_id)
                if back is not None:
                    back.pop(record_id, None)
        return had

    def merge(self, object_type: str, primary_id: int, secondary_id: int, at: datetime) -> CrmRecord:
        """HubSpot's merge: a NEW record with a new id replaces both. Its values are the primary's (createdate
        is the older one), ``hs_merged_object_ids`` lists
        every id merged into it (earlier merges of either included), it takes over both records'
        associations, and both old ids, and every id that pointed at them, resolve to it from now on."""
        table = self._table(object_type)
        with self.lock:
            primary = table.records.get(primary_id)
            secondary = table.records.get(secondary_id)
            if primary is None or secondary is None or primary_id == secondary_id:
                raise KeyError(f"cannot merge {object_type} {secondary_id} into {primary_id}: record missing")
            if primary.archived or secondary.archived:
                raise KeyError(f"cannot merge archived {object_type} {primary_id} / {secondary_id}")
            new_id = self.new_id(object_type)
            # The primary's current values (HubSpot keeps the other record's only in property history).
            props = {k: v for k, v in primary.properties.items() if v not in (None, "")}
            created = min(primary.created_at, secondary.created_at)
            props["createdate"] = format_hubspot_datetime(created)
            props["hs_object_id"] = str(new_id)
            merged = {primary_id, secondary_id}
            for old in (primary, secondary):
                earlier = (old.properties.get("hs_merged_object_ids") or "").split(";")
                merged.update(int(m) for m in earlier if m)
            props["hs_merged_object_ids"] = ";".join(str(m) for m in sorted(merged))
            for old_id in (primary_id, secondary_id):
                self._before_write(table, old_id)
            self._before_write(table, new_id)
            links = [self._drop_links(object_type, old_id) for old_id in (secondary_id, primary_id)]
            for old_id in (primary_id, secondary_id):
                del table.records[old_id]
                _remove_sorted(table.live_ids, old_id)
            record = CrmRecord(new_id, props, created, at)
            self._stamp(object_type, record, at)
            table.records[new_id] = record
            _insert_sorted(table.live_ids, new_id)
            for alias, target in table.merged_into.items():
                if target in (primary_id, secondary_id):
                    table.merged_into[alias] = new_id
            table.merged_into[primary_id] = table.merged_into[secondary_id] = new_id
            for had in links:  # the primary's links last: its association types win
                for (from_type, to_type), targets in had.items():
                    for to_id, type_id in targets.items():
                        self._link(from_type, new_id, to_type, to_id, type_id)
                        back = ASSOCIATION_TYPE_IDS[(to_type, from_type)]
                        self._link(to_type, to_id, from_type, new_id, back)
            self.version += 1
            for old_id in (primary_id, secondary_id):
                self._after_write(object_type, table, old_id, "merge")
            self._after_write(object_type, table, new_id, "create")
            return record

    def count(self, object_type: str, archived: bool = False) -> int:
        table = self._table(object_type)
        return len(table.archived_ids if archived else table.live_ids)

    def page(
        self, object_type: str, after_id: int | None, limit: int, archived: bool = False
    ) -> tuple[list[CrmRecord], int | None]:
        """One list page in id order: records with id > after_id, and the id to go on after (None: last)."""
        table = self._table(object_type)
        with self.lock:
            ids = table.archived_ids if archived else table.live_ids
            start = 0 if after_id is None else bisect.bisect_right(ids, after_id)
            chunk = ids[start : start + limit]
            records = [table.records[i] for i in chunk]
            more = start + limit < len(ids)
        return records, (chunk[-1] if more and chunk else None)

    def iter_records(
        self, object_type: str, archived: bool = False, after_id: int | None = None
    ) -> Iterator[CrmRecord]:
        """Snapshot iteration in id order (live, or archived only), starting after `after_id` when given."""
        table = self._table(object_type)
        with self.lock:
            ids = table.archived_ids if archived else table.live_ids
            ids = ids[bisect.bisect_right(ids, after_id) :] if after_id is not None else list(ids)
        records = table.records
        for record_id in ids:
            record = records.get(record_id)
            if record is not None:
                yield record

    # ------------------------------------------------------------------ search index (lagging)
    def _refresh_index(self, table: _ObjectTable) -> None:
        """Lagged writes whose time has come become visible to search (caller locks)."""
        if not table.lagged:
            return
        now = self._clock()
        changed = False
        for record_id in list(table.lagged):
            entry = table.lagged[record_id]
            pending = entry[1]
            due = 0
            while due < len(pending) and pending[due][0] <= now:
                due += 1
            if due:
                entry[0] = pending[due - 1][1]
                del pending[:due]
                changed = True
            if not pending:
                del table.lagged[record_id]
        if changed:
            self.index_version += 1

    def refresh_search_index(self, object_type: str) -> int:
        """Let lagged writes whose time has come into the index; returns ``index_version`` (cache keys)."""
        table = self._table(object_type)
        with self.lock:
            self._refresh_index(table)
            return self.index_version

    def search_records(self, object_type: str) -> Iterator[CrmRecord]:
        """The live records as search sees them now, in id order: with ``search_lag_seconds`` on, a record
        written less than that long ago is seen as it was before the write (or not at all)."""
        table = self._table(object_type)
        with self.lock:
            self._refresh_index(table)
            if not table.lagged:
                ids: list[int] = list(table.live_ids)
                stale: dict[int, CrmRecord] = {}
            else:
                stale = {i: e[0] for i, e in table.lagged.items() if e[0] is not None}
                fresh = [i for i in table.live_ids if i not in table.lagged]
                ids = list(heapq.merge(fresh, sorted(stale)))
        records = table.records
        for record_id in ids:
            record = stale.get(record_id) or records.get(record_id)
            if record is not None and not record.archived:
                yield record

    def search_get(self, object_type: str, record_id: int) -> CrmRecord | None:
        """One record as search sees it now (see ``search_records``)."""
        table = self._table(object_type)
        with self.lock:
            self._refresh_index(table)
            entry = table.lagged.get(record_id)
            if entry is not None:
                return entry[0]
            record = table.records.get(record_id)
            return None if record is None or record.archived else record

    # ------------------------------------------------------------ associations
    def _link(self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int) -> None:
        self._associations[(from_type, to_type)].setdefault(from_id, {})[to_id] = type_id

    def associate(self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int) -> None:
        """Store the association in both directions, with HubSpot's type id for the reverse direction."""
        pair = (from_type, to_type)
        if pair not in ASSOCIATION_TYPE_IDS:
            raise ValueError(f"unsupported association {from_type} -> {to_type}")
        with self.lock:
            self._link(from_type, from_id, to_type, to_id, type_id)
            self._link(to_type, to_id, from_type, from_id, ASSOCIATION_TYPE_IDS[(to_type, from_type)])
            self.version += 1

    def associations(self, from_type: str, from_id: int, to_type: str) -> list[tuple[int, int]]:
        """(to_id, type_id) pairs in to_id order; empty when none (or the pair is unsupported)."""
        links = self._associations.get((from_type, to_type))
        if links is None:
            return []
        with self.lock:
            found = links.get(from_id)
            if not found:
                return []
            # HubSpot does not return associations to archived records (they come back on a restore).
            targets = self._tables[to_type].records
            return sorted(
                (i, t) for i, t in found.items() if (r := targets.get(i)) is not None and not r.archived
            )

    # -------------------------------------------------------------- properties
    def define_property(self, object_type: str, definition: dict) -> None:
        if "name" not in definition:
            raise ValueError("a property definition needs a name")
        with self.lock:
            self._properties[self._check_type(object_type)][definition["name"]] = definition
            self.version += 1

    def property(self, object_type: str, name: str) -> dict | None:
        return self._properties[self._check_type(object_type)].get(name)

    def properties(self, object_type: str) -> list[dict]:
        with self.lock:
            return list(self._properties[self._check_type(object_type)].values())

    def define_group(self, object_type: str, group: dict) -> None:
        if "name" not in group:
            raise ValueError("a property group needs a name")
        with self.lock:
            self._groups[self._check_type(object_type)][group["name"]] = {
                "displayOrder": -1,
                "archived": False,
                **group,
            }

    def groups(self, object_type: str) -> list[dict]:
        with self.lock:
            return list(self._groups[self._check_type(object_type)].values())

    def set_pipelines(self, object_type: str, pipelines: list[dict]) -> None:
        with self.lock:
            self._pipelines[self._check_type(object_type)] = list(pipelines)

    def pipelines(self, object_type: str) -> list[dict]:
        with self.lock:
            return list(self._pipelines[self._check_type(object_type)])

    def deal_stage_fields(self, stage_id: str | None) -> dict[str, str | None]:
        """The deal properties HubSpot recomputes itself when a deal moves to ``stage_id``."""
        for pipeline in self.pipelines("deals"):
            for stage in pipeline.get("stages", []):
                if stage.get("id") == stage_id:
                    meta = stage.get("metadata") or {}
                    closed = meta.get("isClosed") == "true"
                    probability = meta.get("probability")
                    won = closed and probability is not None and Decimal(probability) == 1
                    return {
                        "hs_deal_stage_probability": probability,
                        "hs_is_closed": str(closed).lower(),
                        "hs_is_closed_won": str(won).lower(),
                    }
        return {}

    def pick(self, object_type: str, rng: random.Random, archived: bool = False) -> int | None:
        """A random live (or archived) id, None when there is none."""
        table = self._table(object_type)
        with self.lock:
            ids = table.archived_ids if archived else table.live_ids
            return ids[rng.randrange(len(ids))] if ids else None

    def _check_type(self, object_type: str) -> str:
        if object_type not in self._tables:
            raise UnknownObjectType(object_type)
        return object_type
