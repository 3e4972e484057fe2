"""Deployed runs share the session's ONE Prefect server (tests/conftest.py) and ONE deployment of the
repository's prefect.yaml.

Workers are started by each test with the environment its runs need (``deployed.workers(2, env=...)``) and
stopped at the end of it, so no test inherits another's worker environment.
"""

from __future__ import annotations

import pytest
from deployed.harness import Deployment, PrefectServer

import flows  # noqa: F401  (offline Prefect settings before Prefect is imported)


@pytest.fixture(scope="session")
def deployed(prefect_server: PrefectServer) -> Deployment:
    """prefect.yaml deployed (work pool roi-process) on the session's server; no worker running yet."""
    deployment = Deployment(prefect_server)
    deployment.deploy()
    return deployment
