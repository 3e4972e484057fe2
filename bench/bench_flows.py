"""Benchmark: the nightly flow through Prefect (ephemeral server) against the in-process sandbox.

Measures, on one fresh warehouse:
  1. Prefect ephemeral server start + a GA4 history backfill flow run (the first-install step),
  2. the first nightly run (HubSpot in full, spend file, build + data tests, first publish of every record),
  3. a second nightly run with no change in the portal (incremental search, publish sends only what moved).

    .venv/bin/python bench/bench_flows.py --contacts 2000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import flows  # noqa: F401  (offline Prefect settings before Prefect is imported)
from flows.sandbox_mode import sandbox_environment, sandbox_history, sandbox_today


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from flows.backfill import backfill
    from flows.nightly import nightly

    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        with sandbox_environment(
            contacts=args.contacts, seed=args.seed, database=database, out_dir=Path(tmp)
        ) as sb:
            t_sandbox = time.perf_counter() - t0
            first_day, last_day = sandbox_history(sb)
            t0 = time.perf_counter()
            history = backfill(start=first_day, end=last_day, streams=["ga4"], chunk_days=92)
            t_backfill = time.perf_counter() - t0
            timings = []
            for _ in range(3):
                sb.request_log.clear()
                t0 = time.perf_counter()
                result = nightly(today=sandbox_today(sb))
                timings.append((time.perf_counter() - t0, result, len(sb.request_log.entries)))
    print(f"contacts={args.contacts} seed={args.seed}")
    print(f"sandbox generate+start: {t_sandbox:.1f} s")
    print(
        f"GA4 history backfill ({history['chunks']} chunks, {history['rows']} rows, incl. Prefect start): "
        f"{t_backfill:.1f} s"
    )
    for label, (seconds, result, calls) in zip(
        ("first nightly", "second nightly", "third nightly"), timings, strict=True
    ):
        print(
            f"{label}: {seconds:.1f} s, {result['rows']} rows, {calls} API requests, "
            f"{result['published']} property values published"
        )


if __name__ == "__main__":
    main()
