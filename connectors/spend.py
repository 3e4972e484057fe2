"""Marketing-spend sheet (CSV or XLSX) -> raw.marketing_spend, bad rows -> ops.rejects.

The sheet is maintained by hand, so every row is checked on its own: a bad row is rejected with its file, line
and the reason (and how to fix it), and the good rows still load. Spreading a month over its days is the
models' job; this module only stores periods as written.

Accepted layout (header names are case-insensitive; spaces and dashes count as underscores):
- period: `period_start` + `period_end` (both inclusive), or one `date` column (a single day), or one `month`
  column (`2024-03`, `03/2024` or a date inside the month: the whole calendar month);
- `source`, `medium`, `campaign` (`utm_source`, `utm_medium`, `utm_campaign` also accepted), `amount` (or
  `cost`, `spend`), `currency` (ISO 4217 code).

Amount rule (exact Decimal, never float), documented for the people who fill the sheet:
- spaces (normal, no-break, thin) are digit grouping and are dropped: "1 234,50" -> 1234.50;
- when both "," and "." appear, the right-most one is the decimal mark and the other one must group digits by
  three: "1,234.50" and "1.234,50" -> 1234.50;
- when only one kind of mark appears, several of them are grouping ("1,234,567"); a single one is the decimal
  mark when 1 or 2 digits follow it ("1234,5", "99.90"); a single mark followed by exactly three digits
  ("1,234" or "1.234") is ambiguous between the English and French conventions and the row is rejected;
- at most 2 decimals (amounts are stored as DECIMAL(18,2), rounding would not be exact); no negative amounts
  (a refund or credit note belongs in the ad platform's figures, not as negative spend); zero is allowed.
- XLSX numeric cells are read as the number Excel shows (shortest decimal form), then checked the same way.

Dates: ISO `YYYY-MM-DD`, or day-first `DD/MM/YYYY` / `DD.MM.YYYY` (the sheet's home convention is European);
  XLSX date cells are taken as they are.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from calendar import monthrange
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa

from connectors import warehouse

log = logging.getLogger(__name__)

TARGET_TABLE = "raw.marketing_spend"
REJECT_SOURCE = "spend_file"
RUN_KIND = "spend"
AMOUNT_MAX_DECIMALS = 2
AMOUNT_MAX_DIGITS = 18  # DECIMAL(18,2)
# ISO 4217 codes a marketing team is likely to be billed in; every currency that has a rate in the settings
# ([models.fx_rates] or the monthly rates file) is accepted too (`extra_currencies`). Converting is the
# models' job: a known code without a rate is rejected there, with the roi.toml line to add.
KNOWN_CURRENCIES = frozenset(
    {
        *("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "RON", "BGN", "ISK", "TRY"),
        *("CAD", "AUD", "NZD", "JPY", "CNY", "HKD", "SGD", "KRW", "INR", "BRL", "MXN", "ZAR", "AED", "SAR"),
        *("ILS", "MAD", "TND"),
    }
)
# Header aliases -> canonical column names.
HEADER_ALIASES = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "campaign",
    "cost": "amount",
    "spend": "amount",
    "day": "date",
    "start": "period_start",
    "end": "period_end",
    "currency_code": "currency",
}
KEY_FIELDS = ("source", "medium", "campaign")
SPACE_CHARACTERS = " \u00a0\u202f\u2009\t"
CSV_DELIMITERS = ",;\t"


class SpendFileError(ValueError):
    """The file as a whole cannot be read (missing, unknown format, no usable header)."""


class SpendValueError(ValueError):
    """One cell is wrong; the message says what was expected."""


@dataclass(frozen=True)
class SpendReject:
    line: int
    field: str | None
    value: str | None
    reason: str


@dataclass(frozen=True)
class SpendRow:
    line: int
    period_start: date
    period_end: date
    source: str
    medium: str
    campaign: str
    amount: Decimal
    currency: str


@dataclass
class SpendLoadResult:
    file_name: str
    rows_read: int = 0
    rows_loaded: int = 0
    rejects: list[SpendReject] = field(default_factory=list)
    total_by_currency: dict[str, Decimal] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return len(self.rejects)


# --- cell parsing -------------------------------------------------------------------------------------------


def _grouped_by_three(text: str, mark: str) -> bool:
    """'1,234,567' with mark ',' -> True: 1-3 leading digits, then groups of exactly three."""
    return re.fullmatch(r"\d{1,3}(?:" + re.escape(mark) + r"\d{3})+", text) is not None


def parse_amount(value: Any) -> Decimal:
    """One sheet cell -> exact non-negative Decimal with at most 2 decimals (rule in the module docstring)."""
    if value is None or (isinstance(value, str) and not value.strip(SPACE_CHARACTERS)):
        raise SpendValueError("amount is empty; write the amount spent, e.g. 1234.50")
    if isinstance(value, bool):
        raise SpendValueError(f"amount {value!r} is not a number")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))  # what the spreadsheet shows, not the binary float's expansion
    elif isinstance(value, Decimal):
        amount = value
    else:
        amount = _parse_amount_text(str(value))
    if not amount.is_finite():
        raise SpendValueError(f"amount {value!r} is not a number")
    if amount < 0:
        raise SpendValueError(
            f"amount {value!r} is negative; spend must be >= 0 (book refunds in the ad platform)"
        )
    try:
        checked = warehouse.to_decimal(amount, scale=AMOUNT_MAX_DECIMALS, precision=AMOUNT_MAX_DIGITS)
    except warehouse.ConversionError as exc:
        raise SpendValueError(f"amount {value!r}: {exc}; round it to cents") from exc
    assert checked is not None
    return checked


def _parse_amount_text(raw: str) -> Decimal:
    text = raw.strip(SPACE_CHARACTERS)
    for space in SPACE_CHARACTERS:
        text = text.replace(space, "")
    sign = ""
    if text[:1] in "+-":
        sign, text = text[0], text[1:]
    if not text or not re.fullmatch(r"[\d.,]+", text):
        raise SpendValueError(f"amount {raw!r} is not a number; write digits with . or , as decimal mark")
    has_comma, has_dot = "," in text, "." in text
    if has_comma and has_dot:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
        group_mark = "." if decimal_mark == "," else ","
        whole, _, fraction = text.rpartition(decimal_mark)
        if not _grouped_by_three(whole, group_mark) or not fraction.isdigit():
            raise SpendValueError(
                f"amount {raw!r} mixes {group_mark!r} and {decimal_mark!r} in an unclear way; "
                "write e.g. 1234.50"
            )
        digits = whole.replace(group_mark, "") + "." + fraction
    elif has_comma or has_dot:
        mark = "," if has_comma else "."
        parts = text.split(mark)
        if len(parts) > 2:
            if not _grouped_by_three(text, mark):
                raise SpendValueError(
                    f"amount {raw!r} has misplaced {mark!r} separators; write e.g. 1234567.00"
                )
            digits = text.replace(mark, "")
        else:
            whole, fraction = parts
            if not whole.isdigit() or not fraction.isdigit():
                raise SpendValueError(f"amount {raw!r} is not a number; write e.g. 1234.50")
            if len(fraction) == 3:
                raise SpendValueError(
                    f"amount {raw!r} is ambiguous (thousands separator or 3 decimals?); "
                    f"write {whole}{fraction}.00 or {whole}.{fraction}0 without ambiguity"
                )
            digits = whole + "." + fraction
    else:
        digits = text
    try:
        return Decimal(sign + digits)
    except InvalidOperation as exc:  # pragma: no cover - the regexes above only let digits through
        raise SpendValueError(f"amount {raw!r} is not a number") from exc


_ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?")
_DAY_FIRST = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})")
_ISO_MONTH = re.compile(r"(\d{4})-(\d{1,2})")
_MONTH_FIRST = re.compile(r"(\d{1,2})[/.](\d{4})")


def parse_day(value: Any, column: str) -> date:
    """A date cell: datetime/date (XLSX), `YYYY-MM-DD`, `DD/MM/YYYY` or `DD.MM.YYYY`."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = "" if value is None else str(value).strip()
    if not text:
        raise SpendValueError(f"{column} is empty; write a date as YYYY-MM-DD")
    match = _ISO_DAY.fullmatch(text)
    parts = (match.group(1), match.group(2), match.group(3)) if match else None
    if parts is None and (match := _DAY_FIRST.fullmatch(text)):
        parts = (match.group(3), match.group(2), match.group(1))
    if parts is None:
        raise SpendValueError(f"{column} {text!r} is not a date; write YYYY-MM-DD (or DD/MM/YYYY)")
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError as exc:
        raise SpendValueError(f"{column} {text!r} is not a valid calendar date ({exc})") from exc


