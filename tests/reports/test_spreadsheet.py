"""`roi export` read back as a manager's tools read it: openpyxl (formulas and cached values, formats,
filters), pandas, and Python's csv module in the French dialect. Every figure is checked against the marts."""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from report_fixtures import HOSTILE_CAMPAIGNS_AS_STORED, HOSTILE_SOURCE_AS_STORED
from typer.testing import CliRunner

from flows.cli import app

MODEL = "markov"
SHEETS_FR = [
    "Par canal",
    "Par source",
    "Par campagne",
    "Par canal et mois",
    "Par source et mois",
    "Par campagne et mois",
    "Comparaison des modèles",
    "Lisez-moi",
]
HEADERS_FR = [
    "Canal",
    "Investissement (€)",
    "CA (€)",
    "Marge brute (€)",
    "Source de la marge",
    "ROI sur CA",
    "ROI sur marge",
    "CA / Investissement",
    "Coût pour 1 € de CA",
    "Leads",
    "Coût par lead",
    "Clients",
    "Coût d'acquisition client",
    "Affaires gagnées",
    "ROI sur CA bas",
    "ROI sur CA haut",
    "ROI sur marge bas",
    "ROI sur marge haut",
    "Fiabilité",
]


def _export(tmp_path: Path, *args: str) -> Path:
    output = tmp_path / ("roi.csv" if "csv" in args else "roi.xlsx")
    outcome = CliRunner().invoke(app, ["export", "--output", str(output), *args])
    assert outcome.exit_code == 0, outcome.output
    return output


