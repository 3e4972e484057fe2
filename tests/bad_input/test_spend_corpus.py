"""The spend-sheet corpus (tests/data/bad/spend/cases.toml): every file ends as expected, never in a
traceback, and never costs a row that was already loaded."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from bad_corpus import CORPUS, cases

from connectors import warehouse
from connectors.errors import RoiError
from connectors.spend import SpendFileError, load_spend

FOLDER = CORPUS / "spend"
CASES = cases("spend/cases.toml")
BASELINE = "baseline.csv"


@pytest.fixture(scope="module")
def baseline_db(tmp_path_factory) -> Path:
    """A warehouse holding other spend already (2019): no case may lose any of it."""
    db = tmp_path_factory.mktemp("spend_corpus") / "baseline.duckdb"
    load_spend(FOLDER / BASELINE, db, "baseline")
    return db


SPEND_COLUMNS = "file_name, line, period_start, period_end, source, medium, campaign, amount, currency"


def _rows(con, where: str = "true", params: list | None = None) -> list[tuple]:
    return con.execute(
        f"SELECT {SPEND_COLUMNS} FROM raw.marketing_spend WHERE {where} ORDER BY ALL", params or []
    ).fetchall()


def _one(con, sql: str, params: list | None = None) -> object:
    return con.execute(sql, params or []).fetchall()[0][0]


def test_the_corpus_is_large_enough_and_every_file_is_a_case():
    named = {c["file"] for c in CASES} | {c["preload"] for c in CASES if "preload" in c} | {BASELINE}
    on_disk = {p.name for p in FOLDER.iterdir() if p.suffix not in (".py", ".toml")}
    assert on_disk == named, sorted(on_disk ^ named)
    assert len(CASES) >= 80


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_spend_case(case, baseline_db, tmp_path):
    db = tmp_path / "wh.duckdb"
    shutil.copyfile(baseline_db, db)
    target = tmp_path / case.get("load_as", case["file"])
    if "preload" in case:
        preloaded = tmp_path / "preload" / case.get("preload_as", target.name)
        preloaded.parent.mkdir()
        shutil.copyfile(FOLDER / case["preload"], preloaded)
        load_spend(preloaded, db, "preload")
    shutil.copyfile(FOLDER / case["file"], target)
    with warehouse.connect(db, read_only=True) as con:
        before = _rows(con)
        baseline = _rows(con, "file_name = ?", [BASELINE])

    if "error" in case:
        with pytest.raises(SpendFileError) as raised:
            load_spend(target, db, "case", sheet=case.get("sheet"))
        assert isinstance(raised.value, RoiError) and raised.value.exit_code == case["exit_code"]
        assert case["error"] in str(raised.value), str(raised.value)
        with warehouse.connect(db, read_only=True) as con:
            assert _rows(con) == before  # nothing loaded, nothing replaced
        return

    result = load_spend(target, db, "case", sheet=case.get("sheet"))
    assert result.rows_loaded == case["loaded"], [(r.line, r.reason) for r in result.rejects]
    got = [(r.line, r.field or "", r.reason) for r in result.rejects]
    assert [(line, field) for line, field, _ in got] == [(line, field) for line, field, _ in case["rejects"]]
    for (_, _, reason), (_, _, expected) in zip(got, case["rejects"], strict=True):
        assert expected in reason, reason
        assert len(reason) < 500  # a reason names the cell, it never repeats a huge one
    if "warning" in case:
        assert any(case["warning"] in w for w in result.warnings), result.warnings
    with warehouse.connect(db, read_only=True) as con:
        assert _one(con, "SELECT count(*) FROM ops.rejects WHERE run_id = 'case'") == len(case["rejects"])
        for line, column, expected in case.get("values", []):
            value = _one(
                con,
                f'SELECT CAST("{column}" AS VARCHAR) FROM raw.marketing_spend '
                "WHERE file_name = ? AND line = ?",
                [target.name, line],
            )
            assert value == expected, (line, column)
        if "total" in case:
            total = _one(
                con,
                "SELECT coalesce(sum(amount), 0) FROM raw.marketing_spend WHERE file_name <> ?",
                [BASELINE],
            )
            assert total == Decimal(case["total"])
        # Nothing that was loaded before is lost: the 2019 sheet is outside every case's periods.
        assert _rows(con, "file_name = ?", [BASELINE]) == baseline
