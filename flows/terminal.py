"""Tables for an 80-column terminal: columns declared once, numbers formatted, never a cut header.

A table first drops its least important columns (highest ``priority``) until the rest fit; long text columns
marked ``wrap`` wrap onto several lines instead of being cut; when even the columns that must stay do not fit,
the rows are shown vertically, one ``header: value`` line per cell (like psql's expanded display).
`--json` output never goes through here: it keeps the raw values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from connectors.reports import formats

WIDTH = 80
COLUMN_GAP = 3  # between two columns: 1 padding each side + the (blank) divider; no outer edges
MIN_WRAP_WIDTH = 12


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text | int | money | percent | when | day | age
    priority: int = 0  # 0 always shown; 1, 2, ... dropped first (highest first) when the table is too wide
    wrap: bool = False  # long values wrap onto several lines (errors, reasons); others never wrap
    max_width: int | None = None  # wrap columns: the widest they grow

    @property
    def right_aligned(self) -> bool:
        return self.kind in ("int", "money", "percent", "age")


TERMINAL_LANGUAGE = "en"  # ops output; the marketing outputs (reports, spreadsheets, CRM labels) are French


def format_int(value: Any) -> str:
    """12,345: numbers come from the one formatting module (connectors.reports.formats)."""
    return "" if value is None else formats.integer(value, TERMINAL_LANGUAGE)


def format_when(value: datetime | None) -> str:
    """2026-12-01 02:00 UTC (seconds are noise in a status)."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M") + (" UTC" if value.tzinfo is not None else "")


def format_age(value: timedelta | None) -> str:
    from flows.status import describe_age

    return "" if value is None else describe_age(value)


def cell_text(value: Any, kind: str = "text") -> str:
    if value is None:
        return ""
    if kind == "int":
        return format_int(value)
    if kind == "money":
        return formats.money(value, TERMINAL_LANGUAGE)
    if kind == "percent":
        return formats.percent(value, TERMINAL_LANGUAGE)
    if kind == "age" and isinstance(value, timedelta):
        return format_age(value)
    if isinstance(value, datetime):
        return format_when(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple):
        return "; ".join(cell_text(v) for v in value)
    return str(value)


def _width(column: Column, cells: Iterable[str], *, squeeze: float) -> int:
    """The column's width: its longest cell, never narrower than its header; a wrap column is capped at
    ``squeeze`` times its max_width (0: MIN_WRAP_WIDTH)."""
    longest = max((len(line) for cell in cells for line in (cell.splitlines() or [""])), default=0)
    width = max(len(column.header), longest)
    if column.wrap:
        cap = column.max_width or width
        cap = max(int(cap * squeeze), MIN_WRAP_WIDTH)
        width = max(min(width, cap), len(column.header.split()[0]) if column.header else 0)
    return width


def _drop_until_fits(
    columns: Sequence[Column], rows: Sequence[dict[str, str]], width: int, *, squeeze: float, drop_wrap: bool
) -> list[Column] | None:
    shown = list(columns)
    while True:
        widths = [_width(c, (r[c.key] for r in rows), squeeze=squeeze) for c in shown]
        if sum(widths) + COLUMN_GAP * (len(shown) - 1) <= width:
            return shown
        droppable = [c for c in shown if c.priority > 0 and (drop_wrap or not c.wrap)]
        if not droppable:
            return None
        shown.remove(max(droppable, key=lambda c: (c.priority, shown.index(c))))


def fitting_columns(
    columns: Sequence[Column], rows: Sequence[dict[str, str]], width: int
) -> list[Column] | None:
    """The columns to show within ``width``, dropping optional columns by priority: first with wrap columns
    at their max_width, then at half of it, then as narrow as they go (text wraps rather than disappears);
    last, optional text columns go too. None when even the must-show columns do not fit."""
    for squeeze, drop_wrap in ((1.0, False), (0.5, False), (0.0, False), (0.0, True)):
        shown = _drop_until_fits(columns, rows, width, squeeze=squeeze, drop_wrap=drop_wrap)
        if shown is not None:
            return shown
    return None


def table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    width: int = WIDTH,
    empty: str = "none",
) -> RenderableType:
    """``rows`` (dicts keyed by Column.key) as a table that fits ``width`` columns (see the module doc)."""
    heading = Text(title, style="bold") if title else None
    if not rows:
        return Group(*([heading] if heading else []), Text(f"  {empty}"))
    cells = [{c.key: cell_text(row.get(c.key), c.kind) for c in columns} for row in rows]
    shown = fitting_columns(columns, cells, width)
    if shown is None:
        return _vertical(cells, columns, heading, width)
    grid = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        title=None,
        expand=False,
        header_style="bold",
    )
    for column in shown:
        grid.add_column(
            column.header,
            justify="right" if column.right_aligned else "left",
            no_wrap=not column.wrap,
            overflow="fold" if column.wrap else "ellipsis",
            max_width=column.max_width if column.wrap else None,
        )
    for row in cells:
        grid.add_row(*(Text(row[c.key]) for c in shown))  # Text: values are never read as rich markup
    hidden = [c.header for c in columns if c not in shown]
    parts: list[RenderableType] = [heading] if heading else []
    parts.append(grid)
    if hidden:
        parts.append(
            Text(f"  (not shown at this width: {', '.join(hidden)}; --json has every field)", style="dim")
        )
    return Group(*parts)


def _vertical(
    cells: list[dict[str, str]], columns: Sequence[Column], heading: Text | None, width: int
) -> RenderableType:
    label_width = max(len(c.header) for c in columns)
    lines: list[RenderableType] = [heading] if heading else []
    for index, row in enumerate(cells, start=1):
        lines.append(Text(f"-[ {index} ]" + "-" * max(width - 8 - len(str(index)), 0), style="dim"))
        for column in columns:
            value = row[column.key]
            grid = Table.grid(padding=(0, 1))
            grid.add_column(width=label_width, no_wrap=True)
            grid.add_column(overflow="fold")
            grid.add_row(Text(column.header, style="bold"), Text(value))
            lines.append(grid)
    return Group(*lines)


def key_values(pairs: Sequence[tuple[str, str]], *, title: str | None = None) -> RenderableType:
    """Label / value lines (values wrap under themselves, never under the label)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    for label, value in pairs:
        grid.add_row(Text(label), Text(value))
    return Group(Text(title, style="bold"), grid) if title else grid
