"""Spend sheet loader: the sandbox's sheet (CSV and XLSX) into a real DuckDB file, bad rows to ops.rejects."""

from __future__ import annotations

import contextlib
import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from connectors import warehouse
from connectors.spend import SpendFileError, SpendValueError, load_spend, parse_amount, parse_month
from sandbox.generator import generate

SEED = 7
CONTACTS = 300
# Which field each of the generator's deliberate defects must be blamed on (keyed by its reason's start).
EXPECTED_FIELD_BY_DEFECT = {
    "negative amount": "amount",
    "unknown currency": "currency",
    "missing campaign": "campaign",
    "unparseable date": "period_start",
    "non-numeric amount": "amount",
}
SPEND_COLUMNS = "period_start, period_end, source, medium, campaign, amount, currency"


@pytest.fixture(scope="module")
def dataset():
    return generate(contacts=CONTACTS, seed=SEED)


@pytest.fixture(scope="module")
def spend_csv(dataset, tmp_path_factory) -> Path:
    return dataset.write_spend_csv(tmp_path_factory.mktemp("sheet") / "spend.csv")


def _spend_rows(db: Path, file_name: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            f"SELECT line, {SPEND_COLUMNS} FROM raw.marketing_spend WHERE file_name = ? ORDER BY line",
            [file_name],
        ).fetchall()
    finally:
        con.close()


def _rejects(db: Path, run_id: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT line, field, value, reason, record_id FROM ops.rejects "
            "WHERE run_id = ? AND source = 'spend_file' ORDER BY line",
            [run_id],
        ).fetchall()
    finally:
        con.close()


def test_sandbox_sheet_loads_good_rows_and_rejects_each_bad_row_with_line_and_reason(
    dataset, spend_csv, tmp_path
):
    db = tmp_path / "wh.duckdb"
    result = load_spend(spend_csv, db, "run-1")

    bad = dataset.ground_truth["spend_file_bad_rows"]
    assert result.rows_read == len(dataset.spend_rows)
    assert result.rows_loaded == len(dataset.spend_rows) - len(bad)
    assert [r.line for r in result.rejects] == [b["line"] for b in bad]

    rejects = _rejects(db, "run-1")
    assert [r[0] for r in rejects] == [b["line"] for b in bad]
    for (line, field, _value, reason, record_id), truth in zip(rejects, bad, strict=True):
        defect = next(k for k in EXPECTED_FIELD_BY_DEFECT if truth["reason"].startswith(k))
        assert field == EXPECTED_FIELD_BY_DEFECT[defect], (line, reason)
        assert reason.startswith(f"Spend file spend.csv line {line}: "), reason
        assert record_id == "spend.csv"
    by_line = {r[0]: r for r in rejects}
    assert "negative" in by_line[bad[0]["line"]][3]
    assert by_line[bad[1]["line"]][2] == "EUX"
    assert by_line[bad[4]["line"]][2] == "douze cents"

    # The loaded money is exact and equals the generator's total of the good rows.
    rows = _spend_rows(db, "spend.csv")
    assert len(rows) == result.rows_loaded
    assert all(isinstance(r[6], Decimal) for r in rows)
    expected_total = sum(Decimal(v) for v in dataset.ground_truth["spend_file_total_by_channel"].values())
    assert sum(r[6] for r in rows) == expected_total
    assert result.total_by_currency == {"EUR": expected_total}
    # Stored as written (staging normalises): the sheet's "Paid Social" medium is kept verbatim.
    assert any(r[4] == "Paid Social" for r in rows)
    assert {r[0] for r in rows}.isdisjoint(b["line"] for b in bad)

    con = duckdb.connect(str(db), read_only=True)
    runs = con.execute("SELECT status, rows FROM ops.sync_runs WHERE run_id = 'run-1'").fetchall()
    con.close()
    assert runs == [("success", result.rows_loaded)]


def test_rerun_replaces_the_files_rows_idempotently(spend_csv, tmp_path):
    db = tmp_path / "wh.duckdb"
    load_spend(spend_csv, db, "run-1")
    first = _spend_rows(db, "spend.csv")

    # Edit the sheet: one amount changes, the last row goes away; the rerun must mirror the file exactly.
    edited = tmp_path / "spend.csv"
    lines = spend_csv.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:-1]
    body[0] = body[0].replace(body[0].split(",")[5], "999.99")
    edited.write_text("\n".join([header, *body]) + "\n", encoding="utf-8")
    load_spend(edited, db, "run-2")
    second = _spend_rows(db, "spend.csv")
    assert len(second) == len(first) - 1
    assert second[0][6] == Decimal("999.99")

    load_spend(spend_csv, db, "run-3")
    load_spend(spend_csv, db, "run-4")
    assert _spend_rows(db, "spend.csv") == first
    assert len(_rejects(db, "run-4")) == len(_rejects(db, "run-1")) == 5


