"""Spend sheet loader: the sandbox's sheet (CSV and XLSX) into a real DuckDB file, bad rows to ops.rejects."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from connectors import warehouse
from connectors.spend import (
    SpendFileError,
    SpendReplacementRefused,
    SpendValueError,
    load_spend,
    parse_amount,
    parse_month,
)
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
    # amounts stay in the sheet's currencies (EUR, USD, GBP, one CHF): converting is the models' job
    bad_lines = {b["line"] for b in bad}
    good = [row for line, row in enumerate(dataset.spend_rows, start=2) if line not in bad_lines]
    by_currency: dict[str, Decimal] = {}
    for row in good:
        by_currency[row.currency] = by_currency.get(row.currency, Decimal(0)) + Decimal(row.amount)
    assert result.total_by_currency == by_currency and set(by_currency) == {"EUR", "USD", "GBP", "CHF"}
    assert sum(r[6] for r in rows) == sum(by_currency.values())
    truth = dataset.ground_truth
    in_eur = sum(
        (Decimal(r.amount) * Decimal(truth["rates_to_eur"][r.currency])).quantize(Decimal("0.01"))
        for r in good
        if r.currency in truth["rates_to_eur"]
    )
    assert in_eur == sum(Decimal(v) for v in truth["spend_file_total_by_channel"].values())
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
    csv_rows = _spend_rows(db, "spend.csv")
    # Switching the configured sheet from spend.csv to spend.xlsx replaces the csv's rows, never adds to them.
    xlsx_result = load_spend(xlsx, db, "run-xlsx")
    assert xlsx_result.rows_loaded == csv_result.rows_loaded
    assert [r.line for r in xlsx_result.rejects] == [r.line for r in csv_result.rejects]
    assert [r.field for r in xlsx_result.rejects] == [r.field for r in csv_result.rejects]
    assert _spend_rows(db, "spend.xlsx") == csv_rows
    assert _spend_rows(db, "spend.csv") == []
    assert xlsx_result.replacement.removed_by_file == {"spend.csv": csv_result.rows_loaded}


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


# --- dialects, cells, encodings (issue 14) -----------------------------------------------------------------

EXPECTED_TWO_ROWS = [
    (date(2026, 1, 15), "salon_maison_objet", 'stand "A12"', Decimal("3800.00")),
    (date(2026, 1, 16), "bouche à oreille", "noël; cadeaux", Decimal("1234.50")),
]
HEADER_FR = ["date", "source", "medium", "campaign", "amount", "currency"]


def _dialect(delimiter: str, decimal_comma: bool, quote_all: bool, newline: str) -> str:
    """Two rows written as a spreadsheet program would: quotes only where needed (or everywhere)."""
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=delimiter,
        quotechar='"',
        doublequote=True,
        lineterminator=newline,
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
    )
    writer.writerow(HEADER_FR)
    for day, source, campaign, amount in EXPECTED_TWO_ROWS:
        shown = (
            f"{amount:,.2f}".replace(",", "\u00a0").replace(".", ",") if decimal_comma else f"{amount:,.2f}"
        )
        writer.writerow([day.strftime("%d/%m/%Y"), source, "offline", campaign, shown, "EUR"])
    return out.getvalue()


DIALECTS = {
    # Excel (French Windows) "CSV (séparateur: point-virgule)": Windows-1252, ';', decimal comma, CRLF.
    "excel_fr_csv_cp1252": (_dialect(";", True, False, "\r\n"), "cp1252"),
    # Excel "CSV UTF-8 (délimité par des virgules)" on a French machine: BOM, still ';'.
    "excel_fr_csv_utf8_bom": (_dialect(";", True, False, "\r\n"), "utf-8-sig"),
    # Google Sheets, French locale, File > Download > CSV: ',', decimal comma quoted, UTF-8, LF.
    "sheets_fr": (_dialect(",", True, False, "\n"), "utf-8"),
    # Google Sheets, English locale: ',' with '1,234.50' quoted.
    "sheets_en": (_dialect(",", False, False, "\n"), "utf-8"),
    # LibreOffice with "quote all text cells".
    "libreoffice_quote_all": (_dialect(";", True, True, "\n"), "utf-8"),
    # Excel "Texte Unicode": UTF-16 LE with BOM, tab separated.
    "excel_unicode_text": (_dialect("\t", True, False, "\r\n"), "utf-16"),
    # Old Mac line ends.
    "classic_mac_cr": (_dialect(";", True, False, "\r"), "utf-8"),
}


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_every_dialect_french_excel_and_google_sheets_write(dialect, tmp_path):
    text, encoding = DIALECTS[dialect]
    sheet = tmp_path / "spend.csv"
    sheet.write_bytes(text.encode(encoding))
    db = tmp_path / "wh.duckdb"
    result = load_spend(sheet, db, "run-1")
    assert result.rejects == [] and result.rows_loaded == 2, result.rejects
    rows = _spend_rows(db, "spend.csv")
    assert [(r[1], r[3], r[5], r[6]) for r in rows] == EXPECTED_TWO_ROWS


def test_a_quoted_value_keeps_its_doubled_quotes_as_one_quote(tmp_path):
    sheet = tmp_path / "spend.csv"
    sheet.write_text(
        'date,source,medium,campaign,amount,currency\n2026-01-01,"say ""hi""",cpc,c,10,EUR\n',
        encoding="utf-8",
    )
    db = tmp_path / "wh.duckdb"
    load_spend(sheet, db, "run-1")
    assert [r[3] for r in _spend_rows(db, "spend.csv")] == ['say "hi"']


