"""Benchmark: generate the sandbox data set (time and peak memory), write its files, run GA4 reports on it.

Each size runs in a fresh subprocess so peak RSS belongs to that size alone.

    .venv/bin/python bench/bench_generate.py                 # 1,000,000 contacts
    .venv/bin/python bench/bench_generate.py 5000 100000 1000000
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SIZES = (1_000_000,)
SEED = 42


def measure(contacts: int) -> dict:
    """Runs inside the child process."""
    from sandbox.ga4_api import ReportEngine, parse_request
    from sandbox.generator import generate

    started, cpu_started = time.perf_counter(), time.process_time()
    dataset = generate(contacts, SEED)
    generate_s = time.perf_counter() - started
    # CPU time too: the machine is shared, so wall time alone says more about the neighbours than about us.
    generate_cpu_s = time.process_time() - cpu_started
    rss_after_generate = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        dataset.write_spend_csv(Path(out) / "spend.csv")
        dataset.write_ground_truth(Path(out) / "ground_truth.json")
        files_s = time.perf_counter() - started

    engine = ReportEngine(dataset)
    today = dataset.now.date()
    reports = {
        "utm_daily_18_months": ["date", "sessionSource", "sessionMedium", "sessionCampaignName"],
        "contact_sessions_18_months": ["date", "customUser:crm_contact_id", "sessionSource", "sessionMedium"],
    }
    report_s = {}
    rows = {}
    for name, dims in reports.items():
        body = {
            "dimensions": [{"name": d} for d in dims],
            "metrics": [{"name": "sessions"}, {"name": "keyEvents"}],
            "dateRanges": [{"startDate": "2025-05-01", "endDate": "yesterday"}],
            "limit": "250000",
        }
        started = time.perf_counter()
        result, _ = engine.run(parse_request(body, today))
        report_s[name] = round(time.perf_counter() - started, 2)
        rows[name] = len(result)
    return {
        "contacts": contacts,
        "generate_s": round(generate_s, 1),
        "generate_cpu_s": round(generate_cpu_s, 1),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "peak_rss_mb_after_generate": rss_after_generate,
        "write_files_s": round(files_s, 2),
        "crm_contacts": dataset.crm.count("contacts"),
        "crm_deals": dataset.crm.count("deals"),
        "crm_line_items": dataset.crm.count("line_items"),
        "ga4_fact_rows": len(dataset.ga4),
        "report_s": report_s,
        "report_rows": rows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(measure(int(argv[1]))))
        return
    sizes = [int(a) for a in argv] or list(DEFAULT_SIZES)
    for size in sizes:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(size)], capture_output=True, text=True, check=True
        )
        print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
