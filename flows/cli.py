"""The `roi` command line: one Typer app, one sub-app per area.

Exit codes (scripts can rely on them):
  0  success
  1  a pipeline step failed (extract, build or publish error); see the run summary
  2  wrong usage (unknown option, bad value) - Typer's own code
  3  configuration missing or invalid; the message names the setting and how to set it
  4  data tests failed: models built but publishing was skipped
  5  the warehouse is busy: another run holds its write lock
  6  `roi utm build` refused a value that is not in the tagging plan
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from connectors.config import ATTRIBUTION_MODELS
from connectors.errors import (
    EXIT_BUSY,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_STEP_FAILED,
    EXIT_TESTS_FAILED,
    EXIT_USAGE,
    EXIT_UTM_REFUSED,
    NotBuiltYetError,
    StepFailedError,
    UsageError,
)
from flows import terminal
from flows.cli_sandbox import sandbox_app
from flows.cli_support import (
    DebugOption,
    RoiTyper,
    check_prefect_server,
    install_prefect_traceback_filter,
    output_file,
    parse_day,
    prefect_target_label,
    set_debug,
)
from flows.reporting import as_text
from flows.sandbox_mode import (
    SANDBOX_DATABASE,
    sandbox_environment,
    sandbox_notice,
    sandbox_today,
    status_clock,
    use_sandbox,
)
from flows.settings import (
    ConfigurationError,
    database_path,
    default_model,
    load_configuration,
    load_settings,
    open_warehouse,
    tagging_plan_path,
    validate_settings,
)

__all__ = [
    "EXIT_BUSY",
    "EXIT_CONFIG",
    "EXIT_OK",
    "EXIT_STEP_FAILED",
    "EXIT_TESTS_FAILED",
    "EXIT_USAGE",
    "EXIT_UTM_REFUSED",
    "app",
]

app = RoiTyper(
    name="roi",
    help=(
        "roi-pipeline: what each marketing euro brings back (HubSpot + GA4 + spend -> DuckDB -> CRM).\n\n"
        "Start with `roi demo`, then `roi check` once roi.toml is written. Without any configuration "
        "(no roi.toml, no HUBSPOT_*/GA4_* variable), or with --sandbox, commands use the built-in sandbox "
        "and say so. Exit codes: 0 ok, 1 step failed, 2 usage, 3 config, 4 data tests failed, "
        "5 warehouse busy, 6 UTM refused."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(sandbox_app, name="sandbox")
utm_app = RoiTyper(
    help="Build tagged links checked against the tagging plan; audit the UTMs seen in the data."
)
app.add_typer(utm_app, name="utm", no_args_is_help=True)

console = Console()
err_console = Console(stderr=True)


def _version() -> str:
    try:
        return package_version("roi-pipeline")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"roi-pipeline {_version()}\n")
        raise typer.Exit(EXIT_OK)


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    debug: DebugOption = False,
) -> None:
    """roi-pipeline."""
    set_debug(debug)


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML settings file (default: ./roi.toml if present, then environment)."
    ),
]
SandboxOption = Annotated[
    bool,
    typer.Option(
        "--sandbox",
        help="Use the built-in sandbox even though a configuration exists (its warehouse is out/demo/).",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")
]
PortalOption = Annotated[
    str | None,
    typer.Option(
        "--portal",
        "-p",
        help="Which portal of roi.toml (\\[portals.<name>]; `roi portals` lists them). Needed when there are "
        "several; without \\[portals] there is one.",
    ),
]
PortalOrAllOption = Annotated[
    str | None,
    typer.Option(
        "--portal",
        "-p",
        help="Which portal of roi.toml (\\[portals.<name>]; `roi portals` lists them), or `all`: every "
        "portal and the group roll-up. Needed when there are several.",
    ),
]
ALL_PORTALS = "all"
LockWaitOption = Annotated[
    float,
    typer.Option("--lock-wait", min=0, help="Seconds to wait for another run writing the same warehouse."),
]


AttributionModel = StrEnum("AttributionModel", {m: m for m in ATTRIBUTION_MODELS})
ModelOption = Annotated[
    AttributionModel | None,
    typer.Option(
        "--model",
        help=f"Attribution model: {', '.join(ATTRIBUTION_MODELS)}. "
        "Default: the publish model (\\[models] publish_model, markov unless set).",
        show_choices=False,
    ),
]

ConfirmSpendRemovalOption = Annotated[
    bool,
    typer.Option(
        "--confirm-spend-removal",
        help="Load the spend sheet even if it removes more loaded spend than [spend] max_removed_share.",
    ),
]


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


class ExportBy(StrEnum):
    channel = "channel"
    source = "source"
    campaign = "campaign"


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, default=as_text, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------------
# Settings and sandbox mode.


def _settings(config: Path | None, portal: str | None = None, *, with_token: bool = True) -> Any:
    """The settings of ``portal`` (the only one by default); without its token for commands that only read."""
    if with_token:
        return load_settings(str(config) if config else None, portal)
    configuration = load_configuration(str(config) if config else None)
    return configuration.for_portal(portal, with_token=False)


def _refuse_portals_in_sandbox(config: Path | None, portal: str | None) -> None:
    """The sandbox is one portal: --portal, or a roi.toml with [portals] it would read, cannot apply."""
    if portal is not None:
        raise UsageError(
            f"--portal {portal} does not apply to the sandbox (one built-in portal)",
            "leave out --portal, or leave out --sandbox to use that portal",
        )
    if load_configuration(str(config) if config else None).portals:
        raise UsageError(
            "--sandbox cannot run with a roi.toml that declares [portals] (its flows would read them)",
            "run the sandbox from a folder without roi.toml, or pass --config with a file without portals",
        )


def _announce_sandbox(explicit: bool) -> None:
    err_console.print(f"[yellow]{escape(sandbox_notice(explicit))}[/]", highlight=False, soft_wrap=True)


@contextmanager
def pipeline_target(
    config: Path | None,
    *,
    sandbox: bool = False,
    needs: tuple[str, ...] = ("hubspot", "ga4"),
    extra_data_tests: Path | None = None,
    portal: str | None = None,
) -> Iterator[Any]:
    """Yield None for the configured portal, or the running sandbox (see flows.sandbox_mode for the rule).

    Settings and input files are validated here, before Prefect or any outside system is touched.
    """
    check_prefect_server()
    if not use_sandbox(config, sandbox):
        validate_settings(_settings(config, portal), needs, extra_data_tests=extra_data_tests)
        yield None
        return
    _announce_sandbox(sandbox)
    _settings(config)  # a broken file is reported even when the sandbox replaces its connections
    _refuse_portals_in_sandbox(config, portal)
    with sandbox_environment() as sb:
        validate_settings(_settings(config), needs, extra_data_tests=extra_data_tests)
        yield sb


def _warehouse_for_reading(config: Path | None, sandbox: bool = False, portal: str | None = None) -> Path:
    """The warehouse of ``portal`` (the only one by default; ``all``: the group roll-up's); the sandbox's
    (what `roi demo` wrote) when there is no configuration."""
    if use_sandbox(config, sandbox):
        _announce_sandbox(sandbox)
        if portal is not None:
            _refuse_portals_in_sandbox(None, portal)
        if not SANDBOX_DATABASE.exists():
            raise ConfigurationError(
                f"No sandbox warehouse at {SANDBOX_DATABASE} (looked there because no configuration exists)",
                "run `make demo` (or `roi demo`) in this folder first, or configure roi.toml",
            )
        return SANDBOX_DATABASE
    configuration = load_configuration(str(config) if config else None)
    if portal is not None and portal.strip().lower() == ALL_PORTALS:
        if not configuration.portals:
            raise UsageError(
                "--portal all needs several portals, and this configuration declares no [portals]",
                "leave out --portal",
            )
        group = configuration.group_database()
        if not group.exists():
            raise NotBuiltYetError(
                f"No group roll-up at {group} yet",
                "run `roi run --portal all` (or the nightly-all deployment) first",
            )
        return group
    name = configuration.select_portal(portal)
    return configuration.portal_database(name) if name else database_path(configuration)


def _run_flow(flow_fn: Callable[..., Any], label: str, **params: Any) -> dict[str, Any]:
    """Run a flow in this process: on the Prefect server PREFECT_API_URL names, else on a throwaway one."""
    install_prefect_traceback_filter()
    err_console.print(f"Prefect: {prefect_target_label()}", highlight=False)
    with console.status(f"[bold]{label}[/] (Prefect flow run)..."):
        return flow_fn(**params)


def _run_backfill_with_progress(backfill_flow: Callable[..., Any], **params: Any) -> dict[str, Any]:
    """The backfill flow in this process, with a progress bar fed by its chunk listener."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.backfill import CHUNK_LISTENERS

    label = f"backfill {params['start']}..{params['end']}"
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        bar = progress.add_task(f"{label}: starting Prefect", total=None)

        def on_chunk(done: int, total: int, chunk_end: date) -> None:
            progress.update(
                bar, completed=done, total=total, description=f"{label}: loaded up to {chunk_end}"
            )

        CHUNK_LISTENERS.append(on_chunk)
        try:
            return backfill_flow(**params)
        finally:
            CHUNK_LISTENERS.remove(on_chunk)


def _print_run(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(result)
        return
    from flows.run_view import render_run

    for block in render_run(result):
        console.print(block)


# ----------------------------------------------------------------------------------------------------
# Pipeline commands.


def _run_all_portals(config: Path | None, today: date | None, *, publish: bool, as_json: bool) -> None:
    """`roi run --portal all`: the nightly-all flow in this process (portals one after another), then each
    portal's outcome; exit 1 naming the failed ones."""
    from flows.nightly_all import PortalsFailedError, nightly_all

    check_prefect_server()
    configuration = load_configuration(str(config) if config else None)
    if not configuration.portals:
        raise UsageError(
            "--portal all needs [portals] in roi.toml; this configuration is one portal", "leave out --portal"
        )
    for name in configuration.portal_names():  # every portal's settings and files, before any run
        validate_settings(_settings(config, name))
    try:
        result = _run_flow(
            nightly_all,
            f"nightly of {len(configuration.portals)} portals, then the group roll-up",
            config_path=str(config) if config else None,
            today=today,
            publish=publish,
            deployment=None,
        )
        failure = None
    except PortalsFailedError as exc:
        result, failure = exc.result, exc
    if as_json:
        _print_json(result)
    else:
        from flows.portals import render_outcomes

        for block in render_outcomes(result):
            console.print(block)
    if failure is not None:
        raise failure


@app.command()
def run(
    config: ConfigOption = None,
    today: Annotated[
        str | None, typer.Option(help="Pretend today is this date (YYYY-MM-DD) for the GA4 trailing window.")
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish/--no-publish", help="Publish ROI to HubSpot at the end.")
    ] = True,
    extra_data_tests: Annotated[
        Path | None, typer.Option(help="Folder of your own SQL data tests (rows returned = failure).")
    ] = None,
    lock_wait: LockWaitOption = 0,
    confirm_spend_removal: ConfirmSpendRemovalOption = False,
    portal: PortalOrAllOption = None,
    as_json: JsonOption = False,
    sandbox: SandboxOption = False,
) -> None:
    """Run the nightly pipeline now: extract -> build + data tests -> publish (skipped if a test fails).
    `--portal all`: every portal one after another, then the group roll-up."""
    from flows.nightly import nightly

    today_day = parse_day(today, "--today")
    if portal is not None and portal.strip().lower() == ALL_PORTALS:
        _run_all_portals(config, today_day, publish=publish, as_json=as_json)
        return
    with pipeline_target(config, sandbox=sandbox, extra_data_tests=extra_data_tests, portal=portal) as sb:
        result = _run_flow(
            nightly,
            "nightly",
            portal=portal,
            config_path=str(config) if config else None,
            # The sandbox's data stops at its own "now": the GA4 trailing window must end there.
            today=today_day or (sandbox_today(sb) if sb else None),
            publish=publish,
            lock_wait_seconds=lock_wait,
            extra_data_tests=str(extra_data_tests.resolve()) if extra_data_tests else None,
            confirm_spend_removal=confirm_spend_removal,
        )
    _print_run(result, as_json)


@app.command()
def backfill(
    start: Annotated[str, typer.Option(help="First day to load, YYYY-MM-DD (inclusive).")],
    end: Annotated[str, typer.Option(help="Last day to load, YYYY-MM-DD (inclusive).")],
    streams: Annotated[
        list[str] | None,
        typer.Option("--streams", help="hubspot, ga4 and/or spend (repeat or comma-separate)."),
    ] = None,
    publish: Annotated[bool, typer.Option("--publish", help="Publish ROI after the rebuild.")] = False,
    chunk_days: Annotated[int, typer.Option(min=1, help="Days per resumable chunk.")] = 7,
    config: ConfigOption = None,
    lock_wait: LockWaitOption = 0,
    confirm_spend_removal: ConfirmSpendRemovalOption = False,
    portal: PortalOption = None,
    as_json: JsonOption = False,
    sandbox: SandboxOption = False,
) -> None:
    """Re-load a past date range in chunks that survive a crash (re-run the same command to resume)."""
    from flows.backfill import ALL_STREAMS, validate_window
    from flows.backfill import backfill as backfill_flow

    wanted = [s.strip() for item in (streams or []) for s in item.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(ALL_STREAMS))
    if unknown:
        raise UsageError(f"unknown stream(s) {', '.join(unknown)}", f"choose from {', '.join(ALL_STREAMS)}")
    start_day, end_day = parse_day(start, "--start"), parse_day(end, "--end")
    try:
        validate_window(start_day, end_day, chunk_days)  # before Prefect starts
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    needs = tuple(s for s in wanted or ALL_STREAMS if s != "spend")
    with pipeline_target(config, sandbox=sandbox, needs=needs, portal=portal):
        install_prefect_traceback_filter()
        err_console.print(f"Prefect: {prefect_target_label()}", highlight=False)
        result = _run_backfill_with_progress(
            backfill_flow,
            start=start_day,
            end=end_day,
            portal=portal,
            streams=wanted or None,
            publish=publish,
            chunk_days=chunk_days,
            config_path=str(config) if config else None,
            lock_wait_seconds=lock_wait,
            confirm_spend_removal=confirm_spend_removal,
        )
    _print_run(result, as_json)


@app.command("publish")
def publish_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; send and write nothing.")
    ] = False,
    config: ConfigOption = None,
    lock_wait: LockWaitOption = 0,
    portal: PortalOption = None,
    as_json: JsonOption = False,
    sandbox: SandboxOption = False,
) -> None:
    """Publish ROI properties from the current marts to HubSpot (only values that changed are sent)."""
    from flows.publish import publish as publish_flow

    with pipeline_target(config, sandbox=sandbox, needs=("hubspot",), portal=portal):
        result = _run_flow(
            publish_flow,
            "publish (dry run)" if dry_run else "publish",
            portal=portal,
            dry_run=dry_run,
            config_path=str(config) if config else None,
            lock_wait_seconds=lock_wait,
        )
        database = database_path(_settings(config, portal, with_token=False))  # the sandbox's while in it
    _print_run(result, as_json)
    failed = sum(int(p.get("failed") or 0) for p in result.get("publish") or [])
    if failed:
        reason = _main_publish_failure(database, result["run_id"])
        raise StepFailedError(
            f"{failed:,} property values were not published ({reason})",
            "if HubSpot was only busy, nothing: the next run (or `roi publish`) sends them again; "
            "`roi status` lists the records",
        )


