"""The group roll-up (models/group_rollup.py + models/group/sql): real portal warehouses, exact money
(portal_warehouses.py says how they are made)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from portal_warehouses import CHANNELS, MODEL, MONTHS
from portal_warehouses import portal_warehouse as _portal

from models.group_rollup import GroupBuildError, PortalSource, build_group

CENT = Decimal("0.01")

money = st.decimals(min_value=0, max_value=Decimal("1e12"), places=2, allow_nan=False, allow_infinity=False)
row_strategy = st.fixed_dictionaries(
    {
        "month": st.sampled_from(MONTHS),
        "channel": st.sampled_from(CHANNELS),
        "cost": money,
        "revenue": money,
        "pipeline": money,
        "leads": st.integers(0, 10_000),
        "customers": st.integers(0, 1_000),
        "won_deals": st.integers(0, 50).map(float),
        "margin_source": st.sampled_from(["line_items", "margin_rate", "none"]),
    }
).map(lambda r: {**r, "gross_margin": None if r["margin_source"] == "none" else r["revenue"] / 2})


def _unique(rows: list[dict]) -> list[dict]:
    """One row per month and channel (a mart's key)."""
    return list({(r["month"], r["channel"]): r for r in rows}.values())


def _usd(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount / rate).quantize(CENT, rounding=ROUND_HALF_UP)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.lists(row_strategy, min_size=1, max_size=8).map(_unique),
    second=st.lists(row_strategy, min_size=1, max_size=8).map(_unique),
    rate=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1.5"), places=4),
)
def test_the_group_is_the_sum_of_its_portals_converted_month_by_month(
    empty_portal, tmp_path_factory, first, second, rate
):
    folder = tmp_path_factory.mktemp("group")
    march = Decimal("0.9000")
    portals = [
        PortalSource("a", _portal(empty_portal, folder, "a", first, fixed=rate)),
        # b has its own March rate (a monthly rates file) and its fixed rate for the other months
        PortalSource(
            "b", _portal(empty_portal, folder, "b", second, fixed=rate, monthly=[(MONTHS[2], march)])
        ),
    ]
    result = build_group(folder / "group.duckdb", portals, currency="USD")
    assert result.included == ["a", "b"] and not result.failed_tests

    def month_rate(portal: str, month: date) -> Decimal:
        return march if portal == "b" and month == MONTHS[2] else rate

    expected: dict[tuple, Decimal] = {}
    for portal, rows in (("a", first), ("b", second)):
        for row in rows:
            usd = _usd(row["cost"], month_rate(portal, row["month"]))
            for key in ((row["month"], row["channel"]), (None, row["channel"])):
                expected[key] = expected.get(key, Decimal(0)) + usd
    with duckdb.connect(str(folder / "group.duckdb"), read_only=True) as con:
        got = {
            (month, channel): cost
            for month, channel, cost in con.execute(
                "select month, channel, cost from roi_by_channel where attribution_model = ?", [MODEL]
            ).fetchall()
        }
        margins = con.execute(
            """select g.margin_source, g.gross_margin, bool_or(p.margin_source = 'none')
            from roi_by_channel g join roi_by_portal_channel p using (attribution_model, month, channel)
            where attribution_model = ? group by all""",
            [MODEL],
        ).fetchall()
    assert got == expected
    for source, margin, any_unknown in margins:
        assert (source == "none") == any_unknown and (margin is None) == any_unknown


