"""Benchmark: loading a large spend sheet (CSV as French Excel writes it, and XLSX) into a fresh warehouse.

    .venv/bin/python bench/bench_spend.py [--rows 50000]

The CSV is Windows-1252, `;`-separated, decimal comma, day-first dates, quotes where Excel puts them, with
1 % each of bad rows (an ambiguous amount, a duplicate, a quote left open); the XLSX holds the same rows as
typed cells. Reported per format: wall time of `load_spend` (read, dialect detection, parse, replacement plan,
load, rejects), rows per second, rows loaded and rejected, and the time of loading the same file again.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from connectors.spend import load_spend

SOURCES = ("google", "bing", "facebook", "linkedin", "salon_maison_objet", "bouche à oreille")
MEDIUMS = ("cpc", "paid_social", "offline", "email")
CAMPAIGNS = ("brand_bougies", "generic_bougies", "noël; cadeaux", "soldes_été", "b2b_boutiques")


def rows(count: int) -> list[list[object]]:
    out: list[list[object]] = []
    for i in range(count):
        day = date(2020, 1, 1) + timedelta(days=i % 2000)
        amount = f"{(i * 37) % 100_000 / 100:.2f}"
        if i % 100 == 7:
            amount = "1,234"  # ambiguous: rejected
        row = [day, day, SOURCES[i % 6], MEDIUMS[i % 4], f"{CAMPAIGNS[i % 5]}_{i}", amount, "EUR"]
        if i % 100 == 13 and out:
            row = list(out[-1])  # an exact duplicate of the previous row: rejected
        out.append(row)
    return out


def write_csv(path: Path, data: list[list[object]]) -> None:
    lines = ["period_start;period_end;source;medium;campaign;amount;currency"]
    for i, row in enumerate(data):
        cells = [c.strftime("%d/%m/%Y") if isinstance(c, date) else str(c) for c in row]
        cells[5] = cells[5].replace(".", ",")
        cells = [f'"{c}"' if ";" in c else c for c in cells]  # as Excel quotes a value holding the separator
        if i % 100 == 29:
            cells[4] = '"' + cells[4]  # a quote left open: that line is rejected, not the rest
        lines.append(";".join(cells))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))


def write_xlsx(path: Path, data: list[list[object]]) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(["period_start", "period_end", "source", "medium", "campaign", "amount", "currency"])
    for row in data:
        amount = row[5]
        sheet.append([*row[:5], float(amount) if "," not in str(amount) else amount, row[6]])
    workbook.save(path)


def measure(path: Path, db: Path) -> str:
    started = time.perf_counter()
    result = load_spend(path, db, "bench-1")
    first = time.perf_counter() - started
    started = time.perf_counter()
    load_spend(path, db, "bench-2")
    again = time.perf_counter() - started
    total = result.rows_loaded + result.rows_rejected
    return (
        f"| {path.suffix[1:]} | {total:,} | {result.rows_loaded:,} | {result.rows_rejected:,} "
        f"| {first:.2f} s | {total / first:,.0f} | {again:.2f} s | {result.encoding or '-'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    data = rows(args.rows)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_csv(root / "spend.csv", data)
        write_xlsx(root / "spend.xlsx", data)
        print("| format | rows | loaded | rejected | load | rows/s | load again (replace) | encoding |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        print(measure(root / "spend.csv", root / "csv.duckdb"))
        print(measure(root / "spend.xlsx", root / "xlsx.duckdb"))


if __name__ == "__main__":
    main()
