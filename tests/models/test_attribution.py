"""Attribution models (SQL on DuckDB) against the exact reference vectors, to 1e-9.

The models are built on hand-made input tables in a real DuckDB file.

The vectors in /work/shared/reference are journeys, not CRM records, so the tests load them straight into
tables shaped like `int_deal_touchpoints`, `int_deals` and `int_contact_paths` (docs/contracts.md section 4)
and run the attribution model files, unchanged, in dependency order: `create or replace table <file stem> as
<sql>`, exactly what models.runner does for the whole project.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pytest

from connectors.config import ATTRIBUTION_MODELS

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
ATTRIBUTION_DIR = MODELS_DIR / "sql" / "intermediate" / "attribution"
HEURISTIC_MODELS = tuple(m for m in ATTRIBUTION_MODELS if m != "markov")  # one SQL file each
MARKOV_MODELS = ("markov_transitions", "markov_removal_effects", "markov")
ALL_MODELS = ATTRIBUTION_MODELS
BUILD_ORDER = [
    ATTRIBUTION_DIR / f"{stem}.sql" for stem in ("attribution_models", *HEURISTIC_MODELS, *MARKOV_MODELS)
] + [MODELS_DIR / "sql" / "marts" / "attribution_credits.sql"]
DATA_TESTS = sorted((MODELS_DIR / "tests").glob("attribution_*.sql"))
# Exact reference vectors (ChannelAttribution-checked numbers) kept beside the tests so CI always runs them.
REFERENCE_DIR = Path(os.environ.get("ROI_ATTRIBUTION_VECTORS_DIR", Path(__file__).parent / "vectors"))
TOLERANCE = 1e-9
CONVERTED_AT = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)

INPUT_DDL = """
create or replace table cfg_params (name varchar, value varchar);
create or replace table int_deals (
    deal_id bigint, primary_contact_id bigint, is_won boolean,
    won_revenue decimal(38, 2), gross_margin decimal(38, 2));
create or replace table int_deal_touchpoints (
    deal_id bigint, contact_id bigint, touchpoint_id varchar, touchpoint_at timestamptz, channel varchar,
    source varchar, medium varchar, campaign varchar, term varchar, content varchar, touch_index integer,
    n_touches integer, is_first_touch boolean, is_lead_creation boolean, is_deal_creation boolean,
    is_closed_won boolean, conversion_at timestamptz, days_before_conversion double, is_won boolean);
