"""The `roi_intervals` mart: how sure each ROI is, by a seeded Poisson bootstrap (a Python model).

A channel with 12 won deals and one with 1,200 show the same-looking ROI; this model gives each all-time ROI
on revenue and on margin a percentile interval, per attribution model, at the channel, source and campaign
grains.

What is resampled (cost is known spend and is not):
- rule-based models (first touch ... inverse J): won deals. Each deal keeps its credits; a resample reweights
  whole deals, so a channel's revenue in resample b is sum_d w[b, d] x credited revenue of d.
- Markov: journeys. A converting journey is a won deal (same weight as above); non-converting journeys are
  reweighted too (grouped by collapsed path: the sum of n Poisson(1) weights is one Poisson(n) draw). Each
  resample rebuilds the transition counts, solves the absorbing chain and its removal effects exactly (linear
  solves, as markov_removal_effects does by repeated squaring), and re-splits every won deal over its
  channels.

Poisson bootstrap: every unit gets an independent Poisson(1) weight per resample instead of drawing n units
with replacement (same first two moments, no fixed sample size, and a deal's weight does not depend on which
other deals exist). A won deal's weight in resample b is the Poisson(1) quantile of a splitmix64 hash of
(seed, deal id, b), so it is the same under every model and from one night to the next; the non-converting
path groups draw from numpy's PCG64 seeded with (seed, b). The interval is the (1 - level) / 2 and (1 + level)
/ 2 percentiles of the resampled ROI. Rows whose ROI rests on fewer than `interval_min_deals` won deals are
flagged `too_few_deals`: a percentile bootstrap on a handful of deals is too narrow to be trusted.

Parameters (cfg_params, from [models] in roi.toml): interval_resamples (1000), interval_level (0.95),
interval_seed (20261), interval_min_deals (20), interval_models ("all", or a comma-separated list of models).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb
import numpy as np
from threadpoolctl import threadpool_limits

INTERVALS_TABLE = "roi_intervals"
DEFAULTS = {
    "interval_resamples": 1000,
    "interval_level": "0.95",
    "interval_seed": 20261,
    "interval_min_deals": 20,
    "interval_models": "all",
}
GRAINS = {
    "channel": ("channel",),
    "source": ("channel", "source"),
    "campaign": ("channel", "source", "medium", "campaign"),
}
MART_OF_GRAIN = {"channel": "roi_by_channel", "source": "roi_by_source", "campaign": "roi_by_campaign"}
INPUT_TABLES = ("attribution_credits", "int_deals", "int_contact_paths", "int_deal_touchpoints")
MARKOV = "markov"
UNATTRIBUTED = "unattributed"
# Resamples processed together: bounds memory to chunk x deals x 8 bytes per matrix.
CHUNK = 50
RATIO_PLACES = Decimal("0.000001")
# Poisson(1) cumulative probabilities up to 24 (the tail beyond is below 1e-24).
_POISSON1_CDF = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(25)])


class IntervalError(ValueError):
    """A bootstrap parameter is invalid; the message names it and the fix."""


@dataclass(frozen=True)
class IntervalParams:
    resamples: int
    level: float
    seed: int
    min_deals: int
    models: tuple[str, ...] | None  # None: every model

    @classmethod
    def from_cfg(cls, cfg: dict[str, Any]) -> IntervalParams:
        def get(name: str) -> Any:
            value = cfg.get(name)
            return DEFAULTS[name] if value in (None, "") else value

        try:
            resamples = int(get("interval_resamples"))
            level = float(Decimal(str(get("interval_level"))))
            seed = int(get("interval_seed"))
            min_deals = int(get("interval_min_deals"))
        except (ValueError, ArithmeticError) as exc:
            raise IntervalError(
                f"interval settings must be numbers ({exc}); see roi.example.toml [models]"
            ) from None
        if not 100 <= resamples <= 100_000:
            raise IntervalError(f"interval_resamples={resamples}: use 100 to 100000 (1000 is a good default)")
        if not 0.5 <= level < 1:
            raise IntervalError(f"interval_level={level}: use a fraction such as 0.95 or 0.9")
        if min_deals < 0:
            raise IntervalError(f"interval_min_deals={min_deals}: use 0 or more")
        models_text = str(get("interval_models")).strip()
        models = (
            None
            if models_text.lower() in ("all", "*")
            else tuple(m.strip() for m in models_text.replace(";", ",").split(",") if m.strip())
        )
        return cls(resamples, level, seed, min_deals, models)


# ----------------------------------------------------------------------------------------------------
# Weights


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def deal_weights(deal_ids: np.ndarray, resamples: Sequence[int], seed: int) -> np.ndarray:
    """Poisson(1) weights (uint8), shape (len(resamples), len(deal_ids)); a pure function of (seed, id, b)."""
    with np.errstate(over="ignore"):
        ids = _splitmix64(deal_ids.astype(np.uint64) ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF))
        draws = np.asarray(resamples, dtype=np.uint64)[:, None] * np.uint64(0xD1B54A32D192ED03)
        bits = _splitmix64(ids[None, :] ^ draws)
    uniform = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return np.searchsorted(_POISSON1_CDF, uniform, side="right").astype(np.uint8)


def _chunks(resamples: int) -> Iterator[range]:
    for start in range(0, resamples, CHUNK):
        yield range(start, min(start + CHUNK, resamples))


def _weights(deals: WonDeals, chunk: range, observed: bool) -> np.ndarray:
    """Deal weights of a chunk of resamples as float64; all ones for the observed data (``observed``)."""
    if observed:
        return np.ones((len(chunk), len(deals.ids)))
    return deals.weights[chunk.start : chunk.stop].astype(np.float64)


# ----------------------------------------------------------------------------------------------------
# Groups: the rows of the ROI marts an interval is computed for


@dataclass
class Groups:
    """For one model: every (grain, dimension values) row of the all-time marts, with its cost."""

    keys: list[tuple[str, tuple]]
    cost: np.ndarray
    index: dict[tuple[str, tuple], int]


def _groups(con: duckdb.DuckDBPyConnection, model: str) -> Groups:
    keys: list[tuple[str, tuple]] = []
    costs: list[float] = []
    for grain, dims in GRAINS.items():
        rows = con.execute(
            f"select {', '.join(dims)}, cost from {MART_OF_GRAIN[grain]} "
            "where attribution_model = ? and month is null",
            [model],
        ).fetchall()
        for row in rows:
            keys.append((grain, tuple(row[:-1])))
            costs.append(float(row[-1] or 0))
    return Groups(keys, np.asarray(costs), {k: i for i, k in enumerate(keys)})


def _group_ids(
    groups: Groups, channel: str, source: str | None, medium: str | None, campaign: str | None
) -> list[int]:
    return [
        groups.index[("channel", (channel,))],
        groups.index[("source", (channel, source))],
        groups.index[("campaign", (channel, source, medium, campaign))],
    ]


# ----------------------------------------------------------------------------------------------------
# Won deals and their credits


@dataclass
class WonDeals:
    ids: np.ndarray  # deal ids, the order of every per-deal array
    revenue: np.ndarray
    margin: np.ndarray
    margin_known: np.ndarray  # bool
    position: dict[int, int]
    weights: np.ndarray  # (resamples, deals) uint8 Poisson weights, shared by every model


def _won_deals(con: duckdb.DuckDBPyConnection, params: IntervalParams) -> WonDeals:
    deals = _won_deal_rows(con)
    deals.weights = deal_weights(deals.ids, range(params.resamples), params.seed)
    return deals


def _won_deal_rows(con: duckdb.DuckDBPyConnection) -> WonDeals:
    has_source = bool(
        con.execute(
            "select count(*) from information_schema.columns where table_name = 'int_deals' "
            "and column_name = 'margin_source'"
        ).fetchall()[0][0]
    )
    known = (
        "gross_margin is not null and coalesce(margin_source, 'none') not in ('revenue', 'none')"
        if has_source
        else "gross_margin is not null"
    )
    rows = con.execute(
        f"""select deal_id, won_revenue::double, coalesce(gross_margin, 0)::double, {known}
        from int_deals where is_won order by deal_id"""
    ).fetchall()
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    return WonDeals(
        ids=ids,
        revenue=np.asarray([r[1] for r in rows]),
        margin=np.asarray([r[2] for r in rows]),
        margin_known=np.asarray([bool(r[3]) for r in rows], dtype=bool),
        position={int(d): i for i, d in enumerate(ids)},
        weights=np.zeros((0, len(ids)), dtype=np.uint8),
    )


@dataclass
class Bootstrap:
    """Resampled revenue and margin per group, shape (resamples, groups), plus per-group deal facts."""

    revenue: np.ndarray
    margin: np.ndarray
    deals: np.ndarray  # won deals with some credit in the group
    margin_known: np.ndarray  # bool per group: every contributing deal's margin is known


def _rule_based(
    con: duckdb.DuckDBPyConnection,
    model: str,
    deals: WonDeals,
    groups: Groups,
    params: IntervalParams,
    observed: bool = False,
) -> Bootstrap:
    rows = con.execute(
        """select credits.deal_id, credits.channel, credits.source, credits.medium, credits.campaign,
            sum(credits.revenue)::double, coalesce(sum(credits.gross_margin), 0)::double
        from attribution_credits as credits
        join int_deals as deals on deals.deal_id = credits.deal_id and deals.is_won
        where credits.attribution_model = ? and credits.credit > 0
        group by all""",
        [model],
    ).fetchall()
    n_groups = len(groups.keys)
    revenue_matrix = np.zeros((len(deals.ids), n_groups))
    margin_matrix = np.zeros((len(deals.ids), n_groups))
    touched = np.zeros((len(deals.ids), n_groups), dtype=bool)
    for deal_id, channel, source, medium, campaign, revenue, margin in rows:
        d = deals.position[int(deal_id)]
        for g in _group_ids(groups, channel, source, medium, campaign):
            revenue_matrix[d, g] += revenue
            margin_matrix[d, g] += margin
            touched[d, g] = True
    resamples = 1 if observed else params.resamples
    resampled_revenue = np.empty((resamples, n_groups))
    resampled_margin = np.empty((resamples, n_groups))
    for chunk in _chunks(resamples):
        weights = _weights(deals, chunk, observed)
        resampled_revenue[chunk.start : chunk.stop] = weights @ revenue_matrix
        resampled_margin[chunk.start : chunk.stop] = weights @ margin_matrix
    unknown = touched & ~deals.margin_known[:, None]
    return Bootstrap(resampled_revenue, resampled_margin, touched.sum(axis=0), ~unknown.any(axis=0))


# ----------------------------------------------------------------------------------------------------
# Markov: journeys -> chain -> removal effects -> credits, once per resample


def _collapsed_paths(con: duckdb.DuckDBPyConnection) -> list[tuple[str, Any, bool, list[str]]]:
    """(path id, deal id, converts, channels with consecutive repeats collapsed) per journey."""
    return con.execute(
        """with touches as (
            select path_id, deal_id, is_conversion, touch_index, channel,
                lag(channel) over (partition by path_id order by touch_index) as previous_channel
            from int_contact_paths where channel is not null
        )
        select path_id, any_value(deal_id), bool_or(is_conversion),
            list(channel order by touch_index) filter (where channel is distinct from previous_channel)
        from touches group by path_id order by path_id"""
    ).fetchall()


def removal_effects(counts: np.ndarray, n_channels: int) -> np.ndarray:
    """Removal effects (clipped at 0) per resample from transition counts.

    counts: (resamples, 1 + K, K + 2), from-states [start, channels...], to-states [channels..., conversion,
    null]. Returns (resamples, K). P(conversion) solves (I - Q) x = r; removing channel k zeroes its row and
    column of Q, its reward and the start's move into it (those journeys end in '(null)').
    """
    k = n_channels
    totals = counts.sum(axis=2, keepdims=True)
    probabilities = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    start = probabilities[:, 0, :k]  # (B, K)
    q = probabilities[:, 1:, :k]  # (B, K, K)
    reward = probabilities[:, 1:, k]  # (B, K)
    b = counts.shape[0]
    # scenario 0: the full chain; scenario j (1..K): channel j-1 removed
    keep = np.ones((k + 1, k))
    keep[np.arange(1, k + 1), np.arange(k)] = 0.0
    q_s = q[:, None, :, :] * keep[None, :, :, None] * keep[None, :, None, :]
    r_s = reward[:, None, :] * keep[None, :, :]
    s_s = start[:, None, :] * keep[None, :, :]
    identity = np.broadcast_to(np.eye(k), (b, k + 1, k, k))
    x = np.linalg.solve(identity - q_s, r_s[..., None])[..., 0]
    p_conversion = (s_s * x).sum(axis=2)  # (B, K + 1)
    full = p_conversion[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        effects = np.where(full > 0, 1.0 - p_conversion[:, 1:] / full, 0.0)
    return np.clip(effects, 0.0, None)


def _markov(
    con: duckdb.DuckDBPyConnection,
    deals: WonDeals,
    groups: Groups,
    params: IntervalParams,
    observed: bool = False,
) -> Bootstrap:
    paths = _collapsed_paths(con)
    channels = sorted({c for *_, chain in paths for c in chain})
    channel_index = {c: i for i, c in enumerate(channels)}
    k = len(channels)
    n_edges = (1 + k) * (k + 2)

    def edges(chain: list[str], converts: bool) -> list[int]:
        states = [0] + [1 + channel_index[c] for c in chain]
        found = [states[i] * (k + 2) + (states[i + 1] - 1) for i in range(len(states) - 1)]
        found.append(states[-1] * (k + 2) + (k if converts else k + 1))
        return found

    # converting journeys: one per won deal, weighted like the deal; the others grouped by collapsed path
    deal_edges = np.zeros((len(deals.ids), n_edges))
    pattern_counts: dict[tuple[tuple[str, ...], bool], int] = {}
    for _, deal_id, converts, chain in paths:
        if converts and deal_id is not None and int(deal_id) in deals.position:
            for e in edges(chain, True):
                deal_edges[deals.position[int(deal_id)], e] += 1
        else:
            key = (tuple(chain), bool(converts))
            pattern_counts[key] = pattern_counts.get(key, 0) + 1
    patterns = sorted(pattern_counts)
    pattern_edges = np.zeros((len(patterns), n_edges))
    for p, (chain, converts) in enumerate(patterns):
        for e in edges(list(chain), converts):
            pattern_edges[p, e] += 1
    pattern_sizes = np.asarray([pattern_counts[p] for p in patterns], dtype=np.float64)

    # won deals' touches: (deal, channel, group, share of that channel's touches in the deal)
    touches = con.execute(
        """select touches.deal_id, touches.channel, touches.source, touches.medium, touches.campaign,
            count(*) / any_value(per_channel.touches) as share
        from int_deal_touchpoints as touches
        join (
            select deal_id, channel, count(*) as touches from int_deal_touchpoints group by all
        ) as per_channel
            on per_channel.deal_id = touches.deal_id and per_channel.channel = touches.channel
        join int_deals as deals on deals.deal_id = touches.deal_id and deals.is_won
        group by all"""
    ).fetchall()
    # One column per (won deal, channel) pair: a resample gives each pair its split of the deal (its channel's
    # removal effect over the deal's total); pair_revenue / pair_margin then spread it over the groups the
    # pair's touches belong to (a channel's share divided equally over its touches, as in markov.sql).
    n_groups = len(groups.keys)
    pairs: dict[tuple[int, int], int] = {}
    pair_revenue: list[dict[int, float]] = []
    touched = np.zeros((len(deals.ids), n_groups), dtype=bool)
    for deal_id, channel, source, medium, campaign, share in touches:
        d = deals.position[int(deal_id)]
        pair = pairs.setdefault((d, channel_index.get(channel, k)), len(pairs))
        if pair == len(pair_revenue):
            pair_revenue.append({})
        for g in _group_ids(groups, channel, source, medium, campaign):
            pair_revenue[pair][g] = pair_revenue[pair].get(g, 0.0) + float(share)
            touched[d, g] = True
    # deals without any touch: their whole revenue is 'unattributed' whatever the resample (split fixed at 1)
    with_touches = {d for d, _ in pairs}
    fixed_channel = k + 1
    for d in range(len(deals.ids)):
        if d not in with_touches:
            pairs[(d, fixed_channel)] = len(pairs)
            pair_revenue.append({g: 1.0 for g in _group_ids(groups, UNATTRIBUTED, None, None, None)})
            touched[d, _group_ids(groups, UNATTRIBUTED, None, None, None)] = True
    pair_deal = np.asarray([d for d, _ in pairs], dtype=np.int64)
    pair_channel = np.asarray([c for _, c in pairs], dtype=np.int64)
    spread = np.zeros((len(pairs), n_groups))  # share of the pair's split going to each group
    for pair, by_group in enumerate(pair_revenue):
        for g, share in by_group.items():
            spread[pair, g] = share
    spread_revenue = spread * deals.revenue[pair_deal][:, None]
    spread_margin = spread * deals.margin[pair_deal][:, None]
    # channel membership per deal; column k: channels the chain never saw (no removal effect)
    membership = np.zeros((len(deals.ids), k + 1))
    touching = pair_channel <= k
    membership[pair_deal[touching], pair_channel[touching]] = 1.0
    equal_split = 1.0 / np.maximum(membership.sum(axis=1), 1.0)[pair_deal]
    fixed = pair_channel == fixed_channel

    resamples = 1 if observed else params.resamples
    resampled_revenue = np.zeros((resamples, n_groups))
    resampled_margin = np.zeros((resamples, n_groups))
    for chunk in _chunks(resamples):
        weights = _weights(deals, chunk, observed)  # (C, D)
        if observed:
            pattern_weights = np.broadcast_to(pattern_sizes, (len(chunk), len(patterns)))
        else:
            pattern_weights = np.stack(
                [np.random.Generator(np.random.PCG64([params.seed, b])).poisson(pattern_sizes) for b in chunk]
            ).reshape(len(chunk), len(patterns))
        counts = (weights @ deal_edges + pattern_weights @ pattern_edges).reshape(len(chunk), 1 + k, k + 2)
        # effects per channel, then a zero column for unseen channels and one for the fixed pairs
        effects = np.concatenate([removal_effects(counts, k), np.zeros((len(chunk), 2))], axis=1)
        deal_effect = effects[:, : k + 1] @ membership.T  # (C, D)
        numerator = effects[:, pair_channel]  # (C, P)
        denominator = deal_effect[:, pair_deal]
        split = np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), equal_split
        )
        split[:, fixed] = 1.0
        weighted = split * weights[:, pair_deal]
        resampled_revenue[chunk.start : chunk.stop] = weighted @ spread_revenue
        resampled_margin[chunk.start : chunk.stop] = weighted @ spread_margin
    unknown = touched & ~deals.margin_known[:, None]
    return Bootstrap(resampled_revenue, resampled_margin, touched.sum(axis=0), ~unknown.any(axis=0))


# ----------------------------------------------------------------------------------------------------
# The mart


def _bounds(resampled: np.ndarray, cost: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bounds of the resampled ROI per group; NaN where the cost is 0 (no ROI)."""
    low = np.full(cost.shape, np.nan)
    high = np.full(cost.shape, np.nan)
    paid = cost != 0
    if paid.any():
        roi = (resampled[:, paid] - cost[paid]) / cost[paid]
        low[paid], high[paid] = np.quantile(roi, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return low, high


def _decimal(value: float) -> Decimal | None:
    if not math.isfinite(value):
        return None
    return Decimal(repr(float(value))).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


def observed_revenue(
    con: duckdb.DuckDBPyConnection, model: str
) -> dict[tuple[str, tuple], tuple[float, float]]:
    """(revenue, margin) per (grain, dimension values) recomputed by the resampling code with every weight
    at 1: what the bootstrap is centred on. It must match the marts (to the cent per credited touch)."""
    groups = _groups(con, model)
    params = IntervalParams.from_cfg({})
    deals = _won_deal_rows(con)
    compute = _markov if model == MARKOV else (lambda *a, **k: _rule_based(con, model, *a[1:], **k))
    boot = compute(con, deals, groups, params, observed=True)
    return {key: (float(boot.revenue[0, g]), float(boot.margin[0, g])) for g, key in enumerate(groups.keys)}


def interval_rows(
    con: duckdb.DuckDBPyConnection, model: str, params: IntervalParams, deals: WonDeals | None = None
) -> list[tuple]:
    """The roi_intervals rows of one attribution model (``deals``: the won deals and their weights, computed
    once for every model)."""
    groups = _groups(con, model)
    if not groups.keys:
        return []
    deals = deals or _won_deals(con, params)
    boot = (
        _markov(con, deals, groups, params)
        if model == MARKOV
        else _rule_based(con, model, deals, groups, params)
    )
    method = "poisson_bootstrap_journeys" if model == MARKOV else "poisson_bootstrap_deals"
    revenue_low, revenue_high = _bounds(boot.revenue, groups.cost, params.level)
    margin_low, margin_high = _bounds(boot.margin, groups.cost, params.level)
    rows = []
    for g, (grain, values) in enumerate(groups.keys):
        dims = dict(zip(GRAINS[grain], values, strict=True))
        has_cost = groups.cost[g] != 0
        margin_ok = has_cost and bool(boot.margin_known[g])
        deals_count = int(boot.deals[g])
        rows.append(
            (
                model,
                grain,
                dims.get("channel"),
                dims.get("source"),
                dims.get("medium"),
                dims.get("campaign"),
                deals_count,
                _decimal(revenue_low[g]) if has_cost else None,
                _decimal(revenue_high[g]) if has_cost else None,
                _decimal(margin_low[g]) if margin_ok else None,
                _decimal(margin_high[g]) if margin_ok else None,
                deals_count < params.min_deals,
                params.resamples,
                Decimal(str(params.level)),
                params.seed,
                params.min_deals,
                method,
            )
        )
    return rows


def build_roi_intervals(con: duckdb.DuckDBPyConnection, cfg: dict[str, Any] | None = None) -> int:
    """(Re)create main.roi_intervals from the built marts; returns its row count. Runs inside the caller's
    transaction (the models runner's), so readers never see intervals of another build."""
    params = IntervalParams.from_cfg(cfg or {})
    models = [
        r[0]
        for r in con.execute("select distinct attribution_model from roi_by_channel order by 1").fetchall()
    ]
    if params.models is not None:
        unknown = sorted(set(params.models) - set(models))
        if unknown:
            raise IntervalError(
                f"interval_models names unknown model(s) {', '.join(unknown)}; "
                f"use 'all' or some of {', '.join(models)}"
            )
        models = [m for m in models if m in params.models]
    # The matrices are small (deals x ~100 groups): one BLAS thread is faster than two fighting over 2 cores
    # with DuckDB, and far faster on a busy machine (spinning BLAS threads).
    with threadpool_limits(limits=1, user_api="blas"):
        deals = _won_deals(con, params)
        rows = [row for model in models for row in interval_rows(con, model, params, deals)]
    con.execute(
        f"""create or replace table main.{INTERVALS_TABLE} (
            attribution_model varchar, grain varchar, channel varchar, source varchar, medium varchar,
            campaign varchar, deals integer,
            roi_on_revenue_low decimal(38, 6), roi_on_revenue_high decimal(38, 6),
            roi_on_margin_low decimal(38, 6), roi_on_margin_high decimal(38, 6),
            too_few_deals boolean, resamples integer, level decimal(4, 3), seed bigint, min_deals integer,
            method varchar
        )"""
    )
    placeholders = "(" + ", ".join("?" * 17) + ")"
    for start in range(0, len(rows), 500):  # multi-row VALUES: executemany is slow in DuckDB 2.0
        batch = rows[start : start + 500]
        con.execute(
            f"insert into main.{INTERVALS_TABLE} values {', '.join(placeholders for _ in batch)}",
            [value for row in batch for value in row],
        )
    return len(rows)
