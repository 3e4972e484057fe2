"""`nightly-all`: the nightly run of every portal, side by side on the work pool, then the group roll-up.

1. One run of the `nightly` deployment per portal (``run_deployment``, as subflows of this run), at most
   ``[group] max_parallel_portals`` at a time: the workers of the pool pick them up, so portals spread over
   workers and machines. Each portal run also holds its Prefect concurrency slots (flows.concurrency), so an
   ad-hoc run of a portal never overlaps its nightly run.
2. Wait for all of them. A portal that fails does not stop the others; its run keeps its own state and cause.
3. Build the group warehouse from the portals' files (models/group_rollup.py), then report each portal's
   outcome (artifact `nightly-all-summary`, table `portal-outcomes`).
4. End Failed, naming each failed portal and why, when one did: the schedule's owner hears about it.

Without a deployment (``deployment=None``: `roi run --portal all`, no workers) the portals run one after
another in this process, as subflows.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.logging import get_run_logger

from connectors.config import redact
from connectors.errors import EXIT_STEP_FAILED, RoiError
from flows.alerts import on_flow_failure
from flows.common import failure_cause
from flows.concurrency import DEFAULT_PORTAL, ensure_limits, wanted_limits
from flows.settings import load_configuration
from flows.tasks import build_group_step, write_report_step

NIGHTLY_DEPLOYMENT = "nightly/nightly"
POLL_SECONDS = 2.0
# A portal run waits this long for its slots (another run of the same portal, the group's cap) before failing.
PORTAL_SLOT_WAIT_SECONDS = 6 * 3600
DEFAULT_TIMEOUT_SECONDS = 12 * 3600


@dataclass
class PortalOutcome:
    portal: str
    state: str  # Completed, Failed, Crashed, Cancelled, or "Not finished" when the wait ran out
    ok: bool
    cause: str | None  # why it did not complete (one line, no secret)
    flow_run_name: str | None = None
    flow_run_id: str | None = None
    seconds: float | None = None


class PortalsFailedError(RoiError):
    """Some portals' nightly runs failed; the others ran and the group was built from what is there."""

    exit_code = EXIT_STEP_FAILED

    def __init__(self, message: str, result: dict[str, Any], fix: str | None = None) -> None:
        super().__init__(message, fix)
        self.result = result


