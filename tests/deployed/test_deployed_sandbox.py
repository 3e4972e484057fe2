"""Issue 12: the documented recipe for deployed runs against the sandbox, end to end.

`roi sandbox serve --print-env` in its own process -> its export lines are the worker's environment -> a
process worker runs the `backfill` then the `nightly` deployment of prefect.yaml -> both complete and leave
their artifacts. Nothing but the printed lines tells the worker where the sandbox is.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import duckdb
from deployed.harness import serve_sandbox, stop_process


def _artifact_keys(deployed, run_id) -> set[str]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with deployed.client() as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return {a.key for a in found if a.key}


def test_backfill_and_nightly_deployments_run_against_a_served_sandbox(deployed, tmp_path):
    started = time.monotonic()
    process, exports, today = serve_sandbox(tmp_path / "sandbox", contacts=150, seed=4)
    try:
        assert Path(exports["ROI_DATABASE"]).is_absolute()
        with deployed.workers(1, env=exports):
            backfill = deployed.run(
                "backfill/backfill",
                {
                    "start": (today - timedelta(days=40)).isoformat(),
                    "end": (today - timedelta(days=1)).isoformat(),
                    "streams": ["ga4"],
                    "chunk_days": 20,
                },
            )
            assert backfill.completed, (
                f"{backfill.message}\n{deployed.logs(backfill.id)}\n{deployed.worker_logs()}"
            )
            nightly = deployed.run("nightly/nightly", {"today": today.isoformat()})
            assert nightly.completed, (
                f"{nightly.message}\n{deployed.logs(nightly.id)}\n{deployed.worker_logs()}"
            )
    finally:
        stop_process(process)
    assert {"backfill-summary", "backfill-progress"} <= _artifact_keys(deployed, backfill.id)
    assert {"nightly-summary", "roi-by-channel"} <= _artifact_keys(deployed, nightly.id)
    with duckdb.connect(exports["ROI_DATABASE"], read_only=True) as con:
        kinds = dict(con.execute("select kind, status from ops.sync_runs where stream = '(flow)'").fetchall())
        first_day, last_day = con.execute("select min(date), max(date) from raw.ga4_traffic_daily").fetchone()
        published = con.execute("select count(*) from ops.published_values").fetchone()[0]
    assert kinds == {"backfill": "success", "nightly": "success"}
    # The backfill loaded the 40 days before the sandbox's today, the nightly its trailing window (a small
    # shop has days without traffic: the last day with rows is in that window, never after yesterday).
    assert today - timedelta(days=40) <= first_day < today - timedelta(days=30)
    assert today - timedelta(days=4) <= last_day < today
    assert published > 0
    print(f"deployed backfill + nightly: {time.monotonic() - started:.0f} s")  # shown with -s / in -rA
