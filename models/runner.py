"""Build the SQL models in a DuckDB warehouse: config tables, models in dependency order, then data tests.

One model per file under models/sql/ (staging, intermediate, marts); the file stem is the table name. A model
depends on every other model whose name appears in its SQL (comments and string literals ignored), so there is
no ref() syntax to learn. All models are (re)built with `create or replace table` inside ONE transaction:
readers see either the previous build or the new one, never half of each. Data tests (models/tests/*.sql)
return offending rows; zero rows passes. A test whose file starts with the comment `-- severity: warn` only
warns: its offending rows are reported but never count as a failure (publish goes on). Failing tests are
reported in the BuildResult, never raised: the flow decides what to skip.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb

from models.fx_rates import FxRatesError, MonthlyRate, fixed_rates, load_monthly_rates
from models.tagging_plan import TaggingPlan, load_tagging_plan

MODELS_DIR = Path(__file__).parent / "sql"
DATA_TESTS_DIR = Path(__file__).parent / "tests"
MACROS_DIR = Path(__file__).parent / "macros"
LAYER_ORDER = {"staging": 0, "intermediate": 1, "marts": 2}
FAILING_ROWS_SHOWN = 10
SEVERITIES = ("error", "warn")
_SEVERITY_LINE = re.compile(r"^\s*--\s*severity\s*:\s*(\w+)\s*$", re.I | re.M)
REJECTS_MODEL = "int_model_rejects"  # rows the models could not use; copied into ops.rejects

# Defaults for cfg_params; settings ([models] in roi.toml) and the `params` argument override them.
DEFAULT_PARAMS: dict[str, Any] = {
    "lookback_days": 90,
    "half_life_days": 7,
    # None: deals without line-item costs report ROI on revenue (roi_basis='revenue')
    "default_margin_rate": None,
    "home_currency": "EUR",
    "reporting_time_zone": "Europe/Paris",
    "as_of": None,  # None: today (UTC); open deals' paths run up to this date
    "fx_rates_file": None,  # the monthly rates file (month,currency,rate); None: fixed rates only
}
DEFAULT_FX_RATES: dict[str, Any] = {}  # units of home currency per unit of the currency (home: always 1)
DEFAULT_MARGIN_RATES: dict[str, Decimal] = {}


class ModelBuildError(RuntimeError):
    """A model's SQL failed or the model graph is invalid; nothing of this build was committed."""


@dataclass
class ModelRun:
    name: str
    path: Path
    depends_on: tuple[str, ...]
    seconds: float = 0.0
    rows: int = 0


@dataclass
class DataTestResult:
    name: str
    path: Path
    passed: bool
    failing_rows: int
    sample: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    severity: str = "error"  # "warn": offending rows are reported, never block anything

    @property
    def warns(self) -> bool:
        """Found offending rows, but only warns (a SQL error still fails the test)."""
        return not self.passed and self.severity == "warn" and self.error is None

    def describe(self) -> str:
        if self.passed:
            return f"PASS {self.name}"
        if self.error:
            return f"ERROR {self.name}: {self.error}"
        shown = "\n".join(f"    {row}" for row in self.sample)
        label = "WARN" if self.warns else "FAIL"
        return f"{label} {self.name}: {self.failing_rows} offending row(s)\n{shown}"


@dataclass
class BuildResult:
    db_path: Path
    models: list[ModelRun]
    tests: list[DataTestResult]
    params: dict[str, str]
    seconds: float

    @property
    def ok(self) -> bool:
        """No blocking data test failed (warnings allowed)."""
        return not self.failed_tests

    @property
    def failed_tests(self) -> list[DataTestResult]:
        """Tests that block: failed, and not a warning."""
        return [t for t in self.tests if not t.passed and not t.warns]

    @property
    def warnings(self) -> list[DataTestResult]:
        """Warn-only tests that found offending rows."""
        return [t for t in self.tests if t.warns]

    def summary(self) -> str:
        lines = [f"built {len(self.models)} models in {self.seconds:.2f} s"]
        lines += [t.describe() for t in self.tests if not t.passed]
        lines.append(f"data tests: {len(self.tests) - len(self.failed_tests)}/{len(self.tests)} passed")
        if self.warnings:
            lines[-1] += f", {len(self.warnings)} warning(s)"
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# Model discovery


_COMMENT_OR_STRING = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.S)
_IDENTIFIER = re.compile(r"\b[a-z_][a-z0-9_]*\b")


def referenced_names(sql: str) -> set[str]:
    """Lower-case identifiers in `sql`, outside comments and string literals."""
    return set(_IDENTIFIER.findall(_COMMENT_OR_STRING.sub(" ", sql).lower()))


