"""Fixtures for the core model tests: real DuckDB files, raw.* tables written directly (contract section 3).

`RawData` writes small explicit records; `load_dataset_into_raw` puts a whole sandbox generator Dataset into
the raw tables the way the connectors would (same columns, same types), without HTTP, so the models can be
checked against the generator's ground truth quickly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from connectors.spend import KNOWN_CURRENCIES
from connectors.warehouse import ensure_schema

RUN_ID = "test-run"
SAME_AS_AMOUNT = object()  # RawData.deal: HubSpot's amount_in_home_currency equals the amount
PROPERTY_ID = "123456789"

# The contract's pipelines (docs/contracts.md section 1).
STAGES = [
    ("appointmentscheduled", "default", "0.2", False),
    ("qualifiedtobuy", "default", "0.4", False),
    ("presentationscheduled", "default", "0.6", False),
    ("decisionmakerboughtin", "default", "0.8", False),
    ("closedwon", "default", "1.0", True),
    ("closedlost", "default", "0.0", True),
    ("wh_prospect", "wholesale", "0.1", False),
    ("wh_sample_sent", "wholesale", "0.3", False),
    ("wh_negotiation", "wholesale", "0.7", False),
    ("wh_won", "wholesale", "1.0", True),
    ("wh_lost", "wholesale", "0.0", True),
]


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert dict rows by column name; DuckDB casts strings to the table's DATE/TIMESTAMPTZ/DECIMAL types."""
    if not rows:
        return
    columns = sorted({k for row in rows for k in row})
    arrow = pa.table({c: pa.array([_plain(row.get(c)) for row in rows]) for c in columns})
    con.register("incoming_rows", arrow)
    try:
        con.execute(f"insert into raw.{table} by name select * from incoming_rows")
    finally:
        con.unregister("incoming_rows")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal | dt.date | dt.datetime):
        return str(value)
    return value


