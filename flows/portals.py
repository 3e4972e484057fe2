"""What `roi portals` shows: every portal of roi.toml, where its token comes from, its last run, and how old
its data is (from each portal's own warehouse, through flows.status like `roi status`), then the group
roll-up; and what `roi run --portal all` prints at the end (each portal's outcome).

Nothing here computes a business number: it reads ops.sync_runs and raw.* through flows.status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Group, RenderableType
from rich.text import Text

from connectors.config import Settings
from flows.concurrency import DEFAULT_PORTAL
from flows.status import ERROR, OK, WARN, RunInfo, collect_status, describe_age
from flows.terminal import Column, format_when, table

LEVEL_ORDER = {OK: 0, WARN: 1, ERROR: 2}


@dataclass
class PortalLine:
    portal: str
    label: str
    warehouse: str
    token: str  # where the token is, never the token
    tier: str
    ga4_property: str | None
    last_run: RunInfo | None = None
    last_success: RunInfo | None = None
    data_age: timedelta | None = None  # since the last successful run ended
    freshness: str | None = None  # worst source level: ok | warn | error; None when nothing to read
    note: str | None = None  # no warehouse yet, being written...

    def as_json(self) -> dict[str, Any]:
        def run(info: RunInfo | None) -> dict[str, Any] | None:
            if info is None:
                return None
            return {
                "run_id": info.run_id,
                "kind": info.kind,
                "status": info.status,
                "started_at": info.started_at,
                "finished_at": info.finished_at,
                "error": info.error,
            }

        return {
            "portal": self.portal,
            "label": self.label,
            "warehouse": self.warehouse,
            "token": self.token,
            "hubspot_tier": self.tier,
            "ga4_property_id": self.ga4_property,
            "last_run": run(self.last_run),
            "last_success": run(self.last_success),
            "data_age_seconds": None if self.data_age is None else int(self.data_age.total_seconds()),
            "freshness": self.freshness,
            "note": self.note,
        }


@dataclass
class GroupLine:
    warehouse: str
    built_at: datetime | None
    currency: str
    included: list[str]
    excluded: dict[str, str]


def token_source(configuration: Settings, name: str | None) -> str:
    """Where the portal's token is read from, and whether this environment has it (never the value)."""
    if name is None:
        return "HUBSPOT_ACCESS_TOKEN" + ("" if configuration.hubspot_access_token else " (not set here)")
    options = configuration.portals[name]
    if options.token_env:
        return options.token_env + ("" if os.environ.get(options.token_env) else " (not set here)")
    if options.token_secret:
        return f"Prefect Secret {options.token_secret}"
    return "not configured"


def portal_lines(
    configuration: Settings, *, now: datetime, today: date, clock: str = "now"
) -> list[PortalLine]:
    """One line per portal (the configuration's one portal when it declares none)."""
    lines = []
    for name in configuration.portal_names() or [None]:
        settings = configuration.for_portal(name, with_token=False)
        path = Path(settings.database)
        line = PortalLine(
            portal=name or DEFAULT_PORTAL,
            label=configuration.portal_label(name) if name else DEFAULT_PORTAL,
            warehouse=str(path),
            token=token_source(configuration, name),
            tier=settings.hubspot_tier,
            ga4_property=settings.ga4_property_id,
        )
        lines.append(line)
        if not path.is_file():
            line.note = "no warehouse yet: run it once (roi run --portal NAME)"
            continue
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            busy = "lock" in str(exc).lower()
            line.note = "being written by a run now" if busy else f"cannot open: {str(exc).splitlines()[0]}"
            continue
        try:
            report = collect_status(con, settings, path, last=1, now=now, today=today, clock=clock)
        finally:
            con.close()
        line.last_run, line.last_success = report.last_run, report.last_success
        if report.last_success and report.last_success.finished_at:
            line.data_age = now - report.last_success.finished_at
        levels = [f.level for f in report.freshness]
        line.freshness = max(levels, key=lambda level: LEVEL_ORDER.get(level, 0)) if levels else None
    return lines


