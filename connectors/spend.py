"""Marketing-spend sheet (CSV or XLSX) -> raw.marketing_spend, bad rows -> ops.rejects.

The sheet is maintained by hand, so every row is checked on its own: a bad row is rejected with its file, line
and the reason (and how to fix it), and the good rows still load. Spreading a month over its days is the
models' job; this module only stores periods as written.

Accepted layout (header names are case-insensitive; spaces and dashes count as underscores):
- period: `period_start` + `period_end` (both inclusive), or one `date` column (a single day), or one `month`
  column (`2024-03`, `03/2024` or a date inside the month: the whole calendar month);
- `source`, `medium`, `campaign` (`utm_source`, `utm_medium`, `utm_campaign` also accepted), `amount` (or
  `cost`, `spend`), `currency` (ISO 4217 code). Other columns (notes, owner) are ignored. The header is the
  first row naming a period column and `amount` (title rows above it are skipped, with a warning); a column
  named twice is a file error.

CSV as French Excel and Google Sheets write it: separator `,` `;` tab or `|`, detected from the header and the
first rows (the separator under which the header names the expected columns and the rows have the header's
width); values quoted with `"`, a quote inside a quoted value doubled (`""`); UTF-8 with or without BOM,
UTF-16 with BOM (Excel's "Unicode text"), Windows-1252 (Excel's "CSV" on a French Windows), and files mixing
UTF-8 and Windows-1252 lines (read line by line, each as what it is, with a warning naming the lines). Each
line is one row, except that a quoted value may hold line breaks (a note typed with Alt+Enter in Excel or
Ctrl+Enter in Google Sheets): its row ends with the line that closes the quote, within
`MAX_LINES_PER_ROW` lines, and keeps the number of its first line. A quote left open that long, or more
values than the header has columns (an unquoted separator inside a value), rejects that line with the reason,
never the lines after it.

Cells: a source, medium or campaign longer than `MAX_TEXT_CELL_CHARS`, holding control or invisible
(zero-width) characters or bytes that are neither UTF-8 nor Windows-1252 (shown as U+FFFD) is rejected; one
cell never stops the file.

Amount rule (exact Decimal, never float), documented for the people who fill the sheet:
- spaces (normal, no-break, thin) are digit grouping and are dropped: "1 234,50" -> 1234.50;
- a currency sign (€, $, £) or code before or after the number is allowed when it matches the row's currency:
  "1 234,50 €" with EUR -> 1234.50; it is a reject when it does not;
- when both "," and "." appear, the right-most one is the decimal mark and the other one must group digits by
  three: "1,234.50" and "1.234,50" -> 1234.50;
- when only one kind of mark appears, several of them are grouping ("1,234,567"); a single one is the decimal
  mark when 1 or 2 digits follow it ("1234,5", "99.90"); a single mark followed by exactly three digits
  ("1,234" or "1.234") is ambiguous between the English and French conventions and the row is rejected;
- at most 2 decimals (amounts are stored as DECIMAL(18,2), rounding would not be exact), at most 16 digits
  before the decimal mark; no negative amounts (a refund or credit note belongs in the ad platform's figures,
  not as negative spend); zero is allowed. `1_000`, `1e5` and digits of other scripts are not amounts.
- XLSX numeric cells are read as the number Excel shows (shortest decimal form), then checked the same way; a
  cell showing an Excel error (`#VALUE!`, `#N/A`) is rejected naming the error.

Dates: ISO `YYYY-MM-DD`, compact `YYYYMMDD`, or day-first `DD/MM/YYYY` / `DD.MM.YYYY` (the sheet's home
convention is European); XLSX date cells are taken as they are. When a file holds a date that only reads
month-first (`04/13/2026`), its other slash dates are ambiguous too (`03/04/2026`: 3 April or 4 March?) and
are rejected rather than guessed: write ISO dates.

Duplicates: a row equal to an earlier row of the same file on every stored value (period, source, medium,
campaign, amount, currency) is rejected as a duplicate of that line: it would count the cost twice.

Replacement rules (what loading a sheet does to the spend already loaded):
- the configured sheet is the whole truth for the periods it covers: loading it replaces every loaded row
  whose period overlaps its first-to-last day span, whatever file those rows came from, plus every row that
  came from a file of the same name; rows of other files outside that span stay (last year's sheet survives
  this year's);
- so renaming the file (spend.csv -> spend.xlsx) replaces the old file's rows, it never adds to them;
- a sheet with no loadable row, or one that would lower the loaded total (in home-currency units at the
  fixed `[models.fx_rates]`) by more than `[spend] max_removed_share` (default 50 %), is refused before
  anything is replaced: the run stops with the figures and the fix; `confirm_removal=True`
  (`roi run --confirm-spend-removal`) loads it on purpose.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
import unicodedata
import zipfile
from calendar import monthrange
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa

from connectors import warehouse
from connectors.errors import EXIT_CONFIG, EXIT_STEP_FAILED, RoiError

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
PERIOD_COLUMNS = ("period_start", "period_end", "date", "month")
KNOWN_COLUMNS = frozenset({*PERIOD_COLUMNS, *KEY_FIELDS, "amount", "currency"})
SPACE_CHARACTERS = " \u00a0\u202f\u2009\t"
CSV_DELIMITERS = (",", ";", "\t", "|")  # in order of preference when the evidence is even
# How much of the file the dialect is judged on: the header and the first rows (a "real sample").
DIALECT_SAMPLE_LINES = 50
HEADER_SEARCH_ROWS = 10  # title rows a person may put above the header
MAX_LINES_PER_ROW = 20  # a note with line breaks; a quote still open after this many lines is a stray one
MAX_TEXT_CELL_CHARS = 500  # a UTM value is a few dozen characters; 128 KiB is a paste gone wrong
# Control, format (zero-width), surrogate and line/paragraph separator characters: invisible in a sheet, they
# would make "google" and "google\u200b" two sources that never match the tagging plan.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
MAX_FILE_BYTES = 64 * 1024 * 1024  # a hand-kept spend sheet is kilobytes; this is some other file
DEFAULT_MAX_REMOVED_SHARE = Decimal("0.5")  # a truncated or wrong sheet, not an edit
# Currency signs people leave in amount cells (Excel's currency format is exported as text).
CURRENCY_SIGNS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "CHF": "CHF", "EUR": "EUR", "USD": "USD"}
EXCEL_ERRORS = (
    "#NULL!",
    "#DIV/0!",
    "#VALUE!",
    "#REF!",
    "#NAME?",
    "#NUM!",
    "#N/A",
    "#GETTING_DATA",
    "#SPILL!",
)


class SpendFileError(RoiError, ValueError):
    """The file as a whole cannot be read (missing, unknown format, no usable header)."""

    exit_code = EXIT_CONFIG


class SpendReplacementRefused(SpendFileError):
    """Loading the sheet would remove too much of the loaded spend; nothing was replaced."""

    exit_code = EXIT_STEP_FAILED


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

    @property
    def identity(self) -> tuple[Any, ...]:
        """Every stored value but the line: two rows equal on it are the same cost written twice."""
        return (
            self.period_start,
            self.period_end,
            self.source,
            self.medium,
            self.campaign,
            self.amount,
            self.currency,
        )


@dataclass
class Replacement:
    """What loading the sheet does to the spend already loaded (computed before anything is written)."""

    covers: tuple[date, date] | None  # first to last day of the sheet's rows
    rows_removed: int = 0
    removed_by_file: dict[str, int] = field(default_factory=dict)
    before_by_currency: dict[str, Decimal] = field(default_factory=dict)
    after_by_currency: dict[str, Decimal] = field(default_factory=dict)
    rates: dict[str, Decimal] = field(default_factory=dict)  # home-currency units per unit; missing = 1

    def total(self, by_currency: dict[str, Decimal]) -> Decimal:
        """A total in home-currency units at the fixed rates (a guard's measure, not accounting)."""
        return sum((amount * self.rates.get(c, Decimal(1)) for c, amount in by_currency.items()), Decimal(0))

    @property
    def removed_share(self) -> Decimal:
        """Share of the loaded spend (in home-currency units) that loading the sheet would take away."""
        before = self.total(self.before_by_currency)
        if before <= 0:
            return Decimal(0)
        return max(Decimal(0), (before - self.total(self.after_by_currency)) / before)


@dataclass
class SpendLoadResult:
    file_name: str
    rows_read: int = 0
    rows_loaded: int = 0
    rejects: list[SpendReject] = field(default_factory=list)
    total_by_currency: dict[str, Decimal] = field(default_factory=dict)
    encoding: str | None = None  # CSV only: how the bytes were read
    delimiter: str | None = None  # CSV only
    warnings: list[str] = field(default_factory=list)
    replacement: Replacement | None = None

    @property
    def rows_rejected(self) -> int:
        return len(self.rejects)


def _shown(value: Any, limit: int = 60) -> str:
    """repr of a cell for a message, cut short: a 128 KiB cell must not become a 128 KiB reason."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


# --- cell parsing -------------------------------------------------------------------------------------------


def _grouped_by_three(text: str, mark: str) -> bool:
    """'1,234,567' with mark ',' -> True: 1-3 leading digits, then groups of exactly three."""
    return re.fullmatch(r"[0-9]{1,3}(?:" + re.escape(mark) + r"[0-9]{3})+", text) is not None


def parse_amount(value: Any, currency: str | None = None) -> Decimal:
    """One sheet cell -> exact non-negative Decimal with at most 2 decimals (rule in the module docstring).

    `currency` is the row's currency: a currency sign in the cell must agree with it."""
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
    elif isinstance(value, str):
        amount = _parse_amount_text(value, currency)
    else:  # a date or time cell in the amount column
        raise SpendValueError(f"amount {_shown(str(value))} is not a number (the cell holds a date or time)")
    if not amount.is_finite():
        raise SpendValueError(f"amount {_shown(value)} is not a number")
    if amount < 0:
        raise SpendValueError(
            f"amount {_shown(value)} is negative; spend must be >= 0 (book refunds in the ad platform)"
        )
    try:
        checked = warehouse.to_decimal(amount, scale=AMOUNT_MAX_DECIMALS, precision=AMOUNT_MAX_DIGITS)
    except warehouse.ConversionError as exc:
        if "decimals" in str(exc):
            raise SpendValueError(
                f"amount {_shown(value)} has more than {AMOUNT_MAX_DECIMALS} decimals; round it to cents"
            ) from None
        raise SpendValueError(
            f"amount {_shown(value)} is too large (at most {AMOUNT_MAX_DIGITS - AMOUNT_MAX_DECIMALS} digits "
            "before the decimal mark); check the cell"
        ) from None
    assert checked is not None
    return checked


def _strip_currency_sign(raw: str, text: str, currency: str | None) -> str:
    for sign, code in CURRENCY_SIGNS.items():
        for stripped in (text.removeprefix(sign), text.removesuffix(sign)):
            if stripped != text:
                if currency is not None and code != currency:
                    raise SpendValueError(
                        f"amount {_shown(raw)} is written in {code} but the row's currency is {currency}; "
                        "fix one of them"
                    )
                return stripped.strip(SPACE_CHARACTERS)
    return text


def _parse_amount_text(raw: str, currency: str | None = None) -> Decimal:
    text = raw.strip(SPACE_CHARACTERS)
    if text.upper() in EXCEL_ERRORS:
        raise SpendValueError(f"amount cell shows the Excel error {text}; fix the formula in the sheet")
    text = _strip_currency_sign(raw, text, currency)
    for space in SPACE_CHARACTERS:
        text = text.replace(space, "")
    sign = ""
    if text[:1] in "+-":
        sign, text = text[0], text[1:]
    if not text or not re.fullmatch(r"[0-9.,]+", text):
        raise SpendValueError(
            f"amount {_shown(raw)} is not a number; write digits with . or , as decimal mark, e.g. 1234.50"
        )
    has_comma, has_dot = "," in text, "." in text
    if has_comma and has_dot:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
        group_mark = "." if decimal_mark == "," else ","
        whole, _, fraction = text.rpartition(decimal_mark)
        if not _grouped_by_three(whole, group_mark) or not fraction.isdigit():
            raise SpendValueError(
                f"amount {_shown(raw)} mixes {group_mark!r} and {decimal_mark!r} in an unclear way; "
                "write e.g. 1234.50"
            )
        digits = whole.replace(group_mark, "") + "." + fraction
    elif has_comma or has_dot:
        mark = "," if has_comma else "."
        parts = text.split(mark)
        if len(parts) > 2:
            if not _grouped_by_three(text, mark):
                raise SpendValueError(
                    f"amount {_shown(raw)} has misplaced {mark!r} separators; write e.g. 1234567.00"
                )
            digits = text.replace(mark, "")
        else:
            whole, fraction = parts
            if not whole.isdigit() or not fraction.isdigit():
                raise SpendValueError(f"amount {_shown(raw)} is not a number; write e.g. 1234.50")
            if len(fraction) == 3:
                # Only one reading is storable (amounts have at most 2 decimals): suggest only that one.
                raise SpendValueError(
                    f"amount {_shown(raw)} is ambiguous: {mark!r} followed by three digits groups thousands "
                    f"in one convention and marks decimals in the other; if you meant "
                    f"{int(whole + fraction):,} write {int(whole + fraction)}.00"
                )
            digits = whole + "." + fraction
    else:
        digits = text
    try:
        return Decimal(sign + digits)
    except InvalidOperation as exc:  # pragma: no cover - the regexes above only let digits through
        raise SpendValueError(f"amount {_shown(raw)} is not a number") from exc


_ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[ T].*)?")
_COMPACT_DAY = re.compile(r"((?:19|20)[0-9]{2})([0-9]{2})([0-9]{2})")
_SLASH_DAY = re.compile(r"([0-9]{1,2})[/.]([0-9]{1,2})[/.]([0-9]{4})")
_ISO_MONTH = re.compile(r"([0-9]{4})-([0-9]{1,2})")
_MONTH_FIRST = re.compile(r"([0-9]{1,2})[/.]([0-9]{4})")