def parse_month(value: Any) -> tuple[date, date]:
    """A month cell -> (first day, last day): `YYYY-MM`, `MM/YYYY`, or any date inside the month."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str):
        match = _ISO_MONTH.fullmatch(text) or _MONTH_FIRST.fullmatch(text)
        if match:
            year, month = (
                (int(match.group(1)), int(match.group(2)))
                if match.re is _ISO_MONTH
                else (int(match.group(2)), int(match.group(1)))
            )
            if not 1 <= month <= 12:
                raise SpendValueError(f"month {text!r} is not a valid month; write YYYY-MM")
            return date(year, month, 1), date(year, month, monthrange(year, month)[1])
    try:
        day = parse_day(text, "month")
    except SpendValueError as exc:
        raise SpendValueError(f"month {value!r} is not a month; write YYYY-MM") from exc
    return date(day.year, day.month, 1), date(day.year, day.month, monthrange(day.year, day.month)[1])


def parse_currency(value: Any, known: frozenset[str]) -> str:
    text = "" if value is None else str(value).strip().upper()
    if not text:
        raise SpendValueError("currency is empty; write an ISO 4217 code such as EUR")
    if text not in known:
        raise SpendValueError(
            f"currency {value!r} is not a known ISO 4217 code; use e.g. EUR (if {text} is real, add its rate "
            f'as {text} = "<EUR for 1 {text}>" under [models.fx_rates] in roi.toml)'
        )
    return text


# --- reading the sheet --------------------------------------------------------------------------------------


def _canonical_header(name: Any) -> str:
    text = unicodedata.normalize("NFKC", str(name or "")).strip().lower()
    text = re.sub(r"[\s\-]+", "_", text)
    return HEADER_ALIASES.get(text, text)


def _read_csv(path: Path) -> Iterator[tuple[int, list[Any]]]:
    """(line number, cells) per record; line 1 is the header. Separated by , ; or tab.

    UTF-8 (with or without BOM); Excel's "CSV" export on a French Windows is Windows-1252, read as a fallback.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    first_line = text.split("\n", 1)[0]
    try:
        dialect: Any = csv.Sniffer().sniff(first_line, delimiters=CSV_DELIMITERS)
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    start_line = 1
    for cells in reader:
        yield start_line, cells
        start_line = reader.line_num + 1