def _number(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _mart(con, table: str, columns: str, where: str = "month is null", params: list | None = None) -> list:
    return con.execute(
        f"select {columns} from {table} where attribution_model = ? and {where}", [MODEL, *(params or [])]
    ).fetchall()


@pytest.fixture(scope="module")
def workbook_files(report_warehouse, tmp_path_factory):
    """The French workbook, written once by `roi export` for the module (formulas and cached values)."""
    from _pytest.monkeypatch import MonkeyPatch

    patch = MonkeyPatch()
    for name, value in report_warehouse.env.items():
        patch.setenv(name, value)
    try:
        path = _export(tmp_path_factory.mktemp("xlsx"), "--model", MODEL)
    finally:
        patch.undo()
    return path, load_workbook(path), load_workbook(path, data_only=True)


def test_sheets_headers_formats_filters_and_frozen_header(workbook_files):
    _, formulas, _ = workbook_files
    assert formulas.sheetnames == SHEETS_FR
    sheet = formulas["Par canal"]
    assert [c.value for c in sheet[1]] == HEADERS_FR
    assert sheet.freeze_panes == "B2"
    assert sheet.auto_filter.ref == f"A1:S{sheet.max_row - 1}"  # the data rows; the total line stays outside
    row = 2
    formats = {header: sheet.cell(row=row, column=i + 1).number_format for i, header in enumerate(HEADERS_FR)}
    assert "€" in formats["Investissement (€)"] and "#,##0.00" in formats["CA (€)"]
    assert formats["ROI sur CA"].startswith("0.0%") and formats["ROI sur CA bas"].startswith("0.0%")
    assert formats["Leads"] == "#,##0" and formats["Affaires gagnées"] == "#,##0"
    assert formats["CA / Investissement"] == "0.00"
    month_sheet = formulas["Par campagne et mois"]
    assert [c.value for c in month_sheet[1]][:5] == ["Canal", "Source", "Support", "Campagne", "Mois"]
    assert month_sheet.freeze_panes == "F2"
    assert month_sheet.cell(row=2, column=5).number_format == "mmmm yyyy"
    assert isinstance(month_sheet.cell(row=2, column=5).value, datetime)


def test_roi_cells_are_formulas_with_cached_values_equal_to_the_marts(workbook_files, report_warehouse):
    _, formulas, values = workbook_files
    con = report_warehouse.connect()
    labels = dict(
        con.execute("select channel, label from cfg_tagging_channel_labels where language = 'fr'").fetchall()
    )
    mart = {
        labels[r[0]]: r[1:]
        for r in _mart(
            con,
            "roi_by_channel",
            "channel, cost, revenue, gross_margin, roi_on_revenue, roi_on_margin, roas, "
            "cost_per_euro_of_revenue, leads, cost_per_lead, customers, cac",
        )
    }
    con.close()
    sheet, cached = formulas["Par canal"], values["Par canal"]
    header = [c.value for c in sheet[1]]
    col = {h: i for i, h in enumerate(header)}
    seen = {}
    for r in range(2, sheet.max_row):  # the last row is the total
        label = cached.cell(row=r, column=1).value
        formula = sheet.cell(row=r, column=col["ROI sur CA"] + 1).value
        # a formula over this row's Investissement (B) and CA (C) cells
        assert formula == f'=IF(N(B{r})=0,"",(C{r}-B{r})/B{r})', formula
        assert sheet.cell(row=r, column=col["ROI sur marge"] + 1).value.startswith("=IF(OR(N(B")
        seen[label] = tuple(
            _number(cached.cell(row=r, column=col[h] + 1).value)
            for h in (
                "Investissement (€)",
                "CA (€)",
                "Marge brute (€)",
                "ROI sur CA",
                "ROI sur marge",
                "CA / Investissement",
                "Coût pour 1 € de CA",
                "Leads",
                "Coût par lead",
                "Clients",
                "Coût d'acquisition client",
            )
        )
    assert seen == {k: tuple(None if v is None else Decimal(v) for v in row) for k, row in mart.items()}
    assert any(v[3] is not None for v in seen.values()) and any(v[3] is None for v in seen.values())


def test_totals_use_subtotal_and_equal_the_marts(workbook_files, report_warehouse):
    _, formulas, values = workbook_files
    con = report_warehouse.connect()
    cost, revenue, leads, won = _mart(
        con, "roi_by_channel", "sum(cost), sum(revenue), sum(leads), sum(won_deals)"
    )[0]
    con.close()
    sheet, cached = formulas["Par canal"], values["Par canal"]
    last = sheet.max_row
    col = {c.value: c.column for c in sheet[1]}
    assert cached.cell(row=last, column=1).value == "Total"
    assert sheet.cell(row=last, column=2).value == f"=SUBTOTAL(109,B2:B{last - 1})"
    assert _number(cached.cell(row=last, column=col["Investissement (€)"]).value) == cost
    assert _number(cached.cell(row=last, column=col["CA (€)"]).value) == revenue
    assert cached.cell(row=last, column=col["Leads"]).value == leads
    assert _number(cached.cell(row=last, column=col["ROI sur CA"]).value) == (
        (revenue - cost) / cost
    ).quantize(Decimal("0.000001"))
    # whole won deals that add up to the real number of won deals
    column = [cached.cell(row=r, column=col["Affaires gagnées"]).value for r in range(2, last)]
    assert all(isinstance(v, int) for v in column)
    assert sum(column) == cached.cell(row=last, column=col["Affaires gagnées"]).value == round(won)


def test_months_and_model_comparison_equal_the_marts(workbook_files, report_warehouse):
    _, formulas, values = workbook_files
    con = report_warehouse.connect()
    monthly = {
        (r[0], r[1].strftime("%Y-%m")): _number(r[2])
        for r in _mart(
            con, "roi_by_campaign", "campaign, month, roi_on_revenue", "month is not null and cost > 0"
        )
    }
    by_model = dict(
        con.execute(
            "select attribution_model, sum(revenue) from roi_by_channel where month is null group by 1"
        ).fetchall()
    )
    con.close()
    sheet = values["Par campagne et mois"]
    header = [c.value for c in sheet[1]]
    shown = {
        (row[header.index("Campagne")], row[header.index("Mois")].strftime("%Y-%m")): _number(
            row[header.index("ROI sur CA")]
        )
        for row in sheet.iter_rows(min_row=2, max_row=sheet.max_row - 1, values_only=True)
        if row[header.index("Investissement (€)")]
    }
    assert shown == monthly and len(shown) > 20
    comparison = values["Comparaison des modèles"]
    header = [c.value for c in comparison[1]]
    totals = [c.value for c in comparison[comparison.max_row]]
    assert len([h for h in header if h.startswith("ROI sur CA - ")]) == 11
    assert _number(totals[header.index("CA (€) - Markov (basé sur les données)")]) == by_model["markov"]
    assert _number(totals[header.index("CA (€) - Premier contact")]) == by_model["first_touch"]
    roi_formula = formulas["Comparaison des modèles"].cell(
        row=2, column=header.index("ROI sur CA - Linéaire") + 1
    )
    assert roi_formula.value.startswith("=IF(OR(N(B2)=0")


def test_intervals_and_reliability_columns_come_from_the_intervals_mart(workbook_files, report_warehouse):
    _, _, values = workbook_files
    con = report_warehouse.connect()
    labels = dict(
        con.execute("select channel, label from cfg_tagging_channel_labels where language = 'fr'").fetchall()
    )
    intervals = {
        labels[r[0]]: r[1:]
        for r in con.execute(
            "select channel, roi_on_revenue_low, roi_on_revenue_high, too_few_deals from roi_intervals "
            "where attribution_model = ? and grain = 'channel'",
            [MODEL],
        ).fetchall()
    }
    con.close()
    sheet = values["Par canal"]
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2, max_row=sheet.max_row - 1, values_only=True):
        low, high, too_few = intervals[row[0]]
        assert (
            _number(row[header.index("ROI sur CA bas")]),
            _number(row[header.index("ROI sur CA haut")]),
        ) == (
            low,
            high,
        )
        assert (row[header.index("Fiabilité")] == "trop peu d'affaires") is too_few
        if low is not None:
            assert low <= _number(row[header.index("ROI sur CA haut")])


