"""The bad-input corpus under tests/data/bad/: where it is and how its manifests are read."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent.parent / "data" / "bad"


def cases(manifest: str) -> list[dict[str, Any]]:
    """The `[[case]]` tables of one manifest, each with its `name` (used as the test id)."""
    with (CORPUS / manifest).open("rb") as handle:
        found = tomllib.load(handle)["case"]
    names = [c["name"] for c in found]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise ValueError(f"{manifest}: case names used twice: {sorted(duplicated)}")
    return found


def raw_value(case: dict[str, Any]) -> Any:
    """The value a HubSpot case serves: `value_json` decoded, or `value` (repeated `repeat` times)."""
    if "value_json" in case:
        return json.loads(case["value_json"])
    return case["value"] * case.get("repeat", 1)
