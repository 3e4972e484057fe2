"""The query layer every marketing output reads: ROI marts, intervals, compliance and run facts, as rows.

The spreadsheet, the CSV file, the HTML report and the run artifacts take their numbers from here and nowhere
else. It reads a DuckDB connection (a portal's warehouse today; a group warehouse that presents the same marts
later) and returns exact Decimals. Sums over a period are additive measures summed from the monthly rows; the
ratios are then recomputed with the marts' own rules (`ratios`, checked against the marts by the tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb

from connectors.errors import NotBuiltYetError
from connectors.reports import labels
from connectors.reports.formats import HOME_CURRENCY, month_label

GRAIN_TABLES = {
    "channel": "roi_by_channel",
    "source": "roi_by_source",
    "campaign": "roi_by_campaign",
    # a group roll-up's warehouse (models/group_rollup.py): the portals' rows, in the group's currency
    "portal": "roi_by_portal_channel",
    "portal_channel": "roi_by_portal_channel",
}
RATIO_PLACES = Decimal("0.000001")  # the marts' DECIMAL(18, 6) ratios
CENT = Decimal("0.01")
ZERO = Decimal(0)
PUBLISH_MODEL_FALLBACKS = ("markov", "linear", "last_touch")


class ReportDataError(NotBuiltYetError):
    """The warehouse cannot feed a report (no marts yet, a model the marts do not have)."""


# ----------------------------------------------------------------------------------------------------
# Periods


@dataclass(frozen=True)
class Period:
    """Whole calendar months, first..last inclusive (both None: all time)."""

    first: date | None = None
    last: date | None = None

    @property
    def all_time(self) -> bool:
        return self.first is None and self.last is None

    @classmethod
    def parse(cls, month: str | None = None, start: str | None = None, end: str | None = None) -> Period:
        """From `--month YYYY-MM` or `--from YYYY-MM` / `--to YYYY-MM`; ValueError names the option."""
        if month and (start or end):
            raise ValueError("use either --month or --from/--to, not both")
        if month:
            first = _parse_month(month, "--month")
            return cls(first, first)
        first = _parse_month(start, "--from") if start else None
        last = _parse_month(end, "--to") if end else None
        if first and last and first > last:
            raise ValueError(f"--from {start} is after --to {end}: swap them")
        return cls(first, last)

    def label(self, language: str = "fr") -> str:
        if self.all_time:
            return "toute la période" if language == "fr" else "all time"
        if self.first == self.last:
            return month_label(self.first, language)
        start = (
            month_label(self.first, language) if self.first else ("début" if language == "fr" else "start")
        )
        end = month_label(self.last, language) if self.last else ("fin" if language == "fr" else "end")
        return f"{start} – {end}"

    def contains(self, month: date) -> bool:
        return (self.first is None or month >= self.first) and (self.last is None or month <= self.last)


def _parse_month(text: str, option: str) -> date:
    found = re.fullmatch(r"\s*(\d{4})-(\d{2})\s*", text or "")
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ValueError(
            f"{option} {text!r} is not a month: write YYYY-MM, e.g. 2026-01 (the ROI marts are monthly)"
        )
    return date(int(found.group(1)), int(found.group(2)), 1)


# ----------------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True)
class Interval:
    """Bootstrap bounds of one row's ROI (roi_intervals mart)."""

    deals: int
    roi_on_revenue_low: Decimal | None
    roi_on_revenue_high: Decimal | None
    roi_on_margin_low: Decimal | None
    roi_on_margin_high: Decimal | None
    too_few_deals: bool


def _ratio(numerator: Decimal | None, denominator: Decimal | int | None) -> Decimal | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


