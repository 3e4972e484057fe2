"""The group roll-up: every portal's ROI, converted into the group's currency, by portal and for the group.

The group warehouse (its own DuckDB file) ATTACHes each portal's file READ_ONLY, copies what the roll-up
needs into three staging tables, then builds the SQL models of models/group/sql/ (same conventions and
runner pieces as models/sql/) and their data tests (models/group/tests/), all in one transaction: readers see
the previous roll-up or the new one. Its marts ``roi_by_channel`` / ``roi_by_source`` / ``roi_by_campaign``
have a portal mart's columns (group totals), so exports and reports read a group warehouse like a portal's;
``roi_by_portal_*`` add the ``portal`` column; ``group_portals`` says which portals are in and how fresh.

    stg_portals__portals  portal, label, database, included, excluded_reason, home_currency, last run facts
    stg_portals__roi      portal, grain, attribution_model, month, dimensions, the additive measures
    stg_portals__rates    portal, month (NULL = fixed rate), rate_to_home: the portal's own rates for the
                          group currency (home-currency units for 1 group-currency unit)

A portal whose file is missing, locked by a writer, never built or without a successful run yet is left out
with its reason (group_portals shows it). A portal whose last run failed after an earlier success is kept,
with that run's status and time next to it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from connectors.errors import EXIT_CONFIG, RoiError
from models.runner import (
    DataTestResult,
    ModelBuildError,
    ModelRun,
    build_order,
    define_sql_macros,
    discover_models,
    run_data_tests,
)

GROUP_MODELS_DIR = Path(__file__).parent / "group" / "sql"
GROUP_TESTS_DIR = Path(__file__).parent / "group" / "tests"
GROUP_MARKER = "group_portals"  # a warehouse with this table is a group roll-up, not a portal
# The portal marts the roll-up reads, by grain, and the measures it takes (ratios are recomputed).
PORTAL_MARTS = {"channel": "roi_by_channel", "source": "roi_by_source", "campaign": "roi_by_campaign"}
DIMENSIONS = ("channel", "source", "medium", "campaign")
MEASURES = (
    "cost",
    "sessions",
    "leads",
    "mqls",
    "sqls",
    "customers",
    "won_deals",
    "revenue",
    "gross_margin",
    "margin_source",
    "weighted_pipeline",
)


class GroupBuildError(RoiError, ModelBuildError):
    """The roll-up cannot be built (a currency without a rate, no portal to roll up); nothing was saved."""

    exit_code = EXIT_CONFIG


@dataclass(frozen=True)
class PortalSource:
    """One portal as the group sees it: its name, display label and warehouse file."""

    name: str
    database: Path
    label: str | None = None


@dataclass
class PortalInclusion:
    name: str
    included: bool
    reason: str | None  # why it is left out
    home_currency: str | None = None


@dataclass
class GroupBuildResult:
    db_path: Path
    currency: str
    portals: list[PortalInclusion]
    models: list[ModelRun]
    tests: list[DataTestResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def included(self) -> list[str]:
        return [p.name for p in self.portals if p.included]

    @property
    def excluded(self) -> dict[str, str]:
        return {p.name: p.reason or "" for p in self.portals if not p.included}

    @property
    def failed_tests(self) -> list[DataTestResult]:
        return [t for t in self.tests if not t.passed]


def build_group(
    db_path: str | Path,
    portals: Sequence[PortalSource],
    *,
    currency: str = "EUR",
    fx_rates: Mapping[str, Decimal] | None = None,
    run_tests: bool = True,
) -> GroupBuildResult:
    """(Re)build the roll-up in ``db_path`` from ``portals``. ``currency`` is the group's; ``fx_rates`` are
    group-currency units for 1 unit of a portal's home currency, used when the portal has no rate of its own.

    Raises GroupBuildError when no portal can be read, or when an included portal's month has no rate (the
    message names the portal, the month and the line to add); nothing is written then.
    """
    started = time.perf_counter()
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    order = build_order(discover_models(GROUP_MODELS_DIR))
    con = duckdb.connect(str(db_path))
    try:
        con.execute("set TimeZone = 'UTC'")
        inclusions = _attach_portals(con, portals)
        if not any(p.included for p in inclusions):
            reasons = "; ".join(f"{p.name}: {p.reason}" for p in inclusions)
            raise GroupBuildError(
                f"No portal can be rolled up ({reasons})",
                "run the portals' nightly first (roi run --portal NAME)",
            )
        con.execute("begin transaction")
        try:
            define_sql_macros(con)
            _stage(con, portals, inclusions, currency.upper(), dict(fx_rates or {}))
            for model in order:
                sql = model.path.read_text(encoding="utf-8").strip().rstrip(";")
                t0 = time.perf_counter()
                try:
                    con.execute(f"create or replace table main.{model.name} as\n{sql}")
                except duckdb.Error as exc:
                    raise ModelBuildError(
                        f"Group model {model.name} ({model.path}) failed: {exc}. Nothing of this build was "
                        "saved."
                    ) from exc
                model.rows = con.execute(f"select count(*) from main.{model.name}").fetchall()[0][0]
                model.seconds = time.perf_counter() - t0
            _refuse_missing_rates(con)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        finally:
            _detach_portals(con, inclusions)
        tests = run_data_tests(con, GROUP_TESTS_DIR) if run_tests else []
    finally:
        con.close()
    return GroupBuildResult(
        db_path, currency.upper(), inclusions, order, tests, seconds=time.perf_counter() - started
    )


def _alias(index: int) -> str:
    return f"portal_{index}"


def _attach_portals(con: duckdb.DuckDBPyConnection, portals: Sequence[PortalSource]) -> list[PortalInclusion]:
    """Attach each portal's file read-only; a portal that cannot be read is left out with its reason."""
    inclusions = []
    for index, portal in enumerate(portals):
        path = Path(portal.database)
        if not path.is_file():
            inclusions.append(PortalInclusion(portal.name, False, f"no warehouse at {path} yet"))
            continue
        try:
            con.execute(f"attach '{_sql_text(str(path))}' as {_alias(index)} (read_only)")
        except duckdb.Error as exc:
            busy = "lock" in str(exc).lower()
            reason = "its warehouse is being written by a run" if busy else f"cannot open {path}: {exc}"
            inclusions.append(PortalInclusion(portal.name, False, reason))
            continue
        missing = [
            mart
            for mart in [*PORTAL_MARTS.values(), "cfg_params"]
            if not _has_table(con, _alias(index), mart)
        ]
        if missing:
            inclusions.append(PortalInclusion(portal.name, False, f"not built yet (no {', '.join(missing)})"))
            con.execute(f"detach {_alias(index)}")
            continue
        if not _succeeded_once(con, _alias(index)):
            # Its marts hold whatever a failed first run could load (a spend sheet without any CRM data).
            inclusions.append(PortalInclusion(portal.name, False, "no successful run yet"))
            con.execute(f"detach {_alias(index)}")
            continue
        home = con.execute(
            f"select upper(value) from {_alias(index)}.main.cfg_params where name = 'home_currency'"
        ).fetchall()
        inclusions.append(PortalInclusion(portal.name, True, None, home[0][0] if home else "EUR"))
    return inclusions


