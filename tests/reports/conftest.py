"""One warehouse for the report tests, loaded the way a nightly run loads it (without Prefect): the official
HubSpot and GA4 clients read a sandbox over HTTP, the spend sheet is loaded, the models are built. The spend
sheet carries hostile text a person could type into it (formula starters, HTML), so every output is tested
against it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_fixtures import CONTACTS, HOSTILE_SPEND, SEED, ReportWarehouse

from connectors import warehouse
from connectors.config import load_settings
from connectors.ga4 import extract_ga4
from connectors.hubspot import extract_hubspot
from connectors.ratelimit import reset_registry
from connectors.spend import load_spend
from flows.sandbox_mode import SPEND_FILE_NAME, patched_environ, sandbox_env, sandbox_history
from flows.settings import model_params
from flows.tasks import rated_currencies
from models.runner import build
from sandbox.server import SandboxServer


def _spend_with_hostile_rows(original: Path, target: Path) -> Path:
    with open(original, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    template = next(r for r in rows if r.get("currency", "EUR") == "EUR")
    for i, (source, medium, campaign) in enumerate(HOSTILE_SPEND):
        rows.append(
            {**template, "source": source, "medium": medium, "campaign": campaign, "amount": f"{150 + i}.00"}
        )
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


@pytest.fixture(scope="session")
def report_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportWarehouse]:
    root = tmp_path_factory.mktemp("reports")
    database = root / "roi.duckdb"
    run_id = "nightly-reporttest"
    with SandboxServer(contacts=CONTACTS, seed=SEED, rate_limits=False, out_dir=root / "sandbox") as sb:
        env = sandbox_env(sb, database=database)
        env["ROI_SPEND_FILE"] = str(
            _spend_with_hostile_rows(Path(sb.out_dir) / SPEND_FILE_NAME, root / "spend.csv")
        )
        with patched_environ(env):
            reset_registry()
            settings = load_settings(None)
            con = warehouse.connect(database)
            flow_run = warehouse.start_run(con, run_id, "nightly", "(flow)")
            con.close()
            extract_hubspot(settings, database, run_id)
            first_day, last_day = sandbox_history(sb)
            extract_ga4(settings, database, run_id, start=first_day, end=last_day)
            load_spend(
                Path(env["ROI_SPEND_FILE"]), database, run_id, extra_currencies=rated_currencies(settings)
            )
            result = build(database, params=model_params(settings), run_id=run_id)
            assert result.ok, result.summary()
            con = warehouse.connect(database)
            warehouse.finish_run(con, flow_run, status="success")
            con.close()
        yield ReportWarehouse(database, run_id, env)


@pytest.fixture
def report_env(report_warehouse: ReportWarehouse, clean_settings_env: pytest.MonkeyPatch) -> ReportWarehouse:
    """The environment of a configured installation reading the report warehouse (no roi.toml)."""
    for name, value in report_warehouse.env.items():
        clean_settings_env.setenv(name, value)
    return report_warehouse
