"""CRM search paging: incremental reads on a last-modified cursor, by keyset on the record id.

Search's ``after`` is an OFFSET into the result as it is when the page is asked for. A record already read
that is modified mid-read moves (to the end of a last-modified sort, out of a filter...), every later row
shifts up by one, and the row on the next page boundary is never returned. So every page here is a FRESH
query: the same bounds on the cursor property, ``hs_object_id > last id seen``, sorted by ``hs_object_id``,
first page only. Ids never change and only grow, so writes during the read cannot shift what is left:
a record modified behind the read point carries a newer stamp and is read by the next run (the cursor never
passes the run's start); one modified ahead of it is read now, in its new state.

The 10,000-result cap (paging past it answers 400) cannot be reached: no query ever asks for a page past its
first. A bulk update of 50,000 records at one timestamp is read whole, 200 at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from connectors.hubspot.client import CallStats, HubSpotCaller
from connectors.hubspot.streams import ObjectStream

SEARCH_PAGE_SIZE = 200  # maximum for POST .../search
SEARCH_RESULT_CAP = 10_000  # results one query can page through (400 beyond): keyset pages never get there


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


def id_after(last_id: int) -> dict:
    """The keyset filter: records with an id above the last one read."""
    return {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)}


def keyset_pages(
    call: HubSpotCaller,
    api: Any,
    what: str,
    filters: list[dict],
    properties: list[str],
    *,
    stats: CallStats,
    descending: bool = False,
    on_total: Callable[[int], None] | None = None,
) -> Iterator[list[dict]]:
    """Every record matching ``filters``, a page at a time in id order (descending: from the top), each page
    a fresh query under/over the last id seen (module doc). Stops when a page says nothing follows.
    ``on_total`` gets the first answer's ``total`` (how many records match) before its page is yielded."""
    last_id: int | None = None
    while True:
        bound = []
        if last_id is not None:
            bound = [
                {"propertyName": "hs_object_id", "operator": "LT", "value": str(last_id)}
                if descending
                else id_after(last_id)
            ]
        body = search_body(
            [*filters, *bound], "hs_object_id", "DESCENDING" if descending else "ASCENDING", properties
        )
        page = call(what, api.do_search, public_object_search_request=body, kind="search", stats=stats)
        results = page.get("results") or []
        if on_total is not None and last_id is None:
            on_total(int(page.get("total") or 0))
        if results:
            yield results
        more = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not results or not more:
            return
        last_id = int(results[-1]["id"])


def search_pages(
    call: HubSpotCaller,
    api: Any,
    stream: ObjectStream,
    properties: list[str],
    *,
    since: datetime,
    until: datetime | None,
    stats: CallStats,
    on_total: Callable[[int], None] | None = None,
) -> Iterator[list[dict]]:
    """Records with since <= cursor property (< until), in id order, by keyset (module doc)."""
    prop = stream.cursor_property
    bounds = [{"propertyName": prop, "operator": "GTE", "value": to_epoch_ms(since)}]
    if until is not None:
        bounds.append({"propertyName": prop, "operator": "LT", "value": to_epoch_ms(until)})
    what = f"search {stream.object_type} modified since {to_iso_utc(since)}"
    yield from keyset_pages(call, api, what, bounds, properties, stats=stats, on_total=on_total)