def parse_day(value: Any, column: str, *, month_first_seen: str | None = None) -> date:
    """A date cell: datetime/date (XLSX), `YYYY-MM-DD`, `YYYYMMDD`, `DD/MM/YYYY` or `DD.MM.YYYY`.

    `month_first_seen` names a cell of the same file that only reads month-first (`04/13/2026` at line 7):
    then a slash date that reads both ways is ambiguous and refused instead of read day-first."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = "" if value is None else str(value).strip()
    if not text:
        raise SpendValueError(f"{column} is empty; write a date as YYYY-MM-DD")
    parts = None
    if match := _ISO_DAY.fullmatch(text) or _COMPACT_DAY.fullmatch(text):
        parts = (match.group(1), match.group(2), match.group(3))
    elif match := _SLASH_DAY.fullmatch(text):
        first, second = int(match.group(1)), int(match.group(2))
        if second > 12 and first <= 12:
            raise SpendValueError(
                f"{column} {_shown(text)} reads only month-first (US order); this sheet's dates are "
                f"day-first (DD/MM/YYYY): write {match.group(3)}-{first:02d}-{second:02d}"
            )
        if month_first_seen and first <= 12 and first != second:
            raise SpendValueError(
                f"{column} {_shown(text)} is ambiguous: this file also has month-first dates "
                f"({month_first_seen}), so it could be {first}/{second} or {second}/{first}; write YYYY-MM-DD"
            )
        parts = (match.group(3), match.group(2), match.group(1))
    if parts is None:
        hint = " (an Excel date serial? format the cell as a date)" if text.isdigit() else ""
        raise SpendValueError(f"{column} {_shown(text)} is not a date; write YYYY-MM-DD{hint}")
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError as exc:
        raise SpendValueError(f"{column} {_shown(text)} is not a valid calendar date ({exc})") from exc


def month_first_evidence(text: Any) -> bool:
    """A slash date that reads only month-first: `04/13/2026`."""
    match = _SLASH_DAY.fullmatch(str(text).strip()) if isinstance(text, str) else None
    return bool(match) and int(match.group(2)) > 12 and int(match.group(1)) <= 12


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
                raise SpendValueError(f"month {_shown(text)} is not a valid month; write YYYY-MM")
            return date(year, month, 1), date(year, month, monthrange(year, month)[1])
    try:
        day = parse_day(text, "month")
    except SpendValueError as exc:
        raise SpendValueError(f"month {_shown(value)} is not a month; write YYYY-MM") from exc
    return date(day.year, day.month, 1), date(day.year, day.month, monthrange(day.year, day.month)[1])


def parse_currency(value: Any, known: frozenset[str]) -> str:
    text = "" if value is None else str(value).strip().upper()
    if not text:
        raise SpendValueError("currency is empty; write an ISO 4217 code such as EUR")
    if text in CURRENCY_SIGNS:
        text = CURRENCY_SIGNS[text]
    if text not in known:
        raise SpendValueError(
            f"currency {_shown(value)} is not a known ISO 4217 code; use e.g. EUR (if {text[:8]} is real, "
            f'add its rate as {text[:8]} = "<home currency for 1 {text[:8]}>" under [models.fx_rates] '
            "in roi.toml)"
        )
    return text


def _invisible(char: str) -> bool:
    return char != "\t" and unicodedata.category(char) in INVISIBLE_CATEGORIES


def parse_text(value: Any, column: str) -> str:
    """A source, medium or campaign cell, as written (staging normalises case and aliases)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a campaign typed as 2026 in Excel is the text "2026", not "2026.0"
    text = "" if value is None else str(value)
    if not text.strip():
        raise SpendValueError(f"{column} is empty; every spend row needs source, medium and campaign")
    if len(text) > MAX_TEXT_CELL_CHARS:
        raise SpendValueError(
            f"{column} is {len(text):,} characters long (at most {MAX_TEXT_CELL_CHARS}); "
            "a paste went into the wrong cell?"
        )
    if "\ufffd" in text:
        raise SpendValueError(
            f"{column} {_shown(text)} holds bytes that are neither UTF-8 nor Windows-1252 (shown as \ufffd); "
            "save the sheet as CSV UTF-8"
        )
    # isprintable() is False for every invisible character (and for no-break spaces): only then look closer.
    printable = text.isprintable()
    control = None if printable else next((c for c in text if _invisible(c)), None)
    if control is not None:
        raise SpendValueError(
            f"{column} {_shown(text)} holds the invisible character U+{ord(control):04X} "
            f"({unicodedata.name(control, 'control')}); retype the value"
        )
    return text