def discover_models(models_dir: Path = MODELS_DIR) -> dict[str, ModelRun]:
    paths = sorted(models_dir.rglob("*.sql"))
    by_name: dict[str, Path] = {}
    for path in paths:
        name = path.stem
        if name in by_name:
            raise ModelBuildError(
                f"Two models are named {name!r}: {by_name[name]} and {path}. Fix: rename one file."
            )
        by_name[name] = path
    models = {}
    for name, path in by_name.items():
        deps = referenced_names(path.read_text(encoding="utf-8")) & by_name.keys()
        deps.discard(name)
        models[name] = ModelRun(name=name, path=path, depends_on=tuple(sorted(deps)))
    return models


def _layer(path: Path) -> int:
    return min((LAYER_ORDER[p] for p in path.parts if p in LAYER_ORDER), default=1)


def build_order(models: dict[str, ModelRun]) -> list[ModelRun]:
    """Topological order; among ready models staging first, then by name, so builds are reproducible."""
    remaining = {name: set(m.depends_on) for name, m in models.items()}
    order: list[ModelRun] = []
    while remaining:
        ready = sorted(
            (n for n, deps in remaining.items() if not deps), key=lambda n: (_layer(models[n].path), n)
        )
        if not ready:
            cycle = ", ".join(f"{n} -> {sorted(d)}" for n, d in sorted(remaining.items()))
            raise ModelBuildError(
                f"The models depend on each other in a cycle: {cycle}. Fix: a model must not mention "
                "(even as a "
                "CTE or column name) a model that is built from it."
            )
        for name in ready:
            order.append(models[name])
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def _upstream(models: dict[str, ModelRun], selected: Iterable[str]) -> set[str]:
    wanted: set[str] = set()
    stack = list(selected)
    while stack:
        name = stack.pop()
        if name in wanted:
            continue
        if name not in models:
            raise ModelBuildError(f"No model named {name!r}. Known models: {', '.join(sorted(models))}")
        wanted.add(name)
        stack.extend(models[name].depends_on)
    return wanted


# ----------------------------------------------------------------------------------------------------
# Config tables


@dataclass
class ResolvedParams:
    """What the config tables hold: cfg_params (name -> text), exchange rates, margin rates."""

    cfg_params: dict[str, str | None]
    fx: dict[str, Decimal]  # fixed rates by currency (home currency = 1)
    fx_monthly: list[MonthlyRate]  # the monthly rates file, when configured
    margins: dict[str, Decimal]  # by pipeline id


def resolve_params(params: dict[str, Any] | None) -> ResolvedParams:
    """Defaults + `params`, checked: cfg_params values, fixed and monthly exchange rates, margin rates.

    Accepted shapes: flat keys (`lookback_days`, `fx.USD`, `margin_rate.wholesale`), or nested `fx_rates` /
    `margin_rates` mappings; `fx_rates_file` is the path of the monthly rates file (models/fx_rates.py). None
    values keep the default; unknown keys are stored as they are (later models may read them).
    """
    merged: dict[str, Any] = dict(DEFAULT_PARAMS)
    fx_settings: dict[str, Any] = dict(DEFAULT_FX_RATES)
    margins = dict(DEFAULT_MARGIN_RATES)

    def decimal_of(key: str, value: Any) -> Decimal:
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ModelBuildError(
                f"Model parameter {key}={value!r} is not a number. Fix: write e.g. 0.92"
            ) from None
        if not number.is_finite() or number < 0:
            raise ModelBuildError(f"Model parameter {key}={value!r} must be a positive number.")
        return number

    for key, value in (params or {}).items():
        if value is None:
            continue
        if key in ("fx_rates", "fx") and isinstance(value, dict):
            fx_settings.update(value)
        elif key in ("margin_rates", "margin_rate") and isinstance(value, dict):
            margins.update({str(p): decimal_of(f"margin_rates.{p}", r) for p, r in value.items()})
        elif key.startswith("fx."):
            fx_settings[key[3:]] = value
        elif key.startswith("margin_rate."):
            margins[key[len("margin_rate.") :]] = decimal_of(key, value)
        else:
            merged[key] = value
    for key, value in margins.items():
        if value > 1:
            raise ModelBuildError(
                f"margin_rates.{key}={value} is above 1. Fix: write the rate as a fraction (0.35)."
            )
    if merged.get("default_margin_rate") is not None:
        rate = decimal_of("default_margin_rate", merged["default_margin_rate"])
        if rate > 1:
            raise ModelBuildError(
                f"default_margin_rate={rate} is above 1. Fix: write the rate as a fraction (0.35)."
            )
    for key in ("lookback_days", "half_life_days"):
        if decimal_of(key, merged[key]) <= 0:
            raise ModelBuildError(f"{key} must be greater than 0 (got {merged[key]!r}).")
    if merged.get("as_of") is None:
        merged["as_of"] = datetime.now(UTC).date()
    try:
        merged["as_of"] = date.fromisoformat(str(merged["as_of"])[:10]).isoformat()
    except ValueError:
        raise ModelBuildError(f"as_of={merged['as_of']!r} is not a date. Fix: write YYYY-MM-DD.") from None
    home = str(merged["home_currency"]).upper()
    merged["home_currency"] = home
    try:
        fx = fixed_rates(fx_settings, home)
        fx_monthly = load_monthly_rates(merged["fx_rates_file"], home) if merged.get("fx_rates_file") else []
    except FxRatesError as exc:
        raise ModelBuildError(str(exc)) from None

    def as_text(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, dict | list | tuple):
            return json.dumps(value, default=str)
        return str(value)

    return ResolvedParams({k: as_text(v) for k, v in merged.items()}, fx, fx_monthly, margins)


