"""`roi sandbox ...`: run the HubSpot + GA4 stand-ins."""

from __future__ import annotations

import shlex
import signal
import threading
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path

import typer

from flows.cli_support import RoiTyper
from sandbox.ratelimits import TIER_LIMITS

sandbox_app = RoiTyper(
    help="Run the built-in HubSpot and GA4 API stand-ins on 127.0.0.1.", no_args_is_help=True
)


@sandbox_app.command("serve")
def serve(
    port: int = typer.Option(8765, "--port", help="Port on 127.0.0.1 (0 picks a free one)."),
    contacts: int = typer.Option(2_000, "--contacts", min=0, help="Number of generated contacts."),
    seed: int = typer.Option(7, "--seed", help="Generator seed (same seed and size, same data)."),
    tier: str = typer.Option(
        "professional", "--tier", help=f"HubSpot rate-limit tier: {', '.join(TIER_LIMITS)}."
    ),
    faults: str | None = typer.Option(
        None, "--faults", help='Fault spec, e.g. "error_rate=0.2,latency_ms=80,drop_rate=0.05,fail=3+7".'
    ),
    out: Path | None = typer.Option(None, "--out", help="Directory for spend.csv and ground_truth.json."),
    no_rate_limits: bool = typer.Option(False, "--no-rate-limits", help="Switch HubSpot rate limits off."),
    api_limit_increase: bool = typer.Option(
        False, "--api-limit-increase", help="The portal has HubSpot's API limit increase (250 per 10 s)."
    ),
    churn: float | None = typer.Option(
        None,
        "--churn",
        min=0.0,
        help="Writes per second of a background writer: creates, updates, archives, purges and merges "
        "contacts and deals, moves deals between stages, also between the pages of reads.",
    ),
    churn_seed: int = typer.Option(1, "--churn-seed", help="Seed of the churn writer's choices."),
    search_lag: float = typer.Option(
        0.0, "--search-lag", min=0.0, help="Seconds before search sees a write (HubSpot's index lags)."
    ),
    no_google_ads: bool = typer.Option(
        False, "--no-google-ads", help="GA4 property without a Google Ads link: ad cost is refused."
    ),
    ga4_unrestricted: bool = typer.Option(
        False, "--ga4-unrestricted", help="GA4 hides nothing: no thresholding, no (other) rows."
    ),
    print_env: bool = typer.Option(
        False,
        "--print-env",
        help="Print (on stdout, nothing else) the `export` lines a shell, a Prefect worker or cron needs "
        "to run the pipeline against this sandbox: token, URLs, property, spend file, warehouse, models.",
    ),
    database: Path | None = typer.Option(
        None, "--database", help="Warehouse for --print-env's ROI_DATABASE (default: <out>/roi.duckdb)."
    ),
) -> None:
    """Serve the sandbox until Ctrl-C (or SIGTERM); prints the base URL, the token and the files written."""
    from sandbox.dataset import Ga4Restrictions
    from sandbox.faults import parse_fault_spec
    from sandbox.server import SandboxServer

    if tier not in TIER_LIMITS:
        raise typer.BadParameter(
            f"unknown tier {tier!r}: use one of {', '.join(TIER_LIMITS)}", param_hint="--tier"
        )
    if faults:
        try:
            parse_fault_spec(faults)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--faults") from None
    if api_limit_increase and tier == "starter":
        raise typer.BadParameter(
            "HubSpot sells the API limit increase for professional and enterprise portals only",
            param_hint="--api-limit-increase",
        )
    typer.echo(f"Generating {contacts:,} contacts (seed {seed})...", err=True)
    server = SandboxServer(
        contacts=contacts,
        seed=seed,
        tier=tier,
        rate_limits=not no_rate_limits,
        faults=faults,
        out_dir=out or Path("sandbox-out"),
        port=port,
        api_limit_increase=api_limit_increase,
        search_lag_seconds=search_lag,
        churn=churn,
        churn_seed=churn_seed,
        ga4_restrictions=replace(
            Ga4Restrictions.off() if ga4_unrestricted else Ga4Restrictions(), ads_linked=not no_google_ads
        ),
    )
    try:
        server.start()
    except OSError as exc:
        typer.echo(
            f"Cannot listen on 127.0.0.1:{port}: {exc}. Pick another --port (0 = any free port).", err=True
        )
        raise typer.Exit(1) from None
    # The token is the sandbox's own (random per run, accepted only by this process), so printing it is fine.
    if print_env:
        _print_exports(server, (database or Path(server.out_dir) / "roi.duckdb").resolve())
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    info = partial(typer.echo, err=print_env)  # with --print-env, stdout carries only the export lines
    info(f"base_url: {server.base_url}")
    info(f"access_token: {server.access_token}")
    info(f"ga4_property_id: {server.ga4_property_id}")
    limits = "off" if no_rate_limits else f"{server.rate_limiter.burst_limit} per 10 s"
    info(f"tier: {tier}  rate_limits: {limits}  faults: {faults or 'none'}")
    info(f"churn: {f'{churn:g} writes/s' if churn else 'off'}  search_lag: {search_lag:g} s")
    if hasattr(server.dataset, "ga4_other_values_per_day"):
        restrictions = server.dataset.ga4_restrictions
        info(
            f"ga4: google_ads {'linked' if restrictions.ads_linked else 'not linked'}  "
            f"threshold {restrictions.threshold_users or 'off'} users  "
            f"(other) after {server.dataset.ga4_other_values_per_day or 'off'} contact ids a day"
        )
    for path in server.written_files:
        info(f"wrote: {path}")
    typer.echo("Ready. Ctrl-C to stop.", err=True)
    try:
        threading.Event().wait()
    except (KeyboardInterrupt, SystemExit):
        typer.echo("Stopping.", err=True)
    finally:
        server.stop()
        if server.churn is not None:
            done = ", ".join(f"{n} {action}" for action, n in sorted(server.churn.counts.items()))
            typer.echo(f"churn wrote: {done or 'nothing'}", err=True)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)  # stops the sandbox cleanly (port released) when a supervisor or a test stops it


def _print_exports(server: object, database: Path) -> None:
    """`export NAME=value` lines for everything that points the pipeline at this sandbox (sandbox_env), then
    the sandbox's own day, which nightly runs must be given: its data stops there."""
    from flows.sandbox_mode import sandbox_env, sandbox_history

    for name, value in sandbox_env(server, database=database).items():
        typer.echo(f"export {name}={shlex.quote(value)}")
    first, last = sandbox_history(server)
    typer.echo(f"# sandbox data: {first} .. {last}; pass today={last + timedelta(days=1)} to nightly runs")
    typer.echo("# end of environment")
