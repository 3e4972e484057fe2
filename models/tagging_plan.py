"""The tagging plan (models/tagging_plan.yaml): canonical UTM values, aliases, normalisation, channel rules.

One plan drives three things that must agree: the SQL models (through the cfg_tagging_* tables the runner
loads from `TaggingPlan.config_tables()`), the `roi utm build` command (`build_utm_link`), and the
utm_compliance mart. The Python `normalise()` here and the SQL macro from `normalise_sql()` implement the same
steps; a test holds them to it.

Errors name the file and line of the offending YAML node (from PyYAML's node marks), what is wrong and the
fix.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_plus, urlencode, urlsplit, urlunsplit

import yaml

DEFAULT_PLAN_PATH = Path(__file__).with_name("tagging_plan.yaml")
SUPPORTED_VERSIONS = (1,)
UTM_FIELDS = ("source", "medium", "campaign", "term", "content")
RULE_FIELDS = ("source", "medium", "campaign")
MATCH_OPERATORS = ("equals", "in", "regex")
SPEND_WINNERS = ("spend_file", "ga4")
UNASSIGNED_CHANNEL = "unassigned"
UNATTRIBUTED_CHANNEL = "unattributed"
# The models add this channel themselves; its label per language unless the plan's channel_labels names it.
UNATTRIBUTED_LABELS = {"fr": "Non attribué (aucun contact)", "en": "Unattributed (no touch)"}
HUBSPOT_SOURCE_FIELDS = ("data_1", "data_2")
_WHITESPACE_RUN = re.compile(r"\s+")
_QUOTES = "\"'`"


class TaggingPlanError(ValueError):
    """The plan file is invalid; the message names file, line, problem and fix."""


@dataclass(frozen=True)
class Normalisation:
    url_decode: bool = True
    trim: bool = True
    strip_quotes: bool = True
    lower: bool = True
    spaces_to: str = "_"


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str  # equals | in | regex
    values: tuple[str, ...]

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.operator == "regex":
            return re.fullmatch(self.values[0], value) is not None
        return value in self.values


@dataclass(frozen=True)
class ChannelRule:
    order: int
    name: str
    channel: str
    conditions: tuple[Condition, ...]

    def matches(self, values: dict[str, str | None]) -> bool:
        return all(c.matches(values.get(c.field)) for c in self.conditions)


@dataclass(frozen=True)
class SpendWinnerRule:
    order: int
    name: str
    winner: str
    conditions: tuple[Condition, ...]

    def matches(self, values: dict[str, str | None]) -> bool:
        return all(c.matches(values.get(c.field)) for c in self.conditions)


@dataclass(frozen=True)
class SourceMapping:
    """A HubSpot source value or an offline answer -> one touch's channel/source/medium/campaign."""

    key: str
    channel: str
    source: str | None
    source_from: str | None  # data_1 / data_2 when the source is the drill-down value
    medium: str | None
    campaign: str | None = None
    campaign_from: str | None = None  # data_1 / data_2 when the campaign is the drill-down value


