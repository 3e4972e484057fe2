"""Flow tests share ONE Prefect test harness (a temporary server, ~14 s to start) for the whole session."""

from __future__ import annotations

import pytest

import flows  # noqa: F401  (sets the offline Prefect environment before Prefect is imported)


@pytest.fixture(scope="session")
def prefect_harness():
    """Started lazily by the tests that run flows, so pure CLI / YAML tests do not pay for it."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    # Heartbeats cost ~1 s per sync flow run (thread join); tests only, production keeps them.
    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


SANDBOX_CONTACTS = 300  # small: every flow test extracts it in full at least once


@pytest.fixture(scope="session")
def flow_sandbox(prefect_harness, tmp_path_factory):
    """One sandbox for the flow tests, with the environment pointing the connectors at it."""
    from flows.sandbox_mode import sandbox_environment

    root = tmp_path_factory.mktemp("flows")
    with sandbox_environment(
        contacts=SANDBOX_CONTACTS, seed=11, database=root / "nightly.duckdb", out_dir=root / "sandbox"
    ) as sb:
        yield sb


@pytest.fixture(scope="session")
def nightly_run(flow_sandbox):
    """The first nightly run on a fresh warehouse: (final state, database path, publish calls it made)."""
    import os
    from pathlib import Path

    from flows.nightly import nightly
    from flows.sandbox_mode import sandbox_today

    flow_sandbox.request_log.clear()
    state = nightly(today=sandbox_today(flow_sandbox), return_state=True)
    publish_calls = flow_sandbox.request_log.count(
        method="POST", path_prefix="/crm/v3/objects", where=_is_update
    )
    return state, Path(os.environ["ROI_DATABASE"]), publish_calls


def _is_update(entry) -> bool:
    return entry.path.endswith("/batch/update")
