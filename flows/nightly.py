"""`nightly`: extract every stream, build the models and their data tests, publish ROI to HubSpot.

Order matters and is fixed: extracts -> build -> publish. An extract that fails does not stop the other
extracts (they are independent) but it does stop publishing: ROI computed on partial data must not
reach the CRM. A failing data test stops publishing too, loudly, and the run ends Failed so the
schedule's owner hears about it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from flows.common import (
    DEFAULT_LOCK_WAIT_SECONDS,
    PipelineStepError,
    build_outcome,
    failure_cause,
    flow_result,
    new_run_id,
    recorded_flow_run,
)
from flows.locking import warehouse_lock
from flows.settings import database_path, load_settings, validate_settings
from flows.tasks import (
    build_models_step,
    extract_ga4_step,
    extract_hubspot_step,
    load_spend_step,
    publish_step,
)


@flow(
    name="nightly",
    description="Extract HubSpot (incremental), GA4 (trailing window), the spend file; build; publish.",
)
def nightly(
    config_path: str | None = None,
    today: date | None = None,
    publish: bool = True,
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
    extra_data_tests: str | None = None,
) -> dict[str, Any]:
    """Run the whole pipeline once. `today` pins the GA4 trailing window (default: the property's today)."""
    logger = get_run_logger()
    settings = load_settings(config_path)
    validate_settings(settings, extra_data_tests=extra_data_tests)
    db_path = database_path(settings)
    run_id = new_run_id("nightly")
    logger.info("Run %s on warehouse %s", run_id, db_path)

    with (
        warehouse_lock(db_path, run_id=run_id, wait_seconds=lock_wait_seconds),
        recorded_flow_run(db_path, run_id, "nightly"),
    ):
        extract_states = {
            "hubspot": extract_hubspot_step(config_path, run_id, return_state=True),
            "ga4": extract_ga4_step(config_path, run_id, today=today, return_state=True),
            "spend": load_spend_step(config_path, run_id, return_state=True),
        }
        failed_extracts = {
            name: failure_cause(state) for name, state in extract_states.items() if not state.is_completed()
        }
        for name, message in failed_extracts.items():
            logger.error("Extract %s failed: %s", name, message)
        build_state = build_models_step(
            config_path, run_id, extra_data_tests=extra_data_tests, return_state=True
        )
        build_failed = None if build_state.is_completed() else failure_cause(build_state)
        tests = build_outcome(build_state.result() if build_failed is None else None)

        skipped_reason = None
        if failed_extracts:
            skipped_reason = (
                f"extract failed for {', '.join(failed_extracts)}; ROI on partial data is not published."
            )
        elif build_failed:
            skipped_reason = f"model build failed: {build_failed}"
        elif tests[1]:
            skipped_reason = (
                f"{len(tests[1])} data test(s) failed: {', '.join(tests[1])}. Fix the data, re-run."
            )
        elif not publish:
            skipped_reason = "publish=False was requested."
        if skipped_reason and publish:
            logger.error("PUBLISH SKIPPED: %s", skipped_reason)
        elif not skipped_reason:
            publish_step(config_path, run_id)

        result = flow_result(settings, run_id, "nightly", tests=tests, publish_skipped_reason=skipped_reason)
        causes = [f"extract {name} failed ({cause})" for name, cause in failed_extracts.items()]
        causes += [f"model build failed ({build_failed})"] if build_failed else []
        causes += [f"data tests failed: {', '.join(tests[1])}"] if tests[1] else []
        if causes:
            result["failed_steps"] = sorted(failed_extracts) + (["build"] if build_failed else [])
            # Raised inside the run record so ops.sync_runs shows this run as failed, with its cause.
            raise PipelineStepError(
                f"nightly run {run_id} failed: {'; '.join(causes)}; publishing skipped",
                result,
                fix="see `roi status` for the details, fix the cause, then `roi run` again",
            )
    return result
