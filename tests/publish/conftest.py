"""Publish test fixtures: a warehouse built once by the real pipeline, a fresh sandbox portal per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from publish_helpers import extract_and_build, sandbox_settings, sandbox_today, start_sandbox

from connectors.ratelimit import reset_registry
from sandbox.server import SandboxServer


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse built once by the real pipeline (connectors + models) from a pristine sandbox portal.

    The generator is deterministic in (contacts, seed), so a fresh sandbox started by a test holds the same
    records: tests copy this file and publish into their own portal."""
    db_path = tmp_path_factory.mktemp("publish_golden") / "golden.duckdb"
    reset_registry()
    with start_sandbox() as sb:
        extract_and_build(sandbox_settings(sb, db_path), db_path, "golden-build", sandbox_today(sb))
    return db_path


@pytest.fixture
def portal() -> Iterator[SandboxServer]:
    """A fresh sandbox portal (same generated records as the one the warehouse was built from)."""
    reset_registry()
    with start_sandbox() as sb:
        yield sb
    reset_registry()


@pytest.fixture
def warehouse(built_warehouse: Path, tmp_path: Path) -> Path:
    """This test's own copy of the built warehouse."""
    db_path = tmp_path / "roi.duckdb"
    shutil.copyfile(built_warehouse, db_path)
    return db_path