create or replace table int_contact_paths (
    path_id varchar, contact_id bigint, deal_id bigint, is_conversion boolean,
    conversion_value decimal(18, 2),
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


def create_inputs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(INPUT_DDL)


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    """One multi-row VALUES statement (executemany is slow in DuckDB 2.0)."""
    if not rows:
        return
    placeholders = "(" + ", ".join("?" * len(rows[0])) + ")"
    con.execute(
        f"insert into {table} values " + ", ".join([placeholders] * len(rows)),
        [value for row in rows for value in row],
    )


def insert_deals(con: duckdb.DuckDBPyConnection, deals: Iterable[Deal]) -> None:
    deal_rows, touch_rows = [], []
    for deal in deals:
        contact_id = deal.contact_id or deal.deal_id
        deal_rows.append((deal.deal_id, contact_id, deal.is_won, deal.won_revenue, deal.gross_margin))
        n = len(deal.touches)
        for index, touch in enumerate(deal.touches, start=1):
            at = CONVERTED_AT - dt.timedelta(days=touch.days_before_conversion, seconds=n - index)
            touch_rows.append(
                (
                    deal.deal_id,
                    contact_id,
                    f"{deal.deal_id}-{index}",
                    at,
                    touch.channel,
                    f"src_{touch.channel}",
                    f"med_{touch.channel}",
                    None,
                    None,
                    None,
                    index,
                    n,
                    index == 1,
                    touch.lead_creation,
                    touch.deal_creation,
                    touch.closed_won,
                    CONVERTED_AT,
                    touch.days_before_conversion,
                    deal.is_won,
                )
            )
    insert_rows(con, "int_deals", deal_rows)
    insert_rows(con, "int_deal_touchpoints", touch_rows)


def insert_paths(con: duckdb.DuckDBPyConnection, vector_input: list[dict]) -> None:
    """One journey per conversion and per null of each aggregated path (value split over its conversions)."""
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
                rows.append(
                    (
                        f"j{journey}",
                        journey,
                        journey if converted else None,
                        converted,
                        per_journey,
                        index,
                        channel,
                        CONVERTED_AT - dt.timedelta(hours=len(channels) - index),
                    )
                )
    insert_rows(con, "int_contact_paths", rows)


def build_attribution(con: duckdb.DuckDBPyConnection, params: dict[str, object] | None = None) -> None:
    """Build the attribution models (and only them) over the hand-made inputs in `con`'s database file.

    Through models.runner (select the mart, skip every model that is not attribution, so the hand-made int_*
    tables are used as they are); the attribution data tests must pass. Without the runner module the model
    files are executed directly in BUILD_ORDER.
    """
    try:
        from models import runner
    except ModuleNotFoundError as exc:
        if exc.name != "models.runner":
            raise
        con.execute("delete from cfg_params")
        for name, value in (params or {}).items():
            con.execute("insert into cfg_params values (?, ?)", [name, str(value)])
        for path in BUILD_ORDER:
            con.execute(f"create or replace table {path.stem} as {path.read_text()}")
        return
    db_path = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()[0][0]
    not_attribution = set(runner.discover_models()) - {path.stem for path in BUILD_ORDER}
    result = runner.build(db_path, params=params, select=["attribution_credits"], skip=not_attribution)
    assert [m.name for m in result.models][-1] == "attribution_credits"
    assert not [t.describe() for t in result.tests if t.name.startswith("attribution_") and not t.passed]


def failing_data_tests(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {path.stem: rows for path in DATA_TESTS if (rows := con.execute(path.read_text()).fetchall())}


def credits_by_deal(con: duckdb.DuckDBPyConnection, model: str, deal_id: int) -> list[float]:
    """Credit per touch, in touch order, of one deal under one model (0 for touches it does not credit)."""
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


def assert_close(actual: float | None, expected: float, what: str) -> None:
    assert actual is not None, f"{what}: no value"
    assert abs(actual - expected) <= TOLERANCE, f"{what}: {actual!r} != {expected!r}"


# ---------------------------------------------------------------------------------------- heuristic vectors

HEURISTIC_VECTORS = json.loads((REFERENCE_DIR / "heuristic-vectors.json").read_text())
ATTRIBUTION_VECTORS = json.loads((REFERENCE_DIR / "attribution-vectors.json").read_text())
CHANNELS = ("paid_search", "email", "organic_social", "referral", "paid_social", "events")


def _plain(n: int) -> list[Touch]:
    return [Touch(CHANNELS[i]) for i in range(n)]


def _milestones(n: int, lead: int, deal: int, won: int | None = None) -> list[Touch]:
    """n touches with the lead-creation, deal-creation and closed-won roles on the given (0-based) touches."""
    return [
        Touch(CHANNELS[i], lead_creation=i == lead, deal_creation=i == deal, closed_won=i == won)
        for i in range(n)
    ]


def _decay(days: list[float]) -> list[Touch]:
    return [Touch(CHANNELS[i], days_before_conversion=d) for i, d in enumerate(days)]


# vector name -> (model, touches); the names in heuristic-vectors.json spell out the set-up (0-based indexes)
HEURISTIC_SETUPS: dict[str, tuple[str, list[Touch]]] = {
    "u_shaped_n1": ("u_shaped", _plain(1)),
    "u_shaped_n2": ("u_shaped", _plain(2)),
    "u_shaped_n3": ("u_shaped", _plain(3)),
    "u_shaped_n5": ("u_shaped", _plain(5)),
    "time_decay_hl7_days[14,7,0]": ("time_decay", _decay([14, 7, 0])),
    "time_decay_hl7_days[3,1]": ("time_decay", _decay([3, 1])),
    "time_decay_hl7_days[0]": ("time_decay", _decay([0])),
    "time_decay_hl7_days[5,5]": ("time_decay", _decay([5, 5])),
    "w_shaped_5_touches_FT0_LC2_OC3": ("w_shaped", _milestones(5, lead=2, deal=3)),
    "w_shaped_3_touches_FT=LC0_OC2": ("w_shaped", _milestones(3, lead=0, deal=2)),
    "w_shaped_3_touches_FT0_LC1_OC2(no_others)": ("w_shaped", _milestones(3, lead=1, deal=2)),
    "w_shaped_1_touch_all_roles": ("w_shaped", _milestones(1, lead=0, deal=0, won=0)),
    "full_path_6_touches_FT0_LC1_OC3_CW5": ("full_path", _milestones(6, lead=1, deal=3, won=5)),
    "full_path_4_touches_no_others": ("full_path", _milestones(4, lead=1, deal=2, won=3)),
}
# Rules beyond the shared vectors (docs/attribution.md): j / inverse-j, last non-direct, first / last touch.
RULE_CASES: list[tuple[str, list[Touch], list[float]]] = [
    ("j_shaped", _plain(1), [1.0]),
    ("j_shaped", _plain(2), [0.25, 0.75]),
    ("j_shaped", _plain(3), [0.2, 0.2, 0.6]),
    ("j_shaped", _plain(5), [0.2, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.6]),
    ("inverse_j", _plain(1), [1.0]),
    ("inverse_j", _plain(2), [0.75, 0.25]),
    ("inverse_j", _plain(4), [0.6, 0.1, 0.1, 0.2]),
    ("first_touch", _plain(3), [1.0, 0.0, 0.0]),
    ("last_touch", _plain(3), [0.0, 0.0, 1.0]),
    ("linear", [Touch("email"), Touch("email"), Touch("direct")], [1 / 3, 1 / 3, 1 / 3]),
    (
        "last_non_direct",
        [Touch("email"), Touch("referral"), Touch("direct"), Touch("direct")],
        [0, 1.0, 0, 0],
    ),
    ("last_non_direct", [Touch("direct"), Touch("direct")], [0.0, 1.0]),
    ("last_non_direct", [Touch("direct"), Touch("email")], [0.0, 1.0]),
    # a touch that creates both the lead and the deal takes 60 %; no closed-won touch yet (open deal)
    ("w_shaped", _milestones(4, lead=2, deal=2), [0.3, 0.05, 0.6, 0.05]),
    ("full_path", _milestones(4, lead=2, deal=2), [0.225 / 0.775, 0.05 / 0.775, 0.45 / 0.775, 0.05 / 0.775]),
    ("w_shaped", _milestones(2, lead=-1, deal=-1), [0.3 / 0.4, 0.1 / 0.4]),
]


@pytest.fixture(scope="module")
def heuristic_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(tmp_path_factory.mktemp("attribution") / "heuristics.duckdb"))
    create_inputs(con)
    deals = [
        Deal(i, touches, Decimal("100.00"), Decimal("40.00"))
        for i, (_, touches) in enumerate(HEURISTIC_SETUPS.values(), start=1)
    ]
    deals += [
        Deal(1000 + i, touches, Decimal("99.99"), Decimal("33.33"))
        for i, (_, touches, _) in enumerate(RULE_CASES)
    ]
    insert_deals(con, deals)
    build_attribution(con)
    yield con
    con.close()


def test_every_heuristic_vector_has_a_setup() -> None:
    assert set(HEURISTIC_SETUPS) == set(HEURISTIC_VECTORS)


@pytest.mark.parametrize("name", list(HEURISTIC_SETUPS))
def test_heuristic_vector(heuristic_db: duckdb.DuckDBPyConnection, name: str) -> None:
    model, _ = HEURISTIC_SETUPS[name]
    deal_id = list(HEURISTIC_SETUPS).index(name) + 1
    actual = credits_by_deal(heuristic_db, model, deal_id)
    expected = HEURISTIC_VECTORS[name]
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert_close(a, e, f"{name} touch {i}")


@pytest.mark.parametrize("case", range(len(RULE_CASES)))
def test_position_rules(heuristic_db: duckdb.DuckDBPyConnection, case: int) -> None:
    model, _, expected = RULE_CASES[case]
    actual = credits_by_deal(heuristic_db, model, 1000 + case)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert_close(a, e, f"{model} case {case} touch {i}")


def test_time_decay_reads_half_life_from_cfg_params(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "half_life.duckdb"))
    create_inputs(con)
    insert_deals(con, [Deal(1, _decay([14, 7, 0]), Decimal("10.00"))])
    build_attribution(con, params={"half_life_days": 14})
    weights = [2 ** (-14 / 14), 2 ** (-7 / 14), 1.0]
    for i, (a, w) in enumerate(zip(credits_by_deal(con, "time_decay", 1), weights, strict=True)):
        assert_close(a, w / sum(weights), f"half-life 14 touch {i}")
    # without the parameter the 7-day default applies
    build_attribution(con)
    for i, (a, e) in enumerate(
        zip(
            credits_by_deal(con, "time_decay", 1),
            HEURISTIC_VECTORS["time_decay_hl7_days[14,7,0]"],
            strict=True,
        )
    ):
        assert_close(a, e, f"default half-life touch {i}")


