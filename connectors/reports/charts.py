"""The report's charts: Vega-Lite specifications built with altair, rendered to static SVG by vl-convert.

vl-convert runs Vega in an embedded JavaScript engine inside this process, so the report carries finished SVG:
nothing is fetched and no script runs when it is opened. Numbers are formatted with the report language's
d3 locale (French: 12 345 €, 12,5 %), month names with its time locale.

Each function takes plain rows (already chosen and labelled by the report) and returns an altair chart; floats
are only used here, for drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import vl_convert

from connectors.reports.formats import NARROW_NBSP, NBSP, currency_symbol, in_shown_currency

WIDTH = 660
POSITIVE = "#2E7D4F"
NEGATIVE = "#B23A48"
NEUTRAL = "#1F3A5F"
MUTED = "#9AA5B1"
ACCENT = "#D08C2F"
FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"

# d3 number locales; the currency symbol is added when a chart is rendered (the output's currency).
FORMAT_LOCALES = {
    "fr": {
        "decimal": ",",
        "thousands": NARROW_NBSP,
        "grouping": [3],
        "percent": NBSP + "%",
    },
    "en": {
        "decimal": ".",
        "thousands": ",",
        "grouping": [3],
        "percent": NBSP + "%",
    },
}
TIME_LOCALES = {"fr": "fr-FR", "en": "en-GB"}

TEXT = {
    "roi_on_revenue": {"fr": "ROI sur CA", "en": "ROI on revenue"},
    "roi_on_margin": {"fr": "ROI sur marge", "en": "ROI on margin"},
    "interval": {"fr": "intervalle", "en": "interval"},
    "too_few": {"fr": "trop peu d'affaires", "en": "too few deals"},
    "enough": {"fr": "assez d'affaires", "en": "enough deals"},
    "cost": {"fr": "Investissement", "en": "Investment"},
    "revenue": {"fr": "CA", "en": "Revenue"},
    "amount": {"fr": "Montant (€)", "en": "Amount (€)"},
    "month": {"fr": "Mois", "en": "Month"},
    "channel": {"fr": "Canal", "en": "Channel"},
    "model": {"fr": "Modèle d'attribution", "en": "Attribution model"},
    "campaign": {"fr": "Campagne", "en": "Campaign"},
    "sessions": {"fr": "Sessions", "en": "Sessions"},
    "contacts": {"fr": "Contacts", "en": "Contacts"},
    "share": {"fr": "Part", "en": "Share"},
    "compliant": {"fr": "Conformes au plan", "en": "Compliant"},
    "non_compliant": {"fr": "Non conformes", "en": "Non-compliant"},
    "rejects": {"fr": "Lignes rejetées", "en": "Rejected rows"},
    "source": {"fr": "Source", "en": "Source"},
    "age": {"fr": "Âge des données (heures)", "en": "Data age (hours)"},
    "stream": {"fr": "Flux", "en": "Stream"},
    "none": {"fr": "Aucun rejet", "en": "No rejects"},
    "nothing": {"fr": "Aucune donnée", "en": "No data"},
    "top": {"fr": "meilleures", "en": "best"},
    "bottom": {"fr": "moins bonnes", "en": "worst"},
}


def _t(key: str, language: str) -> str:
    return in_shown_currency(TEXT[key][language])


def _config(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (
        chart.configure(font=FONT, background="white")
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=11, titleFontSize=11, gridColor="#E6EAEE", labelLimit=220)
        .configure_legend(labelFontSize=11, titleFontSize=11, orient="bottom")
    )


def render_svg(chart: alt.TopLevelMixin, language: str) -> str:
    """The chart as a standalone SVG string, numbers and months in ``language``, amounts in the currency
    they are shown in."""
    spec = _config(chart).to_dict()
    number_locale = {**FORMAT_LOCALES[language], "currency": ["", NBSP + currency_symbol()]}
    return vl_convert.vegalite_to_svg(
        spec, format_locale=number_locale, time_format_locale=TIME_LOCALES[language]
    )


def _empty(message: str, height: int = 60) -> alt.Chart:
    return (
        alt.Chart(alt.Data(values=[{"text": message}]))
        .mark_text(fontSize=14, color=MUTED)
        .encode(text="text:N")
        .properties(width=WIDTH, height=height)
    )


def roi_with_intervals(rows: Sequence[dict[str, Any]], language: str) -> alt.TopLevelMixin:
    """Horizontal bars of ROI per channel (on revenue | on margin) with bootstrap error bars.

    rows: {label, basis ('roi_on_revenue'|'roi_on_margin'), roi, low, high, too_few}; ROI as fractions.
    """
    if not rows:
        return _empty(_t("nothing", language))
    data = [
        {
            **r,
            "basis_label": _t(r["basis"], language),
            "reliability": _t("too_few" if r["too_few"] else "enough", language),
        }
        for r in rows
    ]
    order = list(dict.fromkeys(r["label"] for r in sorted(rows, key=lambda r: -(r["roi"] or 0))))
    y = alt.Y("label:N", sort=order, title=None)
    base = alt.Chart()
    bars = base.mark_bar(height={"band": 0.7}).encode(
        y=y,
        x=alt.X("roi:Q", axis=alt.Axis(format="+,.0%", tickCount=5), title=None),
        color=alt.condition(alt.datum.roi >= 0, alt.value(POSITIVE), alt.value(NEGATIVE)),
        opacity=alt.Opacity(
            "reliability:N",
            scale=alt.Scale(domain=[_t("enough", language), _t("too_few", language)], range=[0.9, 0.35]),
            legend=None,  # the caption says it: pale = too few deals
        ),
    )
    errors = base.mark_rule(color="#222222", strokeWidth=1.5).encode(y=y, x="low:Q", x2="high:Q")
    caps = base.mark_tick(color="#222222", thickness=1.5, size=10).encode(y=y, x="low:Q")
    caps_high = base.mark_tick(color="#222222", thickness=1.5, size=10).encode(y=y, x="high:Q")
    zero = base.mark_rule(color="#555555", strokeDash=[3, 3]).encode(x=alt.datum(0))
    layered = alt.layer(bars, errors, caps, caps_high, zero, data=alt.Data(values=data)).properties(
        width=WIDTH // 2 - 30, height=alt.Step(24)
    )
    return layered.facet(
        column=alt.Column(
            "basis_label:N",
            title=None,
            sort=[_t("roi_on_revenue", language), _t("roi_on_margin", language)],
            header=alt.Header(labelFontSize=12, labelFontWeight="bold"),
        ),
    ).resolve_scale(x="independent")


def investment_vs_revenue(rows: Sequence[dict[str, Any]], language: str) -> alt.Chart:
    """Grouped bars per channel: investment and revenue (rows: {label, cost, revenue} in euros)."""
    if not rows:
        return _empty(_t("nothing", language))
    order = [r["label"] for r in sorted(rows, key=lambda r: -r["revenue"])]
    data = [
        {"label": r["label"], "measure": _t(key, language), "amount": r[key]}
        for r in rows
        for key in ("cost", "revenue")
    ]
    measures = [_t("cost", language), _t("revenue", language)]
    return (
        alt.Chart(alt.Data(values=data))
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort=order, title=None),
            yOffset=alt.YOffset("measure:N", sort=measures),
            x=alt.X("amount:Q", axis=alt.Axis(format="$,.0f", tickCount=5), title=_t("amount", language)),
            color=alt.Color(
                "measure:N",
                scale=alt.Scale(domain=measures, range=[ACCENT, NEUTRAL]),
                legend=alt.Legend(title=None),
            ),
        )
        .properties(width=WIDTH, height=alt.Step(13))
    )


def monthly_trend(rows: Sequence[dict[str, Any]], language: str) -> alt.Chart:
    """ROI on revenue per month and paid channel (rows: {label, month: date, roi}); extreme months clipped."""
    points = [r for r in rows if r["roi"] is not None]
    if not points:
        return _empty(_t("nothing", language))
    values = sorted(r["roi"] for r in points)
    top = max(1.0, values[int(0.95 * (len(values) - 1))] * 1.1)
    data = [{**r, "month": r["month"].isoformat(), "clipped": min(r["roi"], top)} for r in points]
    return alt.Chart(alt.Data(values=data)).mark_line(
        point=alt.OverlayMarkDef(size=28), strokeWidth=2
    ).encode(
        x=alt.X("month:T", timeUnit="yearmonth", axis=alt.Axis(format="%b %Y", labelAngle=-40), title=None),
        y=alt.Y(
            "clipped:Q",
            axis=alt.Axis(format="+,.0%"),
            scale=alt.Scale(domain=[-1, top], clamp=True),
            title=_t("roi_on_revenue", language),
        ),
        color=alt.Color("label:N", legend=alt.Legend(title=None, columns=4)),
    ).properties(width=WIDTH, height=220) + alt.Chart(alt.Data(values=[{"y": 0}])).mark_rule(
        color="#555555", strokeDash=[3, 3]
    ).encode(y="y:Q")


def model_comparison(cells: Sequence[dict[str, Any]], language: str) -> alt.Chart:
    """Heat map channels x models of ROI on revenue (cells: {label, model, roi, model_order, label_order})."""
    cells = [c for c in cells if c["roi"] is not None]
    if not cells:
        return _empty(_t("nothing", language))
    models = [c["model"] for c in sorted(cells, key=lambda c: c["model_order"])]
    models = list(dict.fromkeys(models))
    labels = list(dict.fromkeys(c["label"] for c in sorted(cells, key=lambda c: c["label_order"])))
    extent = max(0.5, max(abs(c["roi"]) for c in cells))
    base = alt.Chart(alt.Data(values=list(cells))).encode(
        x=alt.X("model:N", sort=models, axis=alt.Axis(labelAngle=-35, labelLimit=160), title=None),
        y=alt.Y("label:N", sort=labels, title=None),
    )
    heat = base.mark_rect(stroke="white").encode(
        color=alt.Color(
            "roi:Q",
            scale=alt.Scale(scheme="redyellowgreen", domain=[-extent, extent]),
            legend=alt.Legend(format="+,.0%", title=_t("roi_on_revenue", language), orient="right"),
        )
    )
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("roi:Q", format="+,.0%"),
        color=alt.condition(f"abs(datum.roi) > {extent * 0.6}", alt.value("white"), alt.value("#1A1A1A")),
    )
    return (heat + text).properties(width=WIDTH - 60, height=alt.Step(26))


def campaigns_ranked(rows: Sequence[dict[str, Any]], language: str) -> alt.Chart:
    """Best and worst paid campaigns by ROI on revenue with intervals (rows: {label, roi, low, high})."""
    if not rows:
        return _empty(_t("nothing", language))
    order = [r["label"] for r in sorted(rows, key=lambda r: -r["roi"])]
    base = alt.Chart(alt.Data(values=list(rows)))
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    bars = base.mark_bar(height={"band": 0.7}).encode(
        y=y,
        x=alt.X("roi:Q", axis=alt.Axis(format="+,.0%"), title=_t("roi_on_revenue", language)),
        color=alt.condition(alt.datum.roi >= 0, alt.value(POSITIVE), alt.value(NEGATIVE)),
    )
    errors = (
        base.transform_filter("isValid(datum.low)")
        .mark_rule(color="#222222")
        .encode(y=y, x="low:Q", x2="high:Q")
    )
    zero = (
        alt.Chart(alt.Data(values=[{"x": 0}])).mark_rule(color="#555555", strokeDash=[3, 3]).encode(x="x:Q")
    )
    return (bars + errors + zero).properties(width=WIDTH - 120, height=alt.Step(22))


def compliance_share(
    sessions: int, bad_sessions: int, contacts: int, bad_contacts: int, language: str
) -> alt.Chart:
    """100 % stacked bars: share of sessions and of contacts whose UTMs follow the tagging plan."""
    data = []
    for what, total, bad in (("sessions", sessions, bad_sessions), ("contacts", contacts, bad_contacts)):
        if total:
            data.append(
                {"what": _t(what, language), "status": _t("non_compliant", language), "share": bad / total}
            )
            data.append(
                {
                    "what": _t(what, language),
                    "status": _t("compliant", language),
                    "share": (total - bad) / total,
                }
            )
    if not data:
        return _empty(_t("nothing", language))
    statuses = [_t("non_compliant", language), _t("compliant", language)]
    bars = (
        alt.Chart(alt.Data(values=data))
        .mark_bar(height={"band": 0.6})
        .encode(
            y=alt.Y("what:N", title=None),
            x=alt.X(
                "share:Q",
                stack="zero",
                axis=alt.Axis(format=".0%"),
                scale=alt.Scale(domain=[0, 1]),
                title=None,
            ),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=statuses, range=[NEGATIVE, POSITIVE]),
                legend=alt.Legend(title=None),
            ),
            order=alt.Order("status:N", sort="descending"),
        )
    )
    labels = (
        alt.Chart(alt.Data(values=[d for d in data if d["status"] == statuses[0]]))
        .mark_text(align="left", dx=4, color="#1A1A1A", fontWeight="bold")
        .encode(y="what:N", x="share:Q", text=alt.Text("share:Q", format=".1%"))
    )
    return (bars + labels).properties(width=WIDTH, height=alt.Step(30))


def worst_offenders(rows: Sequence[dict[str, Any]], language: str) -> alt.Chart:
    """Sessions of the non-compliant UTM combinations with the most traffic (rows: {label, sessions})."""
    if not rows:
        return _empty(_t("nothing", language))
    order = [r["label"] for r in sorted(rows, key=lambda r: -r["sessions"])]
    return (
        alt.Chart(alt.Data(values=list(rows)))
        .mark_bar(color=NEGATIVE, height={"band": 0.7})
        .encode(
            y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=280)),
            x=alt.X("sessions:Q", axis=alt.Axis(format=",.0f"), title=_t("sessions", language)),
        )
        .properties(width=WIDTH - 160, height=alt.Step(20))
    )


def data_freshness(rows: Sequence[dict[str, Any]], language: str) -> alt.Chart:
    """Hours since each stream's last successful load (rows: {stream, hours, failed})."""
    if not rows:
        return _empty(_t("nothing", language))
    return (
        alt.Chart(alt.Data(values=list(rows)))
        .mark_bar(height={"band": 0.6})
        .encode(
            y=alt.Y("stream:N", title=None),
            x=alt.X("hours:Q", axis=alt.Axis(format=",.0f"), title=_t("age", language)),
            color=alt.condition(alt.datum.failed, alt.value(NEGATIVE), alt.value(NEUTRAL)),
        )
        .properties(width=WIDTH - 120, height=alt.Step(20))
    )


def rejects_by_source(rows: Sequence[dict[str, Any]], language: str) -> alt.Chart:
    """Rejected rows per source in the last run (rows: {source, rejects})."""
    if not rows:
        return _empty(_t("none", language), height=40)
    return (
        alt.Chart(alt.Data(values=list(rows)))
        .mark_bar(color=ACCENT, height={"band": 0.6})
        .encode(
            y=alt.Y("source:N", sort="-x", title=None),
            x=alt.X("rejects:Q", axis=alt.Axis(format=",.0f", tickMinStep=1), title=_t("rejects", language)),
        )
        .properties(width=WIDTH - 120, height=alt.Step(20))
    )
