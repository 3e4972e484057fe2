"""`roi utm build` / `roi utm audit` helpers: the CLI's strict face on models.tagging_plan.

The tagging plan maps messy variants back to canonical values (so reports stay clean), but a link
being *built now* should carry the canonical value itself: the CLI refuses a variant and suggests
the value the plan would have written, instead of rewriting it silently.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from connectors.errors import EXIT_UTM_REFUSED, NotBuiltYetError, RoiError
from flows.reporting import table_exists
from flows.terminal import Column
from models.tagging_plan import TaggingPlan, TaggingPlanError, build_utm_link

CHECKED_FIELDS = ("source", "medium", "campaign")
# Columns that measure traffic in utm_compliance, in order of preference, for sorting the audit.
TRAFFIC_COLUMNS = ("sessions", "touches", "rows", "occurrences", "n")
# What the audit shows when the mart has it: the value as written, why it is wrong, how much traffic.
AUDIT_COLUMNS = (
    "raw_source",
    "raw_medium",
    "raw_campaign",
    "source",
    "medium",
    "campaign",
    "channel",
    "matched_rule",
    "issues",
    "sessions",
    "contacts",
    "last_seen",
)
# The audit on a terminal: one short line per UTM combination (--json keeps every column above).
AUDIT_VIEW_COLUMNS = (
    Column("sessions", "sessions", kind="int"),
    Column("written", "as written: source / medium / campaign", wrap=True, max_width=38),
    Column("fix", "fix", wrap=True, max_width=28),
    Column("last_seen", "last seen", kind="day", priority=1),
)


class UtmRefusedError(RoiError, ValueError):
    """A UTM value is not canonical in the tagging plan; the message lists allowed values and a suggestion."""

    exit_code = EXIT_UTM_REFUSED


def _suggestion(plan: TaggingPlan, field: str, given: str) -> str | None:
    canonical = plan.canonicalise(field, given)
    allowed = list(plan.canonical.get(field, ()))
    if canonical in allowed:
        return canonical
    close = difflib.get_close_matches(canonical or given, allowed, n=1, cutoff=0.5)
    return close[0] if close else None


@dataclass(frozen=True)
class TaggedLink:
    url: str
    channel: str
    rule: str
    new_campaign: bool  # accepted by the plan's naming rule, not (yet) listed in campaigns.canonical


def _allowed_pairs(plan: TaggingPlan, source: str, medium: str, campaign: str | None) -> str:
    """What a channel rule accepts with this source, and with this medium, grouped by channel."""

    def grouped(pairs: list[tuple[str, str]]) -> str:
        by_channel: dict[str, list[str]] = {}
        for value, channel in pairs:
            by_channel.setdefault(channel, []).append(value)
        return ", ".join(f"{' or '.join(values)} ({channel})" for channel, values in by_channel.items())

    mediums = [
        (m, plan.channel_for(source, m, campaign)[0])
        for m in plan.canonical.get("medium", ())
        if plan.channel_for(source, m, campaign)[1] != "unmatched"
    ]
    sources = [
        (s, plan.channel_for(s, medium, campaign)[0])
        for s in plan.canonical.get("source", ())
        if plan.channel_for(s, medium, campaign)[1] != "unmatched"
    ]
    parts = []
    parts.append(
        f"with source {source}, use medium {grouped(mediums)}"
        if mediums
        else f"no rule accepts source {source}"
    )
    parts.append(
        f"with medium {medium}, use source {grouped(sources)}"
        if sources
        else f"no rule accepts medium {medium}"
    )
    return "; ".join(parts)


def build_tagged_url(
    plan: TaggingPlan,
    url: str,
    *,
    source: str,
    medium: str,
    campaign: str,
    term: str | None = None,
    content: str | None = None,
) -> TaggedLink:
    """The tagged URL and the channel it lands in, or UtmRefusedError when a value is not exactly canonical, a
    new campaign does not follow the plan's naming rule, or no channel rule accepts the source/medium pair."""
    given = {"source": source, "medium": medium, "campaign": campaign}
    problems = []
    new_campaign = False
    for field, value in given.items():
        allowed = tuple(plan.canonical.get(field, ()))
        if value in allowed:
            continue
        hint = _suggestion(plan, field, value)
        if (
            field == "campaign"
            and plan.campaign_naming
            and plan.canonicalise("campaign", value) not in allowed
        ):
            normalised = plan.canonicalise("campaign", value)
            if value == normalised and plan.follows_campaign_naming(value):
                new_campaign = True
                continue
            if normalised and plan.follows_campaign_naming(normalised):
                problems.append(
                    f"utm_campaign={value!r} is not written as the naming rule wants; use {normalised!r}"
                )
            else:
                problems.append(
                    f"utm_campaign={value!r} does not follow the plan's naming rule {plan.campaign_naming!r} "
                    "(lower case, words joined by _)"
                )
            continue
        problems.append(
            f"utm_{field}={value!r} is not in the tagging plan"
            + (f"; use {hint!r}" if hint else "")
            + f" (allowed: {', '.join(allowed)})"
        )
    if problems:
        raise UtmRefusedError(
            "; ".join(problems), f"use the canonical value, or add it to the tagging plan ({plan.path})"
        )
    channel, rule = plan.channel_for(source, medium, campaign)
    if rule == "unmatched":
        raise UtmRefusedError(
            f"utm_source={source!r} with utm_medium={medium!r} lands in no channel (it would report as "
            f"'{channel}'): {_allowed_pairs(plan, source, medium, campaign)}",
            f"pick one of those pairs, or add a channel rule to the tagging plan ({plan.path})",
        )
    try:
        link = build_utm_link(
            url,
            source=source,
            medium=medium,
            campaign=campaign,
            term=term,
            content=content,
            plan=plan,
            strict=not new_campaign,
        )
    except TaggingPlanError as exc:
        raise UtmRefusedError(str(exc)) from None
    return TaggedLink(url=link.url, channel=link.channel, rule=link.rule, new_campaign=new_campaign)


