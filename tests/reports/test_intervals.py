"""The roi_intervals mart (models/intervals.py) on the report warehouse: centred on the marts, exact Markov
removal effects, seeded, bounds that mean something, and the too-few-deals flag."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import numpy as np
import pytest

from models.intervals import (
    GRAINS,
    IntervalError,
    IntervalParams,
    build_roi_intervals,
    deal_weights,
    interval_rows,
    observed_revenue,
    removal_effects,
)
from models.runner import ModelBuildError, build

MART = {"channel": "roi_by_channel", "source": "roi_by_source", "campaign": "roi_by_campaign"}


@pytest.fixture
def warehouse_copy(report_warehouse, tmp_path):
    """A writable copy of the report warehouse (the shared one stays as built)."""
    target = tmp_path / "copy.duckdb"
    target.write_bytes(report_warehouse.path.read_bytes())
    con = duckdb.connect(str(target))
    yield con
    con.close()


@pytest.mark.parametrize("model", ["markov", "linear", "w_shaped"])
def test_resampling_code_reproduces_the_marts_at_unit_weights(report_warehouse, model):
    con = report_warehouse.connect()
    observed = observed_revenue(con, model)
    credit_rows = dict(
        con.execute(
            "select channel, count(*) from attribution_credits where attribution_model = ? group by 1",
            [model],
        ).fetchall()
    )
    checked = 0
    for (grain, values), (revenue, margin) in observed.items():
        dims = GRAINS[grain]
        where = " and ".join(f"{d} is not distinct from ?" for d in dims)
        mart_revenue, mart_margin = con.execute(
            f"select revenue, coalesce(gross_margin, 0) from {MART[grain]} "
            f"where attribution_model = ? and month is null and {where}",
            [model, *values],
        ).fetchall()[0]
        # the mart rounds each credited touch to the cent; the bootstrap keeps the unrounded split
        tolerance = 1e-6 if model != "markov" else 0.005 * credit_rows.get(values[0], 1) + 1e-6
        assert abs(float(mart_revenue) - revenue) <= tolerance, (grain, values)
        assert abs(float(mart_margin) - margin) <= tolerance, (grain, values)
        checked += 1
    con.close()
    assert checked > 30


def test_markov_removal_effects_equal_the_sql_model(report_warehouse):
    con = report_warehouse.connect()
    transitions = con.execute("select from_state, to_state, journeys from markov_transitions").fetchall()
    sql_effects = dict(
        con.execute(
            "select channel, greatest(coalesce(removal_effect_conversions, 0), 0) "
            "from markov_removal_effects where horizon = 'infinite'"
        ).fetchall()
    )
    con.close()
    channels = sorted({f for f, _, _ in transitions if f != "(start)"})
    k = len(channels)
    index = {c: i for i, c in enumerate(channels)}
    counts = np.zeros((1, 1 + k, k + 2))
    for source, target, journeys in transitions:
        row = 0 if source == "(start)" else 1 + index[source]
        col = {"(conversion)": k, "(null)": k + 1}.get(target, index.get(target))
        counts[0, row, col] += journeys
    ours = removal_effects(counts, k)[0]
    for channel, effect in sql_effects.items():
        assert ours[index[channel]] == pytest.approx(effect, abs=1e-9), channel


def test_poisson_weights_are_seeded_per_deal_and_look_like_poisson_1():
    ids = np.arange(5_000_000, 5_020_000)
    weights = deal_weights(ids, range(200), seed=7)
    assert weights.shape == (200, 20_000)
    assert abs(weights.mean() - 1) < 0.01 and abs(weights.var() - 1) < 0.02
    # a deal's weight depends on (seed, deal id, resample) only: not on which other deals exist
    assert np.array_equal(deal_weights(ids[5:9], range(200), seed=7), weights[:, 5:9])
    assert not np.array_equal(deal_weights(ids[:50], range(200), seed=8), weights[:, :50])


def test_intervals_are_reproducible_and_change_with_the_seed(report_warehouse):
    con = report_warehouse.connect()
    params = IntervalParams.from_cfg({"interval_resamples": 200})
    first = interval_rows(con, "linear", params)
    assert interval_rows(con, "linear", params) == first
    other = interval_rows(
        con, "linear", IntervalParams.from_cfg({"interval_resamples": 200, "interval_seed": 9})
    )
    con.close()
    assert [r[:7] for r in other] == [r[:7] for r in first]
    assert [r[7:9] for r in other] != [r[7:9] for r in first]


def test_bounds_bracket_the_roi_and_flag_thin_rows(report_warehouse):
    con = report_warehouse.connect()
    rows = con.execute(
        """select i.grain, i.channel, i.deals, i.roi_on_revenue_low, i.roi_on_revenue_high,
            i.roi_on_margin_low, i.roi_on_margin_high, i.too_few_deals, i.min_deals, m.cost, m.roi_on_revenue,
            m.roi_on_margin
        from roi_intervals as i
        join roi_by_channel as m
            on m.attribution_model = i.attribution_model and m.channel = i.channel and m.month is null
        where i.grain = 'channel'"""
    ).fetchall()
    con.close()
    assert {r[1] for r in rows} >= {"paid_search", "email", "direct"}
    paid_with_deals = 0
    for _, channel, deals, low, high, m_low, m_high, too_few, min_deals, cost, roi, roi_margin in rows:
        assert too_few == (deals < min_deals), channel
        if cost == 0:
            assert low is high is m_low is m_high is None, channel  # no investment, no ROI, no interval
            continue
        assert low <= high and (m_low is None or m_low <= m_high), channel
        assert low >= Decimal(-1)  # revenue is never negative
        if roi_margin is None:
            assert m_low is None, channel  # unknown margin: no interval either
        if deals >= min_deals:
            paid_with_deals += 1
            assert low <= roi <= high, (channel, low, roi, high)
    assert paid_with_deals >= 2


def test_more_deals_make_narrower_intervals(report_warehouse):
    """Relative width shrinks with the number of deals: the biggest paid channel is tighter than the
    thinnest."""
    con = report_warehouse.connect()
    rows = con.execute(
        """select i.deals, (i.roi_on_revenue_high - i.roi_on_revenue_low) / (1 + m.roi_on_revenue) as width
        from roi_intervals as i
        join roi_by_channel as m
            on m.attribution_model = i.attribution_model and m.channel = i.channel and m.month is null
        where i.grain = 'channel' and i.attribution_model = 'first_touch' and m.cost > 0 and m.revenue > 0
        order by i.deals"""
    ).fetchall()
    con.close()
    assert len(rows) >= 3
    assert rows[-1][1] < rows[0][1], rows


def test_bad_interval_settings_fail_the_build_by_name(report_warehouse, tmp_path):
    with pytest.raises(IntervalError, match=r"interval_resamples=5\b"):
        IntervalParams.from_cfg({"interval_resamples": "5"})
    with pytest.raises(IntervalError, match=r"interval_level=1\.5"):
        IntervalParams.from_cfg({"interval_level": "1.5"})
    target = tmp_path / "copy.duckdb"
    target.write_bytes(report_warehouse.path.read_bytes())
    with pytest.raises(ModelBuildError, match=r"interval_models names unknown model.*nope"):
        build(target, params={"interval_models": "markov, nope"}, run_tests=False)


def test_only_the_chosen_models(warehouse_copy):
    rows = build_roi_intervals(warehouse_copy, {"interval_models": "markov", "interval_resamples": 100})
    models = warehouse_copy.execute("select distinct attribution_model, method from roi_intervals").fetchall()
    assert models == [("markov", "poisson_bootstrap_journeys")] and rows > 20
