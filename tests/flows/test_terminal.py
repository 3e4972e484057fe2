"""80-column tables: optional columns go first, long text wraps, nothing is cut, else vertical."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console

from flows.terminal import Column, table


def _render(renderable, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


COLUMNS = (
    Column("name", "campaign"),
    Column("sessions", "sessions", kind="int"),
    Column("cost", "investment", kind="money"),
    Column("roi", "ROI on revenue", kind="percent", priority=2),
    Column("note", "why", wrap=True, max_width=40, priority=1),
)


def test_a_wide_table_drops_optional_columns_wraps_text_and_formats_numbers():
    rows = [
        {
            "name": f"campagne_{i}_printemps",
            "sessions": 12345 * i,
            "cost": Decimal("1234567.5"),
            "roi": Decimal("0.125"),
            "note": "a long explanation that would never fit on one line " * 2,
        }
        for i in range(1, 4)
    ]
    lines = _render(table(rows, COLUMNS, title="ROI"))
    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert "…" not in text  # nothing cut
    assert "12,345" in text and "1,234,567.50\u00a0€" in text
    assert "ROI on revenue" not in text.splitlines()[1]  # dropped first (highest priority number)
    assert "(not shown at this width: ROI on revenue; --json has every field)" in text


def test_values_are_never_read_as_markup_and_nothing_fits_goes_vertical():
    rows = [
        {"name": "[bold]x[/bold] [models.fx_rates]", "sessions": 1, "cost": None, "roi": None, "note": ""}
    ]
    assert "[models.fx_rates]" in "\n".join(_render(table(rows, COLUMNS)))
    must = (Column("a", "a" * 30), Column("b", "b" * 30), Column("c", "c" * 30))
    lines = _render(table([{"a": "1", "b": "2", "c": "3"}], must))
    assert lines[0].startswith("-[ 1 ]") and any(line.startswith("a" * 30) for line in lines)
    assert all(len(line) <= 80 for line in lines)


def test_a_run_summary_shows_counts_with_separators_and_shares_as_percents():
    from flows.run_view import render_run

    result = {
        "run_id": "nightly-1",
        "rows": 12345,
        "ga4_untied_sessions_share": Decimal("0.8643"),
        "ga4_cost_available": True,
        "rejects": {"spend_file": 2},
    }
    text = "\n".join(line for block in render_run(result) for line in _render(block))
    assert "rows loaded                12,345" in text
    assert "ga4 untied sessions share  86.4\u00a0%" in text and "0.8643" not in text  # no-break space
    assert "ga4 cost available         yes" in text
    assert all(len(line) <= 80 for line in text.splitlines())