# ------------------------------------------------------------ ChannelAttribution heuristics (channel level)


CA_DEALS_FROM = (
    1001  # the markov_db fixture also holds one won deal per conversion of the vector, from this id
)


def _deals_from_paths(vector_input: list[dict]) -> list[Deal]:
    """One won deal per conversion of each aggregated path, worth value / conversions (nulls are skipped)."""
    deals: list[Deal] = []
    for path in vector_input:
        conversions = int(path["total_conversions"])
        value = Decimal(str(path["total_conversion_value"]))
        for _ in range(conversions):
            touches = [Touch(c.strip()) for c in path["path"].split(">")]
            deal_id = CA_DEALS_FROM + len(deals)
            deals.append(Deal(deal_id, touches, value / conversions, value / conversions / 2))
    return deals


def test_first_last_linear_match_channelattribution_heuristics(markov_db) -> None:
    vector, con = markov_db
    expected = ATTRIBUTION_VECTORS[vector]["heuristics_ca_semantics"]
    for model, prefix in (
        ("first_touch", "first_touch"),
        ("last_touch", "last_touch"),
        ("linear", "linear_touch"),
    ):
        rows = con.execute(
            """
            select c.channel, sum(c.credit), sum(c.credit * d.won_revenue::double), sum(c.revenue)
            from attribution_credits c join int_deals d using (deal_id)
            where c.attribution_model = ? and c.deal_id >= ?
            group by c.channel
            """,
            [model, CA_DEALS_FROM],
        ).fetchall()
        by_channel = {channel: (conv, value, revenue) for channel, conv, value, revenue in rows}
        for channel, numbers in expected.items():
            conv, value, revenue = by_channel.get(channel, (0.0, 0.0, Decimal(0)))
            assert_close(conv, numbers[f"{prefix}_conversions"], f"{vector} {model} {channel} conversions")
            assert_close(value, numbers[f"{prefix}_value"], f"{vector} {model} {channel} value")
            # the DECIMAL revenue column is the same split, rounded to the cent per touch
            assert abs(float(revenue) - numbers[f"{prefix}_value"]) <= 0.01 * len(expected)