def _main_publish_failure(database: Path, run_id: str) -> str:
    """The most frequent reason records of ``run_id`` failed to publish, with how many."""
    with open_warehouse(database) as con:
        found = con.execute(
            "select reason, count(*) from ops.publish_failures where run_id = ? group by reason "
            "order by 2 desc, 1 limit 1",
            [run_id],
        ).fetchone()
    return f"{found[1]:,} times: {found[0]}" if found else "see `roi status`"


# ----------------------------------------------------------------------------------------------------
# Read-only commands: status and export.


@app.command()
def status(
    config: ConfigOption = None,
    last: Annotated[int, typer.Option(min=1, help="How many recent runs to list.")] = 5,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="For cron/monitoring: print only problems; exit 1 when the last run failed or a source's "
            "data is older than its [freshness] error_after (warnings do not fail).",
        ),
    ] = False,
    notify: Annotated[
        bool,
        typer.Option("--notify", help="With --check: send freshness errors to [notify] (webhook/e-mail)."),
    ] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also row counts per raw table and cursors.")
    ] = False,
    portal: PortalOption = None,
    as_json: JsonOption = False,
    sandbox: SandboxOption = False,
) -> None:
    """The last run and why it ended so, the last success, the age of each source's data, rejects and failed
    publishes since the last success."""
    from flows.status import collect_status, render

    if portal is not None and portal.strip().lower() == ALL_PORTALS:
        raise UsageError("roi status is about one portal", "`roi portals` shows every portal's last run")
    in_sandbox = use_sandbox(config, sandbox)
    path = _warehouse_for_reading(config, sandbox, portal)
    settings = (
        _settings(None, with_token=False) if in_sandbox else _settings(config, portal, with_token=False)
    )
    now, today, clock = status_clock(in_sandbox)
    with open_warehouse(path) as con:
        report = collect_status(con, settings, path, last=last, now=now, today=today, clock=clock)
    problems = report.problems()
    if as_json:
        _print_json(report.as_json())
    elif check:
        for line in problems:
            console.print(f"ERROR {line}", highlight=False, soft_wrap=True)
        for line in report.warnings():
            console.print(f"WARN  {line}", highlight=False, soft_wrap=True)
        if not problems:
            run = report.last_run
            console.print(
                f"OK    last run {run.run_id} {run.status}; every source within its freshness limits"
            )
    else:
        for block in render(report, now=now, show_all=show_all):
            console.print(block)
    if check and notify:
        from flows.alerts import notify_freshness

        for problem in notify_freshness(settings, report):
            err_console.print(f"[yellow]warning:[/] notification not delivered: {escape(problem)}")
    if check and problems:
        raise typer.Exit(EXIT_STEP_FAILED)


