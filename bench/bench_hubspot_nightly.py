"""Benchmark: a nightly HubSpot extract with 1 % of records changed vs a full sync, and the purge sweep.

The sandbox runs in a child process (its own GIL, like a remote HubSpot) with the professional rate limits on
and 80 ms added to every answer; the extract runs here with a real portal's settings (shared limiter, 190 per
10 s, search 5 per s). Steps, on one warehouse:
1. full sync (first run);
2. 1 % of the contacts, deals and line items modified in HubSpot, then a nightly (incremental) run;
3. the periodic purge sweep alone (ids only, live and archived, every object type) on the same warehouse.
Reported: calls and wall time of each, the nightly's calls against the goal (2 % of the full sync's calls plus
the archived-list calls), and the sweep's calls against its floor (one call per 100 ids).

    .venv/bin/python bench/bench_hubspot_nightly.py                    # 100,000 contacts
    .venv/bin/python bench/bench_hubspot_nightly.py --contacts 20000
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

LATENCY_MS = 80
SEED = 7
CHANGED_SHARE = 0.01
OBJECT_TYPES = ("contacts", "deals", "line_items")


def _serve(contacts: int, conn) -> None:
    from sandbox.server import SandboxServer

    with SandboxServer(contacts=contacts, seed=SEED, tier="professional", rate_limits=True) as sb:
        store = sb.store
        sb.faults.configure(latency_ms=LATENCY_MS)
        conn.send((sb.base_url, sb.access_token))
        while True:
            command = conn.recv()
            if command == "stop":
                return
            if command == "counts":
                conn.send({t: (store.count(t), store.count(t, archived=True)) for t in OBJECT_TYPES})
            elif command == "change":
                now = datetime.now(UTC)
                changed = {}
                for t in OBJECT_TYPES:
                    ids = [r.id for r in store.iter_records(t)]
                    step = max(1, round(1 / CHANGED_SHARE))
                    store.touch(t, ids[::step], now)
                    changed[t] = len(ids[::step])
                conn.send(changed)
            elif command == "requests":
                log = sb.request_log.entries
                conn.send((len(log), sum(1 for e in log if e.path.endswith("/search"))))
                sb.request_log.clear()


def run(contacts: int) -> dict:
    from connectors.config import load_settings
    from connectors.hubspot.deletions import SWEEP_STREAM
    from connectors.hubspot.extract import extract_hubspot

    parent, child = mp.Pipe()
    server = mp.get_context("spawn").Process(target=_serve, args=(contacts, child), daemon=True)
    server.start()
    base_url, token = parent.recv()

    def settings(sweep_days: int):
        return load_settings(
            None,
            hubspot_access_token=token,
            hubspot_base_url=base_url,
            hubspot_tier="professional",
            hubspot={"purge_sweep_days": sweep_days},
        )

    out: dict = {"contacts": contacts}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "roi.duckdb"
        parent.send("counts")
        counts = parent.recv()
        out["counts"] = counts
        for step, mode, sweep_days in (("full", "full", 7), ("nightly", "incremental", 7)):
            if step == "nightly":
                parent.send("change")
                out["changed"] = parent.recv()
            parent.send("requests")
            parent.recv()  # reset the server's log
            started = time.monotonic()
            results = extract_hubspot(settings(sweep_days), db, f"bench-{step}", mode=mode)
            out[f"{step}_wall_s"] = time.monotonic() - started
            out[f"{step}_calls"] = sum(r.calls for r in results.values())
            out[f"{step}_by_stream"] = {n: (r.calls, r.rows) for n, r in results.items()}
            parent.send("requests")
            out[f"{step}_server"] = parent.recv()
        # The sweep alone: a run whose sweep is due, minus that same run's nightly part measured above.
        parent.send("requests")
        parent.recv()
        started = time.monotonic()
        results = extract_hubspot(settings(0), db, "bench-sweep", mode="incremental")
        out["sweep_run_wall_s"] = time.monotonic() - started
        sweep = results[SWEEP_STREAM]
        out["sweep_calls"], out["sweep_s"], out["sweep_deleted"] = sweep.calls, sweep.seconds, sweep.deleted
    parent.send("stop")
    server.join(30)
    out["archived_list_calls"] = sum(max(1, math.ceil(gone / 100)) for _live, gone in counts.values())
    out["sweep_floor_calls"] = sum(
        max(1, math.ceil(live / 100)) + max(1, math.ceil(gone / 100)) for live, gone in counts.values()
    )
    out["load"] = os.getloadavg()[0]
    return out


def report(r: dict) -> str:
    goal = 0.02 * r["full_calls"] + r["archived_list_calls"]
    lines = [
        f"contacts={r['contacts']:,}  live/archived per type: {r['counts']}  (load average {r['load']:.1f})",
        f"  full sync:  {r['full_calls']:>6} calls  {r['full_wall_s']:7.1f} s",
        f"  nightly ({CHANGED_SHARE:.0%} changed: {r['changed']}): {r['nightly_calls']} calls "
        f"{r['nightly_wall_s']:.1f} s  = {r['nightly_calls'] / r['full_calls']:.2%} of the full sync's "
        f"calls; goal <= {goal:.0f} (2 % of full + {r['archived_list_calls']} archived-list calls): "
        f"{'met' if r['nightly_calls'] <= goal else 'MISSED'}",
        f"    per stream (calls, rows): {r['nightly_by_stream']}",
        f"  purge sweep: {r['sweep_calls']} calls {r['sweep_s']:.1f} s (floor {r['sweep_floor_calls']} "
        f"list calls of 100 ids), {r['sweep_deleted']} deleted; "
        f"the whole run with it {r['sweep_run_wall_s']:.1f} s",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    print(f"professional tier (19 req/s, search 5/s), {LATENCY_MS} ms latency, sandbox in a child process")
    print(report(run(args.contacts)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