def _read_xlsx(path: Path, sheet_name: str | None = None) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells) from the named (else the first) worksheet, values as Excel computed them."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet_name is not None and sheet_name not in workbook.sheetnames:
            raise SpendFileError(
                f"Spend file {path.name} has no worksheet {sheet_name!r}; it has {workbook.sheetnames}"
            )
        sheet = workbook[sheet_name] if sheet_name is not None else workbook.worksheets[0]
        for row_number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield row_number, list(cells)
    finally:
        workbook.close()


def read_sheet(path: Path, sheet_name: str | None = None) -> Iterator[tuple[int, list[Any]]]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, sheet_name)
    raise SpendFileError(f"Spend file {path.name}: unknown format {suffix!r}; save it as .csv or .xlsx")


def parse_spend_rows(
    records: Iterable[tuple[int, list[Any]]],
    file_name: str,
    known_currencies: frozenset[str] = KNOWN_CURRENCIES,
) -> tuple[list[SpendRow], list[SpendReject], int]:
    """Validate every record; returns (good rows, rejects, number of non-blank data records)."""
    iterator = iter(records)
    header_line, header_cells = next(iterator, (0, []))
    columns = [_canonical_header(c) for c in header_cells]
    index = {name: position for position, name in reversed(list(enumerate(columns))) if name}
    if "period_start" in index and "period_end" in index:
        period_mode = "range"
    elif "date" in index:
        period_mode = "date"
    elif "month" in index:
        period_mode = "month"
    else:
        raise SpendFileError(
            f"Spend file {file_name}: header (line {header_line or 1}) needs period_start and period_end, "
            f"or a date or month column; found {[c for c in columns if c]}"
        )
    missing = [c for c in (*KEY_FIELDS, "amount", "currency") if c not in index]
    if missing:
        raise SpendFileError(f"Spend file {file_name}: header (line {header_line}) lacks column(s) {missing}")

    rows: list[SpendRow] = []
    rejects: list[SpendReject] = []
    seen = 0
    for line, cells in iterator:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue  # blank lines are layout, not data
        seen += 1

        def cell(name: str, cells: list[Any] = cells) -> Any:
            position = index[name]
            return cells[position] if position < len(cells) else None

        problem_field = None
        try:
            problem_field = "period"
            if period_mode == "range":
                problem_field = "period_start"
                start = parse_day(cell("period_start"), "period_start")
                problem_field = "period_end"
                end = parse_day(cell("period_end"), "period_end")
                if end < start:
                    raise SpendValueError(f"period_end {end} is before period_start {start}; swap them")
            elif period_mode == "date":
                problem_field = "date"
                start = end = parse_day(cell("date"), "date")
            else:
                problem_field = "month"
                start, end = parse_month(cell("month"))
            keys = {}
            for key in KEY_FIELDS:
                problem_field = key
                value = cell(key)
                text = "" if value is None else str(value)
                if not text.strip():
                    raise SpendValueError(
                        f"{key} is empty; every spend row needs source, medium and campaign"
                    )
                keys[key] = text  # as written: the tagging plan normalises case and aliases in staging
            problem_field = "amount"
            amount = parse_amount(cell("amount"))
            problem_field = "currency"
            currency = parse_currency(cell("currency"), known_currencies)
        except SpendValueError as exc:
            raw_value = cell(problem_field) if problem_field in index else None
            rejects.append(
                SpendReject(line, problem_field, None if raw_value is None else str(raw_value), str(exc))
            )
            continue
        rows.append(
            SpendRow(line, start, end, keys["source"], keys["medium"], keys["campaign"], amount, currency)
        )
    return rows, rejects, seen


