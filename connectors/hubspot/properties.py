"""The pipeline's own HubSpot custom properties: what they are, and making sure the portal has them.

Everything the publish step writes lives in one property group (`roi_pipeline`, "Marketing ROI") under names
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
GROUP_LABEL = "Marketing ROI"
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
    kind: str  # "text" | "channel" | "currency" | "ratio" | "multiple" | "datetime"
    display_order: int = 0

    @property
    def hubspot_type(self) -> str:
        return {
            "text": "string",
            "channel": "enumeration",
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
            "currency": "number",
            "ratio": "number",
            "multiple": "number",
            "datetime": "date",
        }[self.kind]

    def create_body(self, channel_options: dict[str, str]) -> dict[str, Any]:
        # A plain dict on purpose: the SDK's PropertyCreate model has no numberDisplayHint /
        # showCurrencySymbol.
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "description": self.description,
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
        if self.kind == "channel":
            body["options"] = channel_option_list(channel_options)
        return body


def channel_option_list(channel_options: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"label": label, "value": value, "displayOrder": order, "hidden": False}
        for order, (value, label) in enumerate(channel_options.items())
    ]


def _props(object_type: str, rows: Iterable[tuple[str, str, str, str]]) -> list[CrmProperty]:
    return [
        CrmProperty(object_type, name, label, description, kind, display_order=order)
        for order, (name, kind, label, description) in enumerate(rows)
    ]


CONTACT_PROPERTIES = _props(
    "contacts",
    [
        (
            "roi_acquisition_channel",
            "channel",
            "Acquisition channel (first touch)",
            "Marketing channel of this contact's first known touchpoint, as classified by the ROI pipeline.",
        ),
        (
            "roi_acquisition_source",
            "text",
            "Acquisition source (first touch)",
            "Traffic source (e.g. google, linkedin, salon_maison_objet) of this contact's first touchpoint.",
        ),
        (
            "roi_acquisition_campaign",
            "text",
            "Acquisition campaign (first touch)",
            "Campaign of this contact's first known touchpoint; empty when the first touch had no campaign.",
        ),
        (
            "roi_attributed_revenue",
            "currency",
            "Attributed won revenue",
            "Revenue of this contact's won deals (home currency), as credited by the attribution model.",
        ),
        (
            "roi_attributed_margin",
            "currency",
            "Attributed gross margin",
            "Gross margin (revenue minus cost of goods) of this contact's won deals, in the home currency.",
        ),
        (
            "roi_channel_roi",
            "ratio",
            "Acquisition channel ROI",
            "Return on investment of this contact's acquisition channel, all time: (return - cost) / cost. "
            "Empty when the channel has no recorded cost.",
        ),
        (
            "roi_channel_cost_per_lead",
            "currency",
            "Acquisition channel cost per lead",
            "Marketing cost of this contact's acquisition channel divided by the leads it brought, all time.",
        ),
        (
            "roi_campaign_roi",
            "ratio",
            "Acquisition campaign ROI",
            "Return on investment of this contact's acquisition campaign, all time. Empty without cost.",
        ),
        (
            "roi_campaign_cost_per_lead",
            "currency",
            "Acquisition campaign cost per lead",
            "Marketing cost of this contact's acquisition campaign per lead it brought, all time.",
        ),
        (
            COMPUTED_AT_PROPERTY,
            "datetime",
            "ROI values computed at",
            "When the ROI pipeline last changed one of the Marketing ROI values on this record.",
        ),
    ],
)

DEAL_PROPERTIES = _props(
    "deals",
    [
        (
            "roi_attributed_channel",
            "channel",
            "Attributed channel",
            "Channel with the largest share of this deal's credit under the attribution model shown.",
        ),
        (
            "roi_attributed_campaign",
            "text",
            "Attributed campaign",
            "Campaign with the largest share of this deal's credit under the attribution model shown.",
        ),
        (
            "roi_campaign_roi",
            "ratio",
            "Attributed campaign ROI",
            "Return on investment of the attributed campaign, all time: (return - cost) / cost.",
        ),
        (
            "roi_campaign_roas",
            "multiple",
            "Attributed campaign ROAS",
            "Revenue per euro spent on the attributed campaign, all time (2.5 = 2.50 EUR back per 1 EUR).",
        ),
        (
            "roi_channel_roi",
            "ratio",
            "Attributed channel ROI",
            "Return on investment of the attributed channel, all time: (return - cost) / cost.",
        ),
        (
            "roi_channel_roas",
            "multiple",
            "Attributed channel ROAS",
            "Revenue per euro spent on the attributed channel, all time.",
        ),
        (
            "roi_gross_margin",
            "currency",
            "Deal gross margin",
            "Deal revenue minus the cost of goods of its line items, in the home currency.",
        ),
        (
            "roi_attribution_model",
            "text",
            "Attribution model",
            "Attribution model the Marketing ROI values of this deal come from (e.g. markov, w_shaped).",
        ),
        (
            COMPUTED_AT_PROPERTY,
            "datetime",
            "ROI values computed at",
            "When the ROI pipeline last changed one of the Marketing ROI values on this record.",
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
            if spec.kind == "channel":
                known = {o.get("value") for o in current.get("options") or []}
                if set(channel_options) - known:
                    # Keep the options other runs created (records may still hold them) and append the new
                    # ones.
                    merged = list(current.get("options") or [])
                    for value, label in channel_options.items():
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
                    spec.create_body(channel_options),
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
