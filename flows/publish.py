"""`publish(dry_run)`: send ROI values from the marts to HubSpot custom properties, nothing else.

Useful after a backfill, or to preview with dry_run=True (counts and a sample, nothing written anywhere).
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from flows.alerts import on_flow_failure
from flows.common import DEFAULT_LOCK_WAIT_SECONDS, new_run_id, publish_artifacts, recorded_flow_run
from flows.concurrency import portal_slot
from flows.locking import warehouse_lock
from flows.settings import database_path, default_model, load_settings, validate_settings
from flows.tasks import publish_step


def dry_run_preview(outcome: Any) -> dict[str, Any]:
    """What a dry run would do, as plain data: changed records per object and property, and a sample."""
    counts = getattr(outcome, "counts", {}) or {}
    return {
        "changes": {
            f"{obj}.{prop}": getattr(c, "changed", None) for (obj, prop), c in sorted(counts.items())
        },
        "records_changed": dict(getattr(outcome, "records_changed", {}) or {}),
        "sample": list(getattr(outcome, "sample", []) or [])[:10],
    }


@flow(
    name="publish",
    description="Publish ROI properties to HubSpot (dry_run previews without writing).",
    on_failure=[on_flow_failure],
)
def publish(
    portal: str | None = None,
    dry_run: bool = False,
    config_path: str | None = None,
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
) -> dict[str, Any]:
    logger = get_run_logger()
    settings = load_settings(config_path, portal)
    validate_settings(settings, needs=("hubspot",))
    db_path = database_path(settings)
    run_id = new_run_id("publish-dry-run" if dry_run else "publish")
    with (
        # The file lock first: when it is taken, its note names the run holding it.
        warehouse_lock(db_path, run_id=run_id, wait_seconds=lock_wait_seconds),
        portal_slot(settings, wait_seconds=lock_wait_seconds),
    ):
        if dry_run:  # no run record either: a dry run writes nothing at all
            outcome = publish_step(config_path, run_id, dry_run=True, portal=portal)
            logger.info("Dry run: nothing was sent to HubSpot and nothing was written to the warehouse.")
            return {"run_id": run_id, "dry_run": True, "preview": dry_run_preview(outcome)}
        with recorded_flow_run(db_path, run_id, "publish"):
            publish_step(config_path, run_id, portal=portal)
            summary = publish_artifacts(
                db_path, run_id, flow="publish", default_model=default_model(settings)
            )
    return {
        "run_id": run_id,
        "dry_run": False,
        "published": summary.records_published,
        "publish": summary.publish,
    }
