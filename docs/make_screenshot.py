"""Regenerate the README's picture of the HTML report (`make screenshot`).

    .venv/bin/python docs/make_screenshot.py out/demo/roi.duckdb docs/img/report.png

Writes the report of the given warehouse (French, publish model), opens it in Debian's Chromium through
Playwright (no browser download) and keeps the top of the page: title, totals, ROI by channel with intervals.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import duckdb

from connectors.reports import write_html_report

WIDTH, HEIGHT = 1100, 1500
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main(database: Path, image: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        sys.exit("no chromium on PATH: `apt-get install chromium` (Debian) and run again")
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.html"
        con = duckdb.connect(str(database), read_only=True)
        try:
            write_html_report(con, report, publish_model="markov")
        finally:
            con.close()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT}, locale="fr-FR")
            page.goto(report.as_uri())
            image.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(image))
            browser.close()
    print(f"wrote {image} ({image.stat().st_size / 1024:,.0f} KiB)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