def test_a_line_with_an_open_quote_or_an_unquoted_separator_is_one_reject(tmp_path):
    sheet = tmp_path / "spend.csv"
    sheet.write_text(
        "date;source;medium;campaign;amount;currency\n"
        '2026-01-01;"oops;cpc;c;10;EUR\n'
        "2026-01-02;noel; cadeaux;cpc;c;10;EUR\n"
        "2026-01-03;a;cpc;c;10;EUR\n",
        encoding="utf-8",
    )
    db = tmp_path / "wh.duckdb"
    result = load_spend(sheet, db, "run-1")
    assert result.rows_loaded == 1
    assert [r.line for r in result.rejects] == [2, 3]
    assert "quotes do not balance" in result.rejects[0].reason
    assert "7 values but the header has 6" in result.rejects[1].reason


def _xlsx(path: Path, rows: list[list]) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_one_cell_never_sinks_the_sheet(kind, tmp_path):
    header = ["period_start", "period_end", "source", "medium", "campaign", "amount", "currency"]
    good = ["2026-01-01", "2026-01-31", "google", "cpc", "brand", "100.00", "EUR"]
    bad = {
        3: ["2026-01-01", "2026-01-31", "google", "cpc", "big", "1" * 27, "EUR"],
        4: ["2026-01-01", "2026-01-31", "google", "cpc", "huge", 1e30 if kind == "xlsx" else "1e30", "EUR"],
        5: ["2026-01-01", "2026-01-31", "google", "cpc", "x" * 140_000, "5.00", "EUR"],
        6: ["2026-01-01", "2026-01-31", "google", "cpc", "err", "#DIV/0!", "EUR"],
    }
    last = ["2026-02-01", "2026-02-28", "bing", "cpc", "brand", "50.00", "EUR"]
    rows = [header, good, *bad.values(), last]
    if kind == "xlsx":
        sheet = _xlsx(tmp_path / "spend.xlsx", rows)
    else:
        sheet = tmp_path / "spend.csv"
        with sheet.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(rows)
    db = tmp_path / "wh.duckdb"
    result = load_spend(sheet, db, "run-1")
    assert result.rows_loaded == 2
    assert [(r.line, r.field) for r in result.rejects] == [
        (3, "amount"),
        (4, "amount"),
        (5, "campaign"),
        (6, "amount"),
    ]
    reasons = [r.reason for r in result.rejects]
    assert "too large" in reasons[0]
    assert ("too large" if kind == "xlsx" else "not a number") in reasons[1]  # "1e30" as text: no amount
    assert re.search(r"campaign is [\d,]+ characters long \(at most 500\)", reasons[2])
    assert "Excel error #DIV/0!" in reasons[3]
    assert all(len(r) < 400 for r in reasons)  # a reason names the cell, it does not repeat it
    assert sum(r[6] for r in _spend_rows(db, sheet.name)) == Decimal("150.00")