def test_lisez_moi_explains_columns_model_margin_and_dates(workbook_files, report_warehouse):
    _, _, values = workbook_files
    con = report_warehouse.connect()
    as_of = con.execute("select value from cfg_params where name = 'as_of'").fetchall()[0][0]
    con.close()
    text = "\n".join(
        " ".join(str(c) for c in row if c is not None)
        for row in values["Lisez-moi"].iter_rows(values_only=True)
    )
    for expected in (
        f"Données au {as_of[8:10]}/{as_of[5:7]}/{as_of[:4]}",
        "Dernière exécution nightly-reporttest",
        "Markov (basé sur les données) (markov)",
        "Source de la marge",
        "(4 500 - 4 000) / 4 000 = 12,5 %",
        "Coût pour 1 € de CA Investissement / CA",
        "ROI bas / ROI haut Intervalle bootstrap à 95",
        "Affaires gagnées",
    ):
        assert expected in text, expected


def test_pandas_reads_the_numbers(workbook_files, report_warehouse):
    path, _, _ = workbook_files
    frames = pd.read_excel(path, sheet_name=None)
    assert list(frames) == SHEETS_FR
    channels = frames["Par canal"]
    body = channels[channels["Canal"] != "Total"]
    con = report_warehouse.connect()
    revenue, rows = _mart(con, "roi_by_channel", "sum(revenue), count(*)")[0]
    con.close()
    assert len(body) == rows
    assert Decimal(str(round(body["CA (€)"].sum(), 2))) == revenue
    assert body["ROI sur CA"].notna().sum() > 2  # cached values, not empty formula cells


def test_hostile_text_is_never_a_formula(workbook_files):
    _, formulas, _ = workbook_files
    sheet = formulas["Par campagne"]
    cells = {c.value: c for row in sheet.iter_rows(min_row=2) for c in row[:4] if isinstance(c.value, str)}
    for text in (*HOSTILE_CAMPAIGNS_AS_STORED[:2], HOSTILE_SOURCE_AS_STORED):
        cell = cells[text]
        assert cell.data_type == "s" and cell.quotePrefix, text
    assert cells[HOSTILE_CAMPAIGNS_AS_STORED[2]].data_type == "s"
    for ws in formulas.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.data_type == "f":
                    assert c.value.startswith(("=IF(", "=SUBTOTAL(")), (ws.title, c.coordinate, c.value)


