"""Run every benchmark in bench/ with the sizes docs/benchmarks.md reports (`make bench`).

Each script runs in its own process so peak-memory figures don't bleed into each other. `--quick` runs small
sizes only: a smoke check that the scripts still work, not figures to record.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).parent

# (script, arguments for the recorded figures, arguments for --quick)
BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    ("bench_generate.py", ["5000", "100000", "1000000"], ["5000"]),
    ("bench_sandbox_serve.py", ["--contacts", "1000000", "--seed", "7"], ["--contacts", "20000"]),
    ("bench_extract.py", [], ["--contacts", "5000"]),
    ("bench_hubspot_nightly.py", ["--contacts", "100000"], ["--contacts", "5000"]),
    ("bench_ga4_extract.py", ["100000"], ["5000"]),
    ("bench_models.py", [], ["--contacts", "20000"]),
    ("bench_markov.py", ["--paths", "1000000", "--deals", "1000000"], ["--paths", "20000"]),
    ("bench_intervals.py", ["--contacts", "100000"], ["--contacts", "5000", "--resamples", "200"]),
    ("bench_publish.py", ["--contacts", "100000", "--tier", "professional"], ["--contacts", "5000"]),
    ("bench_spend.py", ["--rows", "50000"], ["--rows", "2000"]),
    ("bench_flows.py", ["--contacts", "2000"], ["--contacts", "500"]),
    ("bench_portals.py", [], ["--portals", "1", "2", "--contacts", "2000"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: check the scripts run")
    parser.add_argument("only", nargs="*", help="script names to run (default: all)")
    args = parser.parse_args()
    failed = []
    for script, full_args, quick_args in BENCHMARKS:
        if args.only and script not in args.only:
            continue
        command = [sys.executable, str(BENCH_DIR / script), *(quick_args if args.quick else full_args)]
        print(f"\n=== {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(script)
        print(f"=== {script}: {time.perf_counter() - started:.1f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
