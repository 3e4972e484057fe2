"""The `roi` command line: one Typer app, one sub-app per area."""

from __future__ import annotations

import typer

from flows.cli_sandbox import sandbox_app

app = typer.Typer(
    name="roi",
    help="roi-pipeline: what each marketing euro brings back (HubSpot + GA4 + spend -> DuckDB -> CRM).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(sandbox_app, name="sandbox")


if __name__ == "__main__":
    app()