def _detach_portals(con: duckdb.DuckDBPyConnection, inclusions: list[PortalInclusion]) -> None:
    for index, portal in enumerate(inclusions):
        if portal.included:
            con.execute(f"detach database if exists {_alias(index)}")


def _stage(
    con: duckdb.DuckDBPyConnection,
    portals: Sequence[PortalSource],
    inclusions: list[PortalInclusion],
    currency: str,
    fx_rates: dict[str, Decimal],
) -> None:
    con.execute("create or replace table main.cfg_group_params (currency varchar, built_at timestamptz)")
    con.execute("insert into main.cfg_group_params values (?, now())", [currency])
    con.execute(
        "create or replace table main.cfg_group_fx_rates (currency varchar, rate_to_group decimal(18, 8))"
    )
    for code, rate in sorted(fx_rates.items()):
        con.execute("insert into main.cfg_group_fx_rates values (?, ?)", [code.upper(), str(rate)])

    con.execute(
        """create or replace table main.stg_portals__portals (
            portal varchar, label varchar, database varchar, included boolean, excluded_reason varchar,
            home_currency varchar, last_run_id varchar, last_run_status varchar,
            last_run_finished_at timestamptz, last_success_finished_at timestamptz)"""
    )
    con.execute(
        """create or replace table main.stg_portals__roi (
            portal varchar, grain varchar, attribution_model varchar, month date, channel varchar,
            source varchar, medium varchar, campaign varchar, cost decimal(38, 2), sessions bigint,
            leads bigint, mqls bigint, sqls bigint, customers bigint, won_deals double,
            revenue decimal(38, 2), gross_margin decimal(38, 2), margin_source varchar,
            weighted_pipeline decimal(38, 2))"""
    )
    measures = ", ".join(MEASURES)
    con.execute(
        "create or replace table main.stg_portals__rates "
        "(portal varchar, month date, rate_to_home decimal(18, 8))"
    )
    for index, (portal, inclusion) in enumerate(zip(portals, inclusions, strict=True)):
        facts = _last_runs(con, _alias(index)) if inclusion.included else (None, None, None, None)
        con.execute(
            "insert into main.stg_portals__portals values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                portal.name,
                portal.label or portal.name,
                str(portal.database),
                inclusion.included,
                inclusion.reason,
                inclusion.home_currency,
                *facts,
            ],
        )
        if not inclusion.included:
            continue
        alias = _alias(index)
        for grain, mart in PORTAL_MARTS.items():
            dimensions = ", ".join(
                d if _has_column(con, alias, mart, d) else f"null as {d}" for d in DIMENSIONS
            )
            con.execute(
                f"""insert into main.stg_portals__roi by name
                select ? as portal, ? as grain, attribution_model, month, {dimensions}, {measures}
                from {alias}.main.{mart}""",
                [portal.name, grain],
            )
        con.execute(
            f"""insert into main.stg_portals__rates
            select ?, month, rate_to_home from {alias}.main.cfg_fx_monthly_rates where currency = ?
            union all
            select ?, null, rate_to_home from {alias}.main.cfg_fx_rates where currency = ?""",
            [portal.name, currency, portal.name, currency],
        )
    _reader_tables(con, [_alias(i) for i, p in enumerate(inclusions) if p.included], currency)


