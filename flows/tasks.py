"""Small named Prefect tasks: each one wraps one connector or model entry point and nothing else.

Settings are loaded inside each task from the config path, the portal name and the environment, never
passed as task or flow parameters, so tokens never reach Prefect's database or its UI. No task caches
(NO_CACHE): every step talks to the outside world or writes the warehouse, and cache keys would try to hash
settings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.tasks import exponential_backoff

from connectors.errors import EXIT_CONFIG, EXIT_USAGE, RoiError
from flows.settings import (
    database_path,
    default_model,
    html_report_path,
    load_configuration,
    load_settings,
    model_params,
    open_warehouse,
    spend_file,
    tagging_plan_path,
)

# Connectors retry individual HTTP calls themselves; task retries cover a whole step dying on a
# transport error.
STEP_RETRIES = 2
STEP_RETRY_DELAY = exponential_backoff(backoff_factor=5)
STEP_RETRY_JITTER = 0.3
# The HTML report renders ~10 charts; far longer means something is stuck.
REPORT_TIMEOUT_SECONDS = 300
# Errors that another attempt cannot fix: retrying them only spends API allowance.
PERMANENT_STATUSES = {400, 401, 403, 404, 409, 422}


def _status_in_chain(exc: BaseException) -> int | None:
    """The HTTP status carried by ``exc`` or by an exception it was raised from (SDK errors keep it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for name in ("status", "status_code", "code"):
            value = getattr(current, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        current = current.__cause__ or current.__context__
    return None


def retry_only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """retry_condition_fn: retry transport errors, 429 and 5xx; never configuration or permission errors."""
    try:
        state.result()
    except (ValueError, TypeError, KeyError, PermissionError, FileNotFoundError):
        return False
    except RoiError as exc:
        return exc.exit_code not in (EXIT_CONFIG, EXIT_USAGE)
    except Exception as exc:
        status = _status_in_chain(exc)
        return status is None or status not in PERMANENT_STATUSES
    return False


def _step(name: str, *, retries: int = STEP_RETRIES):
    return task(
        name=name,
        retries=retries,
        retry_delay_seconds=STEP_RETRY_DELAY if retries else None,
        retry_jitter_factor=STEP_RETRY_JITTER if retries else None,
        retry_condition_fn=retry_only_transient if retries else None,
        cache_policy=NO_CACHE,
        persist_result=False,
    )


@_step("extract-hubspot")
def extract_hubspot_step(
    config_path: str | None,
    run_id: str,
    *,
    mode: str = "incremental",
    streams: list[str] | None = None,
    modified_between: tuple[date, date] | None = None,
    portal: str | None = None,
) -> Any:
    from connectors.hubspot.extract import extract_hubspot

    settings = load_settings(config_path, portal)
    return extract_hubspot(
        settings,
        database_path(settings),
        run_id,
        mode=mode,
        streams=streams,
        modified_between=modified_between,
    )


@_step("extract-ga4")
def extract_ga4_step(
    config_path: str | None,
    run_id: str,
    *,
    start: date | None = None,
    end: date | None = None,
    today: date | None = None,
    portal: str | None = None,
) -> Any:
    from connectors.ga4 import extract_ga4

    settings = load_settings(config_path, portal)
    return extract_ga4(
        settings,
        database_path(settings),
        run_id,
        start=start,
        end=end,
        today=today,
        first_run_days=settings.ga4.first_run_days,
    )


def rated_currencies(settings: Any) -> set[str]:
    """Currencies with a rate in [models.fx_rates] or the rates file: the spend loader accepts them."""
    from models.fx_rates import configured_currencies

    models = settings.models
    return configured_currencies(models.fx_rates, models.fx_rates_file, models.home_currency)


@_step("load-spend-file", retries=0)
def load_spend_step(
    config_path: str | None, run_id: str, *, confirm_removal: bool = False, portal: str | None = None
) -> Any:
    """`confirm_removal`: load a sheet even if it removes more loaded spend than [spend] max_removed_share."""
    from connectors.spend import load_spend

    settings = load_settings(config_path, portal)
    path = spend_file(settings)
    if path is None:
        return None
    return load_spend(
        path,
        database_path(settings),
        run_id,
        sheet=settings.spend.sheet,
        extra_currencies=rated_currencies(settings),
        confirm_removal=confirm_removal,
        max_removed_share=settings.spend.max_removed_share,
        rates=dict(settings.models.fx_rates),
    )


@_step("build-models", retries=0)
def build_models_step(
    config_path: str | None, run_id: str, *, extra_data_tests: str | None = None, portal: str | None = None
) -> Any:
    """Build every model and run the data tests; `extra_data_tests` adds a folder of your own SQL checks."""
    from models.runner import build, run_data_tests

    settings = load_settings(config_path, portal)
    db_path = database_path(settings)
    # the run id labels the models' rejects (deals, spend rows) so the run summary counts them
    result = build(
        db_path, tagging_plan=tagging_plan_path(settings), params=model_params(settings), run_id=run_id
    )
    if extra_data_tests:
        folder = Path(extra_data_tests)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"extra_data_tests folder {folder} does not exist: fix the flow parameter."
            )
        with open_warehouse(db_path, read_only=False) as con:
            result.tests.extend(run_data_tests(con, folder))
    for test in result.failed_tests:
        get_run_logger().error("Data test failed: %s", test.describe())
    for test in result.warnings:
        get_run_logger().warning("Data test warning (publish goes on): %s", test.describe())
    return result


@_step("build-group", retries=0)
def build_group_step(config_path: str | None, *, lock_wait_seconds: float = 600) -> Any:
    """The group roll-up of every portal of the configuration, in its own warehouse (models/group_rollup)."""
    from flows.locking import warehouse_lock
    from models.group_rollup import PortalSource, build_group

    settings = load_configuration(config_path)
    db_path = settings.group_database()
    sources = [
        PortalSource(name, settings.portal_database(name), settings.portal_label(name))
        for name in settings.portal_names()
    ]
    with warehouse_lock(db_path, run_id="group-roll-up", wait_seconds=lock_wait_seconds):
        result = build_group(
            db_path, sources, currency=settings.group.currency, fx_rates=settings.group.fx_rates
        )
    for name, reason in result.excluded.items():
        get_run_logger().warning("Portal %s is not in the group roll-up: %s", name, reason)
    for test in result.failed_tests:
        get_run_logger().error("Group data test failed: %s", test.describe())
    return result


@_step("publish-to-hubspot")
def publish_step(
    config_path: str | None, run_id: str, *, dry_run: bool = False, portal: str | None = None
) -> Any:
    from connectors.hubspot.publish import publish_to_hubspot

    settings = load_settings(config_path, portal)
    return publish_to_hubspot(settings, database_path(settings), run_id, dry_run=dry_run)


@_step("write-html-report", retries=0)
def write_report_step(
    config_path: str | None,
    run_id: str,
    *,
    notice: str | None = None,
    portal: str | None = None,
    group: bool = False,
) -> str | None:
    """The HTML report beside the warehouse ([report] html_file), linked from the run's artifacts; ``group``:
    the group roll-up's (every portal). Rendered in a child process (connectors/reports/__main__.py says
    why)."""
    from prefect.artifacts import create_link_artifact

    settings = load_configuration(config_path) if group else load_settings(config_path, portal)
    if not settings.report.nightly_html:
        return None
    path = html_report_path(settings, group=group)
    command = [
        sys.executable,
        "-m",
        "connectors.reports",
        "html",
        "--database",
        str(settings.group_database() if group else database_path(settings)),
        "--output",
        str(path),
        "--language",
        settings.report.language,
        "--publish-model",
        default_model(settings),
    ]
    if notice:
        command += ["--notice", notice]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=REPORT_TIMEOUT_SECONDS, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the HTML report failed: {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    create_link_artifact(
        key="roi-group-report" if group else "roi-report",
        link=path.resolve().as_uri(),
        link_text="Rapport ROI (HTML)" if settings.report.language == "fr" else "ROI report (HTML)",
        description=f"Self-contained HTML report of run {run_id}: {len(result['charts'])} charts, "
        f"{result['bytes'] / 1024:,.0f} KiB, model {result['model']}",
    )
    get_run_logger().info("HTML report written to %s", path)
    return str(path)
