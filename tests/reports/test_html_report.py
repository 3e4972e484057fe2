"""The HTML report opened as a person opens it: in Chromium (Debian's package, driven by Playwright; no
browser download), offline. No console error, no request leaves the file, every chart is drawn with a real
size, the totals shown are the marts', the text is French (English with --lang en, its own test), it prints
on A4; a screenshot goes to out/."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from report_fixtures import HOSTILE_CAMPAIGNS_AS_STORED, SCREENSHOTS
from typer.testing import CliRunner

from flows.cli import app

CHARTS = (
    "roi_intervals",
    "investment_revenue",
    "monthly_trend",
    "model_comparison",
    "campaigns",
    "utm_compliance",
    "utm_offenders",
    "freshness",
    "rejects",
)
# What Chromium needs here: no sandbox as root, no GPU, and none of its background calls to Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def french_number(text: str) -> Decimal:
    """'16 725,77 €' / '+300,3 %' / '1 990' -> Decimal."""
    cleaned = re.sub(r"[\s\u202f\u00a0€%+]", "", text).replace(",", ".")
    return Decimal(cleaned)


def _report(report_warehouse, output: Path, *options: str) -> Path:
    from _pytest.monkeypatch import MonkeyPatch

    patch = MonkeyPatch()
    for name, value in report_warehouse.env.items():
        patch.setenv(name, value)
    try:
        outcome = CliRunner().invoke(app, ["report", "--output", str(output), *options])
    finally:
        patch.undo()
    assert outcome.exit_code == 0, outcome.output
    assert "9 charts" in outcome.output and str(output) in outcome.output.replace("\n", "")
    return output


@pytest.fixture(scope="module")
def report_file(report_warehouse, tmp_path_factory) -> Path:
    return _report(report_warehouse, tmp_path_factory.mktemp("html") / "report.html")


@pytest.fixture(scope="module")
def english_report_file(report_warehouse, tmp_path_factory) -> Path:
    return _report(report_warehouse, tmp_path_factory.mktemp("html_en") / "report.html", "--lang", "en")


def _markov_totals(report_warehouse) -> tuple[Decimal, ...]:
    con = report_warehouse.connect()
    try:
        return con.execute(
            "select sum(cost), sum(revenue), sum(gross_margin), sum(leads), sum(customers), sum(won_deals), "
            "count(*) filter (where gross_margin is null) "
            "from roi_by_channel where month is null and attribution_model = 'markov'"
        ).fetchall()[0]
    finally:
        con.close()


def _open_offline(browser, report: Path, locale: str):
    """The report in a new page; returns (page, problems, requests) for the checks that follow."""
    page = browser.new_page(viewport={"width": 1200, "height": 900}, locale=locale)
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    return page, problems, requests


def _assert_every_chart_drawn(page) -> None:
    for key in CHARTS:
        svg = page.locator(f'figure[data-chart="{key}"] svg')
        assert svg.count() == 1, key
        box = svg.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 30, (key, box)
        assert svg.locator("text").count() > 0, key


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "no Chromium found (chromium, chromium-browser or google-chrome on PATH): `make test` installs "
            "Debian's chromium package when it runs as root; install it with `apt-get install chromium`"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def test_the_file_stands_alone(report_file):
    html = report_file.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing to fetch
    assert html.count("<svg") >= len(CHARTS)
    assert 50_000 < len(html.encode()) < 2_000_000


def test_report_in_chromium(report_file, report_warehouse, browser):
    page, problems, requests = _open_offline(browser, report_file, "fr-FR")
    assert problems == []
    assert requests == [report_file.as_uri()]  # the file itself, nothing else
    assert page.locator("html").get_attribute("lang") == "fr"

    _assert_every_chart_drawn(page)

    # the totals shown are the marts'
    cost, revenue, margin, leads, customers, won, has_unknown_margin = _markov_totals(report_warehouse)

    def shown(key: str) -> str:
        return page.locator(f'[data-total="{key}"] .value').inner_text()

    assert french_number(shown("cost")) == cost and shown("cost").endswith("€")
    assert french_number(shown("revenue")) == revenue
    if has_unknown_margin:
        assert shown("gross_margin") == "n/d"
    else:
        assert french_number(shown("gross_margin")) == margin
    roi = ((revenue - cost) / cost * 100).quantize(Decimal("0.1"))
    assert french_number(shown("roi_on_revenue")) == roi and shown("roi_on_revenue").endswith("%")
    assert french_number(shown("leads")) == leads
    assert french_number(shown("customers")) == customers
    assert french_number(shown("won_deals")) == round(won)
    total_row = page.locator("#channel-table tr.total td")
    assert french_number(total_row.nth(1).inner_text()) == cost

    # French text, French numbers, French months in the charts
    text = page.locator("body").inner_text()
    for phrase in (
        "Rapport ROI marketing",
        "L'essentiel",
        "Investissement",
        "Comparaison des modèles",
        "Qualité du marquage UTM",
        "Fraîcheur des données",
        "trop peu d'affaires",
    ):
        assert phrase in text, phrase
    for english in ("Investment", "Revenue", "Attribution model"):
        assert english not in text, english
    chart_text = page.locator('figure[data-chart="monthly_trend"] svg').inner_html()
    assert re.search(r"janv\.|févr\.|mars|avr\.", chart_text)
    # hostile campaign names are shown as text, never as markup
    assert page.locator("img").count() == 0
    assert HOSTILE_CAMPAIGNS_AS_STORED[2] in page.content().replace("&lt;", "<").replace("&gt;", ">")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
    assert (SCREENSHOTS / "report.png").stat().st_size > 100_000

    # printable to A4: a PDF of a handful of A4 pages, charts kept whole
    pdf = page.pdf(format="A4", print_background=True)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 3 <= pages <= 12, pages
    assert b"/MediaBox [0 0 595" in pdf or b"/MediaBox [0 0 594" in pdf  # A4 width in points
    page.close()


def english_number(text: str) -> Decimal:
    """'16,725.77 €' / '+300.3 %' / '1,990' -> Decimal."""
    return Decimal(re.sub(r"[\s\u202f\u00a0€%+,]", "", text))


def test_english_report_in_chromium(english_report_file, report_warehouse, browser):
    page, problems, requests = _open_offline(browser, english_report_file, "en-GB")
    assert problems == [] and requests == [english_report_file.as_uri()]
    assert page.locator("html").get_attribute("lang") == "en"
    _assert_every_chart_drawn(page)

    cost, revenue, margin, leads, customers, won, has_unknown_margin = _markov_totals(report_warehouse)

    def shown(key: str) -> str:
        return page.locator(f'[data-total="{key}"] .value').inner_text()

    assert english_number(shown("cost")) == cost and re.search(r"\d,\d{3}\.\d{2}", shown("cost"))
    assert english_number(shown("revenue")) == revenue
    if not has_unknown_margin:
        assert english_number(shown("gross_margin")) == margin
    roi = ((revenue - cost) / cost * 100).quantize(Decimal("0.1"))
    assert english_number(shown("roi_on_revenue")) == roi
    assert english_number(shown("leads")) == leads and english_number(shown("customers")) == customers
    assert english_number(shown("won_deals")) == round(won)

    text = page.locator("body").inner_text()
    english = ("Marketing ROI report", "At a glance", "Attribution models compared", "UTM tagging quality")
    for phrase in english:
        assert phrase in text, phrase
    for french in ("Investissement", "Rapport ROI", "Comparaison des modèles", "Fraîcheur", "trop peu"):
        assert french not in text, french
    trend = page.locator('figure[data-chart="monthly_trend"] svg').inner_html()
    assert re.search(r">(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) 20\d\d<", trend)
    assert not re.search(r"janv\.|févr\.|avr\.", trend)
    # ROI axes carry thousands separators in the report's language (+2,000 %, not +2000 %)
    charts = "".join(page.locator(f'figure[data-chart="{key}"] svg').inner_html() for key in CHARTS)
    roi_ticks = re.findall(r">([+-][\d,.]+)(?:\s|&nbsp;)?%<", charts)
    assert [t for t in roi_ticks if "," in t], roi_ticks
    page.close()


def test_a_nightly_notice_is_the_reports_banner(report_warehouse, tmp_path):
    # The nightly run passes why it did not publish (an incomplete extract...); the reader sees it first.
    from connectors.reports import write_html_report

    notice = "Publication vers le CRM non faite : extraction GA4 incomplète (2026-10-28..2026-10-30)"
    con = report_warehouse.connect()
    try:
        result = write_html_report(con, tmp_path / "r.html", notice=notice)
    finally:
        con.close()
    html = result.path.read_text(encoding="utf-8")
    banner = re.search(r'<p class="banner">([^<]*)</p>', html)
    assert banner is not None and banner.group(1) == notice.replace("'", "&#39;")
    assert html.index('class="banner"') < html.index('data-total="cost"')  # above the figures
