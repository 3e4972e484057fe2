"""Numbers and text as people read them, in French (default) or English, from exact Decimals.

French typography: thousands separated by a narrow no-break space (U+202F), decimal comma, a no-break space
before "€" and "%" (12 345,67 € ; 12,5 %). English: 12,345.67 € ; 12.5 %. None is shown as "n/d" / "n/a".

Amounts are in the warehouse's home currency ([models] home_currency; a group roll-up's: [group] currency).
An output sets it for its length with ``amounts_in(code)``; money() and every "€" of a label follow it
(GBP: 12 345,67 £, "Investissement (£)"). EUR when nothing is set.

Also the one rule for text that comes from outside (UTM values, campaign names) and ends up in a spreadsheet
or a CSV file: a cell starting with = + - @ (or a tab / carriage return) would be run as a formula by Excel,
LibreOffice or Google Sheets, so it is neutralised (OWASP "CSV injection").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

LANGUAGES = ("fr", "en")
NARROW_NBSP = "\u202f"
NBSP = "\u00a0"
# What makes a spreadsheet treat a cell as a formula (tab and CR too: some programs strip them first).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

HOME_CURRENCY = "EUR"
# Symbols people expect in a report; other currencies show their ISO code (1 234,50 SEK).
CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩"}
_SHOWN_CURRENCY: ContextVar[str] = ContextVar("roi_shown_currency", default=HOME_CURRENCY)

_SEPARATORS = {"fr": (NARROW_NBSP, ","), "en": (",", ".")}
_NOT_AVAILABLE = {"fr": "n/d", "en": "n/a"}
_MONTHS = {
    "fr": (
        [
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ]
    ),
    "en": (
        [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ]
    ),
}
_SHORT_MONTHS = {
    "fr": ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."],
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
}


def check_language(language: str) -> str:
    """`language` lower-cased if supported; ValueError naming the choices otherwise."""
    lang = (language or "").strip().lower()
    if lang not in LANGUAGES:
        raise ValueError(f"language {language!r} is not supported: use {' or '.join(LANGUAGES)}")
    return lang


def not_available(language: str = "fr") -> str:
    return _NOT_AVAILABLE[language]


def number(value: Any, places: int = 2, language: str = "fr") -> str:
    """``value`` rounded half-up to ``places`` decimals, grouped by thousands: 12 345,67 / 12,345.67."""
    if value is None:
        return not_available(language)
    amount = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if amount == 0:
        amount = abs(amount)  # never "-0,00"
    thousands, decimal_mark = _SEPARATORS[language]
    sign = "-" if amount < 0 else ""
    digits = f"{abs(amount):.{places}f}"
    whole, _, fraction = digits.partition(".")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    text = thousands.join(groups)
    return sign + text + (decimal_mark + fraction if places > 0 else "")


@contextmanager
def amounts_in(currency: str | None) -> Iterator[None]:
    """Amounts and labels shown in ``currency`` (an ISO code; None: EUR) inside the block."""
    token = _SHOWN_CURRENCY.set((currency or HOME_CURRENCY).strip().upper())
    try:
        yield
    finally:
        _SHOWN_CURRENCY.reset(token)


def shown_currency() -> str:
    return _SHOWN_CURRENCY.get()


def currency_symbol() -> str:
    """€ / $ / £ ..., else the ISO code of the currency amounts are shown in."""
    return CURRENCY_SYMBOLS.get(shown_currency(), shown_currency())


def in_shown_currency(text: str) -> str:
    """A label written with "€" in the currency amounts are shown in: "Investissement (€)" -> "(£)"."""
    symbol = currency_symbol()
    return text if symbol == "€" else text.replace("€", symbol)


def money(value: Any, language: str = "fr", places: int = 2) -> str:
    """12 345,67 € (fr) / 12,345.67 € (en), with the symbol of the currency amounts are shown in."""
    if value is None:
        return not_available(language)
    return f"{number(value, places, language)}{NBSP}{currency_symbol()}"


def percent(value: Any, language: str = "fr", places: int = 1) -> str:
    """A fraction as a percentage: 0.125 -> 12,5 % (fr) / 12.5 % (en)."""
    if value is None:
        return not_available(language)
    return f"{number(Decimal(str(value)) * 100, places, language)}{NBSP}%"


def signed_percent(value: Any, language: str = "fr", places: int = 1) -> str:
    """Like percent() with an explicit + for gains (ROI: +12,5 %)."""
    text = percent(value, language, places)
    return "+" + text if value is not None and Decimal(str(value)) > 0 else text


def ratio(value: Any, language: str = "fr", places: int = 2) -> str:
    """A plain ratio (ROAS, cost per euro of revenue): 2,35."""
    return number(value, places, language)


def integer(value: Any, language: str = "fr") -> str:
    return number(value, 0, language)


def month_label(month: date | datetime | None, language: str = "fr") -> str:
    """date(2026, 1, 1) -> 'janvier 2026' / 'January 2026'."""
    if month is None:
        return not_available(language)
    return f"{_MONTHS[language][month.month - 1]} {month.year}"


def short_month(month: date | datetime, language: str = "fr") -> str:
    """date(2026, 1, 1) -> 'janv. 2026' / 'Jan 2026', for chart axes."""
    return f"{_SHORT_MONTHS[language][month.month - 1]} {month.year}"


def day_label(value: date | datetime | None, language: str = "fr") -> str:
    if value is None:
        return not_available(language)
    if isinstance(value, datetime):
        stamp = value.strftime("%d/%m/%Y %H:%M" if language == "fr" else "%Y-%m-%d %H:%M")
        return stamp + (" UTC" if value.tzinfo is not None else "")
    return value.strftime("%d/%m/%Y" if language == "fr" else "%Y-%m-%d")


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet would treat ``text`` as a formula."""
    return bool(text) and text.startswith(FORMULA_TRIGGERS)


def neutralise(text: Any) -> Any:
    """Outside text made inert for spreadsheets: a leading apostrophe before = + - @ tab CR; others unchanged.

    Excel, LibreOffice and Google Sheets show the text after the apostrophe and never evaluate it.
    Non-text values (numbers, dates, None) are returned as they are.
    """
    if isinstance(text, str) and is_formula_like(text):
        return "'" + text
    return text
