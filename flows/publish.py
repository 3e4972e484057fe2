"""`publish(dry_run)`: send ROI values from the marts to HubSpot custom properties, nothing else.

Useful after a backfill, or to preview with dry_run=True (counts and a sample, nothing written anywhere).
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from flows.common import DEFAULT_LOCK_WAIT_SECONDS, new_run_id, publish_artifacts
from flows.locking import warehouse_lock
from flows.settings import database_path, default_model, load_settings, validate_settings
from flows.tasks import publish_step


@flow(name="publish", description="Publish ROI properties to HubSpot (dry_run previews without writing).")
def publish(
    dry_run: bool = False,
    config_path: str | None = None,
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
) -> dict[str, Any]:
    logger = get_run_logger()
    settings = load_settings(config_path)
    validate_settings(settings, needs=("hubspot",))
    db_path = database_path(settings)
    run_id = new_run_id("publish-dry-run" if dry_run else "publish")
    with warehouse_lock(db_path, run_id=run_id, wait_seconds=lock_wait_seconds):
        outcome = publish_step(config_path, run_id, dry_run=dry_run)
        if dry_run:
            logger.info("Dry run: nothing was sent to HubSpot and nothing was written to the warehouse.")
            return {"run_id": run_id, "dry_run": True, "preview": outcome}
        summary = publish_artifacts(db_path, run_id, flow="publish", default_model=default_model(settings))
    return {
        "run_id": run_id,
        "dry_run": False,
        "published": summary.records_published,
        "publish": summary.publish,
    }
