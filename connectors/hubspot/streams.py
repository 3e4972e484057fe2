"""Declared HubSpot streams (Meltano style): what each stream reads, its key, cursor and typed columns.

Property types say how the string HubSpot sends becomes a warehouse column (contracts.md section 3):
``string`` VARCHAR, ``datetime`` TIMESTAMPTZ (UTC), ``date`` DATE, ``money`` DECIMAL(18,2), ``unit``
DECIMAL(18,4), ``bool`` BOOLEAN. Extra properties from config are loaded as VARCHAR.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connectors.warehouse import RawTable

SQL_TYPES = {
    "string": "VARCHAR",
    "datetime": "TIMESTAMPTZ",
    "date": "DATE",
    "money": "DECIMAL(18,2)",
    "unit": "DECIMAL(18,4)",
    "bool": "BOOLEAN",
    "bigint": "BIGINT",
}


@dataclass(frozen=True)
class ObjectStream:
    """A CRM object type read with list (full) or search (incremental) and loaded into ``table``."""

    name: str  # stream name in ops.sync_state / ops.sync_runs
    object_type: str  # HubSpot object type in API paths
    table: str
    cursor_property: str  # the last-modified property search filters and sorts on
    properties: tuple[tuple[str, str], ...]  # (property, type)
    primary_key: str = "id"
    # Full reads of the biggest object also search downward by id while listing upward (both_ends_pages).
    full_read_from_both_ends: bool = False

    def property_names(self, extra: tuple[str, ...] = ()) -> list[str]:
        names = [p for p, _ in self.properties]
        return names + [e for e in extra if e not in names]

    def raw_table(self) -> RawTable:
        columns = (("id", "BIGINT"), *((p, SQL_TYPES[t]) for p, t in self.properties))
        return RawTable(self.table, columns, (self.primary_key,), hubspot=True)


@dataclass(frozen=True)
class AssociationStream:
    """Associations between two object types, read with the v4 batch endpoint for the records read in a
    run."""

    name: str
    from_type: str
    to_type: str
    table: str
    from_column: str
    to_column: str

    def raw_table(self) -> RawTable:
        columns = (
            (self.from_column, "BIGINT"),
            (self.to_column, "BIGINT"),
            ("association_type_id", "INTEGER"),
        )
        return RawTable(self.table, columns, (self.from_column, self.to_column))


CONTACTS = ObjectStream(
    name="hubspot_contacts",
    object_type="contacts",
    table="raw.hubspot_contacts",
    # Contacts must be searched on lastmodifieddate: hs_lastmodifieddate silently misbehaves on contacts.
    cursor_property="lastmodifieddate",
    full_read_from_both_ends=True,
    properties=(
        ("email", "string"),
        ("firstname", "string"),
        ("lastname", "string"),
        ("createdate", "datetime"),
        ("lastmodifieddate", "datetime"),
        ("lifecyclestage", "string"),
        ("hs_lifecyclestage_lead_date", "datetime"),
        ("hs_lifecyclestage_marketingqualifiedlead_date", "datetime"),
        ("hs_lifecyclestage_salesqualifiedlead_date", "datetime"),
        ("hs_lifecyclestage_opportunity_date", "datetime"),
        ("hs_lifecyclestage_customer_date", "datetime"),
        ("hs_analytics_source", "string"),
        ("hs_analytics_source_data_1", "string"),
        ("hs_analytics_source_data_2", "string"),
        ("hs_analytics_first_url", "string"),
        ("hs_analytics_first_referrer", "string"),
        ("hs_analytics_first_timestamp", "datetime"),
        ("hs_latest_source", "string"),
        ("hs_latest_source_data_1", "string"),
        ("hs_latest_source_data_2", "string"),
        ("hs_latest_source_timestamp", "datetime"),
        ("hs_merged_object_ids", "string"),
        ("how_did_you_hear_about_us", "string"),
    ),
)

DEALS = ObjectStream(
    name="hubspot_deals",
    object_type="deals",
    table="raw.hubspot_deals",
    cursor_property="hs_lastmodifieddate",
    properties=(
        ("dealname", "string"),
        ("amount", "money"),
        ("deal_currency_code", "string"),
        ("amount_in_home_currency", "money"),
        ("dealstage", "string"),
        ("pipeline", "string"),
        ("createdate", "datetime"),
        ("closedate", "datetime"),
        ("hs_lastmodifieddate", "datetime"),
        ("hs_is_closed_won", "bool"),
        ("hs_is_closed", "bool"),
        ("hs_merged_object_ids", "string"),
    ),
)

LINE_ITEMS = ObjectStream(
    name="hubspot_line_items",
    object_type="line_items",
    table="raw.hubspot_line_items",
    cursor_property="hs_lastmodifieddate",
    properties=(
        ("name", "string"),
        ("hs_sku", "string"),
        ("price", "unit"),
        ("quantity", "unit"),
        ("amount", "money"),
        ("hs_cost_of_goods_sold", "unit"),
        ("hs_line_item_currency_code", "string"),
        ("createdate", "datetime"),
        ("hs_lastmodifieddate", "datetime"),
    ),
)

OBJECT_STREAMS: tuple[ObjectStream, ...] = (CONTACTS, DEALS, LINE_ITEMS)

# Associations are read FROM the object whose records changed: a contact's deals and a deal's line items.
CONTACT_DEALS = AssociationStream(
    name="hubspot_contact_deals",
    from_type="contacts",
    to_type="deals",
    table="raw.hubspot_contact_deals",
    from_column="contact_id",
    to_column="deal_id",
)
DEAL_LINE_ITEMS = AssociationStream(
    name="hubspot_deal_line_items",
    from_type="deals",
    to_type="line_items",
    table="raw.hubspot_deal_line_items",
    from_column="deal_id",
    to_column="line_item_id",
)
ASSOCIATION_STREAMS: tuple[AssociationStream, ...] = (CONTACT_DEALS, DEAL_LINE_ITEMS)
ASSOCIATIONS_BY_OBJECT: Mapping[str, AssociationStream] = {
    "contacts": CONTACT_DEALS,
    "deals": DEAL_LINE_ITEMS,
}

# Small reference streams, read whole every run.
PIPELINES_STREAM = "hubspot_pipelines"
PROPERTIES_STREAM = "hubspot_properties"
ACCOUNT_STREAM = "hubspot_account"
ACCOUNT_DETAILS_PATH = "/account-info/v3/details"
# The portal itself (one row): its company currency is the currency of a deal without deal_currency_code and
# of HubSpot's amount_in_home_currency, which the models must know when [models] home_currency differs.
ACCOUNT_TABLE = RawTable(
    "raw.hubspot_account",
    (
        ("portal_id", "BIGINT"),
        ("company_currency", "VARCHAR"),
        ("additional_currencies", "VARCHAR[]"),
        ("time_zone", "VARCHAR"),
        ("data_hosting_location", "VARCHAR"),
    ),
    ("portal_id",),
)
PIPELINES_TABLE = RawTable(
    "raw.hubspot_deal_pipelines",
    (("pipeline_id", "VARCHAR"), ("label", "VARCHAR"), ("display_order", "INTEGER"), ("archived", "BOOLEAN")),
    ("pipeline_id",),
)
STAGES_TABLE = RawTable(
    "raw.hubspot_deal_stages",
    (
        ("stage_id", "VARCHAR"),
        ("pipeline_id", "VARCHAR"),
        ("label", "VARCHAR"),
        ("display_order", "INTEGER"),
        ("probability", "DECIMAL(4,3)"),
        ("is_closed", "BOOLEAN"),
        ("archived", "BOOLEAN"),
    ),
    ("stage_id",),
)
PROPERTIES_TABLE = RawTable(
    "raw.hubspot_properties",
    (
        ("object_type", "VARCHAR"),
        ("name", "VARCHAR"),
        ("label", "VARCHAR"),
        ("type", "VARCHAR"),
        ("field_type", "VARCHAR"),
        ("group_name", "VARCHAR"),
        ("hubspot_defined", "BOOLEAN"),
        ("read_only_value", "BOOLEAN"),
        ("options", "JSON"),
    ),
    ("object_type", "name"),
)

ALL_STREAM_NAMES: tuple[str, ...] = (
    *(s.name for s in OBJECT_STREAMS),
    PIPELINES_STREAM,
    PROPERTIES_STREAM,
    ACCOUNT_STREAM,
)

HUBSPOT_RAW_TABLES: tuple[RawTable, ...] = (
    *(s.raw_table() for s in OBJECT_STREAMS),
    *(a.raw_table() for a in ASSOCIATION_STREAMS),
    PIPELINES_TABLE,
    STAGES_TABLE,
    PROPERTIES_TABLE,
    ACCOUNT_TABLE,
)


def stream_by_name(name: str) -> ObjectStream:
    for stream in OBJECT_STREAMS:
        if name in (stream.name, stream.object_type):
            return stream
    raise KeyError(f"Unknown HubSpot stream {name!r}: use one of {', '.join(ALL_STREAM_NAMES)}")
