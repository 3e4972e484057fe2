"""When the flows tell people: a failed run, data tests blocking publish, data past its freshness limit.

The messages go through connectors.notify ([notify] in roi.toml). Delivery problems are logged, never raised:
a run's outcome does not depend on the chat server.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

from connectors.config import Settings, redact
from connectors.notify import Notification, notify

log = logging.getLogger(__name__)


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        from prefect.logging import get_run_logger

        return get_run_logger()
    except Exception:  # outside a flow run (roi status --check --notify)
        return log


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def notify_run_failed(
    settings: Settings, *, run_id: str, kind: str, db_path: Path, exc: BaseException
) -> list[str]:
    """A failed run, or (event tests_blocked) a run whose only failure is data tests blocking publish."""
    result = getattr(exc, "result", None) or {}
    tests_only = bool(result.get("tests_failed")) and not result.get("failed_steps")
    if tests_only:
        failed = ", ".join(result["tests_failed"])
        notification = Notification(
            event="tests_blocked",
            title=f"{kind} run: data tests failed, ROI NOT published",
            details=[
                f"failed data tests: {failed}",
                "HubSpot keeps the previous ROI values until a run passes its tests.",
                "Fix the data (or the test), then run again: `roi run`.",
            ],
            run_id=run_id,
            warehouse=str(db_path),
        )
    else:
        fix = getattr(exc, "fix", None)
        notification = Notification(
            event="failure",
            title=f"{kind} run FAILED",
            details=[redact(_first_line(exc), settings)] + ([f"Fix: {fix}"] if fix else []),
            run_id=run_id,
            warehouse=str(db_path),
        )
    problems = notify(settings, notification)
    for problem in problems:
        _logger().warning("Notification not delivered: %s", problem)
    return problems


def notify_freshness(settings: Settings, report: object, *, run_id: str | None = None) -> list[str]:
    """Freshness errors of a flows.status.StatusReport, if any, in one notification."""
    errors = [f.problem for f in getattr(report, "freshness", []) if f.level == "error" and f.problem]
    if not errors:
        return []
    notification = Notification(
        event="freshness",
        title=f"Stale data: {len(errors)} source(s) past their freshness limit",
        details=[*errors, "ROI computed on stale data under-counts recent spend or revenue."],
        run_id=run_id,
        warehouse=getattr(report, "warehouse", None),
    )
    problems = notify(settings, notification)
    for problem in problems:
        _logger().warning("Notification not delivered: %s", problem)
    return problems


def check_freshness_after_run(
    settings: Settings, db_path: Path, *, run_id: str, today: date | None
) -> list[str]:
    """The freshness errors after a run (logged, and notified when [notify] wants them); ``today`` is the day
    the run considered today (the sandbox's own day in sandbox runs)."""
    from flows.settings import open_warehouse
    from flows.status import collect_status

    now = datetime.now(UTC)
    with open_warehouse(db_path) as con:
        report = collect_status(con, settings, db_path, now=now, today=today or now.date())
    errors = [f.problem for f in report.freshness if f.level == "error" and f.problem]
    for problem in errors:
        _logger().error("STALE DATA: %s", problem)
    notify_freshness(settings, report, run_id=run_id)
    return errors


# ----------------------------------------------------------------------------------------------------------
# Prefect flow hooks, declared by the flows (on_failure / on_completion): CLI and deployed runs alike notify.


def _hook_settings(flow_run: object, flow: object = None) -> Settings | None:
    from flows.settings import load_configuration, load_settings

    parameters = getattr(flow_run, "parameters", None) or {}
    try:
        if getattr(flow, "name", None) == "nightly-all":  # every portal: the configuration itself
            return load_configuration(parameters.get("config_path"))
        return load_settings(parameters.get("config_path"), parameters.get("portal"))
    except Exception as exc:  # settings that cannot load cannot say where to notify: Prefect automations can
        _logger().warning("No notification: the settings do not load (%s)", _first_line(exc))
        return None


def on_flow_failure(flow: object, flow_run: object, state: object) -> None:
    """on_failure hook: notify [notify] of the failure (or of data tests blocking publish)."""
    settings = _hook_settings(flow_run, flow)
    if settings is None:
        return
    exc = state.result(raise_on_failure=False)  # type: ignore[attr-defined]
    if not isinstance(exc, BaseException):
        exc = RuntimeError(getattr(state, "message", None) or "the flow run failed")
    result = getattr(exc, "result", None) or {}
    run_id = result.get("run_id") or getattr(flow_run, "name", None) or "?"
    kind = getattr(flow, "name", "pipeline")
    db_path = settings.group_database() if settings.portals and settings.portal is None else settings.database
    notify_run_failed(settings, run_id=run_id, kind=kind, db_path=Path(db_path), exc=exc)


def on_nightly_completion(flow: object, flow_run: object, state: object) -> None:
    """on_completion hook of `nightly`: freshness of every source; errors are logged and notified."""
    settings = _hook_settings(flow_run)
    if settings is None:
        return
    parameters = getattr(flow_run, "parameters", None) or {}
    today = parameters.get("today")
    if isinstance(today, str):
        today = date.fromisoformat(today[:10])
    result = state.result(raise_on_failure=False)  # type: ignore[attr-defined]
    run_id = result.get("run_id") if isinstance(result, dict) else getattr(flow_run, "name", None)
    check_freshness_after_run(settings, Path(settings.database), run_id=run_id, today=today)
