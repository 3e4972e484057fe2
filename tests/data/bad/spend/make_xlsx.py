"""Writes the XLSX cases of the spend corpus (run from this folder: python make_xlsx.py).

XLSX is binary, so its cases are built here from what a person would type into Excel; the .xlsx files it
writes are committed and are the corpus. Cells beyond what Excel itself can hold (a 140,000-character text)
are written by editing the workbook's XML, as another program could.
"""

from __future__ import annotations

import zipfile
from datetime import date, datetime, time
from pathlib import Path

from openpyxl import Workbook

HEADER = ["period_start", "period_end", "source", "medium", "campaign", "amount", "currency"]
GOOD = [date(2026, 1, 1), date(2026, 1, 31), "google", "cpc", "brand_bougies", 1200, "EUR"]
GOOD2 = [date(2026, 2, 1), date(2026, 2, 28), "facebook", "paid_social", "noel_cadeaux", 850.5, "EUR"]
HERE = Path(__file__).resolve().parent


def row(campaign: str, amount: object, **changes: object) -> list[object]:
    values = [date(2026, 3, 1), date(2026, 3, 31), "google", "cpc", campaign, amount, "EUR"]
    cells = dict(zip(HEADER, values, strict=True))
    cells.update(changes)
    return [cells[c] for c in HEADER]


def book(name: str, rows: list[list[object]], *, title: str | None = None, extra_sheets: dict | None = None):
    workbook = Workbook()
    sheet = workbook.active
    if title:
        sheet.title = title
    for cells in rows:
        sheet.append(cells)
    for sheet_name, sheet_rows in (extra_sheets or {}).items():
        other = workbook.create_sheet(sheet_name)
        for cells in sheet_rows:
            other.append(cells)
    workbook.save(HERE / name)


def replace_in_xml(name: str, placeholder: str, text: str) -> None:
    path = HERE / name
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info.filename) for info in source.infolist()}
    parts = {k: v.replace(placeholder.encode(), text.encode()) for k, v in parts.items()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for part, data in parts.items():
            target.writestr(part, data)


def main() -> None:
    book("numeric_1e30.xlsx", [HEADER, GOOD, row("huge", 1e30), GOOD2])
    book("numeric_27_digits.xlsx", [HEADER, GOOD, row("big", 10**26), GOOD2])
    book("float_shown_value.xlsx", [HEADER, row("a", 12.1), row("b", 0.1 + 0.2), row("c", 1234.5)])
    book(
        "date_and_datetime_cells.xlsx",
        [
            HEADER,
            row("a", 10, period_start=datetime(2026, 3, 1, 9, 30), period_end=datetime(2026, 3, 31, 23, 59)),
        ],
    )
    book("formula_without_cached_value.xlsx", [HEADER, GOOD, row("computed", "=F2*2")])
    book("error_cells.xlsx", [HEADER, GOOD, row("a", "#DIV/0!"), row("b", "#REF!"), row("c", "#N/A")])
    book("text_cell_32767_chars.xlsx", [HEADER, GOOD, row("x" * 32_767, 10)])
    book("text_cell_over_128_kib.xlsx", [HEADER, GOOD, row("PLACEHOLDER_CELL", 10), GOOD2])
    replace_in_xml("text_cell_over_128_kib.xlsx", "PLACEHOLDER_CELL", "y" * 140_000)
    book("bool_and_time_amounts.xlsx", [HEADER, GOOD, row("a", True), row("b", time(12, 30))])
    book("negative_and_zero_numbers.xlsx", [HEADER, row("a", -120), row("b", 0)])
    book("numeric_campaign_and_source.xlsx", [HEADER, row(2026, 15, source=42.0)])
    book(
        "named_worksheet.xlsx",
        [["notes"], ["the spend is on the other sheet"]],
        title="Notes",
        extra_sheets={"Dépenses": [HEADER, GOOD, GOOD2]},
    )
    book("title_rows_and_blank_rows.xlsx", [["Budget 2026"], [], HEADER, GOOD, [], [None] * 7, GOOD2])
    book("empty_workbook.xlsx", [])
    book("exact_duplicates.xlsx", [HEADER, GOOD, GOOD, GOOD2])
    book("string_amounts_french.xlsx", [HEADER, row("a", "1 234,50"), row("b", "1,234"), row("c", "12,5 €")])
    (HERE / "csv_renamed_as.xlsx").write_text(",".join(HEADER) + "\n2026-01-01,2026-01-31,g,cpc,c,1,EUR\n")
    (HERE / "truncated_zip.xlsx").write_bytes((HERE / "numeric_1e30.xlsx").read_bytes()[:700])


if __name__ == "__main__":
    main()