def load_config_tables(con: duckdb.DuckDBPyConnection, plan: TaggingPlan, resolved: ResolvedParams) -> None:
    tables = plan.config_tables()
    tables["cfg_params"] = ([("name", "varchar"), ("value", "varchar")], sorted(resolved.cfg_params.items()))
    tables["cfg_fx_rates"] = (
        [("currency", "varchar"), ("rate_to_home", "decimal(18, 8)")],
        sorted((c, str(r)) for c, r in resolved.fx.items()),
    )
    tables["cfg_fx_monthly_rates"] = (
        [("month", "date"), ("currency", "varchar"), ("rate_to_home", "decimal(18, 8)"), ("line", "integer")],
        [(r.month.isoformat(), r.currency, str(r.rate_to_home), r.line) for r in resolved.fx_monthly],
    )
    tables["cfg_margin_rates"] = (
        [("pipeline", "varchar"), ("margin_rate", "decimal(9, 6)")],
        sorted((p, str(r)) for p, r in resolved.margins.items()),
    )
    for table, (columns, rows) in tables.items():
        column_sql = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
        con.execute(f"create or replace table main.{table} ({column_sql})")
        if rows:
            placeholders = ", ".join("?" for _ in columns)
            # One multi-row VALUES statement: executemany is slow in DuckDB 2.0 and these tables are small.
            values_sql = ", ".join(f"({placeholders})" for _ in rows)
            con.execute(f"insert into main.{table} values {values_sql}", [v for row in rows for v in row])


def define_sql_macros(con: duckdb.DuckDBPyConnection, macros_dir: Path = MACROS_DIR) -> None:
    """Create the macros of models/macros/*.sql (exact division, the ROI formulas, merge survivors...), in
    file name order: a macro must exist before one that calls it is created."""
    for path in sorted(macros_dir.glob("*.sql")):
        try:
            con.execute(path.read_text(encoding="utf-8"))
        except duckdb.Error as exc:
            raise ModelBuildError(f"{path.name}: {exc}") from exc


def define_macros(con: duckdb.DuckDBPyConnection, plan: TaggingPlan) -> None:
    con.execute(f"create or replace macro roi_normalise(x) as ({plan.normalise_sql('x')})")
    """The tagging plan's normalisation (built from the plan), then the SQL macros of models/macros/."""
    define_sql_macros(con)


