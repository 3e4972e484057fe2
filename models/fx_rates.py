"""Exchange rates: the fixed `[models.fx_rates]` settings and the optional monthly rates file.

A rate is home-currency units for one unit of the currency (`USD = "0.92"`: 1 USD = 0.92 EUR). The monthly
file is a CSV with the header `month,currency,rate` and one row per month and currency (`2026-03,USD,0.9187`):
a month's spend and a deal closed in that month convert at that month's rate; a month missing from the file
falls back to the fixed rate of the settings, and without one the row is rejected with the line to add. Both
are checked here, before any model runs: every problem names the file, the line and the fix.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

RATE_MAX_DECIMALS = 8  # cfg_fx_rates stores DECIMAL(18, 8)
RATE_MAX = Decimal("10000000000")  # DECIMAL(18, 8) holds 10^10
FILE_COLUMNS = ("month", "currency", "rate")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MONTH = re.compile(r"(\d{4})-(\d{2})")


class FxRatesError(ValueError):
    """A rate setting or a line of the rates file is unusable; the message says where and how to fix it."""


@dataclass(frozen=True)
class MonthlyRate:
    month: date  # first day of the month
    currency: str
    rate_to_home: Decimal
    line: int


def currency_code(value: Any, where: str) -> str:
    code = str(value).strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise FxRatesError(
            f"{where}: {value!r} is not a currency code. Fix: write a 3-letter ISO 4217 code (USD)."
        )
    return code


def rate_value(value: Any, where: str) -> Decimal:
    """An exact positive rate with at most 8 decimals (a float would not be exact: write it as a string)."""
    if isinstance(value, float):
        raise FxRatesError(f'{where}: {value!r} is a float. Fix: quote the rate so it stays exact ("0.92").')
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise FxRatesError(
            f"{where}: {value!r} is not a number. Fix: write e.g. 0.92 (a dot, no spaces)."
        ) from None
    if not rate.is_finite() or rate <= 0 or rate >= RATE_MAX:
        raise FxRatesError(f"{where}: rate {value!r} must be a positive number below {RATE_MAX:,}.")
    if -rate.as_tuple().exponent > RATE_MAX_DECIMALS:  # type: ignore[operator]
        raise FxRatesError(
            f"{where}: rate {value!r} has more than {RATE_MAX_DECIMALS} decimals. Fix: round it."
        )
    return rate


def fixed_rates(rates: Mapping[str, Any] | None, home_currency: str) -> dict[str, Decimal]:
    """`[models.fx_rates]` checked: upper-case codes, exact rates; the home currency is always 1."""
    checked = {}
    for code, value in (rates or {}).items():
        currency = currency_code(code, "[models.fx_rates]")
        checked[currency] = rate_value(value, f"[models.fx_rates] {currency}")
    home = home_currency.upper()
    if checked.get(home, Decimal(1)) != 1:
        raise FxRatesError(
            f"[models.fx_rates] {home} = {checked[home]}: the home currency's rate is 1. "
            "Fix: remove the line."
        )
    checked[home] = Decimal(1)
    return checked


def load_monthly_rates(path: str | Path, home_currency: str) -> list[MonthlyRate]:
    """Read and check the monthly rates file (CSV `month,currency,rate`, UTF-8; `#` lines are comments)."""
    path = Path(path)
    if not path.is_file():
        raise FxRatesError(
            f"Exchange rates file {path} does not exist. Fix: create it (month,currency,rate) or remove "
            "fx_rates_file from [models] in roi.toml."
        )
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    rates: list[MonthlyRate] = []
    seen: dict[tuple[date, str], int] = {}
    header_seen = False
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        where = f"{path.name} line {line}"
        if not header_seen:
            header = tuple(c.strip().lower() for c in cells)
            if header != FILE_COLUMNS:
                raise FxRatesError(
                    f"{where}: the header must be exactly month,currency,rate (found {','.join(cells)}). "
                    "Fix: write that header on the first line."
                )
            header_seen = True
            continue
        if len(cells) != 3:
            raise FxRatesError(f"{where}: expected 3 values (month,currency,rate), found {len(cells)}.")
        month_text, currency_text, rate_text = (c.strip() for c in cells)
        match = _MONTH.fullmatch(month_text)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise FxRatesError(f"{where}: month {month_text!r} is not a month. Fix: write YYYY-MM (2026-03).")
        month = date(int(match.group(1)), int(match.group(2)), 1)
        currency = currency_code(currency_text, where)
        rate = rate_value(rate_text, where)
        if currency == home_currency.upper() and rate != 1:
            raise FxRatesError(
                f"{where}: {currency} is the home currency, its rate is 1. Fix: remove the line."
            )
        if (month, currency) in seen:
            raise FxRatesError(
                f"{where}: {month_text} {currency} is already on line {seen[(month, currency)]}. "
                "Fix: keep one rate per month and currency."
            )
        seen[(month, currency)] = line
        rates.append(MonthlyRate(month, currency, rate, line))
    if not header_seen:
        raise FxRatesError(f"Exchange rates file {path} is empty. Fix: write the header month,currency,rate.")
    return rates


def configured_currencies(
    rates: Mapping[str, Any] | None, rates_file: str | Path | None, home_currency: str
) -> set[str]:
    """Every currency that has a rate somewhere (the spend loader accepts these codes)."""
    codes = set(fixed_rates(rates, home_currency))
    if rates_file:
        codes |= {r.currency for r in load_monthly_rates(rates_file, home_currency)}
    return codes
