"""The ROI workbook (.xlsx) a marketing manager opens in Excel: one sheet per level, months, model comparison,
and a Lisez-moi sheet.

Written with XlsxWriter because it stores a formula together with its computed (cached) value: ratio cells are
formulas over the Investissement / CA / Marge cells of their row (edit a budget and the ROI follows), and
readers that do not compute formulas (pandas, openpyxl, previewers) still read the numbers. Totals use
SUBTOTAL, so they follow the autofilter. Text from outside (UTM values, campaign names) is always written as a
string cell, and flagged with Excel's quote prefix when it looks like a formula.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.workbook import Format
from xlsxwriter.worksheet import Worksheet

from connectors.reports import labels
from connectors.reports.data import MartReader, Period, RoiRow, RunFacts, totals_row
from connectors.reports.formats import (
    currency_symbol,
    day_label,
    in_shown_currency,
    is_formula_like,
    number,
    percent,
)

NUMBER_FORMATS = {
    "money": '#,##0.00 "€";[Red]-#,##0.00 "€"',  # "€": the symbol of the currency amounts are shown in
    "percent": "0.0%;[Red]-0.0%",
    "ratio": "0.00",
    "count": "#,##0",
    "month": "mmmm yyyy",
}
COLUMN_WIDTHS = {
    "dimension": 24,
    "month": 15,
    "money": 16,
    "percent": 12,
    "ratio": 13,
    "count": 11,
    "text": 20,
}
HEADER_COLOR = "#1F3A5F"
TOTAL_COLOR = "#E8EEF5"


@dataclass
class WorkbookRequest:
    """What to put in the workbook: the model, the period, the language, and the facts for Lisez-moi."""

    model: str
    period: Period = field(default_factory=Period)
    language: str = "fr"
    publish_model: str | None = None


class _Formats:
    def __init__(self, workbook: xlsxwriter.Workbook) -> None:
        self.workbook = workbook
        self._cache: dict[tuple, Format] = {}

    def get(
        self, kind: str | None = None, *, header: bool = False, total: bool = False, **extra: Any
    ) -> Format:
        key = (kind, header, total, tuple(sorted(extra.items())))
        if key not in self._cache:
            props: dict[str, Any] = {"valign": "top"}
            if kind in NUMBER_FORMATS:
                props["num_format"] = NUMBER_FORMATS[kind].replace("€", currency_symbol())
            if header:
                props.update(
                    bold=True, text_wrap=True, font_color="#FFFFFF", bg_color=HEADER_COLOR, valign="vcenter"
                )
            if total:
                props.update(bold=True, bg_color=TOTAL_COLOR, top=1)
            props.update(extra)
            self._cache[key] = self.workbook.add_format(props)
        return self._cache[key]


def _excel_number(value: Decimal | int | float) -> float | int:
    # An .xlsx cell holds an IEEE double; Decimals of up to 15 significant digits round-trip exactly.
    return value if isinstance(value, int) else float(value)


def _write_text(sheet: Worksheet, row: int, col: int, value: Any, formats: _Formats, **style: Any) -> None:
    if value is None or value == "":
        sheet.write_blank(row, col, None, formats.get("text", **style))  # NULL stays an empty cell
        return
    text = str(value)
    if is_formula_like(text):
        # Never a formula: a string cell with Excel's quote prefix (shown as typed, never evaluated).
        sheet.write_string(row, col, text, formats.get("text", quote_prefix=True, **style))
    else:
        sheet.write_string(row, col, text, formats.get("text", **style))


class _RoiSheet:
    """One ROI table on one sheet: header, rows, SUBTOTAL totals, formulas with cached values."""

    def __init__(
        self, workbook: xlsxwriter.Workbook, formats: _Formats, name: str, keys: Sequence[str], language: str
    ) -> None:
        self.sheet = workbook.add_worksheet(name)
        self.formats = formats
        self.keys = list(keys)
        self.language = language
        self.col = {key: i for i, key in enumerate(self.keys)}

    def cell(self, key: str, row: int) -> str:
        return f"{xl_col_to_name(self.col[key])}{row + 1}"

    def write(self, rows: Sequence[RoiRow], total: RoiRow, *, dimensions: int, title: str) -> None:
        sheet, formats = self.sheet, self.formats
        for key, i in self.col.items():
            column = labels.COLUMNS[key]
            sheet.write_string(0, i, column.header(self.language), formats.get(header=True))
            sheet.set_column(i, i, COLUMN_WIDTHS[column.kind])
            sheet.write_comment(0, i, column.help(self.language), {"x_scale": 2, "y_scale": 1.2})
        sheet.set_row(0, 32)
        for r, row in enumerate(rows, start=1):
            self._write_row(r, row)
        last = len(rows)
        self._write_total(last + 1, total, first=1, last=last)
        sheet.autofilter(0, 0, max(last, 1), len(self.keys) - 1)
        sheet.freeze_panes(1, dimensions)
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.fit_to_pages(1, 0)
        sheet.repeat_rows(0)
        sheet.set_header(f"&L&B{title}&R&D")
        sheet.set_footer("&C&P / &N")
        if "reliability" in self.col and rows:
            flag = f'${xl_col_to_name(self.col["reliability"])}2<>""'
            first = self.col["roi_on_revenue_low"]
            sheet.conditional_format(
                1,
                first,
                last,
                self.col["reliability"],
                {
                    "type": "formula",
                    "criteria": "=" + flag,
                    "format": self.formats.workbook.add_format({"font_color": "#8A8A8A", "italic": True}),
                },
            )

    # -- rows ----------------------------------------------------------------------------------------------

    def _formula(self, key: str, r: int, row: RoiRow, style: dict[str, Any]) -> None:
        c = lambda k: self.cell(k, r)  # noqa: E731
        formulas: dict[str, Callable[[], str]] = {
            "roi_on_revenue": lambda: f'IF(N({c("cost")})=0,"",({c("revenue")}-{c("cost")})/{c("cost")})',
            "roi_on_margin": lambda: (
                f'IF(OR(N({c("cost")})=0,{c("gross_margin")}=""),"",'
                f"({c('gross_margin')}-{c('cost')})/{c('cost')})"
            ),
            "roas": lambda: f'IF(N({c("cost")})=0,"",{c("revenue")}/{c("cost")})',
            "cost_per_euro_of_revenue": lambda: (
                f'IF(OR(N({c("cost")})=0,N({c("revenue")})=0),"",{c("cost")}/{c("revenue")})'
            ),
            "cost_per_lead": lambda: (
                f'IF(OR(N({c("cost")})=0,N({c("leads")})=0),"",{c("cost")}/{c("leads")})'
            ),
            "cac": lambda: f'IF(OR(N({c("cost")})=0,N({c("customers")})=0),"",{c("cost")}/{c("customers")})',
        }
        needed = {
            "roi_on_revenue": ("cost", "revenue"),
            "roi_on_margin": ("cost", "gross_margin"),
            "roas": ("cost", "revenue"),
            "cost_per_euro_of_revenue": ("cost", "revenue"),
            "cost_per_lead": ("cost", "leads"),
            "cac": ("cost", "customers"),
        }[key]
        value = getattr(row, key)
        fmt = self.formats.get(labels.COLUMNS[key].kind, **style)
        if all(k in self.col for k in needed):
            cached = "" if value is None else _excel_number(value)
            self.sheet.write_formula(r, self.col[key], "=" + formulas[key](), fmt, cached)
        elif value is None:
            self.sheet.write_blank(r, self.col[key], None, fmt)
        else:
            self.sheet.write_number(r, self.col[key], _excel_number(value), fmt)

    def _write_row(self, r: int, row: RoiRow) -> None:
        for key, i in self.col.items():
            kind = labels.COLUMNS[key].kind
            if key in (
                "roi_on_revenue",
                "roi_on_margin",
                "roas",
                "cost_per_euro_of_revenue",
                "cost_per_lead",
                "cac",
            ):
                self._formula(key, r, row, {})
                continue
            value = row.value(key, self.language)
            if kind == "month":
                self.sheet.write_datetime(
                    r, i, datetime.combine(value, datetime.min.time()), self.formats.get("month")
                )
            elif kind in ("dimension", "text"):
                _write_text(self.sheet, r, i, value, self.formats)
            elif value is None:
                self.sheet.write_blank(r, i, None, self.formats.get(kind))
            else:
                self.sheet.write_number(r, i, _excel_number(value), self.formats.get(kind))

    def _write_total(self, r: int, total: RoiRow, *, first: int, last: int) -> None:
        style = {"total": True}
        for key, i in self.col.items():
            kind = labels.COLUMNS[key].kind
            fmt = self.formats.get(kind, total=True)
            span = f"{xl_col_to_name(i)}{first + 1}:{xl_col_to_name(i)}{max(last, first) + 1}"
            if i == 0:
                self.sheet.write_string(r, i, labels.TOTAL[self.language], fmt)
            elif key in ("cost", "revenue", "leads", "customers", "won_deals"):
                value = total.won_deals_whole if key == "won_deals" else getattr(total, key)
                formula = f"=SUBTOTAL(109,{span})" if last >= first else "=0"
                self.sheet.write_formula(r, i, formula, fmt, _excel_number(value))
            elif key == "gross_margin":
                # unknown (empty) as soon as one visible row's margin is unknown
                dims = f"A{first + 1}:A{max(last, first) + 1}"
                formula = f'=IF(SUBTOTAL(103,{span})<SUBTOTAL(103,{dims}),"",SUBTOTAL(109,{span}))'
                cached = "" if total.gross_margin is None else _excel_number(total.gross_margin)
                self.sheet.write_formula(r, i, formula, fmt, cached)
            elif key in (
                "roi_on_revenue",
                "roi_on_margin",
                "roas",
                "cost_per_euro_of_revenue",
                "cost_per_lead",
                "cac",
            ):
                self._formula(key, r, total, style)
            else:
                self.sheet.write_blank(r, i, None, fmt)


def _readme(
    workbook: xlsxwriter.Workbook,
    formats: _Formats,
    reader: MartReader,
    request: WorkbookRequest,
    facts: RunFacts,
    sheet_names: list[str],
) -> None:
    fr = request.language == "fr"
    lang = request.language
    sheet = workbook.add_worksheet(labels.SHEETS["readme"][lang])
    sheet.set_column(0, 0, 34)
    sheet.set_column(1, 1, 110)
    title = formats.get(bold=True, font_size=14)
    heading = formats.get(bold=True, font_color=HEADER_COLOR, top=1)
    wrap = formats.get(text_wrap=True)
    rows: list[tuple[str, str] | str] = []
    as_of = facts.as_of
    last = facts.last_run
    intervals = reader.interval_settings()
    rows.append("Contexte" if fr else "Context")
    rows.append(("Données au" if fr else "Data as of", day_label(as_of, lang)))
    if last:
        status = last.get("status") or ""
        rows.append(
            (
                "Dernière exécution" if fr else "Last run",
                f"{last['run_id']} - {day_label(last.get('finished_at') or last.get('started_at'), lang)}"
                f" - {status}",
            )
        )
    rows.append(
        (
            "Modèle d'attribution" if fr else "Attribution model",
            f"{labels.model_name(request.model, lang)} ({request.model})"
            + (
                ("  - modèle publié dans le CRM" if fr else "  - the model published to the CRM")
                if request.model == request.publish_model
                else ""
            ),
        )
    )
    rows.append(("Période" if fr else "Period", request.period.label(lang)))
    sources = reader.margin_sources()
    total_revenue = sum((Decimal(s["revenue"] or 0) for s in sources), Decimal(0))
    for s in sources:
        share = percent(Decimal(s["revenue"] or 0) / total_revenue, lang) if total_revenue else "-"
        rows.append(
            (
                "Source de la marge" if fr else "Margin source",
                f"{labels.margin_source_name(s['margin_source'], lang)} : {number(s['deals'], 0, lang)} "
                + (f"affaires gagnées, {share} du CA" if fr else f"won deals, {share} of revenue"),
            )
        )
    rows.append("Formules" if fr else "Formulas")
    if fr:
        rows += [
            (
                "ROI sur CA",
                "(CA - Investissement) / Investissement. Exemple : (4 500 - 4 000) / 4 000 = 12,5 % ; "
                "(5 000 - 2 000) / 2 000 = 150 %.",
            ),
            (
                "ROI sur marge",
                "(Marge brute - Investissement) / Investissement. La marge compte : une bougie "
                "vendue 8 € qui coûte 4 € rapporte 4 € de marge, pas 8 €.",
            ),
            ("CA / Investissement", "CA en € pour 1 € investi (ROAS)."),
            (
                "Coût pour 1 € de CA",
                "Investissement / CA : combien vous coûte 1 € de chiffre d'affaires, par canal.",
            ),
            (
                "Cellules calculées",
                "Les ROI, ratios, coûts par lead et CAC sont des formules sur les cellules "
                "Investissement, CA, Marge, Leads et Clients de leur ligne : modifiez un budget, le ROI "
                "suit. "
                "Les totaux (SOUS.TOTAL) suivent le filtre automatique.",
            ),
        ]
    else:
        rows += [
            (
                "ROI on revenue",
                "(Revenue - investment) / investment. Example: (4,500 - 4,000) / 4,000 = 12.5 %; "
                "(5,000 - 2,000) / 2,000 = 150 %.",
            ),
            (
                "ROI on margin",
                "(Gross margin - investment) / investment. Margin matters: a candle sold 8 € "
                "that costs 4 € brings 4 € of margin, not 8 €.",
            ),
            ("Revenue / investment", "Revenue in € per €1 invested (ROAS)."),
            ("Cost per €1 of revenue", "Investment / revenue: what €1 of revenue costs, per channel."),
            (
                "Computed cells",
                "ROI, ratios, cost per lead and CAC are formulas over their row's investment, "
                "revenue, margin, leads and customers cells: edit a budget and the ROI follows. Totals "
                "(SUBTOTAL) "
                "follow the autofilter.",
            ),
        ]
    rows.append("Incertitude" if fr else "Uncertainty")
    if intervals:
        level = percent(Decimal(intervals.get("level", "0.95")), lang, 0)
        resamples = number(intervals.get("resamples", 0), 0, lang)
        if fr:
            rows.append(
                (
                    "ROI bas / ROI haut",
                    f"Intervalle bootstrap à {level} : {resamples} rééchantillonnages "
                    f"de Poisson (graine {intervals.get('seed')}) des affaires gagnées (modèles à règles) ou "
                    "des parcours (Markov, effets de retrait recalculés à chaque tirage). "
                    "L'investissement est connu et n'est pas rééchantillonné. Calculé sur toute la période.",
                )
            )
            rows.append(
                (
                    "Fiabilité",
                    f"« trop peu d'affaires » : moins de {intervals.get('min_deals')} "
                    "affaires gagnées ont contribué à la ligne ; son ROI ne permet pas de conclure.",
                )
            )
        else:
            rows.append(
                (
                    "ROI low / ROI high",
                    f"{level} bootstrap interval: {resamples} Poisson resamples "
                    f"(seed {intervals.get('seed')}) of won deals (rule-based models) or journeys (Markov, "
                    "removal effects recomputed for each draw). Investment is known and not resampled. "
                    "Computed over all time.",
                )
            )
            rows.append(
                (
                    "Reliability",
                    f"'too few deals': fewer than {intervals.get('min_deals')} won deals "
                    "contributed to the row; its ROI is not conclusive.",
                )
            )
        if not request.period.all_time:
            rows.append(
                (
                    "",
                    "Période restreinte : les intervalles (toute la période) ne sont pas montrés."
                    if fr
                    else "Restricted period: intervals (all time) are not shown.",
                )
            )
    else:
        rows.append(
            (
                "",
                "Pas d'intervalles dans cet entrepôt (mart roi_intervals absent)."
                if fr
                else "No intervals in this warehouse (roi_intervals mart missing).",
            )
        )
    rows.append("Colonnes" if fr else "Columns")
    for column in labels.COLUMNS.values():
        if column.key == "portal" and not reader.is_group:
            continue
        rows.append((column.header(lang), column.help(lang)))
    rows.append("Onglets" if fr else "Sheets")
    sheet_help = {labels.SHEETS[key][lang]: text for key, text in labels.SHEET_HELP.items()}
    for name in sheet_names:
        help_text = sheet_help.get(name, ("", ""))
        rows.append((name, help_text[0] if fr else help_text[1]))
    sheet.write_string(0, 0, "ROI marketing - roi-pipeline", title)
    r = 2
    for item in rows:
        if isinstance(item, str):
            r += 1
            sheet.write_string(r, 0, item, heading)
            sheet.write_blank(r, 1, None, heading)
        else:
            sheet.write_string(r, 0, in_shown_currency(item[0]), formats.get(bold=True, valign="top"))
            sheet.write_string(r, 1, in_shown_currency(item[1]), wrap)
        r += 1
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)


def _model_comparison(
    workbook: xlsxwriter.Workbook, formats: _Formats, reader: MartReader, request: WorkbookRequest
) -> str:
    lang = request.language
    name = labels.SHEETS["models"][lang]
    sheet = workbook.add_worksheet(name)
    models, table = reader.model_comparison(request.period)
    names = reader.channel_labels()
    order = reader.channel_order()
    channels = sorted(table, key=lambda c: (order.get(c, 999), names.get(c, c)))
    n = len(models)
    roi_rev = {m: 2 + i for i, m in enumerate(models)}
    roi_mar = {m: 2 + n + i for i, m in enumerate(models)}
    rev = {m: 2 + 2 * n + i for i, m in enumerate(models)}
    mar = {m: 2 + 3 * n + i for i, m in enumerate(models)}
    header = formats.get(header=True)
    published = formats.get(header=True, bg_color="#B3541E")
    sheet.write_string(0, 0, labels.COLUMNS["channel"].header(lang), header)
    sheet.write_string(0, 1, labels.COLUMNS["cost"].header(lang), header)
    sheet.set_column(0, 0, 26)
    sheet.set_column(1, 1, 16)
    for m in models:
        model = labels.model_name(m, lang)
        fmt = published if m == request.publish_model else header
        for columns, what, kind in (
            (roi_rev, "roi_on_revenue", "percent"),
            (roi_mar, "roi_on_margin", "percent"),
            (rev, "revenue", "money"),
            (mar, "gross_margin", "money"),
        ):
            sheet.write_string(0, columns[m], f"{labels.COLUMNS[what].header(lang)} - {model}", fmt)
            sheet.set_column(columns[m], columns[m], COLUMN_WIDTHS[kind])
    sheet.set_row(0, 62)
    cost_col = xl_col_to_name(1)

    def roi_formula(r: int, value_col: int) -> str:
        v = f"{xl_col_to_name(value_col)}{r + 1}"
        c = f"{cost_col}{r + 1}"
        return f'=IF(OR(N({c})=0,{v}=""),"",({v}-{c})/{c})'

    def write_line(r: int, label: str, by_model: dict[str, RoiRow], total: bool) -> None:
        style = {"total": True} if total else {}
        _write_text(
            sheet,
            r,
            0,
            label,
            formats,
            **({"bold": True, "bg_color": TOTAL_COLOR, "top": 1} if total else {}),
        )
        first = next(iter(by_model.values()), None)
        cost = first.cost if first else Decimal(0)
        span = lambda col: f"{xl_col_to_name(col)}2:{xl_col_to_name(col)}{len(channels) + 1}"  # noqa: E731
        if total:
            sheet.write_formula(
                r, 1, f"=SUBTOTAL(109,{span(1)})", formats.get("money", **style), _excel_number(cost)
            )
        else:
            sheet.write_number(r, 1, _excel_number(cost), formats.get("money"))
        for m in models:
            row = by_model.get(m)
            revenue = row.revenue if row else Decimal(0)
            margin = row.gross_margin if row else Decimal(0)
            if total:
                sheet.write_formula(
                    r,
                    rev[m],
                    f"=SUBTOTAL(109,{span(rev[m])})",
                    formats.get("money", **style),
                    _excel_number(revenue),
                )
                dims = f"A2:A{len(channels) + 1}"
                sheet.write_formula(
                    r,
                    mar[m],
                    f'=IF(SUBTOTAL(103,{span(mar[m])})<SUBTOTAL(103,{dims}),"",SUBTOTAL(109,{span(mar[m])}))',
                    formats.get("money", **style),
                    "" if margin is None else _excel_number(margin),
                )
            else:
                sheet.write_number(r, rev[m], _excel_number(revenue), formats.get("money"))
                if margin is None:
                    sheet.write_blank(r, mar[m], None, formats.get("money"))
                else:
                    sheet.write_number(r, mar[m], _excel_number(margin), formats.get("money"))
            probe = row or RoiRow(cost=cost)
            for target, col, what in ((roi_rev, rev, "roi_on_revenue"), (roi_mar, mar, "roi_on_margin")):
                value = getattr(probe, what)
                sheet.write_formula(
                    r,
                    target[m],
                    roi_formula(r, col[m]),
                    formats.get("percent", **style),
                    "" if value is None else _excel_number(value),
                )

    for r, channel in enumerate(channels, start=1):
        write_line(r, names.get(channel, channel), table[channel], total=False)
    totals = {m: totals_row([table[c][m] for c in channels if m in table[c]], lang) for m in models}
    write_line(len(channels) + 1, labels.TOTAL[lang], totals, total=True)
    sheet.autofilter(0, 0, max(len(channels), 1), 1 + 4 * n)
    sheet.freeze_panes(1, 1)
    sheet.set_landscape()
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    return name


def write_workbook(reader: MartReader, path: Path, request: WorkbookRequest) -> dict[str, int]:
    """Write the ROI workbook to ``path``; returns the number of data rows per sheet."""
    lang = request.language
    facts = reader.run_facts()
    workbook = xlsxwriter.Workbook(
        str(path), {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    )
    workbook.set_properties(
        {
            "title": f"ROI - {labels.model_name(request.model, lang)} - {request.period.label(lang)}",
            "author": "roi-pipeline",
            "comments": f"as_of={facts.as_of}",
        }
    )
    formats = _Formats(workbook)
    model_title = labels.model_name(request.model, lang)
    counts: dict[str, int] = {}
    names: list[str] = []
    # A group roll-up (several portals): the portals first, then the group's channels, sources, campaigns.
    grains = (("portal", "portal_channel") if reader.is_group else ()) + ("channel", "source", "campaign")
    for grain in grains:
        dims = labels.DIMENSIONS[grain]
        rows = reader.roi_rows(grain, request.model, request.period)
        keys = [*dims, *labels.MEASURES]
        if request.period.all_time:
            keys += list(labels.INTERVAL_COLUMNS)
        name = labels.SHEETS[grain][lang]
        sheet = _RoiSheet(workbook, formats, name, keys, lang)
        sheet.write(
            rows,
            totals_row(rows, lang),
            dimensions=len(dims),
            title=f"{name} - {model_title} - {request.period.label(lang)}",
        )
        counts[name] = len(rows)
        names.append(name)
    for grain in ("channel", "source", "campaign"):
        dims = labels.DIMENSIONS[grain]
        rows = reader.roi_rows(grain, request.model, request.period, monthly=True)
        name = labels.SHEETS[f"{grain}_monthly"][lang]
        sheet = _RoiSheet(workbook, formats, name, [*dims, "month", *labels.MEASURES], lang)
        sheet.write(
            rows,
            totals_row(rows, lang),
            dimensions=len(dims) + 1,
            title=f"{name} - {model_title} - {request.period.label(lang)}",
        )
        counts[name] = len(rows)
        names.append(name)
    names.append(_model_comparison(workbook, formats, reader, request))
    _readme(workbook, formats, reader, request, facts, names)
    workbook.worksheets()[0].activate()
    workbook.close()
    return counts
