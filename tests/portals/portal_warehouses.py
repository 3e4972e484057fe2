"""Portal warehouses for the group and CLI tests, without any extract: each is a real build of the portal
models on empty raw tables (the marts' real columns and types), whose roi_by_channel is then filled with the
rows a test wants (monthly rows; the all-time rows are their sums), and whose ops.sync_runs says it ran once.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb

from models.runner import build

MONTHS = [date(2026, m, 1) for m in (1, 2, 3)]
CHANNELS = ["email", "paid_search", "social"]
MODEL = "linear"


def empty_portal_warehouse(path: Path) -> Path:
    """A portal warehouse built by the real runner on empty raw tables (copy it for each portal)."""
    result = build(path, params={"fx_rates": {"USD": "0.92"}})
    assert result.models
    return path


def portal_warehouse(
    empty: Path, folder: Path, name: str, rows: list[dict], *, ran: bool = True, **fx
) -> Path:
    """A copy of ``empty`` whose roi_by_channel holds ``rows`` (monthly; all-time rows are their sums) and
    whose exchange-rate tables hold ``fx`` (fixed=..., monthly=[(month, rate)...]) for USD."""
    path = folder / f"{name}.duckdb"
    shutil.copy(empty, path)
    with duckdb.connect(str(path)) as con:
        con.execute("delete from roi_by_channel")
        con.execute("delete from cfg_fx_rates")
        if fx.get("fixed"):
            con.execute("insert into cfg_fx_rates values ('USD', ?)", [str(fx["fixed"])])
        for month, rate in fx.get("monthly", []):
            con.execute("insert into cfg_fx_monthly_rates values (?, 'USD', ?, 1)", [month, str(rate)])
        for row in rows:
            con.execute(
                """insert into roi_by_channel (attribution_model, month, channel, cost, sessions, leads, mqls,
                sqls, customers, won_deals, revenue, gross_margin, margin_source, weighted_pipeline,
                cost_is_zero)
                values (?, ?, ?, ?, 0, ?, 0, 0, ?, ?, ?, ?, ?, ?, ? = 0)""",
                [
                    MODEL,
                    row["month"],
                    row["channel"],
                    row["cost"],
                    row["leads"],
                    row["customers"],
                    row["won_deals"],
                    row["revenue"],
                    row["gross_margin"],
                    row["margin_source"],
                    row["pipeline"],
                    row["cost"],
                ],
            )
        con.execute(
            """insert into roi_by_channel (attribution_model, month, channel, cost, sessions, leads, mqls,
            sqls, customers, won_deals, revenue, gross_margin, margin_source, weighted_pipeline, cost_is_zero)
            select attribution_model, null, channel, sum(cost), 0, sum(leads), 0, 0, sum(customers),
                sum(won_deals), sum(revenue),
                case when count(*) = count(gross_margin) then sum(gross_margin) end,
                case when count(*) filter (where margin_source = 'none') > 0 then 'none'
                    else 'line_items' end,
                sum(weighted_pipeline), sum(cost) = 0
            from roi_by_channel where month is not null group by all"""
        )
        if ran:
            con.execute(
                "insert into ops.sync_runs (run_id, kind, stream, status, started_at, finished_at) "
                f"values ('nightly-{name}', 'nightly', '(flow)', 'success', now(), now())"
            )
    return path