# --- loading ------------------------------------------------------------------------------------------------

SPEND_ARROW_SCHEMA = pa.schema(
    [
        ("file_name", pa.string()),
        ("line", pa.int32()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("source", pa.string()),
        ("medium", pa.string()),
        ("campaign", pa.string()),
        ("amount", pa.decimal128(18, 2)),
        ("currency", pa.string()),
    ]
)


def _rows_to_arrow(file_name: str, rows: list[SpendRow]) -> pa.Table:
    return pa.table(
        {
            "file_name": [file_name] * len(rows),
            "line": [r.line for r in rows],
            "period_start": [r.period_start for r in rows],
            "period_end": [r.period_end for r in rows],
            "source": [r.source for r in rows],
            "medium": [r.medium for r in rows],
            "campaign": [r.campaign for r in rows],
            "amount": [r.amount for r in rows],
            "currency": [r.currency for r in rows],
        },
        schema=SPEND_ARROW_SCHEMA,
    )


def load_spend(
    path: str | Path,
    db_path: str | Path,
    run_id: str,
    *,
    extra_currencies: Iterable[str] = (),
    sheet: str | None = None,
) -> SpendLoadResult:
    """Load one spend sheet: its previous rows are replaced in one transaction, so a rerun is idempotent.

    The file is identified by its name (not its folder), so moving the sheet keeps its identity. `sheet` names
    the worksheet of an .xlsx file (settings `spend.sheet`; the first one when unset).
    """
    path = Path(path)
    if not path.is_file():
        raise SpendFileError(
            f"Spend file {path} does not exist; set spend_file in roi.toml or ROI_SPEND_FILE"
        )
    file_name = path.name
    known = KNOWN_CURRENCIES | {c.strip().upper() for c in extra_currencies if c and c.strip()}
    rows, rejects, seen = parse_spend_rows(read_sheet(path, sheet), file_name, known)
    for reject in rejects:
        log.warning("Spend file %s line %d rejected: %s", file_name, reject.line, reject.reason)

    result = SpendLoadResult(file_name=file_name, rows_read=seen, rows_loaded=len(rows), rejects=rejects)
    for row in rows:
        result.total_by_currency[row.currency] = (
            result.total_by_currency.get(row.currency, Decimal(0)) + row.amount
        )

    con = warehouse.connect(db_path)
    try:
        run = warehouse.start_run(con, run_id, RUN_KIND, f"{REJECT_SOURCE}:{file_name}")
        try:
            with warehouse.transaction(con):
                run.rows = warehouse.replace_partition(
                    con,
                    TARGET_TABLE,
                    _rows_to_arrow(file_name, rows),
                    "file_name = ?",
                    [file_name],
                    run_id=run_id,
                )
                warehouse.record_rejects(
                    con,
                    run_id,
                    REJECT_SOURCE,
                    [
                        warehouse.Reject(
                            record_id=file_name,
                            field=r.field,
                            value=r.value,
                            reason=f"Spend file {file_name} line {r.line}: {r.reason}",
                            line=r.line,
                        )
                        for r in rejects
                    ],
                )
        except BaseException as exc:
            warehouse.finish_run(con, run, status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        warehouse.finish_run(con, run, status="success")
    finally:
        con.close()
    return result