@app.command()
def check(
    config: ConfigOption = None,
    extra_data_tests: Annotated[
        Path | None, typer.Option(help="Also check this folder of your own SQL data tests.")
    ] = None,
    portal: PortalOption = None,
    sandbox: SandboxOption = False,
) -> None:
    """Check the setup before a first run (like `dbt debug`): settings and files, HubSpot token and scopes,
    GA4 property, contact dimension and cost metrics, spend sheet, warehouse. Exit 0 if all pass, else 3."""
    from flows.check import render, run_checks

    if use_sandbox(config, sandbox):
        _announce_sandbox(sandbox)
        _settings(config)
        _refuse_portals_in_sandbox(config, portal)
        with sandbox_environment():
            checks = run_checks(_settings(config), "sandbox settings", extra_data_tests=extra_data_tests)
    else:
        source = str(config or "roi.toml") if (config or Path("roi.toml").is_file()) else "environment"
        settings = _settings(config, portal)
        if settings.portal:
            source += f", portal {settings.portal}"
        checks = run_checks(settings, source, extra_data_tests=extra_data_tests)
    console.print(render(checks))
    failed = [c for c in checks if c.failed]
    if failed:
        names = ", ".join(dict.fromkeys(c.name for c in failed))
        err_console.print(f"[bold red]error:[/] {len(failed)} check(s) failed: {names}", highlight=False)
        raise typer.Exit(EXIT_CONFIG)
    console.print("All checks passed: `roi run` can start.", highlight=False)


