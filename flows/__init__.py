"""Prefect flows, their tasks and the `roi` CLI: wiring only, no business logic."""

from __future__ import annotations

import os

# Set before anything imports Prefect: no telemetry calls (the pipeline often runs offline), a patient start
# for the ephemeral Prefect server on small machines (a cold start takes ~14 s on 2 cores; Prefect's default
# timeout is 20 s), and only Prefect's warnings on the console (our own summaries say what happened).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