def test_english_and_one_month(report_env, tmp_path, report_warehouse):
    path = _export(tmp_path, "--lang", "en", "--month", "2026-03", "--model", MODEL)
    book = load_workbook(path, data_only=True)
    assert (
        book.sheetnames[:3] == ["By channel", "By source", "By campaign"] and book.sheetnames[-1] == "Read me"
    )
    sheet = book["By channel"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["Channel", "Investment (€)", "Revenue (€)"] and "ROI on revenue low" not in header
    con = report_warehouse.connect()
    cost, revenue = _mart(con, "roi_by_channel", "sum(cost), sum(revenue)", "month = date '2026-03-01'")[0]
    con.close()
    total = [c.value for c in sheet[sheet.max_row]]
    assert total[0] == "Total" and (_number(total[1]), _number(total[2])) == (cost, revenue)
    monthly = book["By channel and month"]
    month_column = [c.value for c in monthly[1]].index("Month")
    months = {
        row[month_column]
        for row in monthly.iter_rows(min_row=2, max_row=monthly.max_row - 1, values_only=True)
    }
    assert months == {datetime(2026, 3, 1)}


def test_french_csv_opens_in_columns_and_reads_back_exactly(report_env, tmp_path, report_warehouse):
    path = _export(tmp_path, "--format", "csv", "--by", "campaign", "--model", MODEL)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    header, body = rows[0], rows[1:]
    assert header[:5] == ["Canal", "Source", "Support", "Campagne", "Investissement (€)"]
    con = report_warehouse.connect()
    expected = {
        (r[0], r[1], r[2]): (r[3], r[4])
        for r in _mart(
            con,
            "roi_by_campaign",
            "coalesce(campaign, ''), coalesce(source, ''), coalesce(medium, ''), cost, roi_on_revenue",
        )
    }
    con.close()

    def french(text: str) -> Decimal | None:
        return Decimal(text.replace(",", ".")) if text else None

    campaign, source, medium = header.index("Campagne"), header.index("Source"), header.index("Support")
    shown = {}
    for row in body:
        key = tuple(row[i].removeprefix("'") for i in (campaign, source, medium))
        shown[key] = (
            french(row[header.index("Investissement (€)")]),
            french(row[header.index("ROI sur CA")]),
        )
    assert shown == expected
    by_campaign = {row[campaign]: row for row in body}
    assert "'@sum(1_1)" in by_campaign and "'-2_3" in by_campaign  # neutralised formula starters
    assert any(row[source] == "'" + HOSTILE_SOURCE_AS_STORED for row in body)
    assert "<img_src=x_onerror=alert(1)>" in by_campaign  # not a formula starter: unchanged


def test_plain_csv_dialect(report_env, tmp_path):
    for args in (("--lang", "en"), ("--csv-dialect", "plain")):
        path = _export(tmp_path, "--format", "csv", *args)
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert len(rows[0]) > 10 and all(len(r) == len(rows[0]) for r in rows)
        numbers = [cell for row in rows[1:] for cell in row[1:3] if cell]
        assert numbers and all("," not in n for n in numbers)
        Decimal(numbers[0])


def test_bad_period_and_dialect_are_usage_errors(report_env, tmp_path):
    runner = CliRunner()
    for args, text in (
        (["--month", "2026-13"], "is not a month"),
        (["--from", "2026-05", "--to", "2026-01"], "is after --to"),
        (["--month", "2026-01", "--from", "2026-01"], "not both"),
        (["--format", "csv", "--csv-dialect", "excel"], "csv-dialect excel is unknown"),
    ):
        outcome = runner.invoke(app, ["export", "--output", str(tmp_path / "x.xlsx"), *args])
        assert outcome.exit_code == 2, (args, outcome.output)
        assert text in outcome.output, outcome.output
