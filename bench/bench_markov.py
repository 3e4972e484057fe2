"""Time the Markov attribution models on synthetic journeys (run by hand; figures go in benchmarks.md).

    .venv/bin/python bench/bench_markov.py --paths 1000000 --deals 1000000

Builds int_contact_paths (PATHS journeys, 1-8 touches over the ten channels of the contracts, 30 % converting)
and int_deal_touchpoints (DEALS deals, 1-8 touches) in a fresh DuckDB file, then times each model file on its
own: markov_transitions + markov_removal_effects (the chain, from the journeys), markov (per-touch credits).
With --all the heuristic models and the attribution_credits mart are timed too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from connectors.config import ATTRIBUTION_MODELS
from sandbox.generator import CHANNEL_IDS

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
ATTRIBUTION_DIR = MODELS_DIR / "sql" / "intermediate" / "attribution"
MARKOV_MODELS = ("markov_transitions", "markov_removal_effects", "markov")
HEURISTIC_MODELS = tuple(m for m in ATTRIBUTION_MODELS if m != "markov")  # one SQL file each
CHANNELS = CHANNEL_IDS
MAX_TOUCHES = 8
CONVERSION_RATE_PERCENT = 30
CONVERTED_AT = "timestamptz '2026-06-30 12:00:00+00'"


def create_inputs(con: duckdb.DuckDBPyConnection, paths: int, deals: int) -> None:
    channels = "[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"
    con.execute("create or replace table cfg_params as select 'half_life_days' as name, '7' as value")
    # hash() keeps the data deterministic without a seed; touch k of journey j: channel from hash(j, k)
    con.execute(f"""
        create or replace table int_contact_paths as
        with journeys as (
            select i as journey, (1 + hash(i, 'n') % {MAX_TOUCHES})::bigint as n_touches,
                hash(i, 'c') % 100 < {CONVERSION_RATE_PERCENT} as is_conversion
            from range({paths}) as t(i)
        )
        select 'p' || journey as path_id, journey as contact_id,
            case when is_conversion then journey end as deal_id, is_conversion,
            case when is_conversion then (50 + hash(journey, 'v') % 950)::decimal(18, 2) else 0 end
                as conversion_value,
            touch_index::integer as touch_index,
            {channels}[(1 + hash(journey, touch_index) % {len(CHANNELS)})::bigint] as channel,
            {CONVERTED_AT} - to_hours((n_touches - touch_index)::bigint) as touchpoint_at
        from journeys, unnest(range(1, n_touches + 1)) as r(touch_index)
    """)
    con.execute(f"""
        create or replace table int_deals as
        select i as deal_id, i as contact_id, i as primary_contact_id, hash(i, 'w') % 3 = 0 as is_won,
            (100 + hash(i, 'r') % 9900)::decimal(38, 2) as won_revenue,
            ((100 + hash(i, 'r') % 9900) * 0.4)::decimal(38, 2) as gross_margin
        from range({deals}) as t(i)
    """)
    con.execute(f"""
        create or replace table int_deal_touchpoints as
        with deals as (
            select deal_id, (1 + hash(deal_id, 'n') % {MAX_TOUCHES})::bigint as n_touches from int_deals
        )
        select deal_id, deal_id as contact_id, deal_id || '-' || touch_index as touchpoint_id,
            {CONVERTED_AT} - to_days((n_touches - touch_index)::integer) as touchpoint_at,
            {channels}[(1 + hash(deal_id, touch_index) % {len(CHANNELS)})::bigint] as channel,
            'src' as source, 'med' as medium, null::varchar as campaign, null::varchar as term,
            null::varchar as content, touch_index::integer as touch_index, n_touches::integer as n_touches,
            touch_index = 1 as is_first_touch, touch_index = least(2, n_touches) as is_lead_creation,
            touch_index = least(3, n_touches) as is_deal_creation, touch_index = n_touches as is_closed_won,
            {CONVERTED_AT} as conversion_at,
            (n_touches - touch_index)::double as days_before_conversion, true as is_won
        from deals, unnest(range(1, n_touches + 1)) as r(touch_index)
    """)


def time_model(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, rows) of one model build."""
    wall, cpu = time.perf_counter(), time.process_time()
    con.execute(f"create or replace table {path.stem} as {path.read_text()}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, con.execute(f"select count(*) from {path.stem}").fetchall()[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1_000_000)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--all", action="store_true", help="also time the heuristic models and the mart")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        con.execute(f"set threads = {args.threads}")
        started = time.perf_counter()
        create_inputs(con, args.paths, args.deals)
        touches = con.execute("select count(*) from int_contact_paths").fetchall()[0][0]
        deal_touches = con.execute("select count(*) from int_deal_touchpoints").fetchall()[0][0]
        print(
            f"inputs: {args.paths:,} journeys / {touches:,} touches, {args.deals:,} deals / {deal_touches:,} "
            f"touches, built in {time.perf_counter() - started:.1f} s ({args.threads} threads)"
        )

        names = list(MARKOV_MODELS)
        if args.all:
            names = list(HEURISTIC_MODELS) + names
        paths = [ATTRIBUTION_DIR / f"{name}.sql" for name in names]
        if args.all:
            # the mart reads the list of models (for the unattributed rows)
            paths.append(ATTRIBUTION_DIR / "attribution_models.sql")
            paths.append(MODELS_DIR / "sql" / "marts" / "attribution_credits.sql")
        total_wall = total_cpu = 0.0
        print(f"{'model':<24} {'wall':>8}   {'cpu':>8}   {'rows':>12}")
        for path in paths:
            wall, cpu, rows = time_model(con, path)
            total_wall += wall
            total_cpu += cpu
            print(f"{path.stem:<24} {wall:8.2f} s {cpu:8.2f} s {rows:>12,}")
        chain = con.execute(
            "select horizon, horizon_steps, count(*), max(p_conversion) "
            "from markov_removal_effects group by all"
        ).fetchall()
        print(f"{'total':<24} {total_wall:8.2f} s {total_cpu:8.2f} s   chain: {chain}")
        con.close()


if __name__ == "__main__":
    main()
