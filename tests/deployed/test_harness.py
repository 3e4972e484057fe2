"""The harness itself: a deployed nightly run on a sandbox, picked up by a process worker, ends Completed."""

from __future__ import annotations

import duckdb

from flows.sandbox_mode import sandbox_env, sandbox_today
from sandbox.server import SandboxServer


def test_a_deployed_nightly_run_fills_its_warehouse(deployed, tmp_path):
    assert {"nightly/nightly", "backfill/backfill", "publish/publish"} <= set(deployed.deploy())
    database = tmp_path / "roi.duckdb"
    with SandboxServer(contacts=200, seed=3, out_dir=tmp_path / "sb") as sb, deployed.workers(1):
        run = deployed.run(
            "nightly/nightly",
            {"today": sandbox_today(sb).isoformat()},
            env=sandbox_env(sb, database=database),
        )
    assert run.completed, (
        f"{run.state_name}: {run.message}\n{deployed.logs(run.id)}\n{deployed.worker_logs()}"
    )
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("select count(*) from raw.hubspot_contacts").fetchall()[0][0] > 0
        assert con.execute("select count(*) from roi_by_channel").fetchall()[0][0] > 0
