"""ROI tables as CSV, in the dialect the reader's spreadsheet expects.

- ``fr`` (default with French headers): `;` separator, decimal comma, UTF-8 with a BOM, CRLF line ends:
  French Excel opens it in columns, accents intact.
- ``plain`` (default with English headers): `,` separator, decimal point, UTF-8 without BOM (RFC 4180).

Numbers are written exactly (Decimal digits, no thousands separator, ratios as fractions: 0,125 = 12,5 %); an
unknown value is an empty field. Outside text starting with = + - @ is neutralised with a leading apostrophe.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.reports import labels
from connectors.reports.data import RoiRow
from connectors.reports.formats import neutralise


@dataclass(frozen=True)
class CsvDialect:
    name: str
    delimiter: str
    decimal_mark: str
    encoding: str  # utf-8-sig writes the BOM


DIALECTS = {
    "fr": CsvDialect("fr", ";", ",", "utf-8-sig"),
    "plain": CsvDialect("plain", ",", ".", "utf-8"),
}


def dialect_for(name: str | None, language: str) -> CsvDialect:
    """The named dialect, or the language's default (fr -> fr, en -> plain); ValueError lists the names."""
    if name is None:
        return DIALECTS["fr" if language == "fr" else "plain"]
    if name not in DIALECTS:
        raise ValueError(f"CSV dialect {name!r} is unknown: use {' or '.join(DIALECTS)}")
    return DIALECTS[name]


def _field(value: Any, kind: str, dialect: CsvDialect) -> str:
    if value is None:
        return ""
    if kind == "month" and isinstance(value, date):
        return value.strftime("%Y-%m")
    if kind in ("dimension", "text"):
        return str(neutralise(str(value)))
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    return text.replace(".", dialect.decimal_mark)


def write_roi_csv(
    path: Path, rows: Sequence[RoiRow], keys: Sequence[str], *, language: str, dialect: CsvDialect
) -> int:
    """Write ``rows`` with the columns ``keys`` (labels.COLUMNS keys); returns the number of data rows."""
    with open(path, "w", newline="", encoding=dialect.encoding) as handle:
        writer = csv.writer(
            handle, delimiter=dialect.delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL
        )
        writer.writerow([labels.COLUMNS[k].header(language) for k in keys])
        for row in rows:
            writer.writerow([_field(row.value(k, language), labels.COLUMNS[k].kind, dialect) for k in keys])
    return len(rows)
