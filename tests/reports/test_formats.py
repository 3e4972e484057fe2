"""Formatting, whole-deal apportioning and spreadsheet-text neutralising, over the realistic range (0.01 to
10^12, negative ROI) with hypothesis."""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from connectors.reports.data import Period, RoiRow, add_rows, apportion
from connectors.reports.formats import money, month_label, neutralise, percent, signed_percent

amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False)


def _parse(text: str, language: str) -> Decimal:
    thousands, decimal_mark = ("\u202f", ",") if language == "fr" else (",", ".")
    body = (
        text.replace("\u00a0€", "").replace("\u00a0%", "").replace(thousands, "").replace(decimal_mark, ".")
    )
    return Decimal(body)


@given(amounts)
def test_money_reads_back_exactly_in_both_languages(value):
    for language in ("fr", "en"):
        text = money(value, language)
        assert text.endswith("\u00a0€")
        assert _parse(text, language) == value
        whole = text.split("," if language == "fr" else ".")[0].lstrip("-")
        groups = whole.split("\u202f" if language == "fr" else ",")
        assert all(len(g) == 3 for g in groups[1:]) and 1 <= len(groups[0]) <= 3


@given(st.decimals(min_value=Decimal("-1"), max_value=Decimal("1000"), places=6, allow_nan=False))
def test_percent_is_the_fraction_times_100_rounded_half_up(value):
    text = percent(value)
    expected = (value * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    assert _parse(text, "fr") == expected and text.endswith("\u00a0%")
    signed = signed_percent(value)
    assert signed.startswith("+") == (value > 0) or expected == 0


def test_examples_a_manager_reads():
    assert money(Decimal("12345.67")) == "12\u202f345,67\u00a0€"
    assert money(Decimal("12345.67"), "en") == "12,345.67\u00a0€"
    assert signed_percent(Decimal("0.125")) == "+12,5\u00a0%"
    assert percent(Decimal("1.5")) == "150,0\u00a0%"
    assert money(None) == "n/d" and money(None, "en") == "n/a"
    assert money(Decimal("-0.001")) == "0,00\u00a0€"  # never "-0,00"
    assert month_label(date(2026, 8, 1)) == "août 2026"
    assert Period.parse("2026-03").label() == "mars 2026"
    assert Period.parse(None, "2026-01", "2026-03").label("en") == "January 2026 – March 2026"


@given(st.lists(st.floats(min_value=0, max_value=5_000, allow_nan=False), max_size=60))
def test_apportioned_deals_are_whole_add_up_and_stay_within_one(values):
    whole = apportion(values)
    assert all(isinstance(w, int) for w in whole)
    exact = sum((Decimal(repr(v)) for v in values), Decimal(0))
    assert sum(whole) == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert all(abs(w - v) < 1 + 1e-9 for w, v in zip(whole, values, strict=True))


@given(st.lists(st.tuples(amounts, amounts), min_size=1, max_size=20))
def test_totals_recompute_ratios_from_sums(pairs):
    rows = [RoiRow(cost=abs(c), revenue=abs(r), gross_margin=abs(r) / 2) for c, r in pairs]
    total = add_rows(rows)
    cost = sum((abs(c) for c, _ in pairs), Decimal(0))
    revenue = sum((abs(r) for _, r in pairs), Decimal(0))
    assert total.cost == cost and total.revenue == revenue
    if cost:
        assert total.roi_on_revenue == ((revenue - cost) / cost).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    else:
        assert total.roi_on_revenue is None and total.roas is None
    rows.append(RoiRow(cost=Decimal(1), revenue=Decimal(1), gross_margin=None))
    assert add_rows(rows).gross_margin is None and add_rows(rows).roi_on_margin is None


@given(st.text(max_size=30))
def test_neutralised_text_never_starts_a_formula(text):
    safe = neutralise(text)
    assert not re.match(r"[=+\-@\t\r]", safe)
    assert safe == text or safe == "'" + text
