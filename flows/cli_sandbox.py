"""`roi sandbox ...`: run the HubSpot + GA4 stand-ins."""

from __future__ import annotations

import typer

sandbox_app = typer.Typer(help="Run the built-in HubSpot and GA4 API stand-ins on 127.0.0.1.", no_args_is_help=True)