def _ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw/ops tables (warehouse module) so that a fresh file builds, to empty marts."""
    try:
        from connectors.warehouse import ensure_schema
    except ImportError:
        con.execute("create schema if not exists raw")
        con.execute("create schema if not exists ops")
        return
    ensure_schema(con)


# ----------------------------------------------------------------------------------------------------
# Build


def build(
    db_path: str | Path,
    *,
    tagging_plan: str | Path | TaggingPlan | None = None,
    params: dict[str, Any] | None = None,
    select: Collection[str] | None = None,
    skip: Collection[str] = (),
    run_tests: bool = True,
    run_id: str | None = None,
    models_dir: Path = MODELS_DIR,
    tests_dir: Path = DATA_TESTS_DIR,
) -> BuildResult:
    """Load config tables, build every model (or `select` and its upstream) in order, then run the data tests.

    `skip`: models not rebuilt; an existing table of that name is used as it is (tests use this to feed the
    marts a hand-made attribution_credits). `run_id` labels the rows added to ops.rejects. Raises
    ModelBuildError (naming the model file) when a model's SQL fails; the whole build is rolled back then.
    """
    started = time.perf_counter()
    db_path = Path(db_path)
    plan = tagging_plan if isinstance(tagging_plan, TaggingPlan) else load_tagging_plan(tagging_plan)
    resolved = resolve_params(params)
    models = discover_models(models_dir)
    wanted = _upstream(models, select) if select else set(models)
    order = [m for m in build_order(models) if m.name in wanted and m.name not in set(skip)]

    con = duckdb.connect(str(db_path))
    try:
        con.execute("set TimeZone = 'UTC'")
        _ensure_raw_schema(con)
        con.execute("begin transaction")
        try:
            define_macros(con, plan)
            load_config_tables(con, plan, resolved)
            for model in order:
                sql = model.path.read_text(encoding="utf-8").strip().rstrip(";")
                t0 = time.perf_counter()
                try:
                    con.execute(f"create or replace table main.{model.name} as\n{sql}")
                    model.rows = con.execute(f"select count(*) from main.{model.name}").fetchall()[0][0]
                except duckdb.Error as exc:
                    raise ModelBuildError(
                        f"Model {model.name} ({model.path}) failed: {exc}. Nothing of this build was saved."
                    ) from exc
                model.seconds = time.perf_counter() - t0
            intervals = _build_intervals(con, order, resolved.cfg_params)
            if intervals is not None:
                order.append(intervals)
            if any(m.name == REJECTS_MODEL for m in order):
                _record_rejects(con, run_id or f"build-{datetime.now(UTC):%Y%m%dT%H%M%S}")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        tests = run_data_tests(con, tests_dir) if run_tests else []
    finally:
        con.close()
    return BuildResult(
        db_path=db_path,
        models=order,
        tests=tests,
        params={k: v for k, v in resolved.cfg_params.items() if v is not None},
        seconds=time.perf_counter() - started,
    )


def _build_intervals(
    con: duckdb.DuckDBPyConnection, built: list[ModelRun], cfg_params: dict[str, str | None]
) -> ModelRun | None:
    """The Python model roi_intervals (models/intervals.py), after the SQL marts it reads, when this build
    rebuilt those marts; None otherwise."""
    from models import intervals

    names = {m.name for m in built}
    if not set(intervals.MART_OF_GRAIN.values()) <= names:
        return None
    model = ModelRun(
        name=intervals.INTERVALS_TABLE,
        path=Path(intervals.__file__),
        depends_on=tuple(sorted({*intervals.MART_OF_GRAIN.values(), *intervals.INPUT_TABLES})),
    )
    t0 = time.perf_counter()
    try:
        model.rows = intervals.build_roi_intervals(con, cfg_params)
    except intervals.IntervalError as exc:
        raise ModelBuildError(
            f"Model {model.name} ({model.path}): {exc}. Nothing of this build was saved."
        ) from exc
    except duckdb.Error as exc:
        raise ModelBuildError(
            f"Model {model.name} ({model.path}) failed: {exc}. Nothing of this build was saved."
        ) from exc
    model.seconds = time.perf_counter() - t0
    return model


def _record_rejects(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Append what the models could not use to ops.rejects (once per run id, even when rebuilt)."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'ops' and table_name = 'rejects'"
    ).fetchall()[0][0]
    if not exists:
        return
    con.execute("delete from ops.rejects where run_id = ? and source like 'models:%'", [run_id])
    con.execute(
        f"""insert into ops.rejects by name
        select ? as run_id, source, record_id, line, field, value, reason, now() as rejected_at
        from main.{REJECTS_MODEL}""",
        [run_id],
    )


def run_data_tests(con: duckdb.DuckDBPyConnection, tests_dir: Path = DATA_TESTS_DIR) -> list[DataTestResult]:
    results = []
    for path in sorted(tests_dir.glob("*.sql")):
        sql = path.read_text(encoding="utf-8").strip().rstrip(";")
        severity = data_test_severity(sql, path)
        t0 = time.perf_counter()
        try:
            cursor = con.execute(f"select * from ({sql}) as offending")
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        except duckdb.Error as exc:
            results.append(
                DataTestResult(
                    path.stem,
                    path,
                    False,
                    0,
                    seconds=time.perf_counter() - t0,
                    error=str(exc).splitlines()[0],
                    severity=severity,
                )
            )
            continue
        sample = [dict(zip(columns, row, strict=True)) for row in rows[:FAILING_ROWS_SHOWN]]
        results.append(
            DataTestResult(
                path.stem, path, not rows, len(rows), sample, time.perf_counter() - t0, severity=severity
            )
        )
    return results


def data_test_severity(sql: str, path: Path) -> str:
    """'warn' or 'error' (default), from a `-- severity: ...` line in the test's leading comments."""
    header = []
    for line in sql.splitlines():
        if line.strip() and not line.strip().startswith("--"):
            break
        header.append(line)
    match = _SEVERITY_LINE.search("\n".join(header))
    if match is None:
        return "error"
    severity = match.group(1).lower()
    if severity not in SEVERITIES:
        raise ModelBuildError(
            f"Data test {path} says severity {match.group(1)!r}; write '-- severity: warn' or leave it out."
        )
    return severity
