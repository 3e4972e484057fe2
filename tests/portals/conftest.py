"""Fixtures of the portals tests: one empty portal warehouse per session, copied by each test."""

from __future__ import annotations

from pathlib import Path

import pytest
from portal_warehouses import empty_portal_warehouse


@pytest.fixture(scope="session")
def empty_portal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return empty_portal_warehouse(tmp_path_factory.mktemp("portal") / "empty.duckdb")
