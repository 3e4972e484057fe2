"""Benchmark: full HubSpot extract at the professional tier with 80 ms latency, against the floor.

The sandbox runs in a child process (its own GIL, like a remote HubSpot) with rate limits on and 80 ms added
to every answer. The extract runs here with the settings a real portal would get. Reported per size:
- wall time vs the floor of the calls made: max(burst calls / 19 per s, search calls / 5 per s), HubSpot's
  professional allowance (190 per 10 s; search separately 5 per s);
- the list-only floor: the minimum calls of a list-only read (pages of 100 for live + archived records,
  2 association batch reads per 1,000 deals, 1 pipelines + 3 property calls) / 19 per s;
- peak RSS of this process (the extract), which must stay flat as the number of records grows.

    .venv/bin/python bench/bench_extract.py                 # 20,000 and 100,000 contacts
    .venv/bin/python bench/bench_extract.py --contacts 5000 # one size, in this process
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HUBSPOT_PROFESSIONAL_PER_SECOND = 190 / 10
HUBSPOT_SEARCH_PER_SECOND = 5
LATENCY_MS = 80
SEED = 7
DEFAULT_SIZES = (20_000, 100_000)


def _serve(contacts: int, conn) -> None:
    from sandbox.server import SandboxServer

    with SandboxServer(contacts=contacts, seed=SEED, tier="professional", rate_limits=True) as sb:
        store = sb.store
        counts = {
            t: (store.count(t), store.count(t, archived=True)) for t in ("contacts", "deals", "line_items")
        }
        sb.faults.configure(latency_ms=LATENCY_MS)
        conn.send((sb.base_url, sb.access_token, counts))
        cpu_before = time.process_time()
        conn.recv()  # wait until the extract is done
        cpu = time.process_time() - cpu_before
        log = sb.request_log.entries
        searches = sum(1 for e in log if e.path.endswith("/search"))
        conn.send(
            {
                "requests": len(log),
                "searches": searches,
                "429": sum(1 for e in log if e.status == 429),
                "cpu": cpu,
            }
        )


def minimum_calls(counts: dict[str, tuple[int, int]]) -> int:
    pages = sum(math.ceil(live / 100) + max(1, math.ceil(gone / 100)) for live, gone in counts.values())
    associations = 2 * math.ceil(counts["deals"][0] / 1000)
    return pages + associations + 1 + 3


def run(contacts: int) -> dict:
    from connectors.config import load_settings
    from connectors.hubspot.extract import extract_hubspot

    parent, child = mp.Pipe()
    server = mp.get_context("spawn").Process(target=_serve, args=(contacts, child), daemon=True)
    server.start()
    base_url, token, counts = parent.recv()
    settings = load_settings(
        None, hubspot_access_token=token, hubspot_base_url=base_url, hubspot_tier="professional"
    )
    with tempfile.TemporaryDirectory() as tmp:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        rss_before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        started = time.monotonic()
        results = extract_hubspot(settings, Path(tmp) / "roi.duckdb", "bench", mode="full")
        wall = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        rss_after, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
        load = os.getloadavg()[0]
        db_mb = (Path(tmp) / "roi.duckdb").stat().st_size / 1e6
    parent.send("done")
    server_view = parent.recv()
    server.join(10)
    calls = sum(r.calls for r in results.values())
    retries = sum(r.retries for r in results.values())
    searches = server_view["searches"]
    floor = max(
        (server_view["requests"] - searches) / HUBSPOT_PROFESSIONAL_PER_SECOND,
        searches / HUBSPOT_SEARCH_PER_SECOND,
    )
    return {
        "contacts": contacts,
        "rows": {name: r.rows for name, r in results.items()},
        "calls": calls,
        "min_calls": minimum_calls(counts),
        "searches": searches,
        "list_only_floor_s": minimum_calls(counts) / HUBSPOT_PROFESSIONAL_PER_SECOND,
        "retries": retries,
        "server_requests": server_view["requests"],
        "429s": server_view["429"],
        "wall_s": wall,
        "cpu_s": cpu,
        "server_cpu_s": server_view["cpu"],
        "load": load,
        "floor_s": floor,
        "vs_floor": wall / floor,
        "peak_rss_mb": rss_after / 1024,
        "rss_growth_mb": (rss_after - rss_before) / 1024,
        "db_mb": db_mb,
    }


def report(r: dict) -> str:
    return (
        f"contacts={r['contacts']:>7,}  rows={r['rows']}\n"
        f"  calls={r['calls']} ({r['searches']} searches; list-only minimum {r['min_calls']}), "
        f"retries={r['retries']}, 429s={r['429s']}, server saw {r['server_requests']}\n"
        f"  wall={r['wall_s']:.1f}s  floor={r['floor_s']:.1f}s  wall/floor={r['vs_floor']:.3f}  "
        f"list-only floor={r['list_only_floor_s']:.1f}s\n"
        f"  CPU: extract {r['cpu_s']:.1f}s, sandbox {r['server_cpu_s']:.1f}s (load average {r['load']:.1f})\n"
        f"  peak RSS={r['peak_rss_mb']:.0f} MB (grew {r['rss_growth_mb']:.0f} MB during the extract), "
        f"warehouse {r['db_mb']:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, help="run one size in this process")
    args = parser.parse_args()
    if args.contacts:
        print(report(run(args.contacts)), flush=True)
        return
    print(f"professional tier (19 req/s), {LATENCY_MS} ms latency, sandbox in a child process", flush=True)
    for contacts in DEFAULT_SIZES:
        # One process per size: peak RSS is a high-water mark, so sizes must not share a process.
        subprocess.run([sys.executable, __file__, "--contacts", str(contacts)], check=True)


if __name__ == "__main__":
    sys.exit(main())
