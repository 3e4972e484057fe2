"""Reference streams, small and read whole every run: deal pipelines + stages, property definitions, and
the portal's account details (its company currency)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pyarrow as pa

from connectors import warehouse as wh
from connectors.hubspot.client import CallStats, HubSpotCaller, HubSpotCallError
from connectors.hubspot.run import StreamContext, StreamResult, recorded_run
from connectors.hubspot.streams import (
    ACCOUNT_DETAILS_PATH,
    ACCOUNT_STREAM,
    ACCOUNT_TABLE,
    OBJECT_STREAMS,
    PIPELINES_STREAM,
    PIPELINES_TABLE,
    PROPERTIES_STREAM,
    PROPERTIES_TABLE,
    STAGES_TABLE,
)

log = logging.getLogger(__name__)


def run_pipelines_stream(ctx: StreamContext) -> StreamResult:
    con, stats = ctx.con.cursor(), CallStats()
    result = StreamResult(PIPELINES_STREAM, "full")
    with recorded_run(ctx, result, con, stats):
        payload = ctx.call(
            "pipelines deals", ctx.client.crm.pipelines.pipelines_api.get_all, "deals", stats=stats
        )
        pipelines, stages, rejects = [], [], []
        for p in payload.get("results") or []:
            pipelines.append(
                {
                    "pipeline_id": p["id"],
                    "label": p.get("label"),
                    "display_order": p.get("displayOrder"),
                    "archived": bool(p.get("archived")),
                }
            )
            for s in p.get("stages") or []:
                meta = s.get("metadata") or {}
                try:
                    probability = wh.to_decimal(meta.get("probability"), 3, 4)
                except wh.ConversionError as exc:
                    rejects.append(wh.Reject(s.get("id"), "probability", meta.get("probability"), str(exc)))
                    probability = None
                try:
                    closed = wh.to_bool(meta.get("isClosed"))
                except wh.ConversionError as exc:
                    rejects.append(wh.Reject(s.get("id"), "isClosed", meta.get("isClosed"), str(exc)))
                    closed = None
                stages.append(
                    {
                        "stage_id": s["id"],
                        "pipeline_id": p["id"],
                        "label": s.get("label"),
                        "display_order": s.get("displayOrder"),
                        "probability": probability,
                        "is_closed": closed,
                        "archived": bool(s.get("archived")),
                    }
                )
        p_table = pa.Table.from_pylist(
            pipelines,
            schema=pa.schema(
                [
                    ("pipeline_id", pa.string()),
                    ("label", pa.string()),
                    ("display_order", pa.int32()),
                    ("archived", pa.bool_()),
                ]
            ),
        )
        s_table = pa.Table.from_pylist(
            stages,
            schema=pa.schema(
                [
                    ("stage_id", pa.string()),
                    ("pipeline_id", pa.string()),
                    ("label", pa.string()),
                    ("display_order", pa.int32()),
                    ("probability", pa.decimal128(4, 3)),
                    ("is_closed", pa.bool_()),
                    ("archived", pa.bool_()),
                ]
            ),
        )
        with wh.transaction(con):
            # Full each run: what HubSpot no longer lists is gone.
            con.execute(f"DELETE FROM {PIPELINES_TABLE.name}")
            con.execute(f"DELETE FROM {STAGES_TABLE.name}")
            result.rows = wh.upsert_arrow(
                con, PIPELINES_TABLE.name, p_table, PIPELINES_TABLE.keys, run_id=ctx.run_id
            )
            result.rows += wh.upsert_arrow(
                con, STAGES_TABLE.name, s_table, STAGES_TABLE.keys, run_id=ctx.run_id
            )
            if rejects:
                result.rejects = wh.record_rejects(con, ctx.run_id, "hubspot.pipelines", rejects)
    return result


def run_properties_stream(ctx: StreamContext) -> StreamResult:
    con, stats = ctx.con.cursor(), CallStats()
    result = StreamResult(PROPERTIES_STREAM, "full")
    with recorded_run(ctx, result, con, stats):
        rows = []
        for stream in OBJECT_STREAMS:
            payload = ctx.call(
                f"properties {stream.object_type}",
                ctx.client.crm.properties.core_api.get_all,
                stream.object_type,
                stats=stats,
            )
            for p in payload.get("results") or []:
                meta = p.get("modificationMetadata") or {}
                rows.append(
                    {
                        "object_type": stream.object_type,
                        "name": p.get("name"),
                        "label": p.get("label"),
                        "type": p.get("type"),
                        "field_type": p.get("fieldType"),
                        "group_name": p.get("groupName"),
                        "hubspot_defined": p.get("hubspotDefined"),
                        "read_only_value": meta.get("readOnlyValue"),
                        "options": json.dumps(p.get("options") or []),
                    }
                )
        table = pa.Table.from_pylist(
            rows,
            schema=pa.schema(
                [
                    ("object_type", pa.string()),
                    ("name", pa.string()),
                    ("label", pa.string()),
                    ("type", pa.string()),
                    ("field_type", pa.string()),
                    ("group_name", pa.string()),
                    ("hubspot_defined", pa.bool_()),
                    ("read_only_value", pa.bool_()),
                    ("options", pa.string()),
                ]
            ),
        )
        with wh.transaction(con):
            con.execute(f"DELETE FROM {PROPERTIES_TABLE.name}")
            result.rows = wh.upsert_arrow(
                con, PROPERTIES_TABLE.name, table, PROPERTIES_TABLE.keys, run_id=ctx.run_id
            )
    return result


def account_details(client: Any, **request_options: Any) -> Any:
    """GET /account-info/v3/details through the official client's HTTP layer (this version of the client has
    no account-info module); the SDK's own ApiException and raw-response handling, so HubSpotCaller retries
    and reads it like any other call."""
    return client.crm.pipelines.pipelines_api.api_client.call_api(
        ACCOUNT_DETAILS_PATH,
        "GET",
        header_params={"Accept": "application/json"},
        auth_settings=["oauth2"],
        _return_http_data_only=True,
        **request_options,
    )


def run_account_stream(ctx: StreamContext) -> StreamResult:
    con, stats = ctx.con.cursor(), CallStats()
    result = StreamResult(ACCOUNT_STREAM, "full")
    with recorded_run(ctx, result, con, stats):
        # Its own caller (same limiter): a token refused the account details must not stop the CRM streams,
        # which a 403 through the shared caller would. The models then keep the currency last read, else
        # take home_currency for deals without a currency code.
        call = HubSpotCaller(ctx.call.limiter, ctx.settings)
        try:
            details = call("account details", account_details, ctx.client, stats=stats)
        except HubSpotCallError as exc:
            if exc.status not in (403, 404):
                raise
            log.warning("HubSpot account details not read, company currency unchanged: %s", exc)
            return result
        currency = str(details.get("companyCurrency") or "").strip().upper() or None
        row = {
            "portal_id": details.get("portalId"),
            "company_currency": currency,
            "additional_currencies": [str(c).upper() for c in details.get("additionalCurrencies") or []],
            "time_zone": details.get("timeZone"),
            "data_hosting_location": details.get("dataHostingLocation"),
        }
        table = pa.Table.from_pylist(
            [row],
            schema=pa.schema(
                [
                    ("portal_id", pa.int64()),
                    ("company_currency", pa.string()),
                    ("additional_currencies", pa.list_(pa.string())),
                    ("time_zone", pa.string()),
                    ("data_hosting_location", pa.string()),
                ]
            ),
        )
        with wh.transaction(con):
            con.execute(f"DELETE FROM {ACCOUNT_TABLE.name}")  # one portal per warehouse: its current details
            result.rows = wh.upsert_arrow(
                con, ACCOUNT_TABLE.name, table, ACCOUNT_TABLE.keys, run_id=ctx.run_id
            )
    return result