def test_a_sheet_mixing_utf8_and_windows_1252_reads_every_name_right(tmp_path):
    sheet = tmp_path / "spend.csv"
    header = "date;source;medium;campaign;amount;currency\r\n"
    sheet.write_bytes(
        (header + "01/06/2026;été;offline;salon;10;EUR\r\n").encode("utf-8")
        + "02/06/2026;fête des mères;offline;salon;20;EUR\r\n".encode("cp1252")
    )
    db = tmp_path / "wh.duckdb"
    result = load_spend(sheet, db, "run-1")
    assert [r[3] for r in _spend_rows(db, "spend.csv")] == ["été", "fête des mères"]
    assert result.encoding == "UTF-8 and Windows-1252 (mixed)"
    assert any("line(s) 3 were read as Windows-1252" in w for w in result.warnings)


def test_undecodable_bytes_and_control_characters_are_rejected_not_loaded(tmp_path):
    sheet = tmp_path / "spend.csv"
    sheet.write_bytes(
        b"date;source;medium;campaign;amount;currency\n"
        b"01/06/2026;caf\x81;offline;salon;10;EUR\n"  # 0x81: neither UTF-8 nor Windows-1252
        b"02/06/2026;ok;off\x1bline;salon;10;EUR\n"
        b"03/06/2026;ok;offline;salon;10;EUR\n"
    )
    result = load_spend(sheet, tmp_path / "wh.duckdb", "run-1")
    assert [(r.line, r.field) for r in result.rejects] == [(2, "source"), (3, "medium")]
    assert "neither UTF-8 nor Windows-1252" in result.rejects[0].reason
    assert "invisible character U+001B" in result.rejects[1].reason


@pytest.mark.parametrize("text", ["1,234", "1.234", "12.345"])
def test_the_ambiguous_amount_message_suggests_only_a_value_that_is_accepted(text):
    with pytest.raises(SpendValueError, match="ambiguous") as caught:
        parse_amount(text)
    suggested = re.search(r"write (\S+)$", str(caught.value)).group(1)
    assert parse_amount(suggested) == Decimal(text.replace(",", "").replace(".", ""))


def test_currency_signs_are_read_when_they_match_the_row(tmp_path):
    assert parse_amount("1 234,50 €", "EUR") == Decimal("1234.50")
    assert parse_amount("$1,234.50", "USD") == Decimal("1234.50")
    with pytest.raises(SpendValueError, match="written in USD but the row's currency is EUR"):
        parse_amount("$12", "EUR")


def test_dates_compact_read_and_us_order_never_guessed(tmp_path):
    sheet = tmp_path / "spend.csv"
    sheet.write_text(
        "date,source,medium,campaign,amount,currency\n"
        "20261031,a,cpc,c,1,EUR\n"
        "04/13/2026,b,cpc,c,1,EUR\n"  # only reads month-first: this file is US-ordered
        "03/04/2026,c,cpc,c,1,EUR\n"  # so this one could be 3 April or 4 March
        "13/04/2026,d,cpc,c,1,EUR\n",
        encoding="utf-8",
    )
    db = tmp_path / "wh.duckdb"
    result = load_spend(sheet, db, "run-1")
    assert [r[1] for r in _spend_rows(db, "spend.csv")] == [date(2026, 10, 31), date(2026, 4, 13)]
    assert [r.line for r in result.rejects] == [3, 4]
    assert "write 2026-04-13" in result.rejects[0].reason
    assert "ambiguous" in result.rejects[1].reason


