"""`nightly`: extract every stream, build the models and their data tests, publish ROI to HubSpot.

Order matters and is fixed: spend sheet -> HubSpot, GA4 -> build -> publish. An extract that fails or ends
incomplete (a GA4 quota stop in the trailing window, a HubSpot stream that failed) does not stop the other
extracts (they are independent) but it does stop publishing, with the source and the days missing: ROI
computed on partial data must not reach the CRM. The next run resumes what is missing and publishes. A
failing data test stops publishing too, loudly, and the run ends Failed so the schedule's owner hears
about it. A spend sheet that would remove too much loaded spend stops the run before anything else.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from connectors.spend import SpendReplacementRefused
from flows.alerts import on_flow_failure, on_nightly_completion
from flows.common import (
    DEFAULT_LOCK_WAIT_SECONDS,
    PipelineStepError,
    build_outcome,
    extract_gaps,
    failure_cause,
    flow_result,
    new_run_id,
    recorded_flow_run,
)
from flows.concurrency import DEFAULT_PORTAL, portal_slot
from flows.locking import warehouse_lock
from flows.settings import database_path, load_settings, validate_settings
from flows.tasks import (
    build_models_step,
    extract_ga4_step,
    extract_hubspot_step,
    load_spend_step,
    publish_step,
    write_report_step,
)


@flow(
    name="nightly",
    description="Extract HubSpot (incremental), GA4 (trailing window), the spend file; build; publish.",
    on_failure=[on_flow_failure],
    on_completion=[on_nightly_completion],
)
def nightly(
    portal: str | None = None,
    config_path: str | None = None,
    today: date | None = None,
    publish: bool = True,
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
    extra_data_tests: str | None = None,
    confirm_spend_removal: bool = False,
) -> dict[str, Any]:
    """Run the whole pipeline once for `portal` (default: the only one). `today` pins the GA4 trailing window
    (default: the property's today); `confirm_spend_removal` loads a spend sheet that removes more spend than
    [spend] max_removed_share."""
    logger = get_run_logger()
    settings = load_settings(config_path, portal)
    validate_settings(settings, extra_data_tests=extra_data_tests)
    db_path = database_path(settings)
    run_id = new_run_id("nightly")
    logger.info("Run %s of portal %s on warehouse %s", run_id, settings.portal or DEFAULT_PORTAL, db_path)

    with (
        # The file lock first: when it is taken, its note names the run holding it.
        warehouse_lock(db_path, run_id=run_id, wait_seconds=lock_wait_seconds),
        portal_slot(settings, wait_seconds=lock_wait_seconds),
        recorded_flow_run(db_path, run_id, "nightly"),
    ):
        spend_state = load_spend_step(
            config_path, run_id, confirm_removal=confirm_spend_removal, portal=portal, return_state=True
        )
        spend_outcome = spend_state.result(raise_on_failure=False)
        if isinstance(spend_outcome, SpendReplacementRefused):
            # A person must look at the sheet before anything runs on it: stop here, nothing replaced.
            logger.error("RUN STOPPED: %s", spend_outcome)
            result = flow_result(
                settings,
                run_id,
                "nightly",
                tests=(0, []),
                publish_skipped_reason=f"spend sheet refused: {spend_outcome.cause}",
            )
            result["failed_steps"] = ["spend"]
            raise PipelineStepError(
                f"nightly run {run_id} stopped before any extract: {spend_outcome.cause}",
                result,
                fix=spend_outcome.fix,
            )
        extract_states = {
            "hubspot": extract_hubspot_step(config_path, run_id, portal=portal, return_state=True),
            "ga4": extract_ga4_step(config_path, run_id, today=today, portal=portal, return_state=True),
            "spend": spend_state,
        }
        failed_extracts = extract_gaps(db_path, extract_states)
        for name, message in failed_extracts.items():
            logger.error("Extract %s incomplete: %s", name, message)
        build_state = build_models_step(
            config_path, run_id, extra_data_tests=extra_data_tests, portal=portal, return_state=True
        )
        build_failed = None if build_state.is_completed() else failure_cause(build_state)
        tests = build_outcome(build_state.result() if build_failed is None else None)

        skipped_reason = None
        if failed_extracts:
            skipped_reason = (
                f"extract incomplete for {', '.join(failed_extracts)}: "
                + "; ".join(f"{name}: {message}" for name, message in failed_extracts.items())
                + ". ROI on partial data is not published; the next run completes the data and publishes."
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
            publish_step(config_path, run_id, portal=portal)

        report_path = None
        if not build_failed:  # a failed build kept the previous marts, and the previous report matches them
            report_state = write_report_step(
                config_path,
                run_id,
                notice=skipped_reason if publish else None,
                portal=portal,
                return_state=True,
            )
            if report_state.is_completed():
                report_path = report_state.result()
            else:
                logger.error("HTML report not written: %s", report_state.message)

        result = flow_result(
            settings,
            run_id,
            "nightly",
            tests=tests,
            publish_skipped_reason=skipped_reason,
            report=report_path,
            incomplete=failed_extracts,
        )
        failed_tasks = {name for name, state in extract_states.items() if not state.is_completed()}
        causes = [
            f"extract {name} {'failed' if name in failed_tasks else 'incomplete'} ({gap})"
            for name, gap in failed_extracts.items()
        ]
        causes += [f"model build failed ({build_failed})"] if build_failed else []
        causes += [f"data tests failed: {', '.join(tests[1])}"] if tests[1] else []
        if causes:
            result["failed_steps"] = sorted(failed_extracts) + (["build"] if build_failed else [])
            # Raised inside the run record so ops.sync_runs shows this run as failed, with its cause.
            raise PipelineStepError(
                f"nightly run {run_id} failed: {'; '.join(causes)}; publishing skipped",
                result,
                fix=(
                    "nothing to do: the next run resumes what is missing, then publishes (see `roi status`)"
                    if failed_extracts and not failed_tasks and not build_failed and not tests[1]
                    else "see `roi status` for the details, fix the cause, then `roi run` again"
                ),
            )
    return result