LanguageOption = Annotated[
    str | None, typer.Option("--lang", help="fr or en (default: \\[report] language, fr).")
]
MonthOption = Annotated[str | None, typer.Option("--month", help="Only this month, YYYY-MM.")]
FromOption = Annotated[str | None, typer.Option("--from", help="First month, YYYY-MM (inclusive).")]
ToOption = Annotated[str | None, typer.Option("--to", help="Last month, YYYY-MM (inclusive).")]


def _report_settings(
    config: Path | None, sandbox: bool, lang: str | None, portal: str | None = None
) -> tuple[str, str]:
    """(language, publish model) for an export or a report: --lang, else [report] language (the portal's;
    for `--portal all` the shared ones)."""
    from connectors.reports.formats import check_language

    if use_sandbox(config, sandbox):
        settings = _settings(None, with_token=False)
    elif portal is not None and portal.strip().lower() == ALL_PORTALS:
        settings = load_configuration(str(config) if config else None)
    else:
        settings = _settings(config, portal, with_token=False)
    try:
        language = check_language(lang or settings.report.language)
    except ValueError as exc:
        raise UsageError(f"--lang {lang}: {exc}", "use --lang fr or --lang en") from None
    return language, default_model(settings)


def _period(month: str | None, start: str | None, end: str | None) -> Any:
    from connectors.reports import Period

    try:
        return Period.parse(month, start, end)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@app.command()
