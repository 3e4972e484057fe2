"""Shared pytest fixtures. Area-specific fixtures live in each tests/<area>/conftest.py.

`sandbox` is ONE sandbox server (HubSpot + GA4 stand-ins over real HTTP on 127.0.0.1) for the whole session,
with rate limits and faults off. Treat its data as read-only: a test that changes records or switches faults
on should start its own `SandboxServer` or restore what it changed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deployed.harness import PrefectServer

from sandbox.server import SandboxServer

SANDBOX_CONTACTS = 2_000
SANDBOX_SEED = 7
# Environment variables the settings read: cleared by `clean_settings_env` so the machine's own never leak in.
SETTINGS_ENV_VARS = (
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_BASE_URL",
    "HUBSPOT_TIER",
    "GA4_PROPERTY_ID",
    "GA4_API_ENDPOINT",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "ROI_DATABASE",
    "ROI_SPEND_FILE",
    "ROI_TAGGING_PLAN",
)


@pytest.fixture
def clean_settings_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """monkeypatch, with none of the settings' environment variables set: each test states what it sets."""
    for name in SETTINGS_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """ONE Prefect server for the whole session (`prefect server start`, SQLite, 15-60 s on 2 shared cores):
    flows run in the test process (tests/flows: `prefect_harness`) and deployed runs (tests/deployed) talk to
    it. Started by the first test that needs it, stopped at the end of the session."""
    server = PrefectServer.start(tmp_path_factory.mktemp("prefect-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(
        contacts=SANDBOX_CONTACTS, seed=SANDBOX_SEED, tier="professional", rate_limits=False
    ) as sb:
        yield sb


def _hubspot_client_for(sb: SandboxServer, **config: object):
    from hubspot import HubSpot

    return HubSpot(access_token=sb.access_token, host=sb.base_url, **config)


@pytest.fixture(scope="session")
def make_hubspot_client():
    """make_hubspot_client(sb, **config): the official HubSpot client pointed at a sandbox server (extra
    config such as retry=Retry(...) passes through to the SDK)."""
    return _hubspot_client_for


@pytest.fixture
def hubspot_client(sandbox: SandboxServer):
    """The official HubSpot client pointed at the session sandbox."""
    return _hubspot_client_for(sandbox)