def test_exact_duplicate_rows_are_rejected_as_duplicates(tmp_path):
    sheet = tmp_path / "spend.csv"
    sheet.write_text(
        "month,source,medium,campaign,amount,currency\n"
        "2026-03,google,cpc,brand,100,EUR\n"
        "2026-03,google,cpc,brand,100.00,eur\n"  # the same cost, written differently
        "2026-03,google,cpc,brand,120,EUR\n",  # a different amount: a second real cost
        encoding="utf-8",
    )
    db = tmp_path / "wh.duckdb"
    result = load_spend(sheet, db, "run-1")
    assert [(r.line, r.reason[:20]) for r in result.rejects] == [(3, "duplicate of line 2 ")]
    assert sum(r[6] for r in _spend_rows(db, "spend.csv")) == Decimal("220.00")


# --- replacement rules (issue 14) ---------------------------------------------------------------------------


def _spend_total(db: Path) -> Decimal:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT coalesce(sum(amount), 0) FROM raw.marketing_spend").fetchall()[0][0]
    finally:
        con.close()


def test_a_header_only_sheet_is_refused_before_anything_is_replaced(spend_csv, tmp_path):
    db = tmp_path / "wh.duckdb"
    load_spend(spend_csv, db, "run-1")
    total = _spend_total(db)
    empty = tmp_path / "empty" / "spend.csv"
    empty.parent.mkdir()
    empty.write_text(spend_csv.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(SpendReplacementRefused, match=r"has only a header.*--confirm-spend-removal"):
        load_spend(empty, db, "run-2")
    assert _spend_total(db) == total
    con = duckdb.connect(str(db), read_only=True)
    status = con.execute("SELECT status, error FROM ops.sync_runs WHERE run_id = 'run-2'").fetchall()
    con.close()
    assert status[0][0] == "failed" and "SpendReplacementRefused" in status[0][1]
    # Confirmed on purpose, the empty sheet is the truth.
    load_spend(empty, db, "run-3", confirm_removal=True)
    assert _spend_total(db) == 0


def test_a_sheet_that_removes_more_than_the_set_share_is_refused(spend_csv, tmp_path):
    db = tmp_path / "wh.duckdb"
    load_spend(spend_csv, db, "run-1")
    total = _spend_total(db)
    lines = spend_csv.read_text(encoding="utf-8").splitlines()
    truncated = tmp_path / "cut" / "spend.csv"
    truncated.parent.mkdir()
    truncated.write_text("\n".join(lines[:12]) + "\n", encoding="utf-8")  # 11 of 72 rows left
    with pytest.raises(SpendReplacementRefused, match=r"lower the loaded spend by \d+\.\d%"):
        load_spend(truncated, db, "run-2")
    assert _spend_total(db) == total
    # The share is a setting: with a limit of 100 % the same sheet loads.
    load_spend(truncated, db, "run-3", max_removed_share=Decimal(1))
    assert _spend_total(db) < total


def test_renaming_the_sheet_replaces_its_rows_and_keeps_other_periods(tmp_path):
    db = tmp_path / "wh.duckdb"
    header = "month,source,medium,campaign,amount,currency\n"
    old_year = tmp_path / "spend_2025.csv"
    old_year.write_text(header + "2025-11,google,cpc,brand,500,EUR\n2025-12,google,cpc,brand,500,EUR\n")
    load_spend(old_year, db, "run-1")
    first = tmp_path / "spend.csv"
    first.write_text(header + "2026-01,google,cpc,brand,100,EUR\n2026-02,google,cpc,brand,100,EUR\n")
    load_spend(first, db, "run-2")
    assert _spend_total(db) == Decimal("1200.00")
    renamed = tmp_path / "depenses.csv"
    renamed.write_text(header + "2026-01,google,cpc,brand,100,EUR\n2026-02,google,cpc,brand,110,EUR\n")
    result = load_spend(renamed, db, "run-3")
    # The new name covers January-February: spend.csv's rows there are replaced, 2025's sheet stays.
    assert _spend_total(db) == Decimal("1210.00")
    assert result.replacement.removed_by_file == {"spend.csv": 2}
    assert _spend_rows(db, "spend.csv") == [] and len(_spend_rows(db, "spend_2025.csv")) == 2