def non_compliant_rows(con: Any, *, limit: int) -> list[dict[str, Any]]:
    """Rows of the utm_compliance mart that are not compliant, biggest traffic first."""
    if not table_exists(con, "main", "utm_compliance"):
        raise NotBuiltYetError(
            "The utm_compliance mart does not exist yet", "run `roi run` (or `roi demo`) first"
        )
    columns = [r[0] for r in con.execute("describe main.utm_compliance").fetchall()]
    where = "where not is_compliant" if "is_compliant" in columns else ""
    traffic = next((c for c in TRAFFIC_COLUMNS if c in columns), None)
    order = f"order by {traffic} desc nulls last" if traffic else ""
    shown = ", ".join(c for c in AUDIT_COLUMNS if c in columns) or "*"
    cursor = con.execute(f"select {shown} from main.utm_compliance {where} {order} limit ?", [limit])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def audit_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit rows as people fix them: the values as written, then what to change (the canonical spelling, a
    value to add to the plan, or a channel rule to add)."""
    shown = []
    for row in rows:
        fixes = []
        for field in CHECKED_FIELDS:
            raw, canonical = row.get(f"raw_{field}"), row.get(field)
            if canonical is not None and raw not in (None, "") and raw != canonical:
                fixes.append(f"{field} -> {canonical}")
        not_in_plan = [
            field
            for field in CHECKED_FIELDS
            if any(f"{field} {row.get(field)} is not in the plan" == i for i in row.get("issues") or [])
        ]
        if not_in_plan:
            fixes.append("add to plan: " + ", ".join(not_in_plan))
        if row.get("matched_rule") == "unmatched":
            fixes.append("no channel rule")
        written = " / ".join(str(row.get(f"raw_{f}") or "-") for f in CHECKED_FIELDS)
        shown.append(
            {
                "sessions": row.get("sessions"),
                "written": written,
                "fix": "; ".join(fixes),
                "last_seen": row.get("last_seen"),
            }
        )
    return shown