@dataclass
class TaggingPlan:
    version: int
    path: Path
    home_currency: str
    reporting_time_zone: str
    normalisation: Normalisation
    null_values: tuple[str, ...]
    untagged_channel: str
    channels: dict[str, str]
    canonical: dict[str, tuple[str, ...]]
    aliases: dict[str, dict[str, str]]
    channel_rules: tuple[ChannelRule, ...]
    hubspot_sources: dict[str, SourceMapping]
    offline_property: str
    offline_answers: dict[str, SourceMapping]
    spend_winner_default: str
    spend_winner_rules: tuple[SpendWinnerRule, ...]
    spend_winner_campaigns: dict[str, str] = field(default_factory=dict)
    campaign_placeholders: tuple[str, ...] = ()
    # A regex (full match on the normalised value) a new campaign name must follow to count as compliant
    # without being listed in campaigns.canonical: `roi utm build` accepts it, utm_compliance lets it pass
    campaign_naming: str | None = None
    # {language: {channel id: label}} for the spreadsheet and the report; `channels` labels when missing
    channel_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    def follows_campaign_naming(self, value: str | None) -> bool:
        return bool(value and self.campaign_naming and re.fullmatch(self.campaign_naming, value))

    # ---- value handling (Python twin of the SQL the models run) ----

    def normalise(self, raw: str | None) -> str | None:
        return normalise(raw, self.normalisation, self.null_values)

    def canonicalise(self, field_name: str, raw: str | None) -> str | None:
        """Normalised value, then its alias target if it has one."""
        value = self.normalise(raw)
        if value is None or (field_name == "campaign" and value in self.campaign_placeholders):
            return None
        return self.aliases.get(field_name, {}).get(value, value)

    def channel_for(
        self, source: str | None, medium: str | None, campaign: str | None = None
    ) -> tuple[str, str]:
        """(channel, matched rule name) for canonical values; ('unassigned', 'unmatched') if none matches."""
        if source is None and medium is None:
            return self.untagged_channel, "untagged"
        values = {"source": source, "medium": medium, "campaign": campaign}
        for rule in self.channel_rules:
            if rule.matches(values):
                return rule.channel, rule.name
        return UNASSIGNED_CHANNEL, "unmatched"

    def spend_winner_for(self, source: str | None, medium: str | None, campaign: str | None) -> str:
        if campaign is not None and campaign in self.spend_winner_campaigns:
            return self.spend_winner_campaigns[campaign]
        values = {"source": source, "medium": medium, "campaign": campaign}
        for rule in self.spend_winner_rules:
            if rule.matches(values):
                return rule.winner
        return self.spend_winner_default

    def normalise_sql(self, expr: str) -> str:
        """SQL applying the plan's normalisation to `expr` (a VARCHAR); NULL for empty-like values."""
        n = self.normalisation
        sql = expr
        if n.url_decode:
            # Query strings encode spaces as '+'; url_decode leaves malformed escapes as they are.
            sql = f"url_decode(replace({sql}, '+', '%20'))"
        if n.trim:
            sql = f"trim({sql})"
        if n.strip_quotes:
            sql = f"trim({sql}, '\"''`')"
            if n.trim:
                sql = f"trim({sql})"
        if n.lower:
            sql = f"lower({sql})"
        if n.spaces_to != " ":
            replacement = n.spaces_to.replace("'", "''")
            sql = f"regexp_replace({sql}, '\\s+', '{replacement}', 'g')"
        nulls = ", ".join("'" + v.replace("'", "''") + "'" for v in self.null_values)
        return f"(case when ({sql}) in ({nulls}) then null else ({sql}) end)" if nulls else sql

    # ---- config tables for the SQL models ----

    def config_tables(self) -> dict[str, tuple[list[tuple[str, str]], list[tuple[Any, ...]]]]:
        """{table: ([(column, duckdb type)], rows)} for every cfg_tagging_* table."""
        v = "varchar"
        canonical_rows = [(f, value) for f, values in self.canonical.items() for value in values]
        alias_rows = [
            (f, alias, target) for f, mapping in self.aliases.items() for alias, target in mapping.items()
        ]

        def condition_rows(rules: tuple[ChannelRule, ...] | tuple[SpendWinnerRule, ...]) -> list[tuple]:
            return [(r.order, c.field, c.operator, list(c.values)) for r in rules for c in r.conditions]

        def mapping_rows(mappings: dict[str, SourceMapping]) -> list[tuple]:
            return [
                (m.key, m.channel, m.source, m.source_from, m.medium, m.campaign, m.campaign_from)
                for m in mappings.values()
            ]

        mapping_columns = [
            ("key", v),
            ("channel", v),
            ("source", v),
            ("source_from", v),
            ("medium", v),
            ("campaign", v),
            ("campaign_from", v),
        ]
        condition_columns = [
            ("rule_order", "integer"),
            ("field", v),
            ("operator", v),
            ("match_values", "varchar[]"),
        ]
        return {
            "cfg_tagging_plan": (
                [("name", v), ("value", v)],
                [
                    ("version", str(self.version)),
                    ("home_currency", self.home_currency),
                    ("reporting_time_zone", self.reporting_time_zone),
                    ("untagged_channel", self.untagged_channel),
                    ("spend_winner_default", self.spend_winner_default),
                    ("offline_property", self.offline_property),
                    ("campaign_naming", self.campaign_naming or ""),
                ],
            ),
            "cfg_tagging_channels": (
                [("channel", v), ("label", v), ("display_order", "integer")],
                [(c, label, i) for i, (c, label) in enumerate(self.channels.items(), start=1)]
                + [(UNATTRIBUTED_CHANNEL, "Unattributed (no touch)", len(self.channels) + 1)],
            ),
            "cfg_tagging_channel_labels": (
                [("channel", v), ("language", v), ("label", v)],
                [
                    (channel, language, label)
                    for language, labels in sorted(self.channel_labels.items())
                    for channel, label in labels.items()
                ]
                + [
                    (UNATTRIBUTED_CHANNEL, language, label)
                    for language, label in UNATTRIBUTED_LABELS.items()
                    if UNATTRIBUTED_CHANNEL not in self.channel_labels.get(language, {})
                ],
            ),
            "cfg_tagging_canonical_values": ([("field", v), ("value", v)], canonical_rows),
            "cfg_tagging_aliases": ([("field", v), ("alias", v), ("canonical", v)], alias_rows),
            "cfg_tagging_placeholders": (
                [("field", v), ("value", v)],
                [("campaign", value) for value in self.campaign_placeholders],
            ),
            "cfg_tagging_channel_rules": (
                [("rule_order", "integer"), ("rule_name", v), ("channel", v), ("n_conditions", "integer")],
                [(r.order, r.name, r.channel, len(r.conditions)) for r in self.channel_rules],
            ),
            "cfg_tagging_channel_rule_conditions": (condition_columns, condition_rows(self.channel_rules)),
            "cfg_tagging_hubspot_sources": (mapping_columns, mapping_rows(self.hubspot_sources)),
            "cfg_tagging_offline_answers": (mapping_columns, mapping_rows(self.offline_answers)),
            "cfg_tagging_spend_winner_rules": (
                [("rule_order", "integer"), ("rule_name", v), ("winner", v), ("n_conditions", "integer")],
                [(r.order, r.name, r.winner, len(r.conditions)) for r in self.spend_winner_rules],
            ),
            "cfg_tagging_spend_winner_conditions": (
                condition_columns,
                condition_rows(self.spend_winner_rules),
            ),
            "cfg_tagging_spend_winner_campaigns": (
                [("campaign", v), ("winner", v)],
                list(self.spend_winner_campaigns.items()),
            ),
        }


