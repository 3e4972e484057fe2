"""Benchmark: GA4 extract (official client over REST -> DuckDB) and the spend-sheet load, against the sandbox.

Measures a full-history backfill (default chunks of 30 days, 100k-row pages), a nightly trailing window on
top of it, and loading the sandbox's spend sheet (CSV and XLSX). The sandbox runs in the same process, so
its report computation is included in the wall time (a real GA4 answers in 0.3-2 s per request instead).

    .venv/bin/python bench/bench_ga4_extract.py            # 100,000 contacts
    .venv/bin/python bench/bench_ga4_extract.py 20000
"""

from __future__ import annotations

import csv
import logging
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

DEFAULT_CONTACTS = 100_000
SEED = 42


def main(contacts: int) -> None:
    logging.disable(logging.WARNING)  # the sheet's deliberate bad rows would log one warning each
    from openpyxl import Workbook

    from connectors.config import load_settings
    from connectors.ga4 import extract_ga4
    from connectors.spend import load_spend
    from sandbox.server import SandboxServer

    with tempfile.TemporaryDirectory() as tmp, SandboxServer(contacts=contacts, seed=SEED) as sb:
        dataset = sb.dataset
        settings = load_settings(None, ga4_property_id=sb.ga4_property_id, ga4_api_endpoint=sb.base_url)
        today = dataset.now.astimezone(ZoneInfo("Europe/Paris")).date()
        first = dataset.ga4.first_day
        db = Path(tmp) / "bench.duckdb"
        last = today - timedelta(days=1)
        print(f"contacts={contacts:,} GA4 fact rows={len(dataset.ga4):,} history {first}..{last}")

        started = time.perf_counter()
        backfill = extract_ga4(settings, db, "bench-backfill", start=first, end=last)
        seconds = time.perf_counter() - started
        rows = backfill.rows
        print(
            f"backfill: {seconds:.2f} s, {rows:,} rows ({rows / seconds:,.0f} rows/s), "
            f"{backfill.calls} calls, {sum(r.pages for r in backfill.reports.values())} pages, "
            f"{backfill.tokens_consumed} tokens, complete={backfill.complete}"
        )
        for name, report in backfill.reports.items():
            withheld = (
                f", {report.withheld_sessions:,} sessions withheld by GA4" if report.withheld_sessions else ""
            )
            print(f"  {name}: {report.rows:,} rows, {report.days} days, {report.chunks} chunks{withheld}")
        print(f"  ad cost available: {backfill.cost.available if backfill.cost else None}")

        started = time.perf_counter()
        nightly = extract_ga4(settings, db, "bench-nightly", today=today)
        print(f"nightly (3-day window): {time.perf_counter() - started:.2f} s, {nightly.rows:,} rows, "
              f"{nightly.calls} calls")  # fmt: skip

        sheet = dataset.write_spend_csv(Path(tmp) / "spend.csv")
        started = time.perf_counter()
        spend = load_spend(sheet, db, "bench-spend")
        csv_s = time.perf_counter() - started
        workbook = Workbook()
        with sheet.open(encoding="utf-8", newline="") as handle:
            for cells in csv.reader(handle):
                workbook.active.append(cells)
        xlsx = Path(tmp) / "spend.xlsx"
        workbook.save(xlsx)
        started = time.perf_counter()
        load_spend(xlsx, db, "bench-spend-xlsx")
        xlsx_s = time.perf_counter() - started
        print(f"spend sheet: {spend.rows_read} rows ({spend.rows_rejected} rejected): CSV {csv_s:.2f} s, "
              f"XLSX {xlsx_s:.2f} s")  # fmt: skip
        print(
            f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB; run on {date.today()}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CONTACTS)
