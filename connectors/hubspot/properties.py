"""The pipeline's own HubSpot custom properties: what they are, and making sure the portal has them.

Everything the publish step writes lives in one property group (`roi_pipeline`, "ROI marketing") under names
that start with `roi_`. The schema is declared here once; `ensure_property_schema` creates what is missing and
refuses to touch a property of one of our names that somebody else owns (HubSpot itself, another group,
another type), because writing into it would overwrite data we do not own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.hubspot.client import HubSpotCaller

GROUP_NAME = "roi_pipeline"
GROUP_LABEL = "ROI marketing"
GROUP_DISPLAY_ORDER = -1
PROPERTY_PREFIX = "roi_"
OBJECT_TYPES = ("contacts", "deals")
COMPUTED_AT_PROPERTY = "roi_computed_at"

DEFAULT_TAGGING_PLAN = Path(__file__).resolve().parents[2] / "models" / "tagging_plan.yaml"
UNATTRIBUTED_LABEL = "Unattributed (no touchpoint)"
# Used when the tagging plan cannot be read (docs/contracts.md section 1 lists the same ids and labels).
DEFAULT_CHANNEL_LABELS: dict[str, str] = {
    "organic_search": "Organic search",
    "paid_search": "Paid search",
    "paid_social": "Paid social",
    "organic_social": "Organic social",
    "email": "E-mail",
    "referral": "Referral",
    "direct": "Direct",
    "events": "Events (offline)",
    "word_of_mouth": "Word of mouth",
    "unassigned": "Unassigned",
}


class PropertySchemaError(RuntimeError):
    """A property we need cannot be used safely; the message names the property and the fix."""


@dataclass(frozen=True)
class CrmProperty:
    """One custom property the pipeline owns; `kind` decides its HubSpot type and how values are formatted."""

    object_type: str
    name: str
    label: str
    description: str
    kind: str  # "text" | "channel" | "choice" | "currency" | "ratio" | "multiple" | "datetime"
    display_order: int = 0
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) of a "choice" property's options

    @property
    def hubspot_type(self) -> str:
        return {
            "text": "string",
            "channel": "enumeration",
            "choice": "enumeration",
            "currency": "number",
            "ratio": "number",
            "multiple": "number",
            "datetime": "datetime",
        }[self.kind]

    @property
    def field_type(self) -> str:
        return {
            "text": "text",
            "channel": "select",
            "choice": "select",
            "currency": "number",
            "ratio": "number",
            "multiple": "number",
            "datetime": "date",
        }[self.kind]

    def create_body(self, channel_options: dict[str, str], currency: str = "EUR") -> dict[str, Any]:
        """The property as HubSpot creates it; labels written with "EUR" name ``currency`` ([models]
        home_currency, the currency of every amount the pipeline writes)."""
        # A plain dict on purpose: the SDK's PropertyCreate model has no numberDisplayHint /
        # showCurrencySymbol.
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label.replace("EUR", currency),
            "description": self.description.replace("EUR", currency),
            "groupName": GROUP_NAME,
            "type": self.hubspot_type,
            "fieldType": self.field_type,
            "displayOrder": self.display_order,
            "formField": False,
            "hasUniqueValue": False,
        }
        if self.kind == "currency":
            body["numberDisplayHint"] = "currency"
            body["showCurrencySymbol"] = True
        elif self.kind == "ratio":
            body["numberDisplayHint"] = "percentage"
        elif self.kind == "multiple":
            body["numberDisplayHint"] = "formatted"
        if self.hubspot_type == "enumeration":
            body["options"] = channel_option_list(self.options(channel_options))
        return body

    def options(self, channel_options: dict[str, str]) -> dict[str, str]:
        """Value -> label of a dropdown: the tagging plan's channels, or the property's own choices."""
        return channel_options if self.kind == "channel" else dict(self.choices)


def channel_option_list(channel_options: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"label": label, "value": value, "displayOrder": order, "hidden": False}
        for order, (value, label) in enumerate(channel_options.items())
    ]


# The options of roi_margin_source: int_deals' margin_source values, labelled for CRM users.
MARGIN_SOURCE_CHOICES = (
    ("line_items", "Coût des produits (lignes de l'affaire)"),
    ("margin_rate", "Taux de marge configuré"),
    ("none", "Inconnue"),
)


def _props(object_type: str, rows: Iterable[tuple[str, str, str, str]]) -> list[CrmProperty]:
    return [
        CrmProperty(
            object_type,
            name,
            label,
            description,
            kind,
            display_order=order,
            choices=MARGIN_SOURCE_CHOICES if name == "roi_margin_source" else (),
        )
        for order, (name, kind, label, description) in enumerate(rows)
    ]


# Labels and descriptions are for CRM users, in French (the marketing outputs' language). Both ROI bases are
# published side by side: on revenue ("sur CA") and on gross margin ("sur marge"; empty when it is unknown).
# The former single `roi_channel_roi` / `roi_campaign_roi` are gone: the publish clears their old values.
CONTACT_PROPERTIES = _props(
    "contacts",
    [
        (
            "roi_acquisition_channel",
            "channel",
            "Canal d'acquisition (premier contact)",
            "Canal marketing du premier point de contact connu de ce contact, classé par le pipeline ROI.",
        ),
        (
            "roi_acquisition_source",
            "text",
            "Source d'acquisition (premier contact)",
            "Source de trafic (google, linkedin, salon_maison_objet...) du premier point de contact.",
        ),
        (
            "roi_acquisition_campaign",
            "text",
            "Campagne d'acquisition (premier contact)",
            "Campagne du premier point de contact connu ; vide quand ce contact n'avait pas de campagne.",
        ),
        (
            "roi_attributed_revenue",
            "currency",
            "CA gagné attribué",
            "Chiffre d'affaires des affaires gagnées de ce contact (devise de référence), selon le modèle "
            "d'attribution.",
        ),
        (
            "roi_attributed_margin",
            "currency",
            "Marge brute attribuée",
            "Marge brute (CA moins coût des produits vendus) des affaires gagnées de ce contact ; vide quand "
            "la marge d'une de ces affaires est inconnue.",
        ),
        (
            "roi_channel_roi_on_revenue",
            "ratio",
            "ROI sur CA du canal d'acquisition",
            "(CA - investissement) / investissement du canal d'acquisition de ce contact, depuis le début. "
            "Vide quand le canal n'a aucun coût enregistré.",
        ),
        (
            "roi_channel_roi_on_margin",
            "ratio",
            "ROI sur marge du canal d'acquisition",
            "(marge brute - investissement) / investissement du canal d'acquisition, depuis le début. Vide "
            "sans coût, ou quand la marge d'une affaire gagnée du canal est inconnue.",
        ),
        (
            "roi_channel_cost_per_lead",
            "currency",
            "Coût par lead du canal d'acquisition",
            "Investissement du canal d'acquisition de ce contact divisé par les leads qu'il a apportés.",
        ),
        (
            "roi_campaign_roi_on_revenue",
            "ratio",
            "ROI sur CA de la campagne d'acquisition",
            "(CA - investissement) / investissement de la campagne d'acquisition, depuis le début. Vide sans "
            "coût.",
        ),
        (
            "roi_campaign_roi_on_margin",
            "ratio",
            "ROI sur marge de la campagne d'acquisition",
            "(marge brute - investissement) / investissement de la campagne d'acquisition, depuis le début. "
            "Vide sans coût ou quand une marge est inconnue.",
        ),
        (
            "roi_campaign_cost_per_lead",
            "currency",
            "Coût par lead de la campagne d'acquisition",
            "Investissement de la campagne d'acquisition de ce contact par lead apporté, depuis le début.",
        ),
        (
            COMPUTED_AT_PROPERTY,
            "datetime",
            "Valeurs ROI calculées le",
            "Quand le pipeline ROI a modifié pour la dernière fois une valeur ROI marketing de cette fiche.",
        ),
    ],
)

DEAL_PROPERTIES = _props(
    "deals",
    [
        (
            "roi_attributed_channel",
            "channel",
            "Canal attribué",
            "Canal qui reçoit la plus grande part du crédit de cette affaire selon le modèle d'attribution.",
        ),
        (
            "roi_attributed_campaign",
            "text",
            "Campagne attribuée",
            "Campagne qui reçoit la plus grande part du crédit de cette affaire selon le modèle "
            "d'attribution.",
        ),
        (
            "roi_campaign_roi_on_revenue",
            "ratio",
            "ROI sur CA de la campagne attribuée",
            "(CA - investissement) / investissement de la campagne attribuée, depuis le début.",
        ),
        (
            "roi_campaign_roi_on_margin",
            "ratio",
            "ROI sur marge de la campagne attribuée",
            "(marge brute - investissement) / investissement de la campagne attribuée, depuis le début. Vide "
            "quand une marge est inconnue.",
        ),
        (
            "roi_campaign_roas",
            "multiple",
            "CA / investissement de la campagne attribuée",
            "CA pour 1 EUR investi dans la campagne attribuée, depuis le début (2,5 = 2,50 EUR pour 1 EUR).",
        ),
        (
            "roi_campaign_cost_per_euro_of_revenue",
            "multiple",
            "Coût pour 1 EUR de CA de la campagne attribuée",
            "Investissement de la campagne attribuée divisé par son CA, depuis le début (0,40 = 0,40 EUR "
            "pour 1 EUR de CA).",
        ),
        (
            "roi_channel_roi_on_revenue",
            "ratio",
            "ROI sur CA du canal attribué",
            "(CA - investissement) / investissement du canal attribué, depuis le début.",
        ),
        (
            "roi_channel_roi_on_margin",
            "ratio",
            "ROI sur marge du canal attribué",
            "(marge brute - investissement) / investissement du canal attribué, depuis le début. Vide quand "
            "une marge est inconnue.",
        ),
        (
            "roi_channel_roas",
            "multiple",
            "CA / investissement du canal attribué",
            "CA pour 1 EUR investi dans le canal attribué, depuis le début.",
        ),
        (
            "roi_channel_cost_per_euro_of_revenue",
            "multiple",
            "Coût pour 1 EUR de CA du canal attribué",
            "Investissement du canal attribué divisé par son CA, depuis le début.",
        ),
        (
            "roi_gross_margin",
            "currency",
            "Marge brute de l'affaire",
            "CA de l'affaire moins le coût des produits de ses lignes (hs_cost_of_goods_sold), sinon CA x "
            "taux de marge configuré pour son pipeline ; vide quand aucun des deux n'est connu.",
        ),
        (
            "roi_margin_source",
            "choice",
            "Origine de la marge brute",
            "D'où vient la marge brute de cette affaire gagnée : coût des produits de ses lignes, taux de "
            "marge configuré pour son pipeline, ou inconnue (la marge et les ROI sur marge restent vides).",
        ),
        (
            "roi_attribution_model",
            "text",
            "Modèle d'attribution",
            "Modèle d'attribution dont viennent les valeurs ROI marketing de cette affaire (markov, "
            "w_shaped...).",
        ),
        (
            COMPUTED_AT_PROPERTY,
            "datetime",
            "Valeurs ROI calculées le",
            "Quand le pipeline ROI a modifié pour la dernière fois une valeur ROI marketing de cette fiche.",
        ),
    ],
)

PIPELINE_PROPERTIES: dict[str, list[CrmProperty]] = {"contacts": CONTACT_PROPERTIES, "deals": DEAL_PROPERTIES}


def owned_property_names(object_type: str) -> set[str]:
    return {p.name for p in PIPELINE_PROPERTIES[object_type]}


def channel_labels(tagging_plan: Path | None = None) -> dict[str, str]:
    """Channel id -> label for the dropdown options: the tagging plan's `channels`, else the contract's list.

    Read straight from the YAML (connectors must not import models). `unattributed` is always added: the
    attribution mart gives that channel to deals without any touchpoint.
    """
    labels: dict[str, str] = {}
    path = tagging_plan or DEFAULT_TAGGING_PLAN
    try:
        import yaml

        channels = (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get("channels") or {}
        if isinstance(channels, dict):
            labels = {str(k): str(v or k) for k, v in channels.items()}
        elif isinstance(channels, list):  # a list of {id, label} mappings
            labels = {str(c["id"]): str(c.get("label") or c["id"]) for c in channels if isinstance(c, dict)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        labels = {}  # a broken plan is reported by the models build; publishing keeps the known channels
    if not labels:
        labels = dict(DEFAULT_CHANNEL_LABELS)
    labels.setdefault("unassigned", DEFAULT_CHANNEL_LABELS["unassigned"])
    labels.setdefault("unattributed", UNATTRIBUTED_LABEL)
    return labels


@dataclass
class SchemaReport:
    """What ensure_property_schema found and did (in a dry run: what it would do)."""

    groups_created: list[str] = field(default_factory=list)
    properties_created: list[str] = field(default_factory=list)
    options_added: list[str] = field(default_factory=list)
    calls: int = 0


def _ownership_problem(spec: CrmProperty, existing: dict[str, Any]) -> str | None:
    where = f"HubSpot {spec.object_type} property '{spec.name}'"
    fix = (
        "Fix: rename or delete that property in HubSpot (Settings > Properties), "
        "then run the publish again; the pipeline only writes properties it created."
    )
    if existing.get("hubspotDefined"):
        return f"{where} is a HubSpot-defined property, not one the ROI pipeline created. {fix}"
    group = existing.get("groupName")
    if group != GROUP_NAME:
        return (
            f"{where} already exists in group '{group}', not in the pipeline's group '{GROUP_NAME}', "
            f"so it belongs to someone else. {fix}"
        )
    if existing.get("type") != spec.hubspot_type:
        return (
            f"{where} already exists with type '{existing.get('type')}' but the pipeline needs "
            f"'{spec.hubspot_type}'. {fix}"
        )
    metadata = existing.get("modificationMetadata") or {}
    if metadata.get("readOnlyValue"):
        return f"{where} is read-only (modificationMetadata.readOnlyValue) so values cannot be written. {fix}"
    return None


def ensure_property_schema(
    call: HubSpotCaller,
    client: Any,
    *,
    channel_options: dict[str, str],
    dry_run: bool = False,
    object_types: Iterable[str] = OBJECT_TYPES,
    currency: str = "EUR",
) -> SchemaReport:
    """Create the missing group and properties; raise PropertySchemaError on a name someone else owns.

    `call(what, fn, *args)` (client.HubSpotCaller) runs one SDK call through the portal's rate limiter and
    retry policy and returns its JSON body.
    All conflicts are checked before anything is created, so a refused schema leaves the portal untouched.
    """
    report = SchemaReport()
    properties_api = client.crm.properties
    plan: list[tuple[str, bool, list[CrmProperty], list[tuple[CrmProperty, list[dict[str, Any]]]]]] = []
    problems: list[str] = []
    for object_type in object_types:
        groups = call(f"property groups {object_type}", properties_api.groups_api.get_all, object_type)
        report.calls += 1
        group_exists = any(g.get("name") == GROUP_NAME for g in groups.get("results", []))
        existing = call(f"properties {object_type}", properties_api.core_api.get_all, object_type)
        report.calls += 1
        by_name = {p.get("name"): p for p in existing.get("results", [])}
        missing: list[CrmProperty] = []
        option_updates: list[tuple[CrmProperty, list[dict[str, Any]]]] = []
        for spec in PIPELINE_PROPERTIES[object_type]:
            current = by_name.get(spec.name)
            if current is None:
                missing.append(spec)
                continue
            problem = _ownership_problem(spec, current)
            if problem:
                problems.append(problem)
                continue
            if spec.hubspot_type == "enumeration":
                wanted = spec.options(channel_options)
                known = {o.get("value") for o in current.get("options") or []}
                if set(wanted) - known:
                    # Keep the options other runs created (records may still hold them) and append the new
                    # ones.
                    merged = list(current.get("options") or [])
                    for value, label in wanted.items():
                        if value not in known:
                            merged.append(
                                {
                                    "label": label,
                                    "value": value,
                                    "displayOrder": len(merged),
                                    "hidden": False,
                                }
                            )
                    option_updates.append((spec, merged))
        plan.append((object_type, group_exists, missing, option_updates))
    if problems:
        raise PropertySchemaError("Cannot publish ROI values: " + " | ".join(problems))

    for object_type, group_exists, missing, option_updates in plan:
        if not group_exists:
            report.groups_created.append(f"{object_type}.{GROUP_NAME}")
            if not dry_run:
                call(
                    f"create property group {object_type}.{GROUP_NAME}",
                    properties_api.groups_api.create,
                    object_type,
                    {"name": GROUP_NAME, "label": GROUP_LABEL, "displayOrder": GROUP_DISPLAY_ORDER},
                )
                report.calls += 1
        for spec in missing:
            report.properties_created.append(f"{object_type}.{spec.name}")
            if not dry_run:
                call(
                    f"create property {object_type}.{spec.name}",
                    properties_api.core_api.create,
                    object_type,
                    spec.create_body(channel_options, currency),
                )
                report.calls += 1
        for spec, options in option_updates:
            report.options_added.append(f"{object_type}.{spec.name}")
            if not dry_run:
                call(
                    f"update property {object_type}.{spec.name}",
                    properties_api.core_api.update,
                    object_type,
                    spec.name,
                    {"options": options},
                )
                report.calls += 1
    return report