def test_xlsx_version_of_the_sheet_loads_the_same(spend_csv, tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    with spend_csv.open(encoding="utf-8", newline="") as handle:
        for number, cells in enumerate(csv.reader(handle)):
            if number:
                # As a person would type them into Excel: real dates and numbers where they parse.
                for i in (0, 1):
                    with contextlib.suppress(ValueError):
                        cells[i] = date.fromisoformat(cells[i])
                with contextlib.suppress(ValueError):
                    cells[5] = float(cells[5])
            sheet.append(cells)
    xlsx = tmp_path / "spend.xlsx"
    workbook.save(xlsx)

    db = tmp_path / "wh.duckdb"
    csv_result = load_spend(spend_csv, db, "run-csv")
    xlsx_result = load_spend(xlsx, db, "run-xlsx")
    assert xlsx_result.rows_loaded == csv_result.rows_loaded
    assert [r.line for r in xlsx_result.rejects] == [r.line for r in csv_result.rejects]
    assert [r.field for r in xlsx_result.rejects] == [r.field for r in csv_result.rejects]
    assert _spend_rows(db, "spend.xlsx") == _spend_rows(db, "spend.csv")


def test_month_column_semicolons_and_european_amounts(tmp_path):
    sheet = tmp_path / "budget.csv"
    sheet.write_text(
        "Month;UTM Source;UTM Medium;UTM Campaign;Cost;Currency\n"
        "2026-02;linkedin;paid_social;b2b_boutiques;1 234,50;eur\n"
        "\n"
        "03/2026;facebook;paid_social;noel_cadeaux;\u00a0980,5;EUR\n"
        "2026-04;facebook;paid_social;noel_cadeaux;1,234;EUR\n"
        "2026-05;;paid_social;noel_cadeaux;10;EUR\n",
        encoding="utf-8",
    )
    db = tmp_path / "wh.duckdb"
    result = load_spend(sheet, db, "run-1")
    assert result.rows_loaded == 2
    assert [(r.line, r.field) for r in result.rejects] == [(5, "amount"), (6, "source")]
    assert "ambiguous" in result.rejects[0].reason
    rows = _spend_rows(db, "budget.csv")
    assert rows == [
        (
            2,
            date(2026, 2, 1),
            date(2026, 2, 28),
            "linkedin",
            "paid_social",
            "b2b_boutiques",
            Decimal("1234.50"),
            "EUR",
        ),
        (
            4,
            date(2026, 3, 1),
            date(2026, 3, 31),
            "facebook",
            "paid_social",
            "noel_cadeaux",
            Decimal("980.50"),
            "EUR",
        ),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.50", "1234.50"),
        ("1 234,50", "1234.50"),
        ("1,234.50", "1234.50"),
        ("1.234,50", "1234.50"),
        ("1\u202f234\u202f567,8", "1234567.80"),
        ("1,234,567", "1234567.00"),
        ("0", "0.00"),
        ("99,9", "99.90"),
        (12.1, "12.10"),  # an XLSX float cell: the shown value, not 12.0999999...
        (1500, "1500.00"),
    ],
)
def test_amount_rule_accepts(text, expected):
    assert parse_amount(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("-5", "negative"),
        ("1,234", "ambiguous"),
        ("1.234", "ambiguous"),
        ("12.345,6.7", "unclear"),
        ("1,23,4.00", "unclear"),
        ("12.999", "ambiguous"),
        ("12.9999", "decimals"),
        ("abc", "not a number"),
        ("", "empty"),
        ("1e5", "not a number"),
    ],
)
def test_amount_rule_rejects(text, why):
    with pytest.raises(SpendValueError, match=why):
        parse_amount(text)


def test_windows_1252_export_with_a_single_date_column(tmp_path):
    sheet = tmp_path / "dépenses.csv"
    sheet.write_bytes(
        "date;source;medium;campaign;amount;currency\r\n"
        "15/01/2026;salon_maison_objet;offline;salon_maison_objet;3 800,00;EUR\r\n"
        "16/01/2026;bouche à oreille;offline;word_of_mouth;12,5;EUR\r\n".encode("cp1252")
    )
    db = tmp_path / "wh.duckdb"
    result = load_spend(sheet, db, "run-1")
    assert result.rows_loaded == 2 and not result.rejects
    assert [r[1:4] + r[6:] for r in _spend_rows(db, "dépenses.csv")] == [
        (date(2026, 1, 15), date(2026, 1, 15), "salon_maison_objet", Decimal("3800.00"), "EUR"),
        (date(2026, 1, 16), date(2026, 1, 16), "bouche à oreille", Decimal("12.50"), "EUR"),
    ]


def test_month_forms():
    assert parse_month("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert parse_month("12/2025") == (date(2025, 12, 1), date(2025, 12, 31))
    with pytest.raises(SpendValueError):
        parse_month("2024-13")


def test_missing_period_columns_is_a_file_error_and_nothing_is_written(tmp_path):
    sheet = tmp_path / "bad.csv"
    sheet.write_text(
        "when,source,medium,campaign,amount,currency\n2026-01-01,a,b,c,1,EUR\n", encoding="utf-8"
    )
    db = tmp_path / "wh.duckdb"
    with pytest.raises(SpendFileError, match="period_start and period_end"):
        load_spend(sheet, db, "run-1")
    con = warehouse.connect(db)
    assert con.execute("SELECT count(*) FROM raw.marketing_spend").fetchall() == [(0,)]
    con.close()
