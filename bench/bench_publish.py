"""Benchmark: publishing ROI values for N contacts (default 100,000) to the sandbox at a HubSpot tier.

    .venv/bin/python bench/bench_publish.py [--contacts 100000] [--tier professional] [--workers 4]

The sandbox runs in its own process (as HubSpot would: its request handling must not share the publisher's
GIL) and enforces the tier's rate limit; the publisher goes through the shared PortalRateLimiter. The desired
values are written straight into main.crm_property_values (6 properties per contact, shaped like the mart's):
this measures the publisher, not the extract. Reported per run: batch/update calls vs the minimum
ceil(records/100), schema calls, retries (429 / 5xx), wall time vs the rate-limit floor (the least time the
limiter allows for that many calls: a full window's allowance at once, then one window per allowance).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from connectors.config import load_settings
from connectors.hubspot.publish import publish_to_hubspot
from connectors.ratelimit import PortalRateLimiter, reset_registry
from sandbox.server import SandboxServer

CHANNELS = ("paid_search", "paid_social", "email", "organic_search", "direct", "referral", "events")
CAMPAIGNS = ("brand_bougies", "generic_bougies", "b2b_boutiques", "noel_cadeaux", "vente_hiver", "soldes_ete")
SEED = 7


def fill_desired(db_path: Path, contact_ids: list[int]) -> int:
    """6 values per contact, deterministic in the id; returns the number of rows."""
    with duckdb.connect(str(db_path)) as con:
        con.execute("CREATE OR REPLACE TABLE ids AS SELECT unnest(?::BIGINT[]) AS id", [contact_ids])
        con.execute(f"""
            CREATE OR REPLACE TABLE main.crm_property_values AS
            WITH c AS (
                SELECT id,
                       (list_value({", ".join(f"'{c}'" for c in CHANNELS)}))[1 + id % {len(CHANNELS)}] AS
                       channel,
                       (list_value({", ".join(f"'{c}'" for c in CAMPAIGNS)}))[1 + id % {len(CAMPAIGNS)}] AS
                       campaign
                FROM ids
            )
            SELECT 'contacts' AS object_type, id AS record_id, p.property, p.value
            FROM c CROSS JOIN LATERAL (VALUES
                ('roi_acquisition_channel', channel),
                ('roi_acquisition_source', 'google'),
                ('roi_acquisition_campaign', campaign),
                ('roi_attributed_revenue', CAST(CAST((id % 997) * 1.25 AS DECIMAL(18, 2)) AS VARCHAR)),
                ('roi_channel_roi_on_revenue', CAST(CAST((id % 13) / 7.0 - 1 AS DECIMAL(18, 4)) AS VARCHAR)),
                ('roi_channel_cost_per_lead', CAST(CAST(3 + id % 11 AS DECIMAL(18, 2)) AS VARCHAR))
            ) AS p(property, value)
        """)
        return con.execute("SELECT count(*) FROM main.crm_property_values").fetchall()[0][0]


def change_some(db_path: Path, every: int) -> int:
    """Change the attributed revenue of every `every`-th contact; returns how many records changed."""
    with duckdb.connect(str(db_path)) as con:
        con.execute(
            "UPDATE main.crm_property_values SET value = CAST(CAST(value AS DECIMAL(18, 2)) + 1 AS VARCHAR) "
            f"WHERE property = 'roi_attributed_revenue' AND record_id % {every} = 0"
        )
        return con.execute(
            f"SELECT count(*) FROM main.crm_property_values WHERE property = 'roi_attributed_revenue' "
            f"AND record_id % {every} = 0"
        ).fetchall()[0][0]


def floor_seconds(calls: int, limiter: PortalRateLimiter) -> float:
    """Least time `calls` requests can take under the sliding-window limiter, starting with an empty window:
    call k (0-based) cannot leave before (k // max_requests) windows have passed."""
    return ((calls - 1) // limiter.max_requests) * limiter.window_seconds if calls else 0.0


def serve(contacts: int, tier: str, ids_file: Path) -> None:
    """Child process: run the sandbox, write its contact ids, print its address, serve until stdin closes."""
    with SandboxServer(contacts=contacts, seed=SEED, tier=tier) as sb:
        ids_file.write_text(json.dumps([r.id for r in sb.dataset.crm.iter_records("contacts")]))
        print(json.dumps({"base_url": sb.base_url, "token": sb.access_token}), flush=True)
        sys.stdin.read()


def run(contacts: int, tier: str, workers: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = Path(tmp) / "ids.json"
        child = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                "--contacts",
                str(contacts),
                "--tier",
                tier,
                "--ids-file",
                str(ids_file),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            portal = json.loads(child.stdout.readline())
            ids = json.loads(ids_file.read_text())
            db_path = Path(tmp) / "bench.duckdb"
            values = fill_desired(db_path, ids)
            settings = load_settings(
                None,
                hubspot_access_token=portal["token"],
                hubspot_base_url=portal["base_url"],
                hubspot_tier=tier,
            )
            reset_registry()
            limiter = PortalRateLimiter.for_portal(portal["token"], tier)
            for label in ("first publish", "no change", "1% of contacts changed"):
                records = {"first publish": len(ids), "no change": 0}.get(label)
                if records is None:
                    records = change_some(db_path, 100)
                started = time.perf_counter()
                result = publish_to_hubspot(settings, db_path, f"bench-{len(rows)}", workers=workers)
                seconds = time.perf_counter() - started
                calls = result.update_calls + result.schema.calls
                rows.append(
                    {
                        "run": label,
                        "records": records,
                        "values": values,
                        "update_calls": result.update_calls,
                        "minimum": math.ceil(records / 100),
                        "schema_calls": result.schema.calls,
                        "retries": result.retries,
                        "seconds": seconds,
                        "floor": floor_seconds(calls, limiter),
                        "sent": sum(result.records_sent.values()),
                        "failed": result.records_failed,
                    }
                )
                time.sleep(
                    limiter.window_seconds
                )  # the next run starts with a fresh window, like a nightly run
        finally:
            child.stdin.close()
            child.wait(timeout=60)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--tier", default="professional")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ids-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.contacts, args.tier, args.ids_file)
        return
    started = time.perf_counter()
    rows = run(args.contacts, args.tier, args.workers)
    print(
        f"contacts={args.contacts} tier={args.tier} workers={args.workers} values={rows[0]['values']:,} "
        f"(total {time.perf_counter() - started:.1f} s incl. sandbox generation)"
    )
    print(
        "| run | records changed | batch/update calls | minimum ceil(n/100) | schema calls | retries | "
        "wall time | rate-limit floor | sent | failed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['run']} | {r['records']:,} | {r['update_calls']:,} | {r['minimum']:,} | "
            f"{r['schema_calls']} | {r['retries']} | {r['seconds']:.1f} s | {r['floor']:.1f} s | "
            f"{r['sent']:,} | {r['failed']} |"
        )


if __name__ == "__main__":
    main()