def _money_ratio(numerator: Decimal, denominator: int) -> Decimal | None:
    if not denominator:
        return None
    return (numerator / Decimal(denominator)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class RoiRow:
    """One line of a ROI table: dimensions, additive measures, and the ratios derived from them."""

    channel: str | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    month: date | None = None
    channel_label: str = ""
    portal: str | None = None  # rows of a group roll-up only
    portal_label: str = ""
    cost: Decimal = ZERO
    revenue: Decimal = ZERO
    gross_margin: Decimal | None = ZERO  # None: margin unknown for some won deal of the row
    sessions: int = 0
    leads: int = 0
    customers: int = 0
    won_deals: float = 0.0  # credited (fractional under multi-touch models)
    won_deals_whole: int = 0  # apportioned to whole deals within the table (see apportion)
    margin_source: str | None = None  # the marts' margin_source: line_items, margin_rate, mixed, none, ...
    interval: Interval | None = None

    @property
    def roi_on_revenue(self) -> Decimal | None:
        return _ratio(self.revenue - self.cost, self.cost)

    @property
    def roi_on_margin(self) -> Decimal | None:
        return None if self.gross_margin is None else _ratio(self.gross_margin - self.cost, self.cost)

    @property
    def roas(self) -> Decimal | None:
        return _ratio(self.revenue, self.cost)

    @property
    def cost_per_euro_of_revenue(self) -> Decimal | None:
        return _ratio(self.cost, self.revenue) if self.cost else None

    @property
    def cost_per_lead(self) -> Decimal | None:
        return _money_ratio(self.cost, self.leads) if self.cost else None

    @property
    def cac(self) -> Decimal | None:
        return _money_ratio(self.cost, self.customers) if self.cost else None

    def dimension(self, key: str) -> Any:
        if key == "channel":
            return self.channel_label or self.channel
        if key == "portal":
            return self.portal_label or self.portal
        return getattr(self, key)

    def value(self, key: str, language: str = "fr") -> Any:
        """The cell value behind a column key of labels.COLUMNS (exact Decimal, int, text or None)."""
        if key in labels.DIMENSIONS["campaign"] or key in ("month", "portal"):
            return self.dimension(key)
        if key == "won_deals":
            return self.won_deals_whole
        if key == "margin_source":
            names = labels.ROW_MARGIN_SOURCES.get(self.margin_source or "")
            return (names[0] if language == "fr" else names[1]) if names else self.margin_source
        if key == "reliability":
            too_few = self.interval is not None and self.interval.too_few_deals
            return labels.TOO_FEW_DEALS[language] if too_few else ""
        if key in labels.INTERVAL_COLUMNS:
            return getattr(self.interval, key) if self.interval else None
        return getattr(self, key)

    @property
    def key(self) -> tuple:
        return (self.portal, self.channel, self.source, self.medium, self.campaign, self.month)


def add_rows(rows: Iterable[RoiRow], **dimensions: Any) -> RoiRow:
    """The sum of ``rows`` (a total line): margin unknown as soon as one row's is; ratios follow."""
    total = RoiRow(**dimensions)
    margin: Decimal | None = ZERO
    sources: set[str | None] = set()
    for row in rows:
        total.cost += row.cost
        total.revenue += row.revenue
        total.sessions += row.sessions
        total.leads += row.leads
        total.customers += row.customers
        total.won_deals += row.won_deals
        total.won_deals_whole += row.won_deals_whole
        margin = None if margin is None or row.gross_margin is None else margin + row.gross_margin
        sources.add(row.margin_source)
    total.gross_margin = margin
    known = sources - {None, "no_won_deals"}
    if "none" in known:
        total.margin_source = "none"
    elif len(known) > 1:
        total.margin_source = "mixed"
    elif known:
        total.margin_source = known.pop()
    elif "no_won_deals" in sources:
        total.margin_source = "no_won_deals"
    return total


def apportion(values: Sequence[float]) -> list[int]:
    """Whole numbers that add up to round(sum(values)), each the floor or ceiling of its value (largest
    remainder method): a column of attributed deals shows whole deals and still adds up to the real count."""
    exact = [Decimal(repr(max(v, 0.0))) for v in values]
    target = int(sum(exact, ZERO).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    floors = [int(v) for v in exact]
    missing = target - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[: max(missing, 0)]:
        floors[i] += 1
    return floors


# ----------------------------------------------------------------------------------------------------
# Reading the warehouse


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass
class RunFacts:
    """When the data was taken and what the last runs said: the report's freshness section."""

    as_of: date | None = None
    last_run: dict[str, Any] | None = None
    streams: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    rejects_run_id: str | None = None


@dataclass
class ComplianceSummary:
    sessions: int
    non_compliant_sessions: int
    contacts: int
    non_compliant_contacts: int
    offenders: list[dict[str, Any]]

    @property
    def non_compliant_share(self) -> Decimal | None:
        return _ratio(Decimal(self.non_compliant_sessions), self.sessions)


class MartReader:
    """Reads the marts of one warehouse connection for the marketing outputs (read-only queries)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, language: str = "fr") -> None:
        self.con = con
        self.language = language
        self._columns: dict[str, set[str]] = {}

    # -- schema ------------------------------------------------------------------------------------------

    def has_table(self, name: str, schema: str = "main") -> bool:
        found = self.con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
        return bool(found[0][0])

    def columns(self, table: str) -> set[str]:
        if table not in self._columns:
            self._columns[table] = {
                r[0]
                for r in self.con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'main' and table_name = ?",
                    [table],
                ).fetchall()
            }
        return self._columns[table]

    def require_marts(self) -> None:
        missing = [
            GRAIN_TABLES[g] for g in ("channel", "source", "campaign") if not self.has_table(GRAIN_TABLES[g])
        ]
        if missing:
            raise ReportDataError(
                f"The mart(s) {', '.join(missing)} do not exist yet", "run `roi run` (or `roi demo`) first"
            )

    # -- models and labels -------------------------------------------------------------------------------

    def models(self) -> list[str]:
        if not self.has_table("roi_by_channel"):
            return []
        found = {
            r[0] for r in self.con.execute("select distinct attribution_model from roi_by_channel").fetchall()
        }
        ordered = [m for m in labels.MODEL_NAMES if m in found]
        return ordered + sorted(found - set(ordered))

    def resolve_model(self, wanted: str | None, *, strict: bool = True) -> str:
        """`wanted` when the marts have it. Otherwise: ReportDataError listing them when ``strict`` (a model
        the user asked for), else the first fallback model they have (a configured one not built)."""
        self.require_marts()
        models = self.models()
        if wanted in models:
            return wanted
        if wanted is not None and strict:
            raise ReportDataError(
                f"The marts have no attribution model {wanted!r}",
                f"use one of {', '.join(models) or 'none'} (or rebuild with `roi run`)",
            )
        for model in PUBLISH_MODEL_FALLBACKS:
            if model in models:
                return model
        if not models:
            raise ReportDataError("The ROI marts are empty", "run `roi run` (or `roi demo`) first")
        return models[0]

    def channel_labels(self) -> dict[str, str]:
        """Channel id -> label in this reader's language (plan's channel_labels, then channels, then id)."""
        found: dict[str, str] = {}
        if self.has_table("cfg_tagging_channels"):
            found.update(dict(self.con.execute("select channel, label from cfg_tagging_channels").fetchall()))
        if self.has_table("cfg_tagging_channel_labels"):
            found.update(
                dict(
                    self.con.execute(
                        "select channel, label from cfg_tagging_channel_labels where language = ?",
                        [self.language],
                    ).fetchall()
                )
            )
        return found

    @property
    def is_group(self) -> bool:
        """A group roll-up's warehouse (several portals, models/group_rollup.py), not a portal's."""
        return self.has_table("roi_by_portal_channel")

    def portal_labels(self) -> dict[str, str]:
        if not self.has_table("group_portals"):
            return {}
        return dict(self.con.execute("select portal, coalesce(label, portal) from group_portals").fetchall())

    def channel_order(self) -> dict[str, int]:
        if not self.has_table("cfg_tagging_channels"):
            return {}
        return dict(self.con.execute("select channel, display_order from cfg_tagging_channels").fetchall())

    # -- ROI tables --------------------------------------------------------------------------------------

    def _margin_known(self, table: str) -> str:
        # Marts with `margin_source` hold NULL margins when unknown; older marts flag them with roi_basis.
        if "margin_source" in self.columns(table) or "roi_basis" not in self.columns(table):
            return "gross_margin is not null"
        return "roi_basis = 'margin'"

    def _margin_source_sql(self, table: str) -> str:
        """The margin source of rows summed together: unknown as soon as one is, else the one they share,
        else mixed (rows without won deals do not count)."""
        if "margin_source" not in self.columns(table):
            return "null::varchar"
        known = "margin_source) filter (where margin_source <> 'no_won_deals'"
        return (
            "case when bool_or(margin_source = 'none') then 'none' "
            f"when count(distinct {known}) = 0 then 'no_won_deals' "
            f"when count(distinct {known}) = 1 then any_value({known}) "
            "else 'mixed' end"
        )

    def roi_rows(
        self, grain: str, model: str, period: Period = Period(), *, monthly: bool = False
    ) -> list[RoiRow]:
        """Rows of roi_by_<grain> for ``model``: one per dimension (summed over ``period``), or one per
        dimension and month when ``monthly``. Biggest revenue first (monthly: by month, then revenue)."""
        table = GRAIN_TABLES[grain]
        keys = labels.DIMENSIONS[grain]
        dims = ", ".join(keys)
        revenue = "won_revenue" if "won_revenue" in self.columns(table) else "revenue"
        known = self._margin_known(table)
        where = ["attribution_model = ?"]
        params: list[Any] = [model]
        if period.all_time and not monthly:
            where.append("month is null")
        else:
            where.append("month is not null")
            if period.first:
                where.append("month >= ?")
                params.append(period.first)
            if period.last:
                where.append("month <= ?")
                params.append(period.last)
        month = ", month" if monthly else ""
        found = _rows(
            self.con,
            f"""
            select {dims}{month},
                sum(cost) as cost, sum({revenue}) as revenue,
                case when bool_and({known} or {revenue} = 0) then coalesce(sum(gross_margin), 0) end
                    as gross_margin,
                sum(sessions) as sessions, sum(leads) as leads, sum(customers) as customers,
                sum(won_deals) as won_deals,
                {self._margin_source_sql(table)} as margin_source
            from main.{table}
            where {" and ".join(where)}
            group by {dims}{month}
            """,
            params,
        )
        names = self.channel_labels()
        portals = self.portal_labels() if "portal" in keys else {}
        intervals = self.intervals(grain, model) if period.all_time and not monthly else {}
        rows = []
        for r in found:
            row = RoiRow(
                **{k: r[k] for k in keys},
                month=r.get("month"),
                channel_label=names.get(r.get("channel"), r.get("channel") or ""),
                portal_label=portals.get(r.get("portal"), r.get("portal") or ""),
                cost=ZERO if r["cost"] is None else Decimal(r["cost"]),
                revenue=ZERO if r["revenue"] is None else Decimal(r["revenue"]),
                gross_margin=None if r["gross_margin"] is None else Decimal(r["gross_margin"]),
                sessions=int(r["sessions"] or 0),
                leads=int(r["leads"] or 0),
                customers=int(r["customers"] or 0),
                won_deals=float(r["won_deals"] or 0.0),
                margin_source=r["margin_source"],
            )
            row.interval = intervals.get(tuple(r[k] for k in keys))
            rows.append(row)
        rows.sort(
            key=lambda x: (
                x.month or date.min,
                x.portal_label,
                -x.revenue,
                -x.cost,
                x.channel_label,
                *map(str, x.key),
            )
        )
        if monthly:
            by_month: dict[date | None, list[RoiRow]] = {}
            for row in rows:
                by_month.setdefault(row.month, []).append(row)
            for group in by_month.values():
                for row, whole in zip(group, apportion([r.won_deals for r in group]), strict=True):
                    row.won_deals_whole = whole
        else:
            for row, whole in zip(rows, apportion([r.won_deals for r in rows]), strict=True):
                row.won_deals_whole = whole
        return rows

    def intervals(self, grain: str, model: str) -> dict[tuple, Interval]:
        """Bootstrap bounds for ``model`` at ``grain`` keyed by the grain's dimension values (all time)."""
        if not self.has_table("roi_intervals"):
            return {}
        keys = labels.DIMENSIONS[grain]
        found = _rows(
            self.con,
            f"""select {", ".join(keys)}, deals, roi_on_revenue_low, roi_on_revenue_high, roi_on_margin_low,
                roi_on_margin_high, too_few_deals
            from main.roi_intervals where attribution_model = ? and grain = ?""",
            [model, grain],
        )
        return {
            tuple(r[k] for k in keys): Interval(
                deals=int(r["deals"]),
                roi_on_revenue_low=r["roi_on_revenue_low"],
                roi_on_revenue_high=r["roi_on_revenue_high"],
                roi_on_margin_low=r["roi_on_margin_low"],
                roi_on_margin_high=r["roi_on_margin_high"],
                too_few_deals=bool(r["too_few_deals"]),
            )
            for r in found
        }

    def interval_settings(self) -> dict[str, str]:
        """The bootstrap's parameters as the build recorded them (resamples, level, seed, min deals)."""
        if not self.has_table("roi_intervals"):
            return {}
        found = _rows(
            self.con,
            "select any_value(resamples) as resamples, any_value(level) as level, any_value(seed) as seed, "
            "any_value(min_deals) as min_deals from main.roi_intervals",
        )
        return {k: str(v) for k, v in found[0].items() if v is not None} if found else {}

    def model_comparison(self, period: Period = Period()) -> tuple[list[str], dict[str, dict[str, RoiRow]]]:
        """(models, {channel: {model: row}}): ROI per channel under every model, side by side."""
        models = self.models()
        table: dict[str, dict[str, RoiRow]] = {}
        for model in models:
            for row in self.roi_rows("channel", model, period):
                table.setdefault(row.channel or "", {})[model] = row
        return models, table

    def months(self) -> list[date]:
        if not self.has_table("roi_by_channel"):
            return []
        return [
            r[0]
            for r in self.con.execute(
                "select distinct month from roi_by_channel where month is not null order by 1"
            ).fetchall()
        ]

    # -- context: margin sources, runs, rejects, UTM compliance ------------------------------------------

    def margin_sources(self) -> list[dict[str, Any]]:
        """Won deals and their revenue by where their margin came from (int_deals.margin_source)."""
        if not self.has_table("int_deals") or "margin_source" not in self.columns("int_deals"):
            return []
        return _rows(
            self.con,
            """select coalesce(margin_source, 'none') as margin_source, count(*) as deals,
                sum(won_revenue) as revenue
            from main.int_deals where is_won group by all order by revenue desc""",
        )

    def home_currency(self) -> str:
        """The currency the warehouse's amounts are in (cfg_params; a group roll-up's: the group currency)."""
        if not self.has_table("cfg_params"):
            return HOME_CURRENCY
        found = self.con.execute("select max(value) from cfg_params where name = 'home_currency'").fetchall()
        return str(found[0][0]).upper() if found and found[0][0] else HOME_CURRENCY

    def as_of(self) -> date | None:
        if not self.has_table("cfg_params"):
            return None
        found = self.con.execute("select max(value) from cfg_params where name = 'as_of'").fetchall()
        try:
            return date.fromisoformat(found[0][0]) if found and found[0][0] else None
        except ValueError:
            return None

    def run_facts(self, reject_limit: int = 12) -> RunFacts:
        facts = RunFacts(as_of=self.as_of())
        if self.has_table("sync_runs", "ops"):
            runs = _rows(
                self.con,
                """select run_id, kind, status, started_at, finished_at, error from ops.sync_runs
                where stream = '(flow)' order by started_at desc limit 1""",
            )
            facts.last_run = runs[0] if runs else None
            facts.streams = _rows(
                self.con,
                """select stream,
                    max(finished_at) filter (where status = 'success') as last_success,
                    arg_max(status, started_at) as last_status,
                    arg_max(rows, started_at) as last_rows,
                    count(*) filter (where status <> 'success') as failures
                from ops.sync_runs where stream <> '(flow)' group by stream order by stream""",
            )
        if self.has_table("rejects", "ops"):
            run_id = facts.last_run["run_id"] if facts.last_run else None
            scope, params = ("where run_id = ?", [run_id]) if run_id else ("", [])
            facts.rejects = _rows(
                self.con,
                f"""select source, reason, count(*) as rejects, max(rejected_at) as last_seen
                from ops.rejects {scope} group by source, reason order by rejects desc, source, reason
                limit {int(reject_limit)}""",
                params,
            )
            facts.rejects_run_id = run_id
        return facts

    def rejects_by_source(self, run_id: str | None) -> list[dict[str, Any]]:
        if not self.has_table("rejects", "ops"):
            return []
        scope, params = ("where run_id = ?", [run_id]) if run_id else ("", [])
        return _rows(
            self.con,
            f"select source, count(*) as rejects from ops.rejects {scope} group by source order by 2 desc, 1",
            params,
        )

    def utm_compliance(self, limit: int = 10) -> ComplianceSummary | None:
        if not self.has_table("utm_compliance"):
            return None
        totals = _rows(
            self.con,
            """select coalesce(sum(sessions), 0) as sessions,
                coalesce(sum(sessions) filter (where not is_compliant), 0) as bad_sessions,
                coalesce(sum(contacts), 0) as contacts,
                coalesce(sum(contacts) filter (where not is_compliant), 0) as bad_contacts
            from main.utm_compliance""",
        )[0]
        offenders = _rows(
            self.con,
            f"""select raw_source, raw_medium, raw_campaign, channel, issues, sessions, contacts
            from main.utm_compliance where not is_compliant
            order by sessions desc, contacts desc, raw_source, raw_medium, raw_campaign limit {int(limit)}""",
        )
        return ComplianceSummary(
            sessions=int(totals["sessions"]),
            non_compliant_sessions=int(totals["bad_sessions"]),
            contacts=int(totals["contacts"]),
            non_compliant_contacts=int(totals["bad_contacts"]),
            offenders=offenders,
        )


def totals_row(rows: Sequence[RoiRow], language: str = "fr") -> RoiRow:
    total = add_rows(rows)
    total.channel_label = labels.TOTAL[language]
    return total
