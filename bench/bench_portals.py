"""Benchmark: wall time of the `nightly-all` deployment for 1, 2, 4 and 8 sandbox portals, against one portal
alone (one run of the `nightly` deployment), on one machine with two process workers.

Each portal is a sandbox of --contacts contacts (default 20,000; its own seed) served by its own process
(`roi sandbox serve`, HubSpot professional-tier rate limits on), with a fresh warehouse: every run is a
portal's first nightly (HubSpot read in full, GA4's trailing window, the spend sheet, the model build, the
first publish of every record). A Prefect server (SQLite) is started for the benchmark, prefect.yaml is
deployed on the roi-process pool, two `prefect worker` processes run the flows. Where the time goes: for
each portal run, the wait before its process was up (created -> running), its run time, and its tasks.

    .venv/bin/python bench/bench_portals.py                      # 1, 2, 4, 8 portals of 20,000 contacts
    .venv/bin/python bench/bench_portals.py --portals 1 2 --contacts 2000     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import flows  # noqa: F401  (offline Prefect settings before Prefect is imported)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from deployed.harness import Deployment, PrefectServer, serve_sandbox, stop_process  # noqa: E402


def portal_section(name: str, exports: dict[str, str], database: Path) -> str:
    lines = [
        f"[portals.{name}]",
        f'token_env = "HUBSPOT_TOKEN_{name.upper()}"',
        f'hubspot_base_url = "{exports["HUBSPOT_BASE_URL"]}"',
        f'ga4_property_id = "{exports["GA4_PROPERTY_ID"]}"',
        f'ga4_api_endpoint = "{exports["GA4_API_ENDPOINT"]}"',
        f'database = "{database}"',
    ]
    if "ROI_SPEND_FILE" in exports:
        lines.append(f'spend_file = "{exports["ROI_SPEND_FILE"]}"')
    return "\n".join(lines) + "\n"


def models_section(exports: dict[str, str]) -> str:
    """The sandbox shop's [models] tables (the same for every sandbox), from its MODELS__* exports."""
    lines = []
    for name, value in exports.items():
        if name.startswith("MODELS__"):
            key = name.removeprefix("MODELS__").lower()
            lines.append(f"[models.{key}]")
            lines += [f'"{k}" = "{v}"' for k, v in json.loads(value).items()]
    return "\n".join(lines) + "\n"


