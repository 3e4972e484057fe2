"""Three portals deployed for real: `nightly-all` on a process work pool with two workers.

Three sandboxes (different seeds and sizes), one of which refuses every request (403). The test deploys
prefect.yaml, starts two `prefect worker` processes and runs the `nightly-all` deployment; it checks that
- the two healthy portals ran side by side (their runs overlap) and published, the third ended Failed with its
  cause, and nightly-all ended Failed naming it and only it;
- each healthy portal's warehouse equals a single-portal run of a fresh copy of its sandbox (same seed, size);
- the group roll-up (in USD, from the portals' EUR with their own rates) has each portal's figures converted
  month by month, and group totals that are the sum of the portals.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from flows.sandbox_mode import sandbox_env, sandbox_portal_section, sandbox_today
from sandbox.server import SandboxServer

PORTALS = {"acme": (300, 3), "beta": (200, 5), "down": (120, 9)}  # name: (contacts, seed)
USD_RATE = Decimal("0.92")  # EUR for 1 USD in the sandbox shop's [models] fx_rates
# Columns a load stamps with its own run or clock: not part of what a warehouse holds.
VOLATILE = {"_loaded_at", "_run_id"}


@pytest.mark.timeout(900)
def test_nightly_all_runs_the_portals_side_by_side_and_rolls_them_up(deployed, tmp_path):
    sandboxes = {
        name: SandboxServer(
            contacts=contacts,
            seed=seed,
            out_dir=tmp_path / f"sandbox-{name}",
            # Every request refused (the private app lost its scopes): a 503 outage fails the same way after
            # the retries (measured: 2 min 20 s more), which this test does not need to wait for.
            faults="error_rate=1.0,statuses=403" if name == "down" else None,
        ).start()
        for name, (contacts, seed) in PORTALS.items()
    }
    try:
        (day,) = {sandbox_today(sb) for sb in sandboxes.values()}
        deployed.save_secret("hubspot-token-beta", sandboxes["beta"].access_token)
        config = tmp_path / "roi.toml"
        config.write_text(
            f'[group]\ndatabase = "{tmp_path / "group.duckdb"}"\n'
            + 'currency = "USD"\nmax_parallel_portals = 3\n\n'
            + sandbox_portal_section("acme", sandboxes["acme"], database=tmp_path / "acme.duckdb")
            + sandbox_portal_section(
                "beta",
                sandboxes["beta"],
                database=tmp_path / "beta.duckdb",
                token_secret="hubspot-token-beta",
            )
            + sandbox_portal_section("down", sandboxes["down"], database=tmp_path / "down.duckdb"),
            encoding="utf-8",
        )
        tokens = {
            "HUBSPOT_TOKEN_ACME": sandboxes["acme"].access_token,
            "HUBSPOT_TOKEN_DOWN": sandboxes["down"].access_token,
        }
        with deployed.workers(2, env=tokens):
            run_id = deployed.start(
                "nightly-all/nightly-all", {"config_path": str(config), "today": day.isoformat()}
            )
            # While the pool works: the same sandboxes (fresh copies) run the classic way, in this process.
            references = {
                name: _single_portal_run(deployed, tmp_path / f"reference-{name}", *PORTALS[name])
                for name in ("acme", "beta")
            }
            (run,) = deployed.wait([run_id], timeout=600)
        children = {c.parameters["portal"]: c for c in deployed.child_runs(run.id)}
        publishes = {name: _batch_updates(sb) for name, sb in sandboxes.items()}
    finally:
        for sb in sandboxes.values():
            sb.stop()

    diagnosis = f"{run.state_name}: {run.message}\n{deployed.logs(run.id)}\n{deployed.worker_logs()}"
    assert run.state_type == "FAILED", diagnosis
    assert "1 of 3 portal(s) failed, 2 completed" in run.message and "down: Failed" in run.message, diagnosis
    assert "acme:" not in run.message and "beta:" not in run.message
    assert set(children) == set(PORTALS)
    assert all(c.deployment == "nightly/nightly" for c in children.values())
    # Fanned out, not one after another: every portal run existed before the first one ended.
    assert max(c.created for c in children.values()) < min(c.ended for c in children.values())
    for name in ("acme", "beta"):
        assert children[name].completed, (
            f"{name}: {children[name].message}\n{deployed.logs(children[name].id)}"
        )
        assert publishes[name] > 0  # published to its own CRM
    assert children["down"].state_type == "FAILED" and "403" in children["down"].message
    assert publishes["down"] == 0

    for name in ("acme", "beta"):
        assert _fingerprint(tmp_path / f"{name}.duckdb") == _fingerprint(references[name]), name

    with duckdb.connect(str(tmp_path / "group.duckdb"), read_only=True) as con:
        included = dict(con.execute("select portal, included from group_portals").fetchall())
        assert included == {"acme": True, "beta": True, "down": False}
        for name in ("acme", "beta"):
            assert _portal_all_time_cost_usd(con, name) == _expected_usd_cost(tmp_path / f"{name}.duckdb")
        assert _rows(con, _GROUP_TOTALS) == _rows(con, _SUM_OF_PORTALS)
        assert con.execute("select count(*) from roi_by_channel").fetchall()[0][0] > 0
    report = (tmp_path / "group_report.html").read_text(encoding="utf-8")  # the group's HTML report
    assert (
        'data-portal="acme"' in report
        and 'data-portal="beta"' in report
        and 'data-portal="down"' not in report
    )


def _single_portal_run(deployed, folder: Path, contacts: int, seed: int) -> Path:
    """The same sandbox (fresh, same seed and size) run the classic way: no [portals], settings from the
    environment, the nightly flow called in this process against the session's server."""
    from flows.nightly import nightly
    from flows.sandbox_mode import patched_environ

    database = folder / "roi.duckdb"
    with (
        SandboxServer(contacts=contacts, seed=seed, out_dir=folder / "sandbox") as sb,
        deployed.as_api(),
        patched_environ(sandbox_env(sb, database=database)),
    ):
        state = nightly(today=sandbox_today(sb), return_state=True)
    assert state.is_completed(), state.message
    return database