def export(
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="xlsx (every sheet) or csv (one table).")
    ] = ExportFormat.xlsx,
    by: Annotated[
        ExportBy, typer.Option(help="CSV only: one row per channel, per source, or per campaign.")
    ] = ExportBy.channel,
    model: ModelOption = None,
    output: Annotated[
        Path | None, typer.Option(help="File to write (default: out/roi.xlsx, or out/roi_by_<by>.csv).")
    ] = None,
    lang: LanguageOption = None,
    csv_dialect: Annotated[
        str | None,
        typer.Option(
            "--csv-dialect", help="fr (; and decimal comma, BOM) or plain (, and point); default: --lang."
        ),
    ] = None,
    month: MonthOption = None,
    start: FromOption = None,
    end: ToOption = None,
    monthly: Annotated[bool, typer.Option("--monthly", help="CSV only: one row per month too.")] = False,
    config: ConfigOption = None,
    portal: PortalOrAllOption = None,
    sandbox: SandboxOption = False,
) -> None:
    """The ROI spreadsheet: Par canal / source / campagne (and per month), model comparison, Lisez-moi."""
    from connectors.reports import export_csv, export_workbook
    from connectors.reports.csv_file import DIALECTS

    period = _period(month, start, end)
    if csv_dialect is not None and csv_dialect not in DIALECTS:
        raise UsageError(f"--csv-dialect {csv_dialect} is unknown", f"use {' or '.join(DIALECTS)}")
    default_name = "roi.xlsx" if fmt is ExportFormat.xlsx else f"roi_by_{by.value}.csv"
    target = output_file(output or Path("out") / default_name, suffix=f".{fmt.value}")
    language, publish_model = _report_settings(config, sandbox, lang, portal)
    with open_warehouse(_warehouse_for_reading(config, sandbox, portal)) as con:
        if fmt is ExportFormat.csv:
            result = export_csv(
                con,
                target,
                grain=by.value,
                model=model.value if model else None,
                period=period,
                language=language,
                dialect=csv_dialect,
                monthly=monthly,
                publish_model=publish_model,
            )
        else:
            result = export_workbook(
                con,
                target,
                model=model.value if model else None,
                period=period,
                language=language,
                publish_model=publish_model,
            )
    console.print(
        f"Wrote {result.total_rows:,} rows ({result.model}, {period.label('en')}) to [bold]{result.path}[/]"
    )


