"""CRM search paging: incremental reads on a last-modified cursor, beating the 10,000-result cap.

Search stops at 10,000 results per query; when a query reaches the cap the records at its last timestamp T
are drained separately (``cursor = T``, sorted by hs_object_id, ``hs_object_id > last`` restarting every
10,000) and the main query restarts at ``cursor > T``. Every query strictly raises a bound, so nothing loops,
and a bulk update of 50,000 records at one timestamp is read whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from connectors import warehouse as wh
from connectors.hubspot.client import CallStats, HubSpotCaller
from connectors.hubspot.streams import ObjectStream

SEARCH_PAGE_SIZE = 200  # maximum for POST .../search
SEARCH_RESULT_CAP = 10_000  # a search query never pages past this many results (400)


def to_epoch_ms(value: datetime) -> str:
    """A datetime as the epoch-milliseconds string search filters take."""
    return str(int(value.timestamp() * 1000))


def to_iso_utc(value: datetime) -> str:
    """A datetime as HubSpot's ISO-8601 UTC form with milliseconds (cursor values)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def search_body(filters: list[dict], sort_property: str, direction: str, properties: list[str]) -> dict:
    return {
        "filterGroups": [{"filters": filters}] if filters else [],
        "sorts": [{"propertyName": sort_property, "direction": direction}],
        "properties": properties,
        "limit": SEARCH_PAGE_SIZE,
    }


class SearchQuery:
    """The pages (results lists) of one search query. Afterwards ``capped`` says whether it stopped because
    the next page would pass the 10,000-result cap: the caller then restarts with a tighter filter."""

    def __init__(self, call: HubSpotCaller, api: Any, what: str, body: dict, stats: CallStats) -> None:
        self.call, self.api, self.what, self.body, self.stats = call, api, what, body, stats
        self.capped = False

    def __iter__(self) -> Iterator[list[dict]]:
        offset = 0
        while True:
            page = self.call(
                self.what,
                self.api.do_search,
                public_object_search_request={**self.body, "after": str(offset)},
                kind="search",
                stats=self.stats,
            )
            yield page.get("results") or []
            next_after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not next_after:
                return
            offset = int(next_after)
            if offset >= SEARCH_RESULT_CAP:
                self.capped = True
                return


def search_pages(
    call: HubSpotCaller,
    api: Any,
    stream: ObjectStream,
    properties: list[str],
    *,
    since: datetime,
    until: datetime | None,
    stats: CallStats,
) -> Iterator[list[dict]]:
    """Records with since <= cursor (< until), ascending, beating the 10,000-result cap (module doc)."""
    prop = stream.cursor_property
    upper = [{"propertyName": prop, "operator": "LT", "value": to_epoch_ms(until)}] if until else []
    lower: dict = {"propertyName": prop, "operator": "GTE", "value": to_epoch_ms(since)}
    while True:
        body = search_body([lower, *upper], prop, "ASCENDING", properties)
        last_value: str | None = None
        query = SearchQuery(call, api, f"search {stream.object_type}", body, stats)
        for results in query:
            if results:
                last_value = results[-1]["properties"].get(prop) or last_value
                yield results
        if not query.capped or last_value is None:
            return
        # Cap reached: read everything at exactly the last timestamp by id, then go on strictly after it.
        at = wh.to_utc_datetime(last_value)
        assert at is not None
        yield from _drain_timestamp(call, api, stream, properties, at, stats)
        lower = {"propertyName": prop, "operator": "GT", "value": to_epoch_ms(at)}


def _drain_timestamp(
    call: HubSpotCaller, api: Any, stream: ObjectStream, properties: list[str], at: datetime, stats: CallStats
) -> Iterator[list[dict]]:
    prop = stream.cursor_property
    last_id: int | None = None
    while True:
        filters: list[dict] = [{"propertyName": prop, "operator": "EQ", "value": to_epoch_ms(at)}]
        if last_id is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)})
        body = search_body(filters, "hs_object_id", "ASCENDING", properties)
        query = SearchQuery(call, api, f"search {stream.object_type} at {to_iso_utc(at)}", body, stats)
        for results in query:
            if results:
                last_id = int(results[-1]["id"])
                yield results
        if not query.capped:
            return
