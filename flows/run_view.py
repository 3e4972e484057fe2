"""What `roi run`, `roi backfill` and `roi publish` print when a run ends: its figures as lines, its rejects,
failed tests and published properties as short tables (80 columns). `--json` prints the raw result instead."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text

from flows.terminal import Column, cell_text, format_int, key_values, table

# Keys of a flow's result shown as their own tables, not as "name: value" lines.
TABLE_KEYS = ("rejects", "publish", "preview", "incomplete", "tests_failed", "failed_steps")
LABELS = {
    "rows": "rows loaded",
    "published": "property values published",
    "publish_skipped": "publishing skipped",
    "chunks": "chunks",
    "chunks_run": "chunks run now",
    "complete": "complete",
    "dry_run": "dry run",
}
PUBLISH_COLUMNS = (
    Column("property", "property"),
    Column("changed", "records changed", kind="int"),
    Column("sent", "sent", kind="int", priority=1),
    Column("failed", "failed", kind="int", priority=1),
)
PREVIEW_COLUMNS = (
    Column("property", "property"),
    Column("changed", "records that would change", kind="int"),
)
SAMPLE_COLUMNS = (
    Column("record", "record"),
    Column("property", "property", priority=1),
    Column("published", "in HubSpot now", wrap=True, max_width=20),
    Column("desired", "would become", wrap=True, max_width=20),
)
REJECT_COLUMNS = (Column("source", "source"), Column("rows", "rejected rows", kind="int"))


def _value(value: Any, key: str = "") -> str:
    if value is None:
        return "-"
    if key.endswith("_share") and not isinstance(value, bool):
        return cell_text(value, "percent")  # 0.8643 -> 86.4 %
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return format_int(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def render_run(result: dict[str, Any], *, rejects_note: str | None = None) -> list[RenderableType]:
    """The run's result, most important first. ``rejects_note`` explains the rejects (the demo's sandbox sheet
    has deliberately broken rows)."""
    blocks: list[RenderableType] = [Text(f"Run {result.get('run_id', '?')}", style="bold")]
    pairs = [
        (LABELS.get(key, key.replace("_", " ")), _value(value, key))
        for key, value in result.items()
        if key != "run_id" and key not in TABLE_KEYS
    ]
    rejects = result.get("rejects") or {}
    pairs.insert(
        1 if pairs else 0, ("rejected rows", format_int(sum(rejects.values())) if rejects else "none")
    )
    if result.get("tests_failed"):
        pairs.append(("data tests failed", _value(result["tests_failed"])))
    for name, gap in (result.get("incomplete") or {}).items():
        pairs.append((f"{name} incomplete", str(gap)))
    blocks.append(key_values(pairs))
    if rejects:
        rows = [{"source": source, "rows": n} for source, n in sorted(rejects.items())]
        blocks.append(table(rows, REJECT_COLUMNS, title="Rejected rows by source (`roi status` lists them)"))
        if rejects_note:
            blocks.append(Text(rejects_note, style="dim"))
    if result.get("publish"):
        rows = [
            {
                "property": f"{p['object_type']}.{p['property']}",
                "changed": p.get("changed"),
                "sent": p.get("sent"),
                "failed": p.get("failed"),
            }
            for p in result["publish"]
        ]
        blocks.append(table(rows, PUBLISH_COLUMNS, title="Published: property -> records changed"))
    preview = result.get("preview")
    if preview:
        rows = [{"property": name, "changed": n} for name, n in (preview.get("changes") or {}).items()]
        blocks.append(
            table(
                rows, PREVIEW_COLUMNS, title="Dry run: property -> records that would change (nothing sent)"
            )
        )
        per_object = preview.get("records_changed") or {}
        if per_object:
            blocks.append(
                key_values([(f"{obj} records", format_int(n)) for obj, n in sorted(per_object.items())])
            )
        sample = [
            {
                "record": f"{s.get('object_type')} {s.get('record_id')}",
                "property": s.get("property"),
                "published": s.get("published") if s.get("published") not in (None, "") else "(empty)",
                "desired": s.get("desired") if s.get("desired") not in (None, "") else "(cleared)",
            }
            for s in preview.get("sample") or []
        ]
        if sample:
            blocks.append(table(sample, SAMPLE_COLUMNS, title=f"Sample of the changes ({len(sample)})"))
    return blocks