class RawData:
    """Small explicit raw fixtures. Timestamps are ISO strings (UTC), amounts strings of exact decimals."""

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self._next_line = 2

    def add(self, table: str, **row: Any) -> RawData:
        row.setdefault("_run_id", RUN_ID)
        self.rows.setdefault(table, []).append(row)
        return self

    def contact(self, contact_id: int, created: str, **props: Any) -> RawData:
        props.setdefault("hs_lifecyclestage_lead_date", created)
        props.setdefault("archived", False)
        return self.add("hubspot_contacts", id=contact_id, createdate=created, **props)

    def deal(
        self,
        deal_id: int,
        contact_ids: list[int],
        *,
        amount: str | None,
        stage: str,
        created: str,
        closed: str | None = None,
        pipeline: str = "default",
        currency: str | None = "EUR",
        amount_home: Any = SAME_AS_AMOUNT,
        **props: Any,
    ) -> RawData:
        """A deal; `amount_home` is HubSpot's amount_in_home_currency (default: the amount; None: absent)."""
        self.add(
            "hubspot_deals",
            id=deal_id,
            amount=amount,
            deal_currency_code=currency,
            amount_in_home_currency=amount if amount_home is SAME_AS_AMOUNT else amount_home,
            dealstage=stage,
            pipeline=pipeline,
            createdate=created,
            closedate=closed,
            archived=False,
            hs_is_closed_won=stage in ("closedwon", "wh_won"),
            hs_is_closed=stage in ("closedwon", "closedlost", "wh_won", "wh_lost"),
            **props,
        )
        for contact_id in contact_ids:
            self.add("hubspot_contact_deals", contact_id=contact_id, deal_id=deal_id, association_type_id=3)
        return self

    def line_item(
        self,
        line_item_id: int,
        deal_id: int,
        *,
        price: str,
        quantity: str,
        cost: str | None,
        currency: str = "EUR",
        sku: str = "BOUGIE-CLASSIQUE",
    ) -> RawData:
        amount = (Decimal(price) * Decimal(quantity)).quantize(Decimal("0.01"))
        self.add(
            "hubspot_line_items",
            id=line_item_id,
            name=sku,
            hs_sku=sku,
            price=price,
            quantity=quantity,
            amount=str(amount),
            hs_cost_of_goods_sold=cost,
            hs_line_item_currency_code=currency,
            archived=False,
        )
        return self.add(
            "hubspot_deal_line_items", deal_id=deal_id, line_item_id=line_item_id, association_type_id=19
        )

    def spend(
        self,
        start: str,
        end: str,
        source: str,
        medium: str,
        campaign: str,
        amount: str,
        currency: str = "EUR",
    ) -> RawData:
        line = self._next_line
        self._next_line += 1
        return self.add(
            "marketing_spend",
            file_name="spend.csv",
            line=line,
            period_start=start,
            period_end=end,
            source=source,
            medium=medium,
            campaign=campaign,
            amount=amount,
            currency=currency,
        )

    def traffic(
        self,
        day: str,
        source: str,
        medium: str,
        campaign: str = "(not set)",
        *,
        sessions: int = 1,
        revenue: str = "0",
        term: str = "(not set)",
        content: str = "(not set)",
    ) -> RawData:
        return self.add(
            "ga4_traffic_daily",
            property_id=PROPERTY_ID,
            date=day,
            session_source=source,
            session_medium=medium,
            session_campaign_name=campaign,
            session_manual_term=term,
            session_manual_ad_content=content,
            sessions=sessions,
            total_users=sessions,
            purchase_revenue=revenue,
            currency_code="EUR",
        )

    def ad_cost(
        self, day: str, source: str, medium: str, campaign: str, cost: str, currency: str = "EUR"
    ) -> RawData:
        """A Google Ads cost row of GA4's cost report (mark its days loaded with `ga4_days`)."""
        return self.add(
            "ga4_ad_cost_daily",
            property_id=PROPERTY_ID,
            date=day,
            session_source=source,
            session_medium=medium,
            session_campaign_name=campaign,
            advertiser_ad_cost=cost,
            currency_code=currency,
        )

    def ga4_days(self, report: str, first: str, last: str, **flags: bool) -> RawData:
        """raw.ga4_report_days rows: `report` was loaded for every day first..last (flags: metadata)."""
        day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        while day <= end:
            self.add("ga4_report_days", property_id=PROPERTY_ID, report=report, date=day.isoformat(), **flags)
            day += dt.timedelta(days=1)
        return self

    def session(
        self,
        day: str,
        contact_id: int | str,
        source: str,
        medium: str,
        campaign: str = "(not set)",
        sessions: int = 1,
        revenue: str = "0",
    ) -> RawData:
        return self.add(
            "ga4_contact_sessions",
            property_id=PROPERTY_ID,
            date=day,
            contact_id=str(contact_id),
            session_source=source,
            session_medium=medium,
            session_campaign_name=campaign,
            sessions=sessions,
            key_events="0",
            purchase_revenue=revenue,
        )

    def write(self) -> Path:
        con = duckdb.connect(str(self.db_path))
        try:
            ensure_schema(con)
            _insert(
                con,
                "hubspot_deal_pipelines",
                [
                    {"pipeline_id": p, "label": p, "display_order": i, "archived": False, "_run_id": RUN_ID}
                    for i, p in enumerate(("default", "wholesale"))
                ],
            )
            _insert(
                con,
                "hubspot_deal_stages",
                [
                    {
                        "stage_id": s,
                        "pipeline_id": p,
                        "label": s,
                        "display_order": i,
                        "probability": prob,
                        "is_closed": closed,
                        "archived": False,
                        "_run_id": RUN_ID,
                    }
                    for i, (s, p, prob, closed) in enumerate(STAGES)
                ],
            )
            for table, rows in self.rows.items():
                _insert(con, table, rows)
        finally:
            con.close()
        return self.db_path


# ----------------------------------------------------------------------------------------------------
# A whole sandbox Dataset -> raw tables