# --------------------------------------------------------------------------------------------------- Markov


@pytest.fixture(scope="module", params=list(ATTRIBUTION_VECTORS))
def markov_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    vector = request.param
    con = duckdb.connect(str(tmp_path_factory.mktemp("markov") / f"{vector}.duckdb"))
    create_inputs(con)
    insert_paths(con, ATTRIBUTION_VECTORS[vector]["input"])
    # deals whose touch paths reuse the vector's channels: credits must follow the removal effects
    insert_deals(
        con,
        [
            Deal(1, [Touch(c) for c in _first_channels(vector, 3)], Decimal("300.00"), Decimal("120.00")),
            Deal(2, [Touch(c) for c in _first_channels(vector, 2)] * 2, Decimal("50.00"), Decimal("20.00")),
            Deal(
                3, [Touch("never_seen_channel"), Touch("another_unknown")], Decimal("10.00"), Decimal("4.00")
            ),
            *_deals_from_paths(ATTRIBUTION_VECTORS[vector]["input"]),
        ],
    )
    build_attribution(con)
    yield vector, con
    con.close()


def _first_channels(vector: str, n: int) -> list[str]:
    seen: list[str] = []
    for path in ATTRIBUTION_VECTORS[vector]["input"]:
        for channel in (c.strip() for c in path["path"].split(">")):
            if channel not in seen:
                seen.append(channel)
    return seen[:n]


def test_markov_transition_matrix(markov_db) -> None:
    vector, con = markov_db
    expected = ATTRIBUTION_VECTORS[vector]["markov_infinite_horizon"]["transition_matrix"]
    rows = con.execute("select from_state, to_state, probability from markov_transitions").fetchall()
    actual = {(f, t): p for f, t, p in rows}
    expected_pairs = {(f, t): p for f, targets in expected.items() for t, p in targets.items()}
    assert set(actual) == set(expected_pairs)
    for pair, probability in expected_pairs.items():
        assert_close(actual[pair], probability, f"{vector} transition {pair}")


