"""Shared pytest fixtures. Area-specific fixtures live in each tests/<area>/conftest.py.

`sandbox` is ONE sandbox server (HubSpot + GA4 stand-ins over real HTTP on 127.0.0.1) for the whole session,
with rate limits and faults off. Treat its data as read-only: a test that changes records or switches faults
on should start its own `SandboxServer` or restore what it changed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.server import SandboxServer

SANDBOX_CONTACTS = 2_000
SANDBOX_SEED = 7


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
