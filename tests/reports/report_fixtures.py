"""Constants and types shared by the report tests (a unique module name, so test files can import it whatever
other conftest.py pytest has loaded first)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "out" / "test-screenshots"
CONTACTS = 1_500
SEED = 5
# Spend rows typed by a person: formula starters and markup in the source and campaign columns. (The tagging
# plan's normalisation already defuses some: a leading + is read as a space and trimmed.)
HOSTILE_SPEND = [
    ("=SUM(A1:A9)", "cpc", "printemps"),
    ("partenaire_y", "affiliate", "+cmd|' /C calc'!A0"),
    ("partenaire_y", "affiliate", "@SUM(1+1)"),
    ("partenaire_y", "affiliate", "-2+3"),
    ("partenaire_y", "affiliate", "<img src=x onerror=alert(1)>"),
]
HOSTILE_SOURCE_AS_STORED = "=sum(a1:a9)"
HOSTILE_CAMPAIGNS_AS_STORED = ("@sum(1_1)", "-2_3", "<img_src=x_onerror=alert(1)>")


@dataclass
class ReportWarehouse:
    path: Path
    run_id: str
    env: dict[str, str]

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.path), read_only=True)