def busy_core_seconds() -> float:
    """CPU seconds every core of this machine spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (/proc/<pid>/stat); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(deployed: Deployment, folder: Path, count: int, contacts: int, *, alone: bool) -> dict:
    """Fresh sandboxes and warehouses for ``count`` portals, then one timed run; its figures."""
    folder.mkdir(parents=True)
    sandboxes = {}
    try:
        t0 = time.perf_counter()
        for index in range(count):
            name = f"p{index + 1}"
            sandboxes[name] = serve_sandbox(folder / name, contacts=contacts, seed=100 + index)
        serve_seconds = time.perf_counter() - t0
        exports = {name: e for name, (_, e, _) in sandboxes.items()}
        (day,) = {today for _, _, today in sandboxes.values()}
        config = folder / "roi.toml"
        config.write_text(
            f'database = "{folder / "roi.duckdb"}"\n[group]\nmax_parallel_portals = {count}\n'
            + models_section(next(iter(exports.values())))
            + "".join(portal_section(n, e, folder / f"{n}.duckdb") for n, e in exports.items()),
            encoding="utf-8",
        )
        tokens = {f"HUBSPOT_TOKEN_{n.upper()}": e["HUBSPOT_ACCESS_TOKEN"] for n, e in exports.items()}
        with deployed.workers(2, env=tokens):
            time.sleep(3)  # both workers polling before the clock starts
            pids = [process.pid for process, _, _ in sandboxes.values()]
            sandbox_cpu0, busy0 = sum(map(process_cpu_seconds, pids)), busy_core_seconds()
            t0 = time.perf_counter()
            if alone:
                run = deployed.run(
                    "nightly/nightly",
                    {"portal": "p1", "config_path": str(config), "today": day.isoformat()},
                    timeout=3600,
                )
                children = [run]
            else:
                parameters = {"config_path": str(config), "today": day.isoformat()}
                run = deployed.run("nightly-all/nightly-all", parameters, timeout=3600)
                children = deployed.child_runs(run.id)
            wall = time.perf_counter() - t0
            sandbox_cpu = sum(map(process_cpu_seconds, pids)) - sandbox_cpu0
            busy = busy_core_seconds() - busy0
    finally:
        for process, _, _ in sandboxes.values():
            stop_process(process)
    return {
        "portals": count,
        "mode": "nightly alone" if alone else "nightly-all",
        "state": run.state_name,
        "wall_seconds": round(wall, 1),
        "sandboxes_seconds": round(serve_seconds, 1),
        # Where the machine's two cores went during the timed run: the stand-ins' own CPU (HubSpot's and
        # Google's servers in production) and everything else (workers, flow runs, Prefect server).
        "busy_core_seconds": round(busy, 1),
        "sandbox_cpu_seconds": round(sandbox_cpu, 1),
        "cores_busy_share": round(busy / (wall * (os.cpu_count() or 1)), 2),
        "portal_runs": [
            {
                "portal": c.parameters.get("portal"),
                "state": c.state_name,
                "wait_for_process_seconds": round((c.started - c.created).total_seconds(), 1)
                if c.started and c.created
                else None,
                "run_seconds": round((c.ended - c.started).total_seconds(), 1)
                if c.ended and c.started
                else None,
                "tasks": task_seconds(deployed, c.id),
            }
            for c in children
        ],
        "parent_tasks": {} if alone else task_seconds(deployed, run.id),
    }


def task_seconds(deployed: Deployment, flow_run_id) -> dict[str, float]:
    """Seconds spent in each task of a flow run (by task name, retries included)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with deployed.client() as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    spent: dict[str, float] = {}
    for task in tasks:
        if task.start_time and task.end_time:
            key = task.name.rsplit("-", 1)[0]
            spent[key] = round(spent.get(key, 0.0) + (task.end_time - task.start_time).total_seconds(), 1)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portals", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-portals-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        server = PrefectServer.start(root / "prefect")
        try:
            deployed = Deployment(server)
            deployed.deploy()
            print(f"Prefect server + deploy: {time.perf_counter() - t0:.1f} s", flush=True)
            runs = [(1, True)] + [(n, False) for n in args.portals]
            for count, alone in runs:
                label = "alone" if alone else "all"
                result = run_once(deployed, root / f"{label}-{count}", count, args.contacts, alone=alone)
                results.append(result)
                durations = [r["run_seconds"] for r in result["portal_runs"] if r["run_seconds"]]
                waits = [
                    r["wait_for_process_seconds"]
                    for r in result["portal_runs"]
                    if r["wait_for_process_seconds"]
                ]
                print(
                    f"{result['mode']:>14} x{count}: {result['state']}, wall {result['wall_seconds']:.1f} s; "
                    f"portal runs {min(durations, default=0):.1f}-{max(durations, default=0):.1f} s "
                    f"(median {statistics.median(durations) if durations else 0:.1f}); process wait "
                    f"median {statistics.median(waits) if waits else 0:.1f} s; "
                    f"CPU busy {result['busy_core_seconds']:.0f} core-s "
                    f"({result['cores_busy_share']:.0%} of the cores), sandboxes "
                    f"{result['sandbox_cpu_seconds']:.0f} s",
                    flush=True,
                )
        finally:
            server.stop()
    base = results[0]["wall_seconds"]
    print("\nportals | run | wall (s) | x one portal alone")
    for result in results:
        ratio = result["wall_seconds"] / base
        print(f"{result['portals']:>7} | {result['mode']} | {result['wall_seconds']:.1f} | {ratio:.2f}")
    if args.output:
        args.output.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