@pytest.mark.parametrize("horizon", ["markov_infinite_horizon", "markov_ca_default_horizon"])
def test_markov_removal_effects_and_attribution(markov_db, horizon: str) -> None:
    vector, con = markov_db
    expected = ATTRIBUTION_VECTORS[vector][horizon]
    name = "infinite" if horizon == "markov_infinite_horizon" else "ca_default"
    rows = con.execute(
        """
        select channel, horizon_steps, p_conversion, removal_effect_conversions, removal_effect_value,
            attributed_conversions, attributed_value
        from markov_removal_effects where horizon = ?
        """,
        [name],
    ).fetchall()
    actual = {row[0]: row[1:] for row in rows}
    assert set(actual) == {r["channel_name"] for r in expected["result"]}
    for result in expected["result"]:
        channel = result["channel_name"]
        steps, p_conv, re_conv, re_value, conversions, value = actual[channel]
        assert steps == expected.get("H")
        assert_close(p_conv, expected["p_conv"], f"{vector} {name} P(conv)")
        assert_close(re_conv, result["removal_effect_conv"], f"{vector} {name} {channel} RE conversions")
        assert_close(re_value, result["removal_effect_value"], f"{vector} {name} {channel} RE value")
        assert_close(conversions, result["total_conversions"], f"{vector} {name} {channel} conversions")
        # channel-level value attribution (value per conversion by last channel, as ChannelAttribution)
        assert_close(value, result["total_conversion_value"], f"{vector} {name} {channel} value")


def test_markov_long_loops_converge_to_flow_conservation(tmp_path: Path) -> None:
    """Long back-and-forth journeys make a slowly draining loop; the infinite horizon must still be exact.

    For the first-order chain built from the journeys themselves, P(conv) = conversions / journeys (flow
    conservation, as the 0.4 and 0.3 of the vectors), whatever the loop structure.
    """
    con = duckdb.connect(str(tmp_path / "loops.duckdb"))
    create_inputs(con)
    long_loop = " > ".join(["social", "email"] * 40)
    insert_paths(
        con,
        [
            {"path": long_loop, "total_conversions": 3, "total_conversion_value": 300.0, "total_null": 1},
            {
                "path": long_loop + " > search",
                "total_conversions": 1,
                "total_conversion_value": 90.0,
                "total_null": 4,
            },
            {
                "path": "search > social",
                "total_conversions": 0,
                "total_conversion_value": 0.0,
                "total_null": 2,
            },
        ],
    )
    insert_deals(con, [Deal(1, [Touch("social"), Touch("search")], Decimal("90.00"))])
    build_attribution(con)
    rows = con.execute(
        "select horizon, horizon_steps, channel, p_conversion, removal_effect_conversions "
        "from markov_removal_effects order by horizon, channel"
    ).fetchall()
    infinite = {channel: (p, re) for horizon, _, channel, p, re in rows if horizon == "infinite"}
    assert set(infinite) == {"email", "search", "social"}
    for channel, (p_conv, removal_effect) in infinite.items():
        assert_close(p_conv, 4 / 11, f"P(conv) with {channel} present")
        assert 0 <= removal_effect <= 1
    # removal effects against a direct linear solve of the same chain: P = [(I - Q)^-1 r]_start
    transitions = con.execute("select from_state, to_state, probability from markov_transitions").fetchall()
    for channel, (_, removal_effect) in infinite.items():
        states = sorted({f for f, _, _ in transitions} - {channel})
        index = {state: i for i, state in enumerate(states)}
        q = np.zeros((len(states), len(states)))
        r = np.zeros(len(states))
        for f, to, probability in transitions:
            if f in index and to in index:
                q[index[f], index[to]] = probability
            elif f in index and to == "(conversion)":
                r[index[f]] = probability
        p_without = np.linalg.solve(np.eye(len(states)) - q, r)[index["(start)"]]
        assert_close(removal_effect, 1 - p_without / (4 / 11), f"{channel} removal effect vs linear solve")
    assert {steps for horizon, steps, *_ in rows if horizon == "ca_default"} == {82}
    con.close()


def test_markov_deal_credits_follow_removal_effects(markov_db) -> None:
    vector, con = markov_db
    effects = {
        r["channel_name"]: r["removal_effect_conv"]
        for r in ATTRIBUTION_VECTORS[vector]["markov_infinite_horizon"]["result"]
    }
    for deal_id, channels, repeats in (
        (1, _first_channels(vector, 3), 1),
        (2, _first_channels(vector, 2), 2),
    ):
        total = sum(effects[c] for c in channels)
        expected = [effects[c] / total / repeats for c in channels] * repeats
        for i, (a, e) in enumerate(zip(credits_by_deal(con, "markov", deal_id), expected, strict=True)):
            assert_close(a, e, f"{vector} deal {deal_id} touch {i}")
    # channels absent from the chain have no removal effect: the deal is shared equally, still summing to 1
    assert credits_by_deal(con, "markov", 3) == [0.5, 0.5]
    assert failing_data_tests(con) == {}