CONTACT_COLUMNS = (
    "email",
    "firstname",
    "lastname",
    "createdate",
    "lastmodifieddate",
    "lifecyclestage",
    "hs_lifecyclestage_lead_date",
    "hs_lifecyclestage_marketingqualifiedlead_date",
    "hs_lifecyclestage_salesqualifiedlead_date",
    "hs_lifecyclestage_opportunity_date",
    "hs_lifecyclestage_customer_date",
    "hs_analytics_source",
    "hs_analytics_source_data_1",
    "hs_analytics_source_data_2",
    "hs_analytics_first_url",
    "hs_analytics_first_referrer",
    "hs_analytics_first_timestamp",
    "hs_latest_source",
    "hs_latest_source_data_1",
    "hs_latest_source_data_2",
    "hs_latest_source_timestamp",
    "hs_merged_object_ids",
    "how_did_you_hear_about_us",
)
DEAL_COLUMNS = (
    "dealname",
    "amount",
    "deal_currency_code",
    "amount_in_home_currency",
    "dealstage",
    "pipeline",
    "createdate",
    "closedate",
    "hs_lastmodifieddate",
    "hs_merged_object_ids",
)
LINE_ITEM_COLUMNS = (
    "name",
    "hs_sku",
    "price",
    "quantity",
    "amount",
    "hs_cost_of_goods_sold",
    "hs_line_item_currency_code",
    "createdate",
    "hs_lastmodifieddate",
)


