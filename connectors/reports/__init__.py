"""Marketing outputs of the warehouse: the ROI workbook (.xlsx), CSV exports, the HTML report, run artifacts.

Like publish, this is an output of the pipeline: it reads the marts through one query layer (data.MartReader)
and writes files people open. The CLI, the demo and the flows call the functions below and only print or link
what they return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from connectors.reports import labels
from connectors.reports.csv_file import dialect_for, write_roi_csv
from connectors.reports.data import MartReader, Period, ReportDataError, totals_row
from connectors.reports.formats import amounts_in, check_language, integer, money, ratio, signed_percent

if TYPE_CHECKING:
    from connectors.reports.html import ReportResult

# The HTML report (Altair, Vega) and the workbook writer are imported where they are used: every CLI command
# loads this package for its number formats, and charts alone would add 0.3 s to each.

__all__ = [
    "ExportResult",
    "Period",
    "ReportDataError",
    "export_csv",
    "export_workbook",
    "roi_artifact_rows",
    "write_html_report",
]


@dataclass
class ExportResult:
    path: Path
    model: str
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def export_workbook(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    model: str | None = None,
    period: Period = Period(),
    language: str = "fr",
    publish_model: str | None = None,
) -> ExportResult:
    """The ROI workbook for ``model`` (default: the publish model, else a fallback the marts have)."""
    from connectors.reports.spreadsheet import WorkbookRequest, write_workbook

    language = check_language(language)
    reader = MartReader(con, language)
    chosen = reader.resolve_model(model) if model else reader.resolve_model(publish_model, strict=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with amounts_in(reader.home_currency()):
        counts = write_workbook(
            reader,
            path,
            WorkbookRequest(model=chosen, period=period, language=language, publish_model=publish_model),
        )
    return ExportResult(path, chosen, counts)


def export_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    grain: str,
    model: str | None = None,
    period: Period = Period(),
    language: str = "fr",
    dialect: str | None = None,
    monthly: bool = False,
    publish_model: str | None = None,
) -> ExportResult:
    """One ROI table (channel, source or campaign; per month with ``monthly``) as CSV in ``dialect``."""
    language = check_language(language)
    csv_dialect = dialect_for(dialect, language)
    if grain not in labels.DIMENSIONS:
        raise ValueError(f"--by must be one of {', '.join(labels.DIMENSIONS)}, not {grain!r}")
    reader = MartReader(con, language)
    chosen = reader.resolve_model(model) if model else reader.resolve_model(publish_model, strict=False)
    rows = reader.roi_rows(grain, chosen, period, monthly=monthly)
    keys = [*labels.DIMENSIONS[grain], *(["month"] if monthly else []), *labels.MEASURES]
    if period.all_time and not monthly:
        keys += list(labels.INTERVAL_COLUMNS)
    path.parent.mkdir(parents=True, exist_ok=True)
    with amounts_in(reader.home_currency()):
        count = write_roi_csv(path, rows, keys, language=language, dialect=csv_dialect)
    return ExportResult(path, chosen, {grain: count})


def write_html_report(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    model: str | None = None,
    period: Period = Period(),
    language: str = "fr",
    publish_model: str | None = None,
    notice: str | None = None,
) -> ReportResult:
    """The self-contained HTML report for ``model`` (default: the publish model); ``notice`` is shown at the
    top (e.g. why this run did not publish)."""
    from connectors.reports.html import ReportRequest, write_report

    language = check_language(language)
    reader = MartReader(con, language)
    chosen = reader.resolve_model(model) if model else reader.resolve_model(publish_model, strict=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with amounts_in(reader.home_currency()):
        return write_report(
            reader,
            path,
            ReportRequest(
                model=chosen, period=period, language=language, publish_model=publish_model, notice=notice
            ),
        )


def roi_artifact_rows(
    con: duckdb.DuckDBPyConnection, model: str | None, language: str = "fr"
) -> tuple[str, list[dict[str, Any]]]:
    """(model, rows) of ROI by channel with formatted numbers (12 345,67 € ; +12,5 %) for a run artifact."""
    reader = MartReader(con, check_language(language))
    chosen = reader.resolve_model(model, strict=False)
    rows = reader.roi_rows("channel", chosen)
    with amounts_in(reader.home_currency()):
        return chosen, _artifact_table([*rows, totals_row(rows, language)], language)


def _artifact_table(shown: list[Any], language: str) -> list[dict[str, Any]]:
    header = {key: labels.COLUMNS[key].header(language) for key in labels.COLUMNS}
    table = []
    for row in shown:
        iv = row.interval
        table.append(
            {
                header["channel"]: row.channel_label,
                header["cost"]: money(row.cost, language),
                header["revenue"]: money(row.revenue, language),
                header["gross_margin"]: money(row.gross_margin, language),
                header["roi_on_revenue"]: signed_percent(row.roi_on_revenue, language),
                header["roi_on_margin"]: signed_percent(row.roi_on_margin, language),
                header["roas"]: ratio(row.roas, language),
                header["cost_per_euro_of_revenue"]: money(row.cost_per_euro_of_revenue, language),
                header["leads"]: integer(row.leads, language),
                header["customers"]: integer(row.customers, language),
                header["won_deals"]: integer(row.won_deals_whole, language),
                header["reliability"]: labels.TOO_FEW_DEALS[language] if iv and iv.too_few_deals else "",
            }
        )
    return table