@app.command()
def report(
    output: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("out/report.html"),
    model: ModelOption = None,
    lang: LanguageOption = None,
    month: MonthOption = None,
    start: FromOption = None,
    end: ToOption = None,
    config: ConfigOption = None,
    portal: PortalOrAllOption = None,
    sandbox: SandboxOption = False,
) -> None:
    """The HTML report: charts, ROI intervals, campaigns, UTM compliance, freshness; one offline file."""
    from connectors.reports import write_html_report

    period = _period(month, start, end)
    target = output_file(output, suffix=".html")
    language, publish_model = _report_settings(config, sandbox, lang, portal)
    with open_warehouse(_warehouse_for_reading(config, sandbox, portal)) as con:
        result = write_html_report(
            con,
            target,
            model=model.value if model else None,
            period=period,
            language=language,
            publish_model=publish_model,
        )
    console.print(
        f"Wrote the report ({result.model}, {len(result.charts)} charts, {result.bytes / 1024:,.0f} KiB) "
        f"to [bold]{result.path}[/]"
    )


# ----------------------------------------------------------------------------------------------------
# UTM tools.


def _tagging_plan(config: Path | None, portal: str | None = None) -> Any:
    from models.tagging_plan import TaggingPlanError, load_tagging_plan

    try:
        return load_tagging_plan(tagging_plan_path(_settings(config, portal, with_token=False)))
    except TaggingPlanError as exc:
        raise ConfigurationError(str(exc)) from None