def _records(dataset: Any, object_type: str, columns: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    for archived in (False, True):
        for record in dataset.crm.iter_records(object_type, archived=archived):
            row = {c: (record.properties.get(c) or None) for c in columns}
            row.update(id=record.id, archived=record.archived, _run_id=RUN_ID)
            yield row


def load_dataset_into_raw(db_path: Path, dataset: Any) -> Path:
    """What the connectors load, straight from the generator's objects (no HTTP)."""
    con = duckdb.connect(str(db_path))
    try:
        ensure_schema(con)
        contacts = list(_records(dataset, "contacts", CONTACT_COLUMNS))
        deals = list(_records(dataset, "deals", DEAL_COLUMNS))
        for deal in deals:
            deal["hs_is_closed_won"] = (
                dataset.crm.get("deals", deal["id"]).properties.get("hs_is_closed_won") == "true"
            )
            deal["hs_is_closed"] = (
                dataset.crm.get("deals", deal["id"]).properties.get("hs_is_closed") == "true"
            )
        _insert(con, "hubspot_contacts", contacts)
        _insert(con, "hubspot_deals", deals)
        _insert(con, "hubspot_line_items", list(_records(dataset, "line_items", LINE_ITEM_COLUMNS)))
        _insert(
            con,
            "hubspot_contact_deals",
            [
                {"contact_id": c, "deal_id": d["id"], "association_type_id": t, "_run_id": RUN_ID}
                for d in deals
                for c, t in dataset.crm.associations("deals", d["id"], "contacts")
            ],
        )
        _insert(
            con,
            "hubspot_deal_line_items",
            [
                {"deal_id": d["id"], "line_item_id": li, "association_type_id": t, "_run_id": RUN_ID}
                for d in deals
                for li, t in dataset.crm.associations("deals", d["id"], "line_items")
            ],
        )
        pipelines = dataset.crm.pipelines("deals")
        _insert(
            con,
            "hubspot_deal_pipelines",
            [
                {
                    "pipeline_id": p["id"],
                    "label": p["label"],
                    "display_order": p["displayOrder"],
                    "archived": False,
                    "_run_id": RUN_ID,
                }
                for p in pipelines
            ],
        )
        _insert(
            con,
            "hubspot_deal_stages",
            [
                {
                    "stage_id": s["id"],
                    "pipeline_id": p["id"],
                    "label": s["label"],
                    "display_order": s["displayOrder"],
                    "probability": s["metadata"]["probability"],
                    "is_closed": s["metadata"]["isClosed"] == "true",
                    "archived": False,
                    "_run_id": RUN_ID,
                }
                for p in pipelines
                for s in p["stages"]
            ],
        )
        _load_ga4(con, dataset)
        _load_spend(con, dataset)
    finally:
        con.close()
    return db_path


def _load_ga4(con: duckdb.DuckDBPyConnection, dataset: Any) -> None:
    ga4 = dataset.ga4
    names = {
        "sessionSource": "session_source",
        "sessionMedium": "session_medium",
        "sessionCampaignName": "session_campaign_name",
        "sessionManualTerm": "session_manual_term",
        "sessionManualAdContent": "session_manual_ad_content",
        "sessionDefaultChannelGroup": "session_default_channel_group",
    }
    columns: dict[str, Any] = {
        "day": pa.array(ga4.day_dates().astype("datetime64[D]")),
        "contact": pa.array(ga4.contact),
    }
    for dim, column in names.items():
        table = [value or "(not set)" for value in ga4.tables[dim]]
        columns[column] = pa.DictionaryArray.from_arrays(
            pa.array(ga4.dims[dim].astype("int32")), pa.array(table)
        )
    for metric in ("sessions", "totalUsers", "keyEvents", "purchaseRevenue", "advertiserAdCost"):
        columns[metric] = pa.array(ga4.metrics[metric])
    con.register("ga4_facts", pa.table(columns))
    try:
        # As the extract loads them: GA4's three reports, each with a metadata row for every day read.
        con.execute(f"""
            insert into raw.ga4_report_days by name
            select '{PROPERTY_ID}' as property_id, report, day::date as date, 'EUR' as currency_code,
                'Europe/Paris' as time_zone, '{RUN_ID}' as _run_id
            from (select distinct day from ga4_facts)
            cross join (values ('traffic_daily'), ('ad_cost_daily'), ('contact_sessions')) as reports(report)
        """)
        con.execute(f"""
            insert into raw.ga4_ad_cost_daily by name
            select '{PROPERTY_ID}' as property_id, day::date as date,
                session_source::varchar as session_source,
                session_medium::varchar as session_medium,
                session_campaign_name::varchar as session_campaign_name,
                sum(advertiserAdCost)::decimal(18, 0) * 0.01 as advertiser_ad_cost,
                'EUR' as currency_code, '{RUN_ID}' as _run_id
            from ga4_facts
            group by all
            having sum(advertiserAdCost) <> 0
        """)
        con.execute(f"""
            insert into raw.ga4_traffic_daily by name
            select '{PROPERTY_ID}' as property_id, day::date as date,
                session_source::varchar as session_source,
                session_medium::varchar as session_medium,
                session_campaign_name::varchar as session_campaign_name,
                session_manual_term::varchar as session_manual_term,
                session_manual_ad_content::varchar as session_manual_ad_content,
                any_value(session_default_channel_group::varchar) as session_default_channel_group,
                sum(sessions) as sessions, sum(totalUsers) as total_users, sum(keyEvents) as key_events,
                sum(purchaseRevenue)::decimal(18, 0) * 0.01 as purchase_revenue,
                'EUR' as currency_code, '{RUN_ID}' as _run_id
            from ga4_facts
            group by all
            having sum(sessions) <> 0 or sum(purchaseRevenue) <> 0
        """)
        # Every row, "(not set)" included, as GA4 answers with thresholding and (other) switched off.
        con.execute(f"""
            insert into raw.ga4_contact_sessions by name
            select '{PROPERTY_ID}' as property_id, day::date as date,
                case when contact = 0 then '(not set)' else contact::varchar end as contact_id,
                session_source::varchar as session_source, session_medium::varchar as session_medium,
                session_campaign_name::varchar as session_campaign_name,
                sum(sessions) as sessions, sum(keyEvents) as key_events,
                sum(purchaseRevenue)::decimal(18, 0) * 0.01 as purchase_revenue, '{RUN_ID}' as _run_id
            from ga4_facts
            group by all
            having sum(sessions) <> 0 or sum(purchaseRevenue) <> 0
        """)
    finally:
        con.unregister("ga4_facts")


def _load_spend(con: duckdb.DuckDBPyConnection, dataset: Any) -> None:
    """Good rows only, as connectors.spend would load them (bad ones go to ops.rejects there)."""
    rows = []
    for line, row in enumerate(dataset.spend_rows, start=2):
        try:
            start, end = dt.date.fromisoformat(row.period_start), dt.date.fromisoformat(row.period_end)
            amount = Decimal(row.amount)
        except (ValueError, ArithmeticError):
            continue
        if amount < 0 or row.currency not in KNOWN_CURRENCIES or not row.campaign:
            continue
        rows.append(
            {
                "file_name": "spend.csv",
                "line": line,
                "period_start": start,
                "period_end": end,
                "source": row.source,
                "medium": row.medium,
                "campaign": row.campaign,
                "amount": amount,
                "currency": row.currency,
                "_run_id": RUN_ID,
            }
        )
    _insert(con, "marketing_spend", rows)
