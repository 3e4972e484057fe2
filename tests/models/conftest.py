"""Fixtures for the model tests; the raw-table builders live in raw_fixtures.py (a unique module name, so
test files can import them whatever other conftest.py pytest has loaded first)."""

from __future__ import annotations

from pathlib import Path

import pytest
from raw_fixtures import RawData


@pytest.fixture
def raw_data(tmp_path: Path) -> RawData:
    return RawData(tmp_path / "warehouse.duckdb")
