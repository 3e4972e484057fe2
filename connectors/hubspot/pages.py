"""Paging through list endpoints: every record of an object type, page by page, memory flat.

- ``list_pages``: GET /crm/v3/objects/{type}, 100 per page, live or archived records, in id order.
- ``both_ends_pages``: a full read of live records from both ends at once (list upward, search downward by
  id) until the two meet.
- ``prefetch`` / ``pages_in_threads``: pages fetched by helper threads a few pages ahead of the consumer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from connectors.hubspot.client import CallStats, HubSpotCaller
from connectors.hubspot.search import keyset_pages
from connectors.hubspot.streams import ObjectStream

LIST_PAGE_SIZE = 100  # HubSpot's maximum for GET /crm/v3/objects/{type}
PREFETCH_PAGES = 2  # pages fetched ahead of the one being staged


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(pages: Iterator[list[dict]], depth: int = PREFETCH_PAGES) -> Iterator[list[dict]]:
    """The same pages, fetched by a helper thread ``depth`` pages ahead: the next HTTP round trip overlaps the
    conversion and staging of the current page (a stream's pages are a sequential chain of cursors)."""
    return pages_in_threads([pages], depth, "hubspot-prefetch")


def list_pages(
    call: HubSpotCaller,
    api: Any,
    stream: ObjectStream,
    properties: list[str],
    *,
    archived: bool,
    stats: CallStats,
) -> Iterator[list[dict]]:
    """Every record of the object type (live, or archived ones), 100 per page, in id order."""
    after = None
    while True:
        page = call(
            f"list {stream.object_type}",
            api.get_page,
            limit=LIST_PAGE_SIZE,
            after=after,
            properties=properties,
            archived=archived,
            stats=stats,
        )
        results = page.get("results") or []
        if results:
            yield results
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return


def both_ends_pages(
    call: HubSpotCaller,
    basic_api: Any,
    search_api: Any,
    stream: ObjectStream,
    properties: list[str],
    *,
    stats: CallStats,
) -> Iterator[list[dict]]:
    """Every live record, read from both ends at once until the two meet: list pages upward by id and search
    pages downward by hs_object_id. A list read is a chain of cursors, bound by latency; search has its own
    allowance (5/s, outside the 10-second window), so the second chain costs no burst capacity."""
    lock = threading.Lock()
    seen = {"listed_up_to": -1, "searched_down_to": None}  # highest id listed, lowest id searched

    def upward() -> Iterator[list[dict]]:
        for page in list_pages(call, basic_api, stream, properties, archived=False, stats=stats):
            with lock:
                seen["listed_up_to"] = max(seen["listed_up_to"], max(int(r["id"]) for r in page))
                floor = seen["searched_down_to"]
            yield page if floor is None else [r for r in page if int(r["id"]) < floor]
            if floor is not None and seen["listed_up_to"] >= floor:
                return

    def downward() -> Iterator[list[dict]]:
        what = f"search {stream.object_type} by id, downward"
        for results in keyset_pages(call, search_api, what, [], properties, stats=stats, descending=True):
            with lock:
                listed = seen["listed_up_to"]
                below = int(results[-1]["id"])  # lowest id so far
                seen["searched_down_to"] = below
            yield [r for r in results if int(r["id"]) > listed]
            if below <= listed:
                return

    yield from pages_in_threads([upward(), downward()], PREFETCH_PAGES, "hubspot-read")


def pages_in_threads(
    generators: list[Iterator[list[dict]]], depth: int, thread_name: str
) -> Iterator[list[dict]]:
    """Pages of the generators, each run in its own thread up to ``depth`` pages ahead, in arrival order
    (empty pages dropped); the first error raises here. When the consumer stops, the threads quit at their
    next page."""
    out: queue.Queue = queue.Queue(depth * len(generators))
    stop = threading.Event()
    finished = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(gen: Iterator[list[dict]]) -> None:
        try:
            for page in gen:
                if not put(page):
                    return
        except BaseException as exc:
            put(_Failed(exc))
            return
        put(finished)

    for gen in generators:
        threading.Thread(target=run, args=(gen,), name=thread_name, daemon=True).start()
    running = len(generators)
    try:
        while running:
            item = out.get()
            if item is finished:
                running -= 1
            elif isinstance(item, _Failed):
                raise item.exc
            elif item:
                yield item
    finally:
        stop.set()
