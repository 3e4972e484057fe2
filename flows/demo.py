"""`roi demo`: the whole pipeline on the built-in sandbox in about a minute, nothing to configure.

Starts the sandbox in this process, runs the real `nightly` flow through Prefect (ephemeral server),
then shows what a marketer would look at: ROI by channel under a few attribution models, the
spreadsheet export, and sandbox CRM records with their new ROI properties, read back through the
official HubSpot client.
"""

from __future__ import annotations

import shutil
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from connectors.reports.data import MartReader
from flows.common import PipelineStepError
from flows.reporting import NOT_AVAILABLE, attribution_models, roi_rows
from flows.run_view import render_run
from flows.sandbox_mode import sandbox_environment, sandbox_history, sandbox_today
from flows.settings import open_warehouse

# Shown side by side when present: a single-touch baseline, a rule-based spread, the data-driven model.
DEMO_MODELS = ["last_touch", "linear", "markov"]
SAMPLE_RECORDS = 3


def _percent(value: Any) -> str:
    if value is None:
        return NOT_AVAILABLE
    return f"{Decimal(value) * 100:,.1f} %"


def _whole_percent(value: Any) -> str:
    """Whole percents: three models side by side, both bases each, must fit 80 columns."""
    return NOT_AVAILABLE if value is None else f"{Decimal(value) * 100:,.0f} %"


def _money(value: Any) -> str:
    """Whole units with thousands separators: the terminal table is for reading, the export keeps cents."""
    return NOT_AVAILABLE if value is None else f"{Decimal(value):,.0f}"


def _multiple(value: Any) -> str:
    return NOT_AVAILABLE if value is None else f"{Decimal(value):,.2f}"