# --- reading the sheet --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineProblem:
    """A CSV line that cannot be split into cells (a quote left open); it becomes a reject of its own."""

    reason: str
    text: str


Record = tuple[int, "list[Any] | LineProblem"]


@dataclass
class Sheet:
    """The records of a sheet (line number, cells) and how its bytes were read."""

    records: list[Record]
    encoding: str | None = None
    delimiter: str | None = None
    warnings: list[str] = field(default_factory=list)


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: bytes that are not UTF-8 are read as Windows-1252 (Excel's French "CSV")."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return bytes(bad).decode("cp1252", errors="replace"), error.end


codecs.register_error("roi_spend_cp1252", _cp1252_fallback)


def decode_sheet(raw: bytes) -> tuple[str, str, list[int]]:
    """(text, encoding, lines read as Windows-1252 in an otherwise UTF-8 file)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16"), "UTF-16", []
        except UnicodeDecodeError as exc:
            raise SpendFileError(f"starts as UTF-16 but is not ({exc}); save it as CSV UTF-8") from None
    encoding = "UTF-8"
    if raw.startswith(codecs.BOM_UTF8):
        raw, encoding = raw[len(codecs.BOM_UTF8) :], "UTF-8 (BOM)"
    try:
        return raw.decode("utf-8"), encoding, []
    except UnicodeDecodeError:
        pass
    # Line by line: an Excel export appended to a UTF-8 sheet (or the reverse) reads right on every line.
    texts, fallback, utf8_lines = [], [], 0
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            texts.append(line.decode("utf-8"))
            utf8_lines += not line.isascii()
        except UnicodeDecodeError:
            texts.append(line.decode("utf-8", errors="roi_spend_cp1252"))
            fallback.append(number)
    if utf8_lines:
        return "\n".join(texts), "UTF-8 and Windows-1252 (mixed)", fallback
    return "\n".join(texts), "Windows-1252", []


def _canonical_header(name: Any) -> str:
    text = unicodedata.normalize("NFKC", str(name or "")).strip().lower()
    text = re.sub(r"[\s\-]+", "_", text)
    return HEADER_ALIASES.get(text, text)


@contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    """csv refuses fields over 128 KiB by default, failing the whole file: a long cell is a row problem."""
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, limit))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _split_line(line: str, delimiter: str) -> list[str] | LineProblem:
    try:
        return next(csv.reader([line], delimiter=delimiter, quotechar='"', doublequote=True, strict=True), [])
    except csv.Error as exc:
        return LineProblem(
            f"the line's quotes do not balance ({exc}); a quoted value must end with \" before the next "
            f"separator {delimiter!r}, and within {MAX_LINES_PER_ROW} lines when it holds line breaks",
            line,
        )


def _quote_left_open(text: str, delimiter: str) -> bool:
    """True when ``text`` ends inside a quoted value (the row goes on, on the next line)."""
    try:
        for _ in csv.reader([text], delimiter=delimiter, quotechar='"', doublequote=True, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def split_rows(lines: list[str], delimiter: str) -> list[Record]:
    """(number of the row's first line, cells) per row: one line each, or the lines a quoted value with line
    breaks spans. A quote still open after MAX_LINES_PER_ROW lines, or a joined row of another width than the
    sheet's, rejects its first line alone."""
    single = [_split_line(line, delimiter) if line.strip() else [] for line in lines]
    # A row that spans lines must have the sheet's width (the most common one), else its first line is a
    # stray quote and the lines after it are rows of their own.
    widths = Counter(len(cells) for cells in single if cells and not isinstance(cells, LineProblem))
    width = widths.most_common(1)[0][0] if widths else 0
    records: list[Record] = []
    number = 0
    while number < len(lines):
        cells, last = single[number], number
        if isinstance(cells, LineProblem) and _quote_left_open(lines[number], delimiter):
            joined = lines[number]
            for following in range(number + 1, min(number + MAX_LINES_PER_ROW, len(lines))):
                joined += "\n" + lines[following]
                if not _quote_left_open(joined, delimiter):
                    row = _split_line(joined, delimiter)
                    if not isinstance(row, LineProblem) and len(row) == width:
                        cells, last = row, following
                    break
        records.append((number + 1, cells))
        number = last + 1
    return records


def detect_delimiter(lines: list[str]) -> str:
    """The separator under which a header line (among the first rows) names the most expected columns, then
    under which the rows have the header's width. The sample is the header and the first rows."""
    sample = [line for line in lines if line.strip()][:DIALECT_SAMPLE_LINES]
    best: tuple[tuple[int, int, int], str] | None = None
    for rank, delimiter in enumerate(CSV_DELIMITERS):
        rows = [_split_line(line, delimiter) for line in sample]
        cells = [r for r in rows if not isinstance(r, LineProblem)]
        header_at, known = 0, 0
        for position, row in enumerate(cells[:HEADER_SEARCH_ROWS]):
            found = len({_canonical_header(c) for c in row} & KNOWN_COLUMNS)
            if found > known:
                header_at, known = position, found
        width = len(cells[header_at]) if cells else 0
        same_width = sum(1 for row in cells[header_at + 1 :] if len(row) == width) if width > 1 else 0
        score = (known, same_width - len(rows) + len(cells), -rank)
        if best is None or score > best[0]:
            best = (score, delimiter)
    return best[1] if best else ","


def _read_csv(path: Path) -> Sheet:
    """(line number, cells) per physical line; see the module docstring for dialects and encodings."""
    raw = path.read_bytes()
    try:
        text, encoding, fallback = decode_sheet(raw)
    except SpendFileError as exc:
        raise SpendFileError(f"Spend file {path.name} {exc}") from None
    lines = re.split(r"\r\n|\n|\r", text)
    if lines and lines[-1] == "":
        lines.pop()
    delimiter = detect_delimiter(lines)
    sheet = Sheet([], encoding=encoding, delimiter=delimiter)
    if fallback:
        shown = ", ".join(str(n) for n in fallback[:10]) + (" ..." if len(fallback) > 10 else "")
        sheet.warnings.append(
            f"Spend file {path.name} mixes UTF-8 and Windows-1252 text: line(s) {shown} were read as "
            "Windows-1252; save the whole sheet as CSV UTF-8"
        )
    with _csv_field_limit(len(text) + 1):
        sheet.records = split_rows(lines, delimiter)
    return sheet


def _read_xlsx(path: Path, sheet_name: str | None = None) -> Sheet:
    """(row number, cells) from the named (else the first) worksheet, values as Excel computed them."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise SpendFileError(
            f"Spend file {path.name} cannot be opened as an Excel workbook ({type(exc).__name__}: {exc}); "
            "open it in Excel and save it again as .xlsx (not password-protected), or export it as CSV"
        ) from None
    try:
        if sheet_name is not None and sheet_name not in workbook.sheetnames:
            raise SpendFileError(
                f"Spend file {path.name} has no worksheet {sheet_name!r}; it has {workbook.sheetnames}: "
                "fix [spend] sheet in roi.toml"
            )
        worksheet = workbook[sheet_name] if sheet_name is not None else workbook.worksheets[0]
        rows = worksheet.iter_rows(values_only=True)
        records: list[Record] = [(number, list(cells)) for number, cells in enumerate(rows, start=1)]
    except SpendFileError:
        raise
    except Exception as exc:  # a malformed part of the workbook: the file, not one cell, is unreadable
        raise SpendFileError(
            f"Spend file {path.name} has an unreadable worksheet ({type(exc).__name__}: {exc}); "
            "save it again from Excel"
        ) from None
    finally:
        workbook.close()
    return Sheet(records)


def read_sheet(path: Path, sheet_name: str | None = None) -> Sheet:
    suffix = path.suffix.lower()
    if path.stat().st_size > MAX_FILE_BYTES:
        raise SpendFileError(
            f"Spend file {path.name} is {path.stat().st_size:,} bytes; a spend sheet is far smaller: "
            "check spend_file points at the right file"
        )
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, sheet_name)
    raise SpendFileError(f"Spend file {path.name}: unknown format {suffix!r}; save it as .csv or .xlsx")


def _blank_cells(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _find_header(records: list[Record], file_name: str) -> tuple[int, list[str]]:
    """Position (in records) and canonical names of the header: the first row naming a period and amount."""
    seen = 0
    first: tuple[int, list[Any]] | None = None
    for position, (line, cells) in enumerate(records):
        if isinstance(cells, LineProblem) or _blank_cells(cells):
            continue
        first = first or (line, cells)
        columns = [_canonical_header(c) for c in cells]
        if "amount" in columns and any(c in columns for c in PERIOD_COLUMNS):
            duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
            if duplicated:
                raise SpendFileError(
                    f"Spend file {file_name}: header (line {line}) names {', '.join(duplicated)} more than "
                    "once; keep one column of each"
                )
            return position, columns
        seen += 1
        if seen >= HEADER_SEARCH_ROWS:
            break
    if first is None:
        raise SpendFileError(
            f"Spend file {file_name} is empty: it needs a header (period_start, period_end, source, medium, "
            "campaign, amount, currency) and one row per spend"
        )
    found = [c for c in (_canonical_header(c) for c in first[1]) if c]
    raise SpendFileError(
        f"Spend file {file_name}: header (line {first[0]}) needs period_start and period_end, or a date or "
        f"month column, and amount; found {found[:12]}"
    )


def parse_spend_rows(
    records: Iterable[Record],
    file_name: str,
    known_currencies: frozenset[str] = KNOWN_CURRENCIES,
) -> tuple[list[SpendRow], list[SpendReject], int]:
    """Validate every record; returns (good rows, rejects, number of non-blank data records)."""
    records = list(records)
    header_at, columns = _find_header(records, file_name)
    header_line = records[header_at][0]
    index = {name: position for position, name in enumerate(columns) if name}
    if "period_start" in index and "period_end" in index:
        period_columns: tuple[str, ...] = ("period_start", "period_end")
    elif "date" in index:
        period_columns = ("date",)
    elif "month" in index:
        period_columns = ("month",)
    else:
        raise SpendFileError(
            f"Spend file {file_name}: header (line {header_line}) needs period_start and period_end, "
            f"or a date or month column; found {[c for c in columns if c]}"
        )
    missing = [c for c in (*KEY_FIELDS, "amount", "currency") if c not in index]
    if missing:
        raise SpendFileError(f"Spend file {file_name}: header (line {header_line}) lacks column(s) {missing}")
    data = [(line, cells) for line, cells in records[header_at + 1 :]]
    month_first_seen = next(
        (
            f"line {line}: {cells[index[c]]}"
            for line, cells in data
            if not isinstance(cells, LineProblem)
            for c in period_columns
            if index[c] < len(cells) and month_first_evidence(cells[index[c]])
        ),
        None,
    )

    rows: list[SpendRow] = []
    rejects: list[SpendReject] = []
    first_line_of: dict[tuple[Any, ...], int] = {}
    seen = 0
    for line, cells in data:
        if isinstance(cells, LineProblem):
            seen += 1
            rejects.append(SpendReject(line, None, cells.text, cells.reason))
            continue
        if _blank_cells(cells):
            continue  # blank lines are layout, not data
        seen += 1
        extra = [c for c in cells[len(columns) :] if not _blank_cells([c])]
        if extra:
            rejects.append(
                SpendReject(
                    line,
                    None,
                    None,
                    f"the line has {len(cells)} values but the header has {len(columns)} columns: a value "
                    "holds the separator without quotes; quote it, or remove the extra cells",
                )
            )
            continue

        def cell(name: str, cells: list[Any] = cells) -> Any:
            position = index[name]
            return cells[position] if position < len(cells) else None

        problem_field = None
        try:
            if period_columns == ("period_start", "period_end"):
                problem_field = "period_start"
                start = parse_day(cell("period_start"), "period_start", month_first_seen=month_first_seen)
                problem_field = "period_end"
                end = parse_day(cell("period_end"), "period_end", month_first_seen=month_first_seen)
                if end < start:
                    raise SpendValueError(f"period_end {end} is before period_start {start}; swap them")
            elif period_columns == ("date",):
                problem_field = "date"
                start = end = parse_day(cell("date"), "date", month_first_seen=month_first_seen)
            else:
                problem_field = "month"
                start, end = parse_month(cell("month"))
            keys = {}
            for key in KEY_FIELDS:
                problem_field = key
                keys[key] = parse_text(cell(key), key)
            problem_field = "currency"
            currency = parse_currency(cell("currency"), known_currencies)
            problem_field = "amount"
            amount = parse_amount(cell("amount"), currency)
        except SpendValueError as exc:
            raw_value = cell(problem_field) if problem_field in index else None
            rejects.append(
                SpendReject(line, problem_field, None if raw_value is None else str(raw_value), str(exc))
            )
            continue
        row = SpendRow(line, start, end, keys["source"], keys["medium"], keys["campaign"], amount, currency)
        first = first_line_of.setdefault(row.identity, line)
        if first != line:
            rejects.append(
                SpendReject(
                    line,
                    None,
                    None,
                    f"duplicate of line {first} (same period, source, medium, campaign, amount and "
                    "currency): it would count that cost twice; delete one, or merge both into one row if "
                    "both are real",
                )
            )
            continue
        rows.append(row)
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


def plan_replacement(
    con: Any, file_name: str, rows: list[SpendRow], rates: dict[str, Decimal] | None = None
) -> Replacement:
    """What loading `rows` from `file_name` removes and leaves (module docstring: replacement rules)."""
    covers = (min(r.period_start for r in rows), max(r.period_end for r in rows)) if rows else None
    where, params = _replaced_rows_filter(file_name, covers)
    plan = Replacement(covers=covers, rates=dict(rates or {}))
    for currency, total in con.execute(
        f"SELECT currency, sum(amount) FROM {TARGET_TABLE} GROUP BY currency"
    ).fetchall():
        plan.before_by_currency[currency] = Decimal(total)
    plan.after_by_currency = dict(plan.before_by_currency)
    for source_file, currency, count, total in con.execute(
        f"SELECT file_name, currency, count(*), sum(amount) FROM {TARGET_TABLE} WHERE {where} GROUP BY ALL",
        params,
    ).fetchall():
        plan.rows_removed += count
        plan.removed_by_file[source_file] = plan.removed_by_file.get(source_file, 0) + count
        plan.after_by_currency[currency] -= Decimal(total)
    for row in rows:
        after = plan.after_by_currency.get(row.currency, Decimal(0))
        plan.after_by_currency[row.currency] = after + row.amount
    return plan


def _replaced_rows_filter(file_name: str, covers: tuple[date, date] | None) -> tuple[str, list[Any]]:
    if covers is None:
        return "file_name = ?", [file_name]
    return "file_name = ? OR (period_start <= ? AND period_end >= ?)", [file_name, covers[1], covers[0]]


REFUSAL_FIX = (
    "check the sheet (and spend_file in roi.toml); if this is what you want, run again with "
    "--confirm-spend-removal (flow parameter confirm_spend_removal=true)"
)


def _refusal(
    file_name: str, plan: Replacement, rows_loaded: int, rows_read: int, max_removed_share: Decimal
) -> str | None:
    """Why loading this sheet must be confirmed first, or None."""
    if rows_loaded == 0 and plan.rows_removed:
        what = "only a header" if rows_read == 0 else f"no loadable row ({rows_read} rejected)"
        before, after = plan.before_by_currency, plan.after_by_currency
        lost = ", ".join(f"{before[c] - after.get(c, Decimal(0)):,.2f} {c}" for c in sorted(before))
        return (
            f"Spend file {file_name} has {what}: loading it would delete the {plan.rows_removed} spend rows "
            f"already loaded ({lost}); nothing was replaced"
        )
    share = plan.removed_share
    if share > max_removed_share:
        return (
            f"Spend file {file_name} would lower the loaded spend by {share:.1%} "
            f"({plan.total(plan.before_by_currency):,.2f} -> {plan.total(plan.after_by_currency):,.2f} in "
            f"home-currency units at [models.fx_rates]), more than [spend] max_removed_share = "
            f"{max_removed_share} allows ({plan.rows_removed} rows replaced, from "
            f"{', '.join(sorted(plan.removed_by_file))}); nothing was replaced"
        )
    return None


def load_spend(
    path: str | Path,
    db_path: str | Path,
    run_id: str,
    *,
    extra_currencies: Iterable[str] = (),
    sheet: str | None = None,
    confirm_removal: bool = False,
    max_removed_share: Decimal = DEFAULT_MAX_REMOVED_SHARE,
    rates: dict[str, Decimal] | None = None,
) -> SpendLoadResult:
    """Load one spend sheet under the replacement rules (module docstring), in one transaction.

    The file is identified by its name (not its folder), so moving the sheet keeps its identity; a rerun is
    idempotent. `sheet` names the worksheet of an .xlsx file (settings `spend.sheet`; the first one when
    unset). Raises SpendReplacementRefused, before writing any row, when the sheet would remove more spend
    than `max_removed_share` (or all of it) and `confirm_removal` is False; the share is measured in
    home-currency units at `rates` ([models.fx_rates]; a currency without a rate counts one for one).
    """
    path = Path(path)
    if not path.is_file():
        raise SpendFileError(
            f"Spend file {path} does not exist; set spend_file in roi.toml or ROI_SPEND_FILE"
        )
    file_name = path.name
    known = KNOWN_CURRENCIES | {c.strip().upper() for c in extra_currencies if c and c.strip()}
    content = read_sheet(path, sheet)
    rows, rejects, seen = parse_spend_rows(content.records, file_name, known)
    for warning in content.warnings:
        log.warning("%s", warning)
    for reject in rejects:
        log.warning("Spend file %s line %d rejected: %s", file_name, reject.line, reject.reason)

    result = SpendLoadResult(
        file_name=file_name,
        rows_read=seen,
        rows_loaded=len(rows),
        rejects=rejects,
        encoding=content.encoding,
        delimiter=content.delimiter,
        warnings=list(content.warnings),
    )
    for row in rows:
        result.total_by_currency[row.currency] = (
            result.total_by_currency.get(row.currency, Decimal(0)) + row.amount
        )

    con = warehouse.connect(db_path)
    try:
        run = warehouse.start_run(con, run_id, RUN_KIND, f"{REJECT_SOURCE}:{file_name}")
        try:
            with warehouse.transaction(con):
                plan = result.replacement = plan_replacement(con, file_name, rows, rates)
                refusal = _refusal(file_name, plan, len(rows), seen, max_removed_share)
                if refusal and not confirm_removal:
                    raise SpendReplacementRefused(refusal, REFUSAL_FIX)
                if refusal:
                    log.warning("Confirmed on purpose: %s", refusal.removesuffix("; nothing was replaced"))
                others = {f: n for f, n in plan.removed_by_file.items() if f != file_name}
                if others:
                    result.warnings.append(
                        f"Spend file {file_name} covers {plan.covers[0]}..{plan.covers[1]}: it replaces "  # type: ignore[index]
                        + ", ".join(f"{n} row(s) of {f}" for f, n in sorted(others.items()))
                    )
                    log.warning("%s", result.warnings[-1])
                where, params = _replaced_rows_filter(file_name, plan.covers)
                run.rows = warehouse.replace_partition(
                    con, TARGET_TABLE, _rows_to_arrow(file_name, rows), where, params, run_id=run_id
                )
                warehouse.record_rejects(con, run_id, REJECT_SOURCE, _reject_rows(file_name, rejects))
        except BaseException as exc:
            if isinstance(exc, SpendReplacementRefused):
                # The refused sheet's rejects still tell the operator why it looked empty.
                warehouse.record_rejects(con, run_id, REJECT_SOURCE, _reject_rows(file_name, rejects))
            warehouse.finish_run(con, run, status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        warehouse.finish_run(con, run, status="success")
    finally:
        con.close()
    return result


def _reject_rows(file_name: str, rejects: list[SpendReject]) -> list[warehouse.Reject]:
    return [
        warehouse.Reject(
            record_id=file_name,
            field=r.field,
            value=r.value,
            reason=f"Spend file {file_name} line {r.line}: {r.reason}",
            line=r.line,
        )
        for r in rejects
    ]