def _reader_tables(con: duckdb.DuckDBPyConnection, aliases: list[str], currency: str) -> None:
    """What readers of a portal warehouse also find in a group one (exports, the HTML report): cfg_params (the
    group currency as home currency, the oldest portal's as_of) and the channels' labels and order."""
    con.execute(
        """create or replace table main.cfg_params as
        select 'home_currency' as name, ?::varchar as value
        union all
        select name, min(value) from ("""
        + " union all ".join(
            f"select name, value from {a}.main.cfg_params where name in ('as_of', 'reporting_time_zone')"
            for a in aliases
        )
        + ") group by name",
        [currency],
    )
    for table, keys in (
        ("cfg_tagging_channels", "channel"),
        ("cfg_tagging_channel_labels", "channel, language"),
    ):
        present = [a for a in aliases if _has_table(con, a, table)]
        if not present:
            continue
        union = " union all ".join(
            f"select {i} as portal_order, * from {a}.main.{table}" for i, a in enumerate(present)
        )
        # the first portal's label (and order) for a channel several portals have
        con.execute(
            f"create or replace table main.{table} as select * exclude (portal_order) from ({union}) "
            f"qualify row_number() over (partition by {keys} order by portal_order) = 1"
        )


def _last_runs(con: duckdb.DuckDBPyConnection, alias: str) -> tuple:
    """(last run id, its status, when it finished, when the last successful run finished) of a portal."""
    if not _has_table(con, alias, "sync_runs", schema="ops"):
        return (None, None, None, None)
    last = con.execute(
        f"""select run_id, status, finished_at from {alias}.ops.sync_runs where stream = '(flow)'
        order by started_at desc limit 1"""
    ).fetchall()
    success = con.execute(
        f"select max(finished_at) from {alias}.ops.sync_runs where stream = '(flow)' and status = 'success'"
    ).fetchall()
    run_id, status, finished = last[0] if last else (None, None, None)
    return (run_id, status, finished, success[0][0] if success else None)


def _succeeded_once(con: duckdb.DuckDBPyConnection, alias: str) -> bool:
    if not _has_table(con, alias, "sync_runs", schema="ops"):
        return False
    query = f"select count(*) from {alias}.ops.sync_runs where stream = '(flow)' and status = 'success'"
    return bool(con.execute(query).fetchall()[0][0])


def _refuse_missing_rates(con: duckdb.DuckDBPyConnection) -> None:
    missing = con.execute(
        """select portal, home_currency, group_currency, min(month), max(month), count(*)
        from main.int_portal_month_rates where numerator is null or denominator is null
        group by all order by portal"""
    ).fetchall()
    if not missing:
        return
    portal, home, group, first, last, months = missing[0]
    raise GroupBuildError(
        f"Portal {portal!r} counts in {home} and has no rate for the group currency {group} "
        f"({months} month(s), {first:%Y-%m} to {last:%Y-%m})"
        + (f"; {len(missing) - 1} other portal(s) too" if len(missing) > 1 else ""),
        f'add {group} = "<{home} for 1 {group}>" under [portals.{portal}.models.fx_rates], or '
        f'{home} = "<{group} for 1 {home}>" under [group.fx_rates] in roi.toml',
    )


def _has_table(con: duckdb.DuckDBPyConnection, catalog: str, table: str, *, schema: str = "main") -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_catalog = ? and table_schema = ? and table_name = ?",
            [catalog, schema, table],
        ).fetchall()[0][0]
    )


def _has_column(con: duckdb.DuckDBPyConnection, catalog: str, table: str, column: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.columns "
            "where table_catalog = ? and table_schema = 'main' and table_name = ? and column_name = ?",
            [catalog, table, column],
        ).fetchall()[0][0]
    )


def _sql_text(value: str) -> str:
    return value.replace("'", "''")
