"""`--portal` on the commands, `roi portals`, `roi export/report --portal all`, `roi run --portal all`."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import openpyxl
import pytest
from portal_warehouses import MONTHS, portal_warehouse
from typer.testing import CliRunner

from flows.cli import app
from models.group_rollup import PortalSource, build_group

ROWS = [
    {
        "month": MONTHS[0],
        "channel": "email",
        "cost": Decimal("100.00"),
        "revenue": Decimal("250.00"),
        "pipeline": Decimal("0"),
        "leads": 4,
        "customers": 1,
        "won_deals": 1.0,
        "margin_source": "line_items",
        "gross_margin": Decimal("90.00"),
    }
]


@pytest.fixture
def two_portals(empty_portal, tmp_path, clean_settings_env) -> Path:
    """roi.toml with portals acme and beta (their warehouses built), the group roll-up not built yet."""
    for name, factor in (("acme", 1), ("beta", 3)):
        rows = [{**r, "cost": r["cost"] * factor, "revenue": r["revenue"] * factor} for r in ROWS]
        portal_warehouse(empty_portal, tmp_path, name, rows)
    config = tmp_path / "roi.toml"
    config.write_text(
        f'database = "{tmp_path}/roi.duckdb"\n'
        '[portals.acme]\nlabel = "Acme SAS"\ntoken_env = "HUBSPOT_TOKEN_ACME"\n'
        '[portals.beta]\ntoken_secret = "hubspot-token-beta"\nhubspot_tier = "enterprise"\n',
        encoding="utf-8",
    )
    clean_settings_env.chdir(tmp_path)
    return config


def _rows(db: Path, sql: str) -> list[tuple]:
    """Query results only, no open connection left in the caller: the in-process CLI's failure keeps a
    traceback, and with it the calling test's frame, alive until the process ends, and a connection held there
    would outlive DuckDB's module at exit ("nanobind: leaked ...")."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _roi(*args: str):
    return CliRunner().invoke(app, list(args))


def test_several_portals_need_portal_on_every_command_and_a_typo_gets_the_closest(two_portals):
    for command in (["status"], ["export"], ["utm", "audit"], ["check"], ["report"]):
        result = _roi(*command)
        assert result.exit_code == 3, (command, result.output)
        assert "Several portals are configured (acme, beta)" in result.stderr
        assert "--portal NAME" in result.stderr
    typo = _roi("status", "--portal", "acm")
    assert typo.exit_code == 3 and "did you mean 'acme'?" in typo.stderr
    assert _roi("status", "--portal", "all").exit_code == 2  # `roi portals` is for every portal
    ok = _roi("status", "--portal", "beta", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["last_run"]["run_id"] == "nightly-beta"


def test_roi_portals_lists_each_portal_its_token_source_last_run_and_data_age(two_portals):
    result = _roi("portals", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    by_name = {p["portal"]: p for p in document["portals"]}
    assert set(by_name) == {"acme", "beta"}
    assert by_name["acme"]["label"] == "Acme SAS"
    assert by_name["acme"]["token"] == "HUBSPOT_TOKEN_ACME (not set here)"
    assert by_name["beta"]["token"] == "Prefect Secret hubspot-token-beta"
    assert by_name["beta"]["hubspot_tier"] == "enterprise"
    for line in by_name.values():
        assert line["last_run"]["status"] == "success"
        assert 0 <= line["data_age_seconds"] < 600
    assert document["group"]["built_at"] is None  # not built yet
    text = _roi("portals")
    assert text.exit_code == 0
    assert all(len(line) <= 80 for line in text.stdout.splitlines()), text.stdout
    assert "acme (Acme SAS)" in text.stdout and "success" in text.stdout
    assert "Group roll-up: not built yet" in text.stdout


def test_export_and_report_of_all_portals_read_the_group_roll_up(two_portals, tmp_path):
    missing = _roi("export", "--portal", "all")
    assert missing.exit_code == 3 and "No group roll-up" in missing.stderr
    build_group(
        tmp_path / "group.duckdb",
        [
            PortalSource("acme", tmp_path / "acme.duckdb", "Acme SAS"),
            PortalSource("beta", tmp_path / "beta.duckdb"),
        ],
    )
    result = _roi("export", "--portal", "all", "--model", "linear", "--output", str(tmp_path / "group.xlsx"))
    assert result.exit_code == 0, result.output
    workbook = openpyxl.load_workbook(tmp_path / "group.xlsx")
    assert workbook.sheetnames[:3] == ["Par portail", "Par portail et canal", "Par canal"]
    portals = [[c.value for c in row][:3] for row in workbook["Par portail"].iter_rows(min_row=2, max_row=3)]
    assert sorted(portals) == [["Acme SAS", 100, 250], ["beta", 300, 750]]
    channel = [c.value for c in workbook["Par canal"][2]][:3]
    assert channel[1:] == [400, 1000]  # the group: the sum of the portals
    report = _roi("report", "--portal", "all", "--model", "linear", "--output", str(tmp_path / "group.html"))
    assert report.exit_code == 0, report.output
    html = (tmp_path / "group.html").read_text(encoding="utf-8")
    assert 'data-portal="acme"' in html and 'data-portal="beta"' in html and "Acme SAS" in html
    text = _roi("portals")
    assert "Group roll-up (EUR), built" in text.stdout and "acme, beta" in text.stdout


def test_run_all_portals_needs_portals(tmp_path, clean_settings_env):
    config = tmp_path / "roi.toml"
    config.write_text(f'database = "{tmp_path}/roi.duckdb"\n', encoding="utf-8")
    result = _roi("run", "--portal", "all", "--config", str(config))
    assert result.exit_code == 2 and "--portal all needs [portals]" in result.stderr


def test_run_all_portals_in_this_process_runs_each_then_the_group(
    prefect_server, tmp_path, clean_settings_env
):
    """Without workers (`roi run --portal all`): the portals one after another, a failing one reported, the
    others run, and the roll-up built from the ones that succeeded."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.sandbox_mode import sandbox_portal_section, sandbox_today
    from sandbox.server import SandboxServer

    with (
        SandboxServer(contacts=60, seed=21, out_dir=tmp_path / "a", rate_limits=False) as ok,
        SandboxServer(
            contacts=40, seed=22, out_dir=tmp_path / "b", faults="error_rate=1.0,statuses=403"
        ) as down,
        temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}),
    ):
        clean_settings_env.setenv("PREFECT_API_URL", prefect_server.api_url)
        clean_settings_env.setenv("HUBSPOT_TOKEN_SHOP", ok.access_token)
        clean_settings_env.setenv("HUBSPOT_TOKEN_DOWN", down.access_token)
        config = tmp_path / "roi.toml"
        config.write_text(
            f'database = "{tmp_path}/roi.duckdb"\n'
            + sandbox_portal_section("shop", ok, database=tmp_path / "shop.duckdb")
            + sandbox_portal_section("down", down, database=tmp_path / "down.duckdb"),
            encoding="utf-8",
        )
        today: date = sandbox_today(ok)
        result = _roi(
            "run", "--portal", "all", "--config", str(config), "--today", today.isoformat(), "--no-publish"
        )
    assert result.exit_code == 1, result.output
    assert "1 of 2 portal(s) completed" in result.stdout
    assert "error: 1 of 2 portal(s) failed, 1 completed; down: Failed" in result.stderr
    assert "403" in result.stderr
    group = tmp_path / "group.duckdb"
    assert dict(_rows(group, "select portal, included from group_portals")) == {"shop": True, "down": False}
    assert _rows(group, "select count(*) from roi_by_portal_channel where portal = 'shop'")[0][0] > 0