def normalise(
    raw: str | None, steps: Normalisation = Normalisation(), null_values: tuple[str, ...] = ()
) -> str | None:
    """Apply the normalisation steps in the plan's order; None for missing or empty-like values."""
    if raw is None:
        return None
    value = str(raw)
    if steps.url_decode:
        value = unquote_plus(value)
    if steps.trim:
        value = value.strip()
    if steps.strip_quotes:
        value = value.strip(_QUOTES)
        if steps.trim:
            value = value.strip()
    if steps.lower:
        value = value.lower()
    if steps.spaces_to != " ":
        value = _WHITESPACE_RUN.sub(steps.spaces_to, value)
    return None if value in null_values else value


# ----------------------------------------------------------------------------------------------------
# Loading with line numbers


class _Located:
    """A plain value (dict/list/scalar) plus the line of every node, found by path."""

    def __init__(self, path: Path, lines: dict[tuple, int]):
        self.path = path
        self.lines = lines
        self.nodes = 0  # values read so far, aliases expanded (see MAX_PLAN_VALUES)

    def error(self, where: tuple, problem: str, fix: str) -> TaggingPlanError:
        # The nearest enclosing node that has a mark (a missing key reports its parent's line).
        probe = where
        while probe not in self.lines and probe:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        dotted = ".".join(str(p) for p in where) or "(top level)"
        return TaggingPlanError(f"{self.path}:{line}: {dotted}: {problem}. Fix: {fix}")


