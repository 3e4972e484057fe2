"""Deployed runs share ONE Prefect server and ONE deployment of prefect.yaml per test session (harness.py).

Workers are started by each test with the environment its runs need (``deployed.workers(2, env=...)``) and
stopped at the end of it, so no test inherits another's worker environment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import Deployment, PrefectServer

import flows  # noqa: F401  (offline Prefect settings before Prefect is imported)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    server = PrefectServer.start(tmp_path_factory.mktemp("prefect-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def deployed(prefect_server: PrefectServer) -> Deployment:
    """prefect.yaml deployed (work pool roi-process) on the session's server; no worker running yet."""
    deployment = Deployment(prefect_server)
    deployment.deploy()
    return deployment
