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