# A real plan holds a few hundred values. YAML aliases can make a few lines expand to billions ("billion
# laughs"); past this many values the plan is refused instead of hanging the run.
MAX_PLAN_VALUES = 100_000


def _to_python(node: yaml.Node, where: tuple, lines: dict[tuple, int], located: _Located) -> Any:
    located.nodes += 1
    if located.nodes > MAX_PLAN_VALUES:
        raise located.error(
            where,
            f"the plan expands to more than {MAX_PLAN_VALUES:,} values (nested YAML anchors and aliases?)",
            "write the values out, or reuse fewer aliases",
        )
    lines[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise located.error(where, "keys must be plain values", "write `key: value`")
            key = key_node.value
            if key in out:
                lines[(*where, key)] = key_node.start_mark.line + 1
                raise located.error((*where, key), f"key {key!r} appears twice", "keep one of them")
            out[key] = _to_python(value_node, (*where, key), lines, located)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*where, i), lines, located) for i, item in enumerate(node.value)]
    # Scalars: the safe loader's implicit types (ints, bools, nulls); everything else stays a string.
    return yaml.safe_load(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value


def _compose(text: str, path: Path) -> tuple[Any, _Located]:
    lines: dict[tuple, int] = {}
    located = _Located(path, lines)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise TaggingPlanError(
            f"{path}:{line}: not valid YAML: {problem}. Fix: correct the syntax on that line"
        ) from None
    if root is None:
        raise TaggingPlanError(f"{path}:1: the file is empty. Fix: start from models/tagging_plan.yaml")
    return _to_python(root, (), lines, located), located


class _Reader:
    """Typed accessors that raise TaggingPlanError with the line of the node they read."""

    def __init__(self, data: dict, located: _Located):
        self.data = data
        self.loc = located

    def get(self, where: tuple, *, required: bool = True, default: Any = None) -> Any:
        node: Any = self.data
        for i, key in enumerate(where):
            in_dict = isinstance(node, dict) and key in node
            if in_dict or (isinstance(node, list) and isinstance(key, int) and key < len(node)):
                node = node[key]
            else:
                if required:
                    raise self.loc.error(
                        where[: i + 1], "is missing", f"add `{key}:` (see models/tagging_plan.yaml)"
                    )
                return default
        return node

    def mapping(self, where: tuple, *, required: bool = True) -> dict:
        value = self.get(where, required=required, default={})
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.loc.error(
                where, f"must be a mapping (key: value), got {type(value).__name__}", "indent keys under it"
            )
        return value

    def sequence(self, where: tuple, *, required: bool = True) -> list:
        value = self.get(where, required=required, default=[])
        if value is None:
            value = []
        if not isinstance(value, list):
            raise self.loc.error(
                where, f"must be a list, got {type(value).__name__}", "write it as [a, b] or '- a' lines"
            )
        return value

    def text(self, where: tuple, *, required: bool = True, default: str | None = None) -> str | None:
        value = self.get(where, required=required, default=default)
        if value is None:
            if required:
                raise self.loc.error(where, "is empty", "give it a value")
            return default
        if isinstance(value, dict | list):
            raise self.loc.error(where, "must be a single value", "write one value, not a list or mapping")
        return str(value)


def load_tagging_plan(path: str | Path | None = None) -> TaggingPlan:
    """Read and validate a tagging plan file (default: the documented plan shipped in models/)."""
    path = Path(path) if path is not None else DEFAULT_PLAN_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise TaggingPlanError(
            f"{path}: the tagging plan is not UTF-8 (byte 0x{exc.object[exc.start]:02x} on line {line}). "
            "Fix: save it as UTF-8"
        ) from None
    except OSError as exc:
        raise TaggingPlanError(
            f"{path}: cannot read the tagging plan ({exc.strerror}). "
            "Fix: point ROI_TAGGING_PLAN at an existing file"
        ) from None
    return parse_tagging_plan(text, path)


def parse_tagging_plan(text: str, path: str | Path = "<tagging plan>") -> TaggingPlan:
    path = Path(path)
    data, located = _compose(text, path)
    if not isinstance(data, dict):
        raise located.error(
            (), "the plan must be a mapping of sections", "start from models/tagging_plan.yaml"
        )
    r = _Reader(data, located)

    version = r.get(("version",))
    if version not in SUPPORTED_VERSIONS:
        raise located.error(
            ("version",), f"unsupported version {version!r}", f"use one of {SUPPORTED_VERSIONS}"
        )

    norm_raw = r.mapping(("normalisation",), required=False)
    for key in norm_raw:
        if key not in Normalisation.__dataclass_fields__:
            raise located.error(
                ("normalisation", key),
                f"unknown step {key!r}",
                f"use {', '.join(Normalisation.__dataclass_fields__)}",
            )
    for key in ("url_decode", "trim", "strip_quotes", "lower"):
        if key in norm_raw and not isinstance(norm_raw[key], bool):
            raise located.error(("normalisation", key), "must be true or false", "write true or false")
    steps = Normalisation(**{k: (str(v) if k == "spaces_to" else v) for k, v in norm_raw.items()})
    null_values = tuple(str(v) for v in r.sequence(("null_values",), required=False))

    def norm(value: Any) -> str | None:
        return normalise(None if value is None else str(value), steps, ())

    channels_raw = r.mapping(("channels",))
    channels = {str(k): str(v) for k, v in channels_raw.items()}
    if UNASSIGNED_CHANNEL not in channels:
        raise located.error(
            ("channels",),
            f"the `{UNASSIGNED_CHANNEL}` channel is missing",
            f"add `{UNASSIGNED_CHANNEL}: Unassigned`",
        )
    if UNATTRIBUTED_CHANNEL in channels:
        raise located.error(
            ("channels", UNATTRIBUTED_CHANNEL),
            "is reserved for deals without any touch",
            "remove it; the models add it themselves",
        )

    def known_channel(where: tuple) -> str:
        channel = r.text(where)
        if channel not in channels:
            raise located.error(
                where,
                f"unknown channel {channel!r}",
                f"use one of the `channels:` ids ({', '.join(channels)})",
            )
        return channel

    untagged_channel = known_channel(("untagged_channel",))

    channel_labels: dict[str, dict[str, str]] = {}
    for language in r.mapping(("channel_labels",), required=False):
        if not re.fullmatch(r"[a-z]{2}", str(language)):
            raise located.error(
                ("channel_labels", language), f"{language!r} is not a language code", "write e.g. fr or en"
            )
        labels: dict[str, str] = {}
        for channel in r.mapping(("channel_labels", language)):
            if str(channel) not in channels and str(channel) != UNATTRIBUTED_CHANNEL:
                raise located.error(
                    ("channel_labels", language, channel),
                    f"unknown channel {channel!r}",
                    f"use one of the `channels:` ids ({', '.join(channels)})",
                )
            labels[str(channel)] = r.text(("channel_labels", language, channel))
        channel_labels[str(language)] = labels

    canonical: dict[str, tuple[str, ...]] = {}
    aliases: dict[str, dict[str, str]] = {}
    for field_name, section in (("source", "sources"), ("medium", "mediums"), ("campaign", "campaigns")):
        values = []
        for i, raw in enumerate(r.sequence((section, "canonical"))):
            value = str(raw)
            if norm(value) != value:
                raise located.error(
                    (section, "canonical", i),
                    f"canonical value {value!r} is not in normalised form",
                    f"write it as {norm(value)!r}",
                )
            values.append(value)
        canonical[field_name] = tuple(values)
        mapping: dict[str, str] = {}
        for alias, target in r.mapping((section, "aliases"), required=False).items():
            key = norm(alias)
            target_value = None if target is None else str(target)
            if target_value not in values:
                raise located.error(
                    (section, "aliases", alias),
                    f"alias target {target_value!r} is not a canonical {field_name}",
                    f"add it to {section}.canonical or correct the spelling",
                )
            if key in mapping and mapping[key] != target_value:
                raise located.error(
                    (section, "aliases", alias),
                    f"{alias!r} normalises to {key!r}, already mapped to {mapping[key]!r}",
                    "keep one mapping for the variant",
                )
            if key is not None and key != target_value:
                mapping[key] = target_value
        aliases[field_name] = mapping
    placeholders = tuple(
        p
        for p in (norm(v) for v in r.sequence(("campaigns", "placeholders"), required=False))
        if p is not None
    )
    campaign_naming = r.text(("campaigns", "naming"), required=False, default=None)
    if campaign_naming is not None:
        try:
            re.compile(campaign_naming)
        except re.error as exc:
            raise located.error(
                ("campaigns", "naming"),
                f"naming is not a valid regular expression ({exc})",
                "fix the pattern",
            ) from None
        for value in canonical["campaign"]:
            if not re.fullmatch(campaign_naming, value):
                raise located.error(
                    ("campaigns", "naming"),
                    f"canonical campaign {value!r} does not follow the naming rule {campaign_naming!r}",
                    "rename the campaign or loosen the rule",
                )
    for field_name in ("term", "content"):
        canonical[field_name] = ()
        aliases[field_name] = {}

    def conditions(where: tuple) -> tuple[Condition, ...]:
        when = r.mapping(where)
        if not when:
            raise located.error(
                where, "a rule needs at least one condition", "add e.g. `medium: {equals: email}`"
            )
        out = []
        for field_name, spec in when.items():
            if field_name not in RULE_FIELDS:
                raise located.error(
                    (*where, field_name), f"unknown field {field_name!r}", f"use {', '.join(RULE_FIELDS)}"
                )
            if not isinstance(spec, dict) or len(spec) != 1:
                raise located.error(
                    (*where, field_name),
                    "a condition is one operator and its value",
                    "write e.g. `{equals: google}`, `{in: [a, b]}` or `{regex: 'salon_.*'}`",
                )
            ((operator, value),) = spec.items()
            if operator not in MATCH_OPERATORS:
                raise located.error(
                    (*where, field_name, operator),
                    f"unknown operator {operator!r}",
                    f"use {', '.join(MATCH_OPERATORS)}",
                )
            if operator == "in":
                if not isinstance(value, list) or not value:
                    raise located.error(
                        (*where, field_name, operator), "`in` needs a non-empty list", "write [a, b]"
                    )
                values = tuple(norm(v) for v in value)
            elif operator == "regex":
                try:
                    re.compile(str(value))
                except re.error as exc:
                    raise located.error(
                        (*where, field_name, operator),
                        f"invalid regular expression ({exc})",
                        "correct the pattern",
                    ) from None
                values = (str(value),)
            else:
                values = (norm(value),)
            out.append(Condition(field_name, operator, tuple(v for v in values if v is not None)))
        return tuple(out)

    rules = []
    seen_names: set[str] = set()
    for i, _ in enumerate(r.sequence(("channel_rules",))):
        name = r.text(("channel_rules", i, "name"))
        if name in seen_names:
            raise located.error(
                ("channel_rules", i, "name"), f"rule name {name!r} is used twice", "rename one"
            )
        seen_names.add(name)
        rules.append(
            ChannelRule(
                i + 1,
                name,
                known_channel(("channel_rules", i, "channel")),
                conditions(("channel_rules", i, "when")),
            )
        )

    def source_mapping(where: tuple, key: str) -> SourceMapping:
        spec = r.mapping(where)
        for k in spec:
            if k not in ("channel", "source", "medium", "campaign"):
                raise located.error(
                    (*where, k), f"unknown key {k!r}", "use channel, source, medium, campaign"
                )

        def fixed_or_from(name: str) -> tuple[str | None, str | None]:
            value = spec.get(name)
            if isinstance(value, dict):
                taken_from = str(value.get("from"))
                if set(value) != {"from"} or taken_from not in HUBSPOT_SOURCE_FIELDS:
                    raise located.error(
                        (*where, name),
                        f"a computed {name} is `{{from: data_1}}` or `{{from: data_2}}`",
                        "write a fixed value or {from: data_1}",
                    )
                return None, taken_from
            return norm(value), None

        source, source_from = fixed_or_from("source")
        campaign, campaign_from = fixed_or_from("campaign")
        return SourceMapping(
            key=key,
            channel=known_channel((*where, "channel")),
            source=source,
            source_from=source_from,
            medium=norm(spec.get("medium")),
            campaign=campaign,
            campaign_from=campaign_from,
        )

    hubspot_sources = {
        str(k): source_mapping(("hubspot_sources", k), str(k)) for k in r.mapping(("hubspot_sources",))
    }
    offline_property = r.text(("offline", "contact_property"))
    offline_answers = {}
    for k in r.mapping(("offline", "answers")):
        answer = norm(k)
        if answer is None:
            raise located.error(("offline", "answers", k), "an answer cannot be empty", "remove it")
        offline_answers[answer] = source_mapping(("offline", "answers", k), answer)

    def winner(where: tuple) -> str:
        value = r.text(where)
        if value not in SPEND_WINNERS:
            raise located.error(where, f"unknown spend source {value!r}", f"use {' or '.join(SPEND_WINNERS)}")
        return value

    spend_default = winner(("spend_winner", "default"))
    spend_rules = []
    for i, _ in enumerate(r.sequence(("spend_winner", "rules"), required=False)):
        spend_rules.append(
            SpendWinnerRule(
                i + 1,
                r.text(("spend_winner", "rules", i, "name"), required=False, default=f"rule_{i + 1}"),
                winner(("spend_winner", "rules", i, "winner")),
                conditions(("spend_winner", "rules", i, "when")),
            )
        )
    spend_campaigns = {}
    for k in r.mapping(("spend_winner", "campaigns"), required=False):
        campaign = norm(k)
        spend_campaigns[campaign] = winner(("spend_winner", "campaigns", k))

    known_sections = {
        "version",
        "home_currency",
        "reporting_time_zone",
        "normalisation",
        "null_values",
        "untagged_channel",
        "channels",
        "channel_labels",
        "sources",
        "mediums",
        "campaigns",
        "channel_rules",
        "hubspot_sources",
        "offline",
        "spend_winner",
    }
    for key in data:
        if key not in known_sections:
            raise located.error(
                (key,), f"unknown section {key!r}", f"use {', '.join(sorted(known_sections))}"
            )

    home_currency = (r.text(("home_currency",), required=False, default="EUR") or "EUR").upper()
    if not re.fullmatch(r"[A-Z]{3}", home_currency):
        raise located.error(
            ("home_currency",), f"{home_currency!r} is not an ISO 4217 code", "write e.g. EUR"
        )

    return TaggingPlan(
        version=version,
        path=path,
        home_currency=home_currency,
        reporting_time_zone=r.text(("reporting_time_zone",), required=False, default="Europe/Paris"),
        normalisation=steps,
        null_values=(*tuple(v for v in (norm(v) for v in null_values) if v is not None), ""),
        untagged_channel=untagged_channel,
        channels=channels,
        canonical=canonical,
        aliases=aliases,
        channel_rules=tuple(rules),
        hubspot_sources=hubspot_sources,
        offline_property=offline_property,
        offline_answers=offline_answers,
        spend_winner_default=spend_default,
        spend_winner_rules=tuple(spend_rules),
        spend_winner_campaigns=spend_campaigns,
        campaign_placeholders=placeholders,
        campaign_naming=campaign_naming,
        channel_labels=channel_labels,
    )


# ----------------------------------------------------------------------------------------------------
# `roi utm build`


@dataclass(frozen=True)
class UtmLink:
    url: str
    values: dict[str, str]  # canonical utm values actually written into the URL
    channel: str
    rule: str
    warnings: tuple[str, ...]  # values that were rewritten or are not in the plan


def build_utm_link(
    base_url: str,
    *,
    source: str,
    medium: str,
    campaign: str | None = None,
    term: str | None = None,
    content: str | None = None,
    plan: TaggingPlan | None = None,
    strict: bool = True,
) -> UtmLink:
    """A landing URL tagged with the plan's canonical values.

    Variants are rewritten to their canonical form (with a warning). With `strict`, a source, medium or
    campaign the plan does not know raises TaggingPlanError naming the parameter and the allowed values.
    """
    plan = plan or load_tagging_plan()
    parts = landing_url(base_url)
    raw = {"source": source, "medium": medium, "campaign": campaign, "term": term, "content": content}
    for name, given in raw.items():
        if given is not None and (bad := _control_character(given)):
            raise TaggingPlanError(
                f"utm_{name} {given!r} holds the invisible character {bad}. Fix: retype it"
            )
    values: dict[str, str] = {}
    warnings: list[str] = []
    for name, given in raw.items():
        if given is None:
            continue
        value = plan.canonicalise(name, given)
        if value is None:
            if name in ("source", "medium"):
                raise TaggingPlanError(f"utm_{name} {given!r} is empty. Fix: give a value")
            continue
        if value != given:
            warnings.append(f"utm_{name} {given!r} written as {value!r}")
        allowed = plan.canonical.get(name, ())
        if allowed and value not in allowed:
            message = f"utm_{name} {value!r} is not in the tagging plan (allowed: {', '.join(allowed)})"
            if strict:
                raise TaggingPlanError(f"{message}. Fix: use an allowed value or add it to {plan.path}")
            warnings.append(message)
        values[name] = value
    channel, rule = plan.channel_for(values.get("source"), values.get("medium"), values.get("campaign"))
    if channel == UNASSIGNED_CHANNEL:
        warnings.append(
            "no channel rule matches this source/medium/campaign: it would report as 'unassigned'"
        )
    query = [(k, v) for k, v in _split_query(parts.query) if not k.startswith("utm_")]
    query += [(f"utm_{k}", v) for k, v in values.items()]
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    return UtmLink(url=url, values=values, channel=channel, rule=rule, warnings=tuple(warnings))


# Characters a URL path or fragment keeps as they are (RFC 3986 pchar, plus "/" and "?" and "%" escapes).
URL_SAFE = "/:@!$&'()*+,;=-._~%?"


CONTROL_NAMES = {"\t": "tab", "\n": "line feed", "\r": "carriage return", "\x00": "NUL"}


def _control_character(text: str) -> str | None:
    """'U+000D (carriage return)' for the first control or invisible character (C0, DEL, C1, zero-width and
    other format characters, line separators), else None."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return f"U+{ord(char):04X} ({CONTROL_NAMES.get(char) or unicodedata.name(char, 'control')})"
    return None


def landing_url(text: str) -> Any:
    """The landing page as a split, properly encoded http(s) URL, or TaggingPlanError.

    Control characters are refused, never dropped: `urlsplit` silently deletes CR, LF and tab, so
    "https://exemple.fr/p\r\nSet-Cookie: a=b" would come out as a different, whitespace-bearing page.
    Spaces and non-ASCII characters in the path, query and fragment are percent-encoded (UTF-8), a non-ASCII
    host becomes its IDNA (punycode) form; spaces around the URL are a paste artefact and are trimmed.
    """
    url = text.strip(" ")
    bad = _control_character(url)
    if bad:
        raise TaggingPlanError(
            f"the landing URL {url!r} holds the invisible character {bad}. Fix: retype or re-copy the URL "
            "(a line break or tab inside a link is never part of a page address)"
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise TaggingPlanError(
            f"{url!r} is not an http(s) URL. Fix: pass the full landing page, e.g. https://example.com/page"
        )
    host = parts.hostname or ""
    if " " in parts.netloc or not host:
        raise TaggingPlanError(f"{url!r} has no valid host name. Fix: pass e.g. https://www.exemple.fr/page")
    netloc = parts.netloc
    if not host.isascii():
        try:
            netloc = netloc.replace(host, host.encode("idna").decode("ascii"))
        except UnicodeError:
            raise TaggingPlanError(
                f"{url!r} has an invalid host name {host!r}. Fix: check the domain"
            ) from None
    path = quote(parts.path, safe=URL_SAFE)
    fragment = quote(parts.fragment, safe=URL_SAFE)
    return parts._replace(scheme=parts.scheme.lower(), netloc=netloc, path=path, fragment=fragment)


def _split_query(query: str) -> list[tuple[str, str]]:
    pairs = []
    for chunk in query.split("&"):
        if chunk:
            key, _, value = chunk.partition("=")
            pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs
