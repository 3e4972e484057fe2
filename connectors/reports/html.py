"""The self-contained HTML report: one file, charts as inline SVG, no script, nothing fetched when opened.

It opens offline from an e-mail attachment, reads on a laptop screen and prints on A4. Everything it shows
comes from the query layer (data.py); the text is French by default. A Content-Security-Policy forbids any
script or outside resource, so even a hostile campaign name (escaped anyway) cannot make the file fetch or
run anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2

from connectors.reports import charts, labels
from connectors.reports.data import ComplianceSummary, MartReader, Period, RoiRow, RunFacts, totals_row
from connectors.reports.formats import (
    day_label,
    integer,
    money,
    month_label,
    number,
    percent,
    ratio,
    signed_percent,
)

TEMPLATES = Path(__file__).parent / "templates"
TOP_CAMPAIGNS = 5
# utm_compliance.issues is written in English by the model; the French report says the same thing.
ISSUE_TRANSLATIONS = (
    (r"^no channel rule matches$", "aucune règle de canal ne correspond"),
    (r"^source (.*) is not in the plan$", r"source \1 absente du plan de marquage"),
    (r"^medium (.*) is not in the plan$", r"support \1 absent du plan de marquage"),
    (r"^campaign (.*) is not in the plan$", r"campagne \1 absente du plan de marquage"),
    (r"^source written '(.*)' instead of '(.*)'$", r"source écrite « \1 » au lieu de « \2 »"),
    (r"^medium written '(.*)' instead of '(.*)'$", r"support écrit « \1 » au lieu de « \2 »"),
    (r"^campaign written '(.*)' instead of '(.*)'$", r"campagne écrite « \1 » au lieu de « \2 »"),
)


@dataclass
class ReportRequest:
    model: str
    period: Period = field(default_factory=Period)
    language: str = "fr"
    publish_model: str | None = None
    generated_at: datetime | None = None
    notice: str | None = None  # shown in a banner at the top


@dataclass
class Chart:
    key: str
    title: str
    svg: str
    note: str = ""
    heading: str = ""  # a section title above the chart
    page_break: bool = False  # printed on a new A4 page


HEADINGS = {
    "portals": ("Les portails du groupe", "The group's portals", False),
    "roi_intervals": ("ROI par canal", "ROI by channel", False),
    "investment_revenue": (
        "Où va l'argent, d'où vient le CA",
        "Where the money goes, where revenue comes from",
        False,
    ),
    "monthly_trend": ("Tendance mensuelle", "Monthly trend", True),
    "model_comparison": ("Comparaison des modèles d'attribution", "Attribution models compared", False),
    "campaigns": ("Campagnes", "Campaigns", True),
    "utm_compliance": ("Qualité du marquage UTM", "UTM tagging quality", True),
    "freshness": ("Fraîcheur des données et rejets", "Data freshness and rejects", True),
}


@dataclass
class ReportResult:
    path: Path
    model: str
    bytes: int
    charts: list[str] = field(default_factory=list)
    totals: RoiRow | None = None


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _translate_issue(text: str, language: str) -> str:
    if language == "fr":
        for english, french in ISSUE_TRANSLATIONS:
            translated, found = re.subn(english, french, text)
            if found:
                return translated
    return text


class _Content:
    """Everything the template shows, gathered once from the reader."""

    def __init__(self, reader: MartReader, request: ReportRequest) -> None:
        self.reader = reader
        self.request = request
        self.lang = request.language
        self.channels = reader.roi_rows("channel", request.model, request.period)
        # a group roll-up (several portals): one line per portal, in the group's currency
        self.portals = reader.roi_rows("portal", request.model, request.period) if reader.is_group else []
        self.campaigns = reader.roi_rows("campaign", request.model, request.period)
        self.monthly = reader.roi_rows("channel", request.model, request.period, monthly=True)
        self.total = totals_row(self.channels, self.lang)
        self.facts: RunFacts = reader.run_facts()
        self.compliance: ComplianceSummary | None = reader.utm_compliance()
        self.models, self.comparison = reader.model_comparison(request.period)
        self.interval_settings = reader.interval_settings()

    # -- charts ------------------------------------------------------------------------------------------

    def charts(self) -> list[Chart]:
        lang = self.lang
        fr = lang == "fr"
        paid = [r for r in self.channels if r.cost]
        interval_rows = []
        for r in paid:
            iv = r.interval
            for basis, value in (("roi_on_revenue", r.roi_on_revenue), ("roi_on_margin", r.roi_on_margin)):
                if value is None:
                    continue
                interval_rows.append(
                    {
                        "label": r.channel_label,
                        "basis": basis,
                        "roi": _f(value),
                        "low": _f(getattr(iv, f"{basis}_low")) if iv else None,
                        "high": _f(getattr(iv, f"{basis}_high")) if iv else None,
                        "too_few": bool(iv and iv.too_few_deals),
                    }
                )
        level = self.interval_settings.get("level")
        level_text = percent(Decimal(level), lang, 0) if level else ""
        found = []
        if self.portals:
            found.append(
                Chart(
                    "portals",
                    "Investissement et chiffre d'affaires par portail"
                    if fr
                    else "Investment and revenue by portal",
                    charts.render_svg(
                        charts.investment_vs_revenue(
                            [
                                {"label": r.portal_label, "cost": _f(r.cost), "revenue": _f(r.revenue)}
                                for r in self.portals
                            ],
                            lang,
                        ),
                        lang,
                    ),
                    "Montants convertis dans la devise du groupe avec les taux de chaque portail."
                    if fr
                    else "Amounts converted into the group's currency with each portal's rates.",
                )
            )
        found += [
            Chart(
                "roi_intervals",
                "ROI par canal et son intervalle de confiance" if fr else "ROI by channel with its interval",
                charts.render_svg(charts.roi_with_intervals(interval_rows, lang), lang),
                (
                    f"Barres : ROI du modèle ; traits : intervalle bootstrap à {level_text}. Canaux payants "
                    "seulement (sans investissement, pas de ROI). Pâle : trop peu d'affaires pour conclure."
                    if fr
                    else f"Bars: the model's ROI; lines: {level_text} bootstrap interval. Paid channels only "
                    "(no investment, no ROI). Pale: too few deals to conclude."
                )
                if self.request.period.all_time
                else (
                    "Intervalles calculés sur toute la période : non montrés pour une période restreinte."
                    if fr
                    else "Intervals cover all time: not shown for a restricted period."
                ),
            ),
            Chart(
                "investment_revenue",
                "Investissement et chiffre d'affaires par canal"
                if fr
                else "Investment and revenue by channel",
                charts.render_svg(
                    charts.investment_vs_revenue(
                        [
                            {"label": r.channel_label, "cost": _f(r.cost), "revenue": _f(r.revenue)}
                            for r in self.channels
                            if r.cost or r.revenue
                        ],
                        lang,
                    ),
                    lang,
                ),
            ),
            Chart(
                "monthly_trend",
                "ROI sur CA mois par mois, canaux payants" if fr else "Monthly ROI on revenue, paid channels",
                charts.render_svg(
                    charts.monthly_trend(
                        [
                            {"label": r.channel_label, "month": r.month, "roi": _f(r.roi_on_revenue)}
                            for r in self.monthly
                            if r.cost and r.month
                        ],
                        lang,
                    ),
                    lang,
                ),
                "CA / Investissement (ROAS) = 1 + ROI sur CA."
                if fr
                else "Revenue / investment (ROAS) = 1 + ROI.",
            ),
            Chart(
                "model_comparison",
                "ROI sur CA selon le modèle d'attribution"
                if fr
                else "ROI on revenue under each attribution model",
                charts.render_svg(charts.model_comparison(self._comparison_cells(), lang), lang),
                (
                    "Même investissement, CA réparti différemment : un canal qui ne gagne qu'avec un modèle "
                    "mérite prudence."
                    if fr
                    else "Same investment, revenue split differently: a channel that wins under one model "
                    "only "
                    "deserves caution."
                ),
            ),
            Chart(
                "campaigns",
                f"Campagnes payantes : les {TOP_CAMPAIGNS} meilleures et les {TOP_CAMPAIGNS} moins bonnes"
                if fr
                else f"Paid campaigns: the {TOP_CAMPAIGNS} best and the {TOP_CAMPAIGNS} worst",
                charts.render_svg(charts.campaigns_ranked(self._campaign_rows(), lang), lang),
            ),
        ]
        if self.compliance is not None:
            c = self.compliance
            found.append(
                Chart(
                    "utm_compliance",
                    "Conformité des UTM au plan de marquage"
                    if fr
                    else "UTM compliance with the tagging plan",
                    charts.render_svg(
                        charts.compliance_share(
                            c.sessions, c.non_compliant_sessions, c.contacts, c.non_compliant_contacts, lang
                        ),
                        lang,
                    ),
                )
            )
            found.append(
                Chart(
                    "utm_offenders",
                    "UTM non conformes qui pèsent le plus"
                    if fr
                    else "Non-compliant UTMs with the most traffic",
                    charts.render_svg(
                        charts.worst_offenders(
                            [
                                {"label": self._utm_label(o), "sessions": int(o["sessions"] or 0)}
                                for o in c.offenders
                                if o["sessions"]
                            ],
                            lang,
                        ),
                        lang,
                    ),
                )
            )
        found.append(
            Chart(
                "freshness",
                "Fraîcheur des données par flux" if fr else "Data freshness per stream",
                charts.render_svg(charts.data_freshness(self._freshness_rows(), lang), lang),
                "Heures écoulées depuis le dernier chargement réussi."
                if fr
                else "Hours since the last good load.",
            )
        )
        found.append(
            Chart(
                "rejects",
                "Lignes rejetées à la dernière exécution" if fr else "Rows rejected by the last run",
                charts.render_svg(
                    charts.rejects_by_source(
                        [
                            {"source": r["source"], "rejects": int(r["rejects"])}
                            for r in self.reader.rejects_by_source(self.facts.rejects_run_id)
                        ],
                        lang,
                    ),
                    lang,
                ),
            )
        )
        for chart in found:
            if chart.key in HEADINGS:
                fr_heading, en_heading, chart.page_break = HEADINGS[chart.key]
                chart.heading = fr_heading if fr else en_heading
        return found

    def _comparison_cells(self) -> list[dict[str, Any]]:
        order = self.reader.channel_order()
        names = self.reader.channel_labels()
        cells = []
        for channel, by_model in self.comparison.items():
            for i, model in enumerate(self.models):
                row = by_model.get(model)
                if row is None or not row.cost:
                    continue
                cells.append(
                    {
                        "label": names.get(channel, channel),
                        "model": labels.model_name(model, self.lang),
                        "roi": _f(row.roi_on_revenue),
                        "model_order": i,
                        "label_order": order.get(channel, 999),
                    }
                )
        return cells

    def _campaign_label(self, row: RoiRow) -> str:
        name = row.campaign or ("(sans campagne)" if self.lang == "fr" else "(no campaign)")
        return f"{name} · {row.source or '-'} / {row.medium or '-'}"

    def paid_campaigns(self) -> list[RoiRow]:
        paid = [r for r in self.campaigns if r.cost and r.roi_on_revenue is not None]
        paid.sort(key=lambda r: -(r.roi_on_revenue or 0))
        if len(paid) <= 2 * TOP_CAMPAIGNS:
            return paid
        return paid[:TOP_CAMPAIGNS] + paid[-TOP_CAMPAIGNS:]

    def _campaign_rows(self) -> list[dict[str, Any]]:
        rows = []
        for r in self.paid_campaigns():
            iv = r.interval
            rows.append(
                {
                    "label": self._campaign_label(r),
                    "roi": _f(r.roi_on_revenue),
                    "low": _f(iv.roi_on_revenue_low) if iv else None,
                    "high": _f(iv.roi_on_revenue_high) if iv else None,
                }
            )
        return rows

    @staticmethod
    def _utm_label(offender: dict[str, Any]) -> str:
        parts = [
            offender["raw_source"] or "∅",
            offender["raw_medium"] or "∅",
            offender["raw_campaign"] or "∅",
        ]
        return " / ".join(parts)

    def _freshness_rows(self) -> list[dict[str, Any]]:
        now = self.request.generated_at or datetime.now(UTC)
        rows = []
        for s in self.facts.streams:
            if s["last_success"] is None:
                continue
            last = s["last_success"]
            if last.tzinfo is None:
                last = last.replace(tzinfo=UTC)
            rows.append(
                {
                    "stream": s["stream"],
                    "hours": max((now - last).total_seconds() / 3600, 0),
                    "failed": s["last_status"] != "success",
                }
            )
        return rows

    # -- tables ------------------------------------------------------------------------------------------

    def roi_cell(self, value: Decimal | None, low: Decimal | None, high: Decimal | None) -> dict[str, str]:
        lang = self.lang
        return {
            "value": signed_percent(value, lang),
            "interval": f"{signed_percent(low, lang)} à {signed_percent(high, lang)}"
            if lang == "fr" and low is not None
            else (f"{signed_percent(low, lang)} to {signed_percent(high, lang)}" if low is not None else ""),
            "sign": "" if value is None else ("pos" if value >= 0 else "neg"),
        }

    def offenders(self) -> list[dict[str, Any]]:
        if self.compliance is None:
            return []
        return [
            {
                "utm": self._utm_label(o),
                "channel": self.reader.channel_labels().get(o["channel"], o["channel"]),
                "issues": "; ".join(_translate_issue(i, self.lang) for i in (o["issues"] or [])),
                "sessions": integer(o["sessions"] or 0, self.lang),
                "contacts": integer(o["contacts"] or 0, self.lang),
            }
            for o in self.compliance.offenders
        ]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=money,
        percent=percent,
        signed_percent=signed_percent,
        ratio=ratio,
        integer=integer,
        number=number,
        day=day_label,
        month=month_label,
    )
    return env


def render_report(reader: MartReader, request: ReportRequest) -> tuple[str, _Content, list[Chart]]:
    content = _Content(reader, request)
    chart_list = content.charts()
    lang = request.language
    html = (
        _environment()
        .get_template("report.html.j2")
        .render(
            lang=lang,
            fr=lang == "fr",
            c=content,
            request=request,
            model_name=labels.model_name(request.model, lang),
            period=request.period.label(lang),
            generated=day_label(request.generated_at or datetime.now(UTC), lang),
            charts=chart_list,
            columns=labels.COLUMNS,
            margin_sources=reader.margin_sources(),
            margin_name=lambda s: labels.margin_source_name(s, lang),
        )
    )
    return html, content, chart_list


def write_report(reader: MartReader, path: Path, request: ReportRequest) -> ReportResult:
    """Render the report for ``request`` and write it to ``path`` (UTF-8)."""
    html, content, chart_list = render_report(reader, request)
    path.write_text(html, encoding="utf-8")
    return ReportResult(
        path, request.model, len(html.encode("utf-8")), [c.key for c in chart_list], content.total
    )