def _fingerprint(database: Path) -> dict[str, tuple[int, int]]:
    """(rows, order-free hash of the rows) of every raw table and model, load stamps left out and doubles
    rounded to 9 decimals (their last bits depend on the order DuckDB adds them in)."""
    prints = {}
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'main') and table_type = 'BASE TABLE' order by 1, 2"
        ).fetchall()
        for schema, table in tables:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            shown = [
                f'round("{c}", 9) as "{c}"' if kind in ("DOUBLE", "FLOAT") else f'"{c}"'
                for c, kind in columns
                if c not in VOLATILE
            ]
            if not shown:
                continue
            rows = f'select {", ".join(shown)} from {schema}."{table}"'
            (count, digest) = con.execute(
                f"select count(*), coalesce(sum(hash(t)), 0) from ({rows}) as t"
            ).fetchall()[0]
            prints[f"{schema}.{table}"] = (count, int(digest))
    return prints


def _batch_updates(sb: SandboxServer) -> int:
    return sb.request_log.count(method="POST", where=lambda e: e.path.endswith("/batch/update"))


def _portal_all_time_cost_usd(con: duckdb.DuckDBPyConnection, portal: str) -> Decimal:
    return con.execute(
        "select sum(cost) from roi_by_portal_channel where portal = ? and month is null "
        "and attribution_model = 'markov'",
        [portal],
    ).fetchall()[0][0]


def _expected_usd_cost(database: Path) -> Decimal:
    """The portal's own monthly cost rows, each converted at its rate (EUR / 0.92) to the cent."""
    with duckdb.connect(str(database), read_only=True) as con:
        monthly = con.execute(
            "select cost from roi_by_channel where month is not null and attribution_model = 'markov'"
        ).fetchall()
    return sum(
        ((cost / USD_RATE).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) for (cost,) in monthly),
        Decimal(0),
    )


_GROUP_TOTALS = """
    select attribution_model, month, channel, cost, revenue, leads, customers, weighted_pipeline
    from roi_by_channel order by all"""
_SUM_OF_PORTALS = """
    select attribution_model, month, channel, sum(cost), sum(revenue), sum(leads), sum(customers),
        sum(weighted_pipeline)
    from roi_by_portal_channel group by all order by all"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()