@flow(
    name="nightly-all",
    description="One nightly run per portal on the work pool, side by side; then the group roll-up.",
    on_failure=[on_flow_failure],
)
def nightly_all(
    config_path: str | None = None,
    portals: list[str] | None = None,
    today: date | None = None,
    publish: bool = True,
    deployment: str | None = NIGHTLY_DEPLOYMENT,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Run `nightly` for `portals` (default: every portal of roi.toml) and build the group roll-up.

    `deployment` is the nightly deployment to fan out to ("flow/deployment"); None runs the portals one after
    another in this process. `today` and `publish` are passed to every portal run.
    """
    logger = get_run_logger()
    settings = load_configuration(config_path)
    names = sorted({settings.select_portal(p) for p in portals}) if portals else settings.portal_names()
    targets: list[str | None] = list(names) or [None]  # None: the one portal of a configuration without them
    ensure_limits(wanted_limits(settings))
    parameters = {
        "config_path": config_path,
        "today": today.isoformat() if today else None,
        "publish": publish,
    }
    logger.info(
        "Nightly run of %d portal(s): %s", len(targets), ", ".join(n or DEFAULT_PORTAL for n in targets)
    )
    if deployment:
        outcomes = _fan_out(
            deployment, targets, parameters, settings.group.max_parallel_portals, timeout_seconds
        )
    else:
        outcomes = _one_after_another(targets, parameters)
    for outcome in outcomes:
        (logger.info if outcome.ok else logger.error)(
            "Portal %s: %s%s", outcome.portal, outcome.state, f" ({outcome.cause})" if outcome.cause else ""
        )

    group: dict[str, Any] | None = None
    if len(names) > 1:
        group_state = build_group_step(config_path, return_state=True)
        if group_state.is_completed():
            built = group_state.result()
            group = {
                "warehouse": str(built.db_path),
                "currency": built.currency,
                "included": built.included,
                "excluded": built.excluded,
                "tests_failed": [t.name for t in built.failed_tests],
            }
            report_state = write_report_step(config_path, _run_name(), group=True, return_state=True)
            if report_state.is_completed():
                group["report"] = report_state.result()
            else:
                logger.error("Group HTML report not written: %s", failure_cause(report_state))
        else:
            group = {"error": failure_cause(group_state)}
            logger.error("Group roll-up not built: %s", group["error"])

    result = {
        "portals": [asdict(o) for o in outcomes],
        "failed": [o.portal for o in outcomes if not o.ok],
        "group": group,
    }
    _artifacts(outcomes, group)
    failed = [o for o in outcomes if not o.ok]
    problems = [f"{o.portal}: {o.state} ({o.cause})" for o in failed]
    if group and (group.get("error") or group.get("tests_failed")):
        problems.append(
            f"group roll-up: {group.get('error') or 'data tests failed: ' + ', '.join(group['tests_failed'])}"
        )
    if problems:
        done = len(outcomes) - len(failed)
        raise PortalsFailedError(
            f"{len(failed)} of {len(outcomes)} portal(s) failed, {done} completed; " + "; ".join(problems),
            result,
            fix="look at each failed portal's run (roi status --portal NAME), fix it, run it alone "
            "(roi run --portal NAME); the others are published",
        )
    return result


def _fan_out(
    deployment: str,
    targets: list[str | None],
    parameters: dict[str, Any],
    max_parallel: int,
    timeout_seconds: float,
) -> list[PortalOutcome]:
    """Start one run of ``deployment`` per portal, at most ``max_parallel`` at once, and wait for them."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    waiting = list(targets)
    running: dict[str | None, Any] = {}
    finished: dict[str | None, Any] = {}
    deadline = time.monotonic() + timeout_seconds
    with get_client(sync_client=True) as client:
        while waiting or running:
            while waiting and len(running) < max_parallel:
                portal = waiting.pop(0)
                name = portal or DEFAULT_PORTAL
                running[portal] = run_deployment(
                    deployment,
                    parameters={
                        **parameters,
                        "portal": portal,
                        "lock_wait_seconds": PORTAL_SLOT_WAIT_SECONDS,
                    },
                    timeout=0,  # start it and come back: this flow waits for all of them below
                    as_subflow=True,
                    flow_run_name=f"nightly-{name}",
                    tags=["roi", f"portal:{name}"],
                )
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
            for portal, flow_run in list(running.items()):
                current = client.read_flow_run(flow_run.id)
                if current.state is not None and current.state.is_final():
                    finished[portal] = current
                    del running[portal]
        for portal, flow_run in running.items():  # still running when the time ran out
            finished[portal] = client.read_flow_run(flow_run.id)
    outcomes = []
    for portal in targets:
        flow_run = finished.get(portal)
        if flow_run is None:
            outcomes.append(PortalOutcome(portal or DEFAULT_PORTAL, "Not started", False, "the wait ran out"))
            continue
        state = flow_run.state
        final = state is not None and state.is_final()
        outcomes.append(
            PortalOutcome(
                portal=portal or DEFAULT_PORTAL,
                state=(state.name if final else f"Not finished ({state.name if state else '?'})"),
                ok=bool(state and state.is_completed()),
                cause=None if state and state.is_completed() else _cause(state, final),
                flow_run_name=flow_run.name,
                flow_run_id=str(flow_run.id),
                seconds=flow_run.total_run_time.total_seconds() if flow_run.total_run_time else None,
            )
        )
    return outcomes


def _one_after_another(targets: list[str | None], parameters: dict[str, Any]) -> list[PortalOutcome]:
    from flows.nightly import nightly

    outcomes = []
    for portal in targets:
        started = time.monotonic()
        state = nightly.with_options(flow_run_name=f"nightly-{portal or DEFAULT_PORTAL}")(
            portal=portal,
            config_path=parameters["config_path"],
            today=parameters["today"],
            publish=parameters["publish"],
            return_state=True,
        )
        outcomes.append(
            PortalOutcome(
                portal=portal or DEFAULT_PORTAL,
                state=state.name,
                ok=state.is_completed(),
                cause=None if state.is_completed() else failure_cause(state),
                seconds=round(time.monotonic() - started, 1),
            )
        )
    return outcomes


def _run_name() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.name or "nightly-all")


def _cause(state: Any, final: bool) -> str:
    """A portal run's failure in one line, from the state message the server keeps."""
    if not final:
        return "still running when nightly-all stopped waiting (timeout_seconds)"
    message = (getattr(state, "message", None) or state.name or "").strip()
    for prefix in ("Flow run encountered an exception: ", "Task run encountered an exception: "):
        message = message.removeprefix(prefix)
    return redact(message.splitlines()[0] if message else state.name)


def _artifacts(outcomes: list[PortalOutcome], group: dict[str, Any] | None) -> None:
    table = [
        {
            "portal": o.portal,
            "state": o.state,
            "seconds": "" if o.seconds is None else f"{o.seconds:.0f}",
            "flow run": o.flow_run_name or "",
            "cause": o.cause or "",
        }
        for o in outcomes
    ]
    create_table_artifact(key="portal-outcomes", table=table, description="nightly-all: each portal's run")
    failed = [o for o in outcomes if not o.ok]
    lines = [
        f"# nightly-all: {len(outcomes) - len(failed)} of {len(outcomes)} portal(s) completed",
        "",
        "| portal | state | seconds | cause |",
        "|---|---|---:|---|",
        *(f"| {r['portal']} | {r['state']} | {r['seconds']} | {r['cause']} |" for r in table),
        "",
    ]
    if group is None:
        lines.append("No group roll-up (fewer than two portals).")
    elif group.get("error"):
        lines.append(f"**Group roll-up not built**: {group['error']}")
    else:
        excluded = "; ".join(f"{k}: {v}" for k, v in group["excluded"].items()) or "none"
        lines.append(
            f"Group roll-up `{group['warehouse']}` in {group['currency']}: {', '.join(group['included'])} "
            f"(left out: {excluded})."
        )
    create_markdown_artifact(key="nightly-all-summary", markdown="\n".join(lines), description="nightly-all")
