"""Flow tests run against the session's ONE Prefect server (tests/conftest.py: `prefect_server`)."""

from __future__ import annotations

import pytest

import flows  # noqa: F401  (sets the offline Prefect environment before Prefect is imported)


@pytest.fixture(scope="session")
def prefect_harness(prefect_server):
    """Flows called by these tests run against the session's one Prefect server (tests/conftest.py), started
    lazily by the tests that run flows, so pure CLI / YAML tests do not pay for it."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    # The environment too: flows started in other threads do not see this thread's settings context, and
    # without an API URL they would start a throwaway ephemeral server (10-30 s, sometimes not in time).
    # Heartbeats cost ~1 s per sync flow run (thread join); tests only, production keeps them.
    with (
        pytest.MonkeyPatch.context() as environment,
        temporary_settings(
            updates={PREFECT_API_URL: prefect_server.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        ),
    ):
        environment.setenv("PREFECT_API_URL", prefect_server.api_url)
        yield


SANDBOX_CONTACTS = 300  # small: every flow test extracts it in full at least once


@pytest.fixture(scope="session")
def flow_sandbox(prefect_harness, tmp_path_factory):
    """One sandbox for the flow tests. Its settings reach the connectors only through `flow_env`, so nothing
    leaks into other test packages' environment."""
    from flows.sandbox_mode import sandbox_env
    from sandbox.server import SandboxServer

    root = tmp_path_factory.mktemp("flows")
    with SandboxServer(contacts=SANDBOX_CONTACTS, seed=11, out_dir=root / "sandbox") as sb:
        sb.flow_env = sandbox_env(sb, database=root / "nightly.duckdb")
        yield sb


@pytest.fixture
def flow_env(flow_sandbox, monkeypatch):
    """This test's environment points the connectors at the session sandbox and the nightly warehouse."""
    for name, value in flow_sandbox.flow_env.items():
        monkeypatch.setenv(name, value)
    return flow_sandbox.flow_env


@pytest.fixture(scope="session")
def nightly_run(flow_sandbox):
    """The first nightly run on a fresh warehouse: (final state, database path, publish calls it made)."""
    from pathlib import Path

    from flows.nightly import nightly
    from flows.sandbox_mode import patched_environ, sandbox_today

    flow_sandbox.request_log.clear()
    with patched_environ(flow_sandbox.flow_env):
        state = nightly(today=sandbox_today(flow_sandbox), return_state=True)
    publish_calls = flow_sandbox.request_log.count(method="POST", where=_is_update)
    return state, Path(flow_sandbox.flow_env["ROI_DATABASE"]), publish_calls


def _is_update(entry) -> bool:
    return entry.path.endswith("/batch/update")
