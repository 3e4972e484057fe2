"""Builds the attribution SQL models on hand-made input tables in a real DuckDB file.

The vectors in /work/shared/reference are journeys, not CRM records, so the tests load them straight into tables
shaped like `int_deal_touchpoints`, `int_deals` and `int_contact_paths` (docs/contracts.md section 4) and run the
attribution model files, unchanged, in dependency order: `create or replace table <file stem> as <sql>`, exactly
what models.runner does for the whole project.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
ATTRIBUTION_DIR = MODELS_DIR / "sql" / "intermediate" / "attribution"
HEURISTIC_MODELS = (
    "first_touch", "last_touch", "last_non_direct", "linear", "time_decay",
    "u_shaped", "w_shaped", "full_path", "j_shaped", "inverse_j",
)
MARKOV_MODELS = ("markov_transitions", "markov_removal_effects", "markov")
ALL_MODELS = HEURISTIC_MODELS + ("markov",)
BUILD_ORDER = [ATTRIBUTION_DIR / f"{stem}.sql" for stem in HEURISTIC_MODELS + MARKOV_MODELS] + [
    MODELS_DIR / "sql" / "marts" / "attribution_credits.sql"
]
DATA_TESTS = sorted((MODELS_DIR / "tests").glob("attribution_*.sql"))
CONVERTED_AT = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)

INPUT_DDL = """
create or replace table cfg_params (name varchar, value varchar);
create or replace table int_deals (
    deal_id bigint, contact_id bigint, is_won boolean, won_revenue decimal(18, 2), gross_margin decimal(18, 2));
create or replace table int_deal_touchpoints (
    deal_id bigint, contact_id bigint, touchpoint_id varchar, touchpoint_at timestamptz, channel varchar,
    source varchar, medium varchar, campaign varchar, term varchar, content varchar, touch_index integer,
    n_touches integer, is_first_touch boolean, is_lead_creation boolean, is_deal_creation boolean,
    is_closed_won boolean, conversion_at timestamptz, days_before_conversion double, is_won boolean);
create or replace table int_contact_paths (
    path_id varchar, contact_id bigint, deal_id bigint, is_conversion boolean, conversion_value decimal(18, 2),
    touch_index integer, channel varchar, touchpoint_at timestamptz);
"""


@dataclass
class Touch:
    channel: str
    days_before_conversion: float = 0.0
    lead_creation: bool = False
    deal_creation: bool = False
    closed_won: bool = False


@dataclass
class Deal:
    deal_id: int
    touches: Sequence[Touch]
    won_revenue: Decimal | None = None
    gross_margin: Decimal | None = None
    is_won: bool = True
    contact_id: int = field(default=0)


def create_inputs(con: duckdb.DuckDBPyConnection, half_life_days: float | None = 7) -> None:
    con.execute(INPUT_DDL)
    if half_life_days is not None:
        con.execute("insert into cfg_params values ('half_life_days', ?)", [str(half_life_days)])


def insert_deals(con: duckdb.DuckDBPyConnection, deals: Iterable[Deal]) -> None:
    deal_rows, touch_rows = [], []
    for deal in deals:
        contact_id = deal.contact_id or deal.deal_id
        deal_rows.append((deal.deal_id, contact_id, deal.is_won, deal.won_revenue, deal.gross_margin))
        n = len(deal.touches)
        for index, touch in enumerate(deal.touches, start=1):
            at = CONVERTED_AT - dt.timedelta(days=touch.days_before_conversion, seconds=n - index)
            touch_rows.append((
                deal.deal_id, contact_id, f"{deal.deal_id}-{index}", at, touch.channel,
                f"src_{touch.channel}", f"med_{touch.channel}", None, None, None, index, n, index == 1,
                touch.lead_creation, touch.deal_creation, touch.closed_won, CONVERTED_AT,
                touch.days_before_conversion, deal.is_won,
            ))
    con.executemany("insert into int_deals values (?, ?, ?, ?, ?)", deal_rows)
    if touch_rows:
        con.executemany(
            "insert into int_deal_touchpoints values (" + ", ".join("?" * 19) + ")", touch_rows
        )


def insert_paths(con: duckdb.DuckDBPyConnection, vector_input: list[dict]) -> None:
    """One journey per conversion and per null of each aggregated path (value split evenly over its conversions)."""
    rows = []
    journey = 0
    for path in vector_input:
        channels = [c.strip() for c in path["path"].split(">")]
        conversions, nulls = int(path["total_conversions"]), int(path["total_null"])
        value = Decimal(str(path["total_conversion_value"]))
        for converted in [True] * conversions + [False] * nulls:
            journey += 1
            per_journey = (value / conversions).quantize(Decimal("0.01")) if converted else Decimal("0")
            for index, channel in enumerate(channels, start=1):
                rows.append((
                    f"j{journey}", journey, journey if converted else None, converted, per_journey, index,
                    channel, CONVERTED_AT - dt.timedelta(hours=len(channels) - index),
                ))
    con.executemany("insert into int_contact_paths values (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def build_attribution(con: duckdb.DuckDBPyConnection) -> None:
    for path in BUILD_ORDER:
        con.execute(f"create or replace table {path.stem} as {path.read_text()}")


def failing_data_tests(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {path.stem: rows for path in DATA_TESTS if (rows := con.execute(path.read_text()).fetchall())}


def credits_by_deal(con: duckdb.DuckDBPyConnection, model: str, deal_id: int) -> list[float]:
    """Credit per touch, in touch order, of one deal under one model (0 for touches the model does not credit)."""
    rows = con.execute(
        f"""
        select t.touch_index, coalesce(m.credit, 0)
        from int_deal_touchpoints t
        left join {model} m on m.deal_id = t.deal_id and m.touch_index = t.touch_index
        where t.deal_id = ?
        order by t.touch_index
        """,
        [deal_id],
    ).fetchall()
    return [credit for _, credit in rows]