# ---------------------------------------------------------------------------------- the mart and data tests


def test_attribution_credits_cover_every_deal_and_keep_money_exact(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "mart.duckdb"))
    create_inputs(con)
    insert_paths(con, ATTRIBUTION_VECTORS["acyclic_with_nulls"]["input"])
    insert_deals(
        con,
        [
            Deal(
                1,
                [
                    Touch("search", 9),
                    Touch("social", 4, lead_creation=True),
                    Touch("email", 1, deal_creation=True),
                    Touch("search", 0, closed_won=True),
                ],
                Decimal("1000.01"),
                Decimal("333.34"),
            ),
            Deal(
                2, [Touch("display", 2), Touch("search", 1), Touch("social", 0)], None, None, is_won=False
            ),  # open
            Deal(3, [], Decimal("250.00"), Decimal("100.00")),  # won, no touchpoint in the window
            Deal(
                4,
                [Touch("email", 3), Touch("email", 2), Touch("social", 1)],
                Decimal("0.10"),
                Decimal("0.04"),
            ),
        ],
    )
    build_attribution(con)
    assert failing_data_tests(con) == {}

    columns = [c[0] for c in con.execute("describe attribution_credits").fetchall()]
    assert columns == [
        "attribution_model",
        "deal_id",
        "contact_id",
        "touchpoint_at",
        "channel",
        "source",
        "medium",
        "campaign",
        "credit",
        "revenue",
        "gross_margin",
    ]
    types = dict(
        con.execute("select column_name, column_type from (describe attribution_credits)").fetchall()
    )
    assert types["revenue"] == types["gross_margin"] == "DECIMAL(38,2)"

    per_deal = con.execute(
        "select deal_id, count(distinct attribution_model), sum(revenue), sum(gross_margin) "
        "from attribution_credits group by deal_id order by deal_id"
    ).fetchall()
    n_models = len(ALL_MODELS)
    assert per_deal == [
        (1, n_models, Decimal("1000.01") * n_models, Decimal("333.34") * n_models),
        (2, n_models, None, None),
        (3, n_models, Decimal("250.00") * n_models, Decimal("100.00") * n_models),
        (4, n_models, Decimal("0.10") * n_models, Decimal("0.04") * n_models),
    ]
    unattributed = con.execute(
        "select attribution_model, contact_id, channel, credit, revenue "
        "from attribution_credits where deal_id = 3"
    ).fetchall()
    # the unattributed row keeps the deal's primary contact (the helper gives deal n contact n)
    assert sorted(unattributed) == sorted((m, 3, "unattributed", 1.0, Decimal("250.00")) for m in ALL_MODELS)
    # linear on 0.10 over three touches: 0.03 each by rounding, the remaining cent on the first largest credit
    linear = con.execute(
        "select revenue from attribution_credits where deal_id = 4 and attribution_model = 'linear' "
        "order by touchpoint_at"
    ).fetchall()
    assert [r[0] for r in linear] == [Decimal("0.04"), Decimal("0.03"), Decimal("0.03")]


def test_data_tests_catch_broken_credits(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "broken.duckdb"))
    create_inputs(con)
    insert_deals(
        con, [Deal(1, _plain(3), Decimal("90.00"), Decimal("30.00")), Deal(2, _plain(2), Decimal("5.00"))]
    )
    build_attribution(con)
    assert failing_data_tests(con) == {}
    con.execute(
        "update attribution_credits set credit = credit / 2, revenue = revenue - 0.01 "
        "where attribution_model = 'linear' and deal_id = 1"
    )
    con.execute("delete from attribution_credits where attribution_model = 'markov' and deal_id = 2")
    failures = failing_data_tests(con)
    assert set(failures) == {
        "attribution_credits_sum_to_one",
        "attribution_credits_cover_every_deal",
        "attribution_revenue_matches_deals",
    }
    assert [row[:2] for row in failures["attribution_credits_sum_to_one"]] == [("linear", 1)]
    assert failures["attribution_credits_cover_every_deal"] == [("markov", 2)]


def test_sql_model_list_matches_the_config_list():
    """The SQL list (unattributed rows, ROI marts) and the config's list (publish_model validation) agree."""
    con = duckdb.connect()
    try:
        con.execute((ATTRIBUTION_DIR / "attribution_models.sql").read_text())
        rows = con.fetchall()
    finally:
        con.close()
    assert tuple(r[0] for r in rows) == ATTRIBUTION_MODELS