def roi_by_channel_table(con: Any, model: str) -> Table:
    """One model's all-time ROI by channel on both bases: revenue (CA) and gross margin."""
    currency = MartReader(con).home_currency()
    table = Table(title=f"ROI by channel, all time, {model} ({currency})", title_justify="left")
    table.add_column("channel", no_wrap=True)
    for header in ("cost", "revenue", "margin", "ROI revenue", "ROI margin", "ROAS"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in roi_rows(con, "channel", model):
        table.add_row(
            row["channel"],
            _money(row["cost"]),
            _money(row["revenue"]),
            _money(row["gross_margin"]),
            _percent(row["roi_on_revenue"]),
            _percent(row["roi_on_margin"]),
            _multiple(row["roas"]),
        )
    return table


def roi_side_by_side(con: Any, models: list[str]) -> Table:
    """ROI on revenue and on margin by channel under a few attribution models, side by side."""
    table = Table(title="ROI on revenue / on margin by channel and model, all time", title_justify="left")
    table.add_column("channel", no_wrap=True)
    for model in models:
        table.add_column(model, justify="right", no_wrap=True)
    by_model = {m: {r["channel"]: r for r in roi_rows(con, "channel", m)} for m in models}
    channels = sorted({c for rows in by_model.values() for c in rows})
    for channel in channels:
        cells = [channel]
        for model in models:
            row = by_model[model].get(channel, {})
            on_revenue, on_margin = row.get("roi_on_revenue"), row.get("roi_on_margin")
            cells.append(f"{_whole_percent(on_revenue)} / {_whole_percent(on_margin)}")
        table.add_row(*cells)
    return table


def read_back_records(sb: Any, con: Any) -> Table:
    """A few published records, fetched from the sandbox API with the official HubSpot client."""
    from hubspot import HubSpot

    client = HubSpot(access_token=sb.access_token, host=sb.base_url)
    table = Table(title="Sandbox CRM records with their new ROI properties (read back via the HubSpot API)")
    table.add_column("object")
    table.add_column("id")
    table.add_column("properties", overflow="fold")
    for object_type, api in (("contacts", client.crm.contacts), ("deals", client.crm.deals)):
        found = con.execute(
            "select record_id, list(property order by property) from ops.published_values "
            "where object_type = ? group by record_id order by record_id limit ?",
            [object_type, SAMPLE_RECORDS],
        ).fetchall()
        for record_id, properties in found:
            record = api.basic_api.get_by_id(str(record_id), properties=list(properties))
            shown = {k: v for k, v in (record.properties or {}).items() if k in properties}
            table.add_row(
                object_type, str(record_id), ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
            )
    return table


def run_demo(console: Console, *, contacts: int, seed: int, out: Path) -> int:
    from connectors.reports import export_workbook, write_html_report
    from flows.backfill import backfill
    from flows.nightly import nightly

    started = time.monotonic()
    database = out / "roi.duckdb"
    # A fresh warehouse each time: the sandbox is regenerated, so old cursors would point nowhere.
    for leftover in (database, database.with_name(database.name + ".wal")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(out / "sandbox", ignore_errors=True)
    console.print(
        Panel.fit(
            f"roi-pipeline demo: built-in sandbox ({contacts:,} contacts, seed {seed}) - HubSpot and GA4 "
            "stand-ins on 127.0.0.1, real HTTP, official clients.\n"
            "No credentials used; nothing leaves this machine.",
            title="roi demo",
        )
    )
    with sandbox_environment(contacts=contacts, seed=seed, database=database, out_dir=out / "sandbox") as sb:
        console.print(f"Sandbox up at {sb.base_url} (GA4 property {sb.ga4_property_id}).")
        exit_code = 0
        first_day, last_day = sandbox_history(sb)
        # A new installation starts with a GA4 history backfill (the nightly run re-reads only a trailing
        # window); then the nightly run extracts everything else, builds, tests and publishes.
        with console.status(f"Backfill flow: GA4 history {first_day}..{last_day} (Prefect flow run)..."):
            history = backfill(start=first_day, end=last_day, streams=["ga4"], chunk_days=92)
        console.print(
            f"Backfill {history['run_id']}: GA4, {history['rows']:,} rows, {history['chunks']} chunks."
        )
        with console.status("Nightly flow: extract -> build -> data tests -> publish (Prefect flow run)..."):
            try:
                result = nightly(today=sandbox_today(sb))
            except PipelineStepError as exc:
                console.print(f"[bold red]{exc}[/]")
                result, exit_code = exc.result, 4
        broken = getattr(sb.dataset, "ground_truth", {}).get("spend_file_bad_rows", [])
        note = (
            f"The sandbox's spend sheet has {len(broken)} deliberately broken rows "
            f"({'; '.join(row['reason'] for row in broken)}) to show how bad input is handled: they are kept "
            "aside in ops.rejects with their reason and the run goes on without them."
            if broken
            else None
        )
        for block in render_run(result, rejects_note=note):
            console.print(block)
        with open_warehouse(database) as con:
            available = attribution_models(con)
            models = [m for m in DEMO_MODELS if m in available] or available[:3]
            console.print(roi_by_channel_table(con, models[-1]))
            console.print(roi_side_by_side(con, models))
            workbook = export_workbook(con, out / "roi.xlsx", model=models[-1], publish_model=models[-1])
            console.print(
                f"Spreadsheet (French, {workbook.model}; channels, sources, campaigns, months, model "
                f"comparison): [bold]{workbook.path}[/]"
            )
            if result.get("report"):
                console.print(
                    "HTML report (self-contained; written by the nightly run, linked from its Prefect "
                    f"artifacts): [bold]{result['report']}[/]"
                )
            else:
                report = write_html_report(con, out / "report.html", publish_model=models[-1])
                console.print(
                    f"HTML report ({len(report.charts)} charts, self-contained): [bold]{report.path}[/]"
                )
            if result["published"]:
                console.print(read_back_records(sb, con))
    console.print(
        Panel(
            "1. Connect a real portal: copy roi.example.toml to roi.toml, set HUBSPOT_ACCESS_TOKEN "
            "(a private app "
            "token with crm.objects.*.read/write and crm.schemas.*.write), GA4_PROPERTY_ID and "
            "GOOGLE_APPLICATION_CREDENTIALS, then `roi run --no-publish` and `roi status`.\n"
            "2. Deploy the schedule: `prefect server start`, "
            "`prefect work-pool create roi-process --type process`, `prefect --no-prompt deploy --all`, "
            "`prefect worker start --pool roi-process` (docs/operations.md).\n"
            "3. Explore: `roi report`, `roi export` (or `--format csv --by campaign`), `roi utm audit`, "
            "`roi status`.",
            title="what next",
        )
    )
    console.print(f"Demo finished in {time.monotonic() - started:.0f} s.")
    return exit_code
