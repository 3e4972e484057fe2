"""What the spreadsheet, the CSV file and the HTML report call things, in French (default) and English.

One declaration per column: its key in the query layer's rows, its kind (how it is formatted and summed), its
header and its explanation per language. The Lisez-moi sheet and the report's glossary are written from the
same explanations, so a header never drifts from what it means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from connectors.reports.formats import in_shown_currency

ColumnKind = Literal["dimension", "month", "money", "ratio", "percent", "count", "text"]


@dataclass(frozen=True)
class Column:
    key: str
    kind: ColumnKind
    fr: str
    en: str
    help_fr: str
    help_en: str

    def header(self, language: str) -> str:
        return in_shown_currency(self.fr if language == "fr" else self.en)

    def short_header(self, language: str) -> str:
        """The header without its unit, for tables whose cells show it: "CA (€)" -> "CA"."""
        return (self.fr if language == "fr" else self.en).removesuffix(" (€)")

    def help(self, language: str) -> str:
        return in_shown_currency(self.help_fr if language == "fr" else self.help_en)


_COLUMNS = [
    Column(
        "portal",
        "dimension",
        "Portail",
        "Portal",
        "Portail HubSpot (marque) du groupe ; ses montants sont convertis dans la devise du groupe.",
        "HubSpot portal (brand) of the group; its amounts are converted into the group's currency.",
    ),
    Column(
        "channel",
        "dimension",
        "Canal",
        "Channel",
        "Canal d'acquisition (libellé du plan de marquage).",
        "Acquisition channel (label from the tagging plan).",
    ),
    Column(
        "source",
        "dimension",
        "Source",
        "Source",
        "utm_source normalisé (google, newsletter, linkedin...).",
        "Normalised utm_source (google, newsletter, linkedin...).",
    ),
    Column(
        "medium",
        "dimension",
        "Support",
        "Medium",
        "utm_medium normalisé (cpc, email, paid_social...).",
        "Normalised utm_medium (cpc, email, paid_social...).",
    ),
    Column(
        "campaign", "dimension", "Campagne", "Campaign", "utm_campaign normalisé.", "Normalised utm_campaign."
    ),
    Column(
        "month",
        "month",
        "Mois",
        "Month",
        "Mois civil (fuseau de reporting) : dépense, contact ou affaire datés de ce mois.",
        "Calendar month (reporting time zone) of the spend, contact or deal.",
    ),
    Column(
        "cost",
        "money",
        "Investissement (€)",
        "Investment (€)",
        "Dépenses marketing : coût publicitaire GA4 ou tableau des dépenses (une seule source par "
        "campagne, selon le plan de marquage).",
        "Marketing spend: GA4 ad cost or the spend sheet (one source per campaign, per the tagging plan).",
    ),
    Column(
        "revenue",
        "money",
        "CA (€)",
        "Revenue (€)",
        "Chiffre d'affaires des affaires gagnées attribué selon le modèle d'attribution, en €.",
        "Won deals' revenue credited by the attribution model, in €.",
    ),
    Column(
        "gross_margin",
        "money",
        "Marge brute (€)",
        "Gross margin (€)",
        "CA moins le coût des produits vendus (lignes de produits) ou CA x taux de marge configuré ; "
        "vide quand la marge est inconnue (jamais inventée).",
        "Revenue minus cost of goods (line items) or revenue x configured margin rate; empty when "
        "unknown (never guessed).",
    ),
    Column(
        "margin_source",
        "text",
        "Source de la marge",
        "Margin source",
        "D'où vient la marge des affaires gagnées de la ligne : lignes de produits (coût des produits), taux "
        "de marge configuré, mixte, inconnue (marge vide), ou pas d'affaire gagnée.",
        "Where the row's won deals' margin comes from: line items (cost of goods), a configured margin rate, "
        "mixed, unknown (margin empty), or no won deal.",
    ),
    Column(
        "roi_on_revenue",
        "percent",
        "ROI sur CA",
        "ROI on revenue",
        "(CA - Investissement) / Investissement.",
        "(Revenue - investment) / investment.",
    ),
    Column(
        "roi_on_margin",
        "percent",
        "ROI sur marge",
        "ROI on margin",
        "(Marge brute - Investissement) / Investissement.",
        "(Gross margin - investment) / investment.",
    ),
    Column(
        "roas",
        "ratio",
        "CA / Investissement",
        "Revenue / investment",
        "CA en € pour 1 € investi (ROAS).",
        "Revenue in € per €1 invested (ROAS).",
    ),
    Column(
        "cost_per_euro_of_revenue",
        "ratio",
        "Coût pour 1 € de CA",
        "Cost per €1 of revenue",
        "Investissement / CA : combien coûte 1 € de chiffre d'affaires.",
        "Investment / revenue: what €1 of revenue costs.",
    ),
    Column(
        "leads",
        "count",
        "Leads",
        "Leads",
        "Contacts devenus leads, comptés au canal de leur contact de création.",
        "Contacts who became leads, counted at their lead-creation touch.",
    ),
    Column(
        "cost_per_lead",
        "money",
        "Coût par lead",
        "Cost per lead",
        "Investissement / Leads.",
        "Investment / leads.",
    ),
    Column(
        "customers",
        "count",
        "Clients",
        "Customers",
        "Contacts devenus clients, comptés au canal de leur contact de création.",
        "Contacts who became customers, counted at their lead-creation touch.",
    ),
    Column(
        "cac",
        "money",
        "Coût d'acquisition client",
        "Customer acquisition cost",
        "Investissement / Clients.",
        "Investment / customers.",
    ),
    Column(
        "won_deals",
        "count",
        "Affaires gagnées",
        "Won deals",
        "Affaires gagnées attribuées par le modèle, arrondies à l'unité de sorte que la colonne "
        "totalise le nombre réel (un modèle multi-contacts partage une affaire entre canaux).",
        "Won deals credited by the model, rounded to whole deals so that the column adds up to the "
        "real count (a multi-touch model shares one deal between channels).",
    ),
    Column(
        "roi_on_revenue_low",
        "percent",
        "ROI sur CA bas",
        "ROI on revenue low",
        "Borne basse de l'intervalle bootstrap du ROI sur CA.",
        "Lower bound of the bootstrap interval of ROI on revenue.",
    ),
    Column(
        "roi_on_revenue_high",
        "percent",
        "ROI sur CA haut",
        "ROI on revenue high",
        "Borne haute de l'intervalle bootstrap du ROI sur CA.",
        "Upper bound of the bootstrap interval of ROI on revenue.",
    ),
    Column(
        "roi_on_margin_low",
        "percent",
        "ROI sur marge bas",
        "ROI on margin low",
        "Borne basse de l'intervalle bootstrap du ROI sur marge.",
        "Lower bound of the bootstrap interval of ROI on margin.",
    ),
    Column(
        "roi_on_margin_high",
        "percent",
        "ROI sur marge haut",
        "ROI on margin high",
        "Borne haute de l'intervalle bootstrap du ROI sur marge.",
        "Upper bound of the bootstrap interval of ROI on margin.",
    ),
    Column(
        "reliability",
        "text",
        "Fiabilité",
        "Reliability",
        "« trop peu d'affaires » quand moins d'affaires gagnées que le seuil ont contribué : ce ROI ne "
        "permet pas de conclure.",
        "'too few deals' when fewer won deals than the threshold contributed: this ROI is not conclusive.",
    ),
]
COLUMNS = {c.key: c for c in _COLUMNS}

DIMENSIONS = {
    "channel": ("channel",),
    "source": ("channel", "source"),
    "campaign": ("channel", "source", "medium", "campaign"),
    # a group roll-up's warehouse (several portals): roi_by_portal_channel
    "portal": ("portal",),
    "portal_channel": ("portal", "channel"),
}
MEASURES = (
    "cost",
    "revenue",
    "gross_margin",
    "margin_source",
    "roi_on_revenue",
    "roi_on_margin",
    "roas",
    "cost_per_euro_of_revenue",
    "leads",
    "cost_per_lead",
    "customers",
    "cac",
    "won_deals",
)
INTERVAL_COLUMNS = (
    "roi_on_revenue_low",
    "roi_on_revenue_high",
    "roi_on_margin_low",
    "roi_on_margin_high",
    "reliability",
)

SHEETS = {
    "portal": {"fr": "Par portail", "en": "By portal"},
    "portal_channel": {"fr": "Par portail et canal", "en": "By portal and channel"},
    "channel": {"fr": "Par canal", "en": "By channel"},
    "source": {"fr": "Par source", "en": "By source"},
    "campaign": {"fr": "Par campagne", "en": "By campaign"},
    "channel_monthly": {"fr": "Par canal et mois", "en": "By channel and month"},
    "source_monthly": {"fr": "Par source et mois", "en": "By source and month"},
    "campaign_monthly": {"fr": "Par campagne et mois", "en": "By campaign and month"},
    "models": {"fr": "Comparaison des modèles", "en": "Model comparison"},
    "readme": {"fr": "Lisez-moi", "en": "Read me"},
}

SHEET_HELP = {
    "portal": (
        "Une ligne par portail (marque) du groupe, tous canaux confondus, dans la devise du groupe.",
        "One row per portal (brand) of the group, all channels, in the group's currency.",
    ),
    "portal_channel": ("Une ligne par portail et canal.", "One row per portal and channel."),
    "channel": (
        "Une ligne par canal, sur la période, avec les intervalles de ROI.",
        "One row per channel over the period, with the ROI intervals.",
    ),
    "source": ("Une ligne par canal et source.", "One row per channel and source."),
    "campaign": (
        "Une ligne par canal, source, support et campagne.",
        "One row per channel, source, medium and campaign.",
    ),
    "channel_monthly": (
        "Les mêmes chiffres mois par mois : filtrez la colonne Mois (les totaux suivent).",
        "The same figures month by month: filter the Month column (totals follow).",
    ),
    "source_monthly": ("Par source, mois par mois.", "By source, month by month."),
    "campaign_monthly": ("Par campagne, mois par mois.", "By campaign, month by month."),
    "models": (
        "Le ROI de chaque canal sous les 11 modèles d'attribution côte à côte (même investissement, CA "
        "réparti différemment).",
        "Each channel's ROI under the 11 attribution models side by side (same investment, revenue split "
        "differently).",
    ),
}

MODEL_NAMES = {
    "first_touch": ("Premier contact", "First touch"),
    "last_touch": ("Dernier contact", "Last touch"),
    "last_non_direct": ("Dernier contact non direct", "Last non-direct touch"),
    "linear": ("Linéaire", "Linear"),
    "time_decay": ("Décroissance temporelle", "Time decay"),
    "u_shaped": ("En U", "U-shaped"),
    "w_shaped": ("En W", "W-shaped"),
    "full_path": ("Parcours complet", "Full path"),
    "j_shaped": ("En J", "J-shaped"),
    "inverse_j": ("En J inversé", "Inverse J"),
    "markov": ("Markov (basé sur les données)", "Markov (data-driven)"),
}

# A row's margin source (roi_by_* margin_source) as shown in the tables.
ROW_MARGIN_SOURCES = {
    "line_items": ("lignes de produits", "line items"),
    "margin_rate": ("taux de marge", "margin rate"),
    "mixed": ("mixte", "mixed"),
    "none": ("inconnue", "unknown"),
    "no_won_deals": ("pas d'affaire gagnée", "no won deal"),
}

MARGIN_SOURCES = {
    "line_items": (
        "coût des produits des lignes de produits (hs_cost_of_goods_sold)",
        "line items' cost of goods (hs_cost_of_goods_sold)",
    ),
    "margin_rate": ("taux de marge configuré par pipeline", "margin rate configured per pipeline"),
    "revenue": ("aucune (marge inconnue)", "none (margin unknown)"),
    "none": ("aucune (marge inconnue)", "none (margin unknown)"),
}

TOTAL = {"fr": "Total", "en": "Total"}
TOO_FEW_DEALS = {"fr": "trop peu d'affaires", "en": "too few deals"}


def model_name(model: str, language: str) -> str:
    names = MODEL_NAMES.get(model)
    if names is None:
        return model
    return names[0] if language == "fr" else names[1]


def margin_source_name(source: str, language: str) -> str:
    names = MARGIN_SOURCES.get(source, (source, source))
    return names[0] if language == "fr" else names[1]