def group_line(configuration: Settings) -> GroupLine | None:
    """The group roll-up's warehouse and what it holds; None without [portals] or before its first build."""
    if not configuration.portals:
        return None
    path = configuration.group_database()
    if not path.is_file():
        return GroupLine(str(path), None, configuration.group.currency, [], {})
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            built = con.execute("select currency, built_at from cfg_group_params").fetchall()
            portals = con.execute("select portal, included, excluded_reason from group_portals").fetchall()
    except duckdb.Error:
        return GroupLine(str(path), None, configuration.group.currency, [], {})
    currency, built_at = built[0] if built else (configuration.group.currency, None)
    return GroupLine(
        str(path),
        built_at,
        currency,
        [p for p, included, _ in portals if included],
        {p: reason or "" for p, included, reason in portals if not included},
    )


PORTAL_COLUMNS = (
    Column("portal", "portal"),
    Column("last_run", "last run"),
    Column("data_age", "data age", kind="age"),
    Column("freshness", "freshness"),
    Column("note", "note", priority=1, wrap=True, max_width=40),
    Column("token", "token from", priority=2),
    Column("tier", "tier", priority=4),
    Column("ga4", "GA4 property", priority=4),
    Column("warehouse", "warehouse", priority=3, wrap=True, max_width=40),
)


def render(lines: list[PortalLine], group: GroupLine | None, *, now: datetime) -> list[RenderableType]:
    rows = []
    for line in lines:
        run = line.last_run
        rows.append(
            {
                "portal": line.portal if line.label == line.portal else f"{line.portal} ({line.label})",
                "last_run": f"{run.status} {format_when(run.finished_at or run.started_at)}"
                if run
                else "never",
                "data_age": line.data_age,
                "freshness": line.freshness or "",
                "note": line.note or (run.error if run and run.status != "success" and run.error else ""),
                "token": line.token,
                "tier": line.tier,
                "ga4": line.ga4_property or "",
                "warehouse": line.warehouse,
            }
        )
    blocks: list[RenderableType] = [table(rows, PORTAL_COLUMNS, title=f"Portals ({len(lines)})")]
    if group is not None:
        if group.built_at is None:
            text = f"Group roll-up: not built yet ({group.warehouse}); `roi run --portal all` builds it."
        else:
            age = describe_age(now - group.built_at)
            left_out = "; ".join(f"{p}: {r}" for p, r in group.excluded.items())
            text = (
                f"Group roll-up ({group.currency}), built {format_when(group.built_at)} ({age} ago): "
                f"{', '.join(group.included) or 'no portal'}"
                + (f"; left out: {left_out}" if left_out else "")
                + f". {group.warehouse}"
            )
        blocks.append(Group(Text(""), Text(text)))
    return blocks


OUTCOME_COLUMNS = (
    Column("portal", "portal"),
    Column("state", "state"),
    Column("seconds", "seconds", kind="int"),
    Column("cause", "cause", wrap=True, max_width=50),
)


def render_outcomes(result: dict[str, Any]) -> list[RenderableType]:
    """A nightly-all result: one line per portal, then where the group roll-up is."""
    rows = [
        {
            "portal": o["portal"],
            "state": o["state"],
            "seconds": None if o.get("seconds") is None else round(o["seconds"]),
            "cause": o.get("cause") or "",
        }
        for o in result.get("portals", [])
    ]
    failed = len(result.get("failed") or [])
    blocks: list[RenderableType] = [
        table(rows, OUTCOME_COLUMNS, title=f"{len(rows) - failed} of {len(rows)} portal(s) completed")
    ]
    group = result.get("group")
    if group and group.get("error"):
        blocks.append(Text(f"Group roll-up not built: {group['error']}"))
    elif group:
        left_out = "; ".join(f"{p}: {r}" for p, r in (group.get("excluded") or {}).items())
        blocks.append(
            Text(
                f"Group roll-up ({group['currency']}): {', '.join(group['included'])}"
                + (f"; left out: {left_out}" if left_out else "")
                + f". {group['warehouse']} (roi export --portal all)"
            )
        )
    return blocks