def test_portals_in_the_group_currency_are_taken_as_they_are_and_a_group_rate_converts_the_others(
    empty_portal, tmp_path
):
    rows = [
        {
            "month": MONTHS[0],
            "channel": "email",
            "cost": Decimal("100.00"),
            "revenue": Decimal("333.33"),
            "pipeline": Decimal("10.01"),
            "leads": 3,
            "customers": 1,
            "won_deals": 1.0,
            "margin_source": "none",
            "gross_margin": None,
        },
    ]
    a = _portal(empty_portal, tmp_path, "a", rows)
    with duckdb.connect(str(a)) as con:
        con.execute("update cfg_params set value = 'CHF' where name = 'home_currency'")
    b = _portal(empty_portal, tmp_path, "b", rows)
    result = build_group(
        tmp_path / "group.duckdb",
        [PortalSource("a", a), PortalSource("b", b)],
        currency="CHF",
        fx_rates={"EUR": Decimal("0.94")},
    )
    with duckdb.connect(str(tmp_path / "group.duckdb"), read_only=True) as con:
        by_portal = dict(
            con.execute(
                "select portal, revenue from roi_by_portal_channel "
                "where month is null and attribution_model = ?",
                [MODEL],
            ).fetchall()
        )
        sources = dict(con.execute("select portal, rate_sources from group_portals").fetchall())
    assert by_portal == {"a": Decimal("333.33"), "b": Decimal("313.33")}  # 333.33 EUR x 0.94 = 313.3302
    assert sources == {"a": "same_currency", "b": "group_fx_rate"}
    assert result.currency == "CHF"


def test_a_portal_without_a_rate_stops_the_build_with_the_line_to_add(empty_portal, tmp_path):
    rows = [
        {
            "month": MONTHS[1],
            "channel": "social",
            "cost": Decimal("5.00"),
            "revenue": Decimal("0"),
            "pipeline": Decimal("0"),
            "leads": 0,
            "customers": 0,
            "won_deals": 0.0,
            "margin_source": "line_items",
            "gross_margin": Decimal("0"),
        },
    ]
    portal = _portal(empty_portal, tmp_path, "acme", rows)
    with pytest.raises(GroupBuildError) as error:
        build_group(tmp_path / "group.duckdb", [PortalSource("acme", portal)], currency="GBP")
    assert "Portal 'acme' counts in EUR and has no rate for the group currency GBP" in error.value.cause
    assert "[portals.acme.models.fx_rates]" in error.value.fix and "[group.fx_rates]" in error.value.fix
    assert not (tmp_path / "group.duckdb").exists() or not _has_marts(tmp_path / "group.duckdb")


def test_portals_that_cannot_be_rolled_up_are_left_out_with_their_reason(empty_portal, tmp_path):
    rows = [
        {
            "month": MONTHS[0],
            "channel": "email",
            "cost": Decimal("1.00"),
            "revenue": Decimal("2.00"),
            "pipeline": Decimal("0"),
            "leads": 1,
            "customers": 0,
            "won_deals": 0.0,
            "margin_source": "line_items",
            "gross_margin": Decimal("1.00"),
        },
    ]
    ok = _portal(empty_portal, tmp_path, "ok", rows)
    never_succeeded = _portal(empty_portal, tmp_path, "failing", rows, ran=False)
    result = build_group(
        tmp_path / "group.duckdb",
        [
            PortalSource("ok", ok),
            PortalSource("failing", never_succeeded),
            PortalSource("new", tmp_path / "x.duckdb"),
        ],
    )
    assert result.included == ["ok"]
    assert result.excluded == {
        "failing": "no successful run yet",
        "new": f"no warehouse at {tmp_path / 'x.duckdb'} yet",
    }
    with duckdb.connect(str(tmp_path / "group.duckdb"), read_only=True) as con:
        assert con.execute("select sum(cost) from roi_by_channel where month is null").fetchall()[0][
            0
        ] == Decimal("1.00")
        assert dict(con.execute("select portal, included from group_portals").fetchall()) == {
            "ok": True,
            "failing": False,
            "new": False,
        }


def _has_marts(path: Path) -> bool:
    with duckdb.connect(str(path), read_only=True) as con:
        return bool(
            con.execute(
                "select count(*) from information_schema.tables where table_name = 'roi_by_portal_channel'"
            ).fetchall()[0][0]
        )
