"""`roi sandbox ...`: run the HubSpot + GA4 stand-ins."""

from __future__ import annotations

import threading
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
) -> None:
    """Serve the sandbox until Ctrl-C; prints the base URL, the token and the files written."""
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
    typer.echo(f"Generating {contacts:,} contacts (seed {seed})...", err=True)
    server = SandboxServer(
        contacts=contacts,
        seed=seed,
        tier=tier,
        rate_limits=not no_rate_limits,
        faults=faults,
        out_dir=out or Path("sandbox-out"),
        port=port,
    )
    try:
        server.start()
    except OSError as exc:
        typer.echo(
            f"Cannot listen on 127.0.0.1:{port}: {exc}. Pick another --port (0 = any free port).", err=True
        )
        raise typer.Exit(1) from None
    # The token is the sandbox's own (random per run, accepted only by this process), so printing it is fine.
    typer.echo(f"base_url: {server.base_url}")
    typer.echo(f"access_token: {server.access_token}")
    typer.echo(f"ga4_property_id: {server.ga4_property_id}")
    typer.echo(f"tier: {tier}  rate_limits: {'off' if no_rate_limits else 'on'}  faults: {faults or 'none'}")
    for path in server.written_files:
        typer.echo(f"wrote: {path}")
    typer.echo("Ready. Ctrl-C to stop.", err=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        typer.echo("Stopping.", err=True)
    finally:
        server.stop()