@utm_app.command("build")
def utm_build(
    url: Annotated[str, typer.Argument(help="Landing page, e.g. https://www.exemple.com/produit")],
    source: Annotated[str, typer.Option(help="utm_source, e.g. newsletter")],
    medium: Annotated[str, typer.Option(help="utm_medium, e.g. email")],
    campaign: Annotated[str, typer.Option(help="utm_campaign, e.g. vente_hiver")],
    term: Annotated[str | None, typer.Option(help="utm_term (optional).")] = None,
    content: Annotated[str | None, typer.Option(help="utm_content (optional).")] = None,
    config: ConfigOption = None,
    portal: PortalOption = None,
) -> None:
    """Build a tagged URL (stdout) and say which channel it lands in (stderr). Values outside the tagging plan
    are refused with the allowed ones; a new campaign is accepted when it follows the plan's naming rule; a
    source/medium pair no channel rule accepts is refused with the pairs that are."""
    from flows.utm import build_tagged_url

    plan = _tagging_plan(config, portal)
    link = build_tagged_url(
        plan, url, source=source, medium=medium, campaign=campaign, term=term, content=content
    )
    label = plan.channels.get(link.channel, link.channel)
    err_console.print(f"channel: {link.channel} ({label}; rule {link.rule})", highlight=False)
    if link.new_campaign:
        err_console.print(
            f"new campaign {campaign!r}: accepted by the plan's naming rule; reports count it as compliant. "
            f"List it under campaigns.canonical in {plan.path} to give it aliases.",
            highlight=False,
            soft_wrap=True,
        )
    sys.stdout.write(link.url + "\n")


@utm_app.command("audit")
def utm_audit(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many values.")] = 30,
    portal: PortalOption = None,
    as_json: JsonOption = False,
    sandbox: SandboxOption = False,
) -> None:
    """Non-compliant UTM values seen in the data, biggest traffic first (from the utm_compliance mart)."""
    from flows.utm import AUDIT_VIEW_COLUMNS, audit_view, non_compliant_rows

    path = _warehouse_for_reading(config, sandbox, portal)
    with open_warehouse(path) as con:
        rows = non_compliant_rows(con, limit=limit)
    if as_json:
        _print_json(rows)
        return
    console.print(
        terminal.table(
            audit_view(rows),
            AUDIT_VIEW_COLUMNS,
            title=f"Non-compliant UTMs, most sessions first (top {limit}; utm_compliance)",
            empty="every UTM seen follows the tagging plan",
        )
    )


@app.command()
def portals(
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The portals of roi.toml: where each token comes from, each portal's last run and the age of its data
    (from its own warehouse), and the group roll-up."""
    from flows.portals import group_line, portal_lines, render

    configuration = load_configuration(str(config) if config else None)
    now, today, clock = status_clock(False)
    lines = portal_lines(configuration, now=now, today=today, clock=clock)
    group = group_line(configuration)
    if as_json:
        _print_json(
            {
                "portals": [line.as_json() for line in lines],
                "group": None if group is None else group.__dict__,
            }
        )
        return
    for block in render(lines, group, now=now):
        console.print(block)


@app.command()
def demo(
    contacts: Annotated[int, typer.Option(help="Sandbox size (contacts).")] = 2_000,
    seed: Annotated[int, typer.Option(help="Sandbox data seed.")] = 7,
    out: Annotated[Path, typer.Option(help="Where the demo warehouse and export go.")] = Path("out/demo"),
) -> None:
    """Start the sandbox, run the nightly flow through Prefect, show ROI, export it, read HubSpot back."""
    from flows.demo import run_demo

    code = run_demo(console, contacts=contacts, seed=seed, out=out)
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
