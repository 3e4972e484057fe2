"""Benchmark: serve every contact page of a large sandbox (default 1,000,000 contacts), rate limits off.

    .venv/bin/python bench/bench_sandbox_serve.py --contacts 1000000 --seed 7

Pages through GET /crm/v3/objects/contacts (limit 100, the contract's contact properties) over real HTTP on
127.0.0.1 with one keep-alive connection from a separate process, and checks that every live contact came back
exactly once. The default client is httpx (measures the server); `--client sdk` uses the official
hubspot-api-client (adds its model deserialisation, which dominates).
Prints generation time, peak memory, wall time, pages/s and records/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import httpx

from sandbox.generator import generate
from sandbox.server import SandboxServer

CONTACT_PROPERTIES = (
    "email,firstname,lastname,createdate,lastmodifieddate,lifecyclestage,hs_lifecyclestage_lead_date,"
    "hs_lifecyclestage_marketingqualifiedlead_date,hs_lifecyclestage_salesqualifiedlead_date,"
    "hs_lifecyclestage_opportunity_date,hs_lifecyclestage_customer_date,hs_analytics_source,"
    "hs_analytics_source_data_1,hs_analytics_source_data_2,hs_analytics_first_url,hs_analytics_first_referrer,"
    "hs_analytics_first_timestamp,hs_latest_source,hs_latest_source_data_1,hs_latest_source_data_2,"
    "hs_latest_source_timestamp,hs_merged_object_ids,how_did_you_hear_about_us"
)
PAGE_SIZE = 100


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def page_with_httpx(base_url: str, token: str) -> tuple[int, list[int]]:
    ids: list[int] = []
    pages = 0
    params: dict[str, str] = {"limit": str(PAGE_SIZE), "properties": CONTACT_PROPERTIES}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        while True:
            answer = http.get("/crm/v3/objects/contacts", params=params)
            answer.raise_for_status()
            body = answer.json()
            pages += 1
            ids.extend(int(r["id"]) for r in body["results"])
            paging = body.get("paging")
            if not paging:
                return pages, ids
            params["after"] = paging["next"]["after"]


def page_with_sdk(base_url: str, token: str) -> tuple[int, list[int]]:
    from hubspot import HubSpot

    api = HubSpot(access_token=token, host=base_url).crm.contacts.basic_api
    ids: list[int] = []
    pages, after = 0, None
    properties = CONTACT_PROPERTIES.split(",")
    while True:
        page = api.get_page(limit=PAGE_SIZE, after=after, properties=properties)
        pages += 1
        ids.extend(int(r.id) for r in page.results)
        if page.paging is None:
            return pages, ids
        after = page.paging.next.after


def time_search_windows(base_url: str, token: str, windows: int = 3) -> list[float]:
    """Seconds per incremental-sync style search (lastmodifieddate >= floor, sorted by hs_object_id, after an
    id): the first pays for converting the columns, the next ones reuse them."""
    headers = {"Authorization": f"Bearer {token}"}
    timings, last_id = [], 0
    with httpx.Client(base_url=base_url, headers=headers, timeout=300) as http:
        for _ in range(windows):
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"},
                            {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)},
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": ["lastmodifieddate"],
                "limit": 200,
            }
            started = time.perf_counter()
            answer = http.post("/crm/v3/objects/contacts/search", json=body)
            answer.raise_for_status()
            timings.append(time.perf_counter() - started)
            results = answer.json()["results"]
            if not results:
                break
            last_id = int(results[-1]["id"]) + 2_000  # jump ahead, as the next window of a sync would
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--client", choices=("httpx", "sdk"), default="httpx")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    dataset = generate(contacts=args.contacts, seed=args.seed)
    generated_s = time.perf_counter() - started
    live = dataset.crm.count("contacts")
    print(
        f"generated {args.contacts:,} contacts ({live:,} live) in {generated_s:.1f} s; "
        f"peak RSS {_peak_rss_mb():,.0f} MB"
    )

    with SandboxServer(dataset=dataset, rate_limits=False) as sb:
        # The client runs in its own process so it does not share the server's GIL (as a real extractor).
        client = page_with_sdk if args.client == "sdk" else page_with_httpx
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(time.sleep, 0).result()  # child up and imports done before the clock starts
            started = time.perf_counter()
            pages, ids = pool.submit(client, sb.base_url, sb.access_token).result()
            wall_s = time.perf_counter() - started
            search_s = pool.submit(time_search_windows, sb.base_url, sb.access_token).result()
    expected = [r.id for r in dataset.crm.iter_records("contacts")]
    exact = ids == expected
    print(
        f"client={args.client} pages={pages:,} records={len(ids):,} wall={wall_s:.1f} s "
        f"pages/s={pages / wall_s:,.0f} records/s={len(ids) / wall_s:,.0f} every contact once={exact} "
        f"peak RSS {_peak_rss_mb():,.0f} MB"
    )
    print("search windows (s): " + ", ".join(f"{t:.2f}" for t in search_s))
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
