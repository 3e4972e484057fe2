"""API records -> typed Arrow rows: the one place where HubSpot's string values become warehouse types.

Each property of a declared stream has a type (streams.py); ``records_to_arrow`` converts one page. A value
that does not parse becomes NULL plus a ``Reject`` naming the record, the field and the raw value; the rest of
the record and of the stream loads. The choice is NULL rather than dropping the record: one odd value (an
amount of 1e309, a lone surrogate in a name) must not hide the contact or deal from attribution. Only a record
whose id is not a BIGINT is skipped, since nothing can refer to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from connectors import warehouse as wh
from connectors.hubspot.streams import ObjectStream

_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "datetime": wh.to_utc_datetime,
    "date": wh.to_date,
    "money": lambda v: wh.to_decimal(v, 2),
    "unit": lambda v: wh.to_decimal(v, 4),
    "bool": wh.to_bool,
    "bigint": wh.to_bigint,
}
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ARROW_TYPES = {
    "string": pa.string(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "money": pa.decimal128(18, 2),
    "unit": pa.decimal128(18, 4),
    "bool": pa.bool_(),
    "bigint": pa.int64(),
}


def records_to_arrow(
    stream: ObjectStream, records: list[dict], extra: Sequence[str], run_id: str
) -> tuple[pa.Table, list[wh.Reject]]:
    """Typed columns for one page; a value that does not parse becomes NULL and a Reject (record, field)."""
    typed = [*stream.properties, *((e, "string") for e in extra if e not in dict(stream.properties))]
    columns: dict[str, list] = {name: [] for name, _ in typed}
    ids, raws, archived, archived_at = [], [], [], []
    rejects: list[wh.Reject] = []
    for record in records:
        record_id = str(record.get("id"))
        try:
            record_number = wh.to_bigint(record_id)
            if record_number is None:
                raise wh.ConversionError("record id is empty")
        except wh.ConversionError as exc:
            rejects.append(
                wh.Reject(record_id, "id", record_id, f"{stream.object_type}: {exc}; record skipped")
            )
            continue
        ids.append(record_number)
        props = record.get("properties") or {}
        for name, kind in typed:
            columns[name].append(_typed_value(stream, record_id, name, kind, props.get(name), rejects))
        raws.append(_raw_json(record))
        archived.append(bool(record.get("archived")))
        archived_at.append(
            _typed_value(stream, record_id, "archivedAt", "datetime", record.get("archivedAt"), rejects)
        )
    arrays = {"id": pa.array(ids, pa.int64())}
    for name, kind in typed:
        arrays[name] = pa.array(columns[name], _ARROW_TYPES[kind])
    arrays["_raw"] = pa.array(raws, pa.string())
    arrays["archived"] = pa.array(archived, pa.bool_())
    arrays["archived_at"] = pa.array(archived_at, pa.timestamp("us", tz="UTC"))
    arrays["_run_id"] = pa.array([run_id] * len(ids), pa.string())
    arrays["_loaded_at"] = pa.array([datetime.now(UTC)] * len(ids), pa.timestamp("us", tz="UTC"))
    return pa.table(arrays), rejects


def _typed_value(
    stream: ObjectStream, record_id: str, name: str, kind: str, value: Any, rejects: list[wh.Reject]
) -> Any:
    """The value as its column's type, or None plus a reject (record id, property, raw value, reason)."""
    if value is None:
        return None
    convert = _CONVERTERS.get(kind)
    try:
        if convert is not None:
            return convert(value)
        text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
        if _LONE_SURROGATE.search(text):
            # Half of a UTF-16 pair: no UTF-8 text (Arrow, DuckDB, the CRM's own exports) can hold it.
            raise wh.ConversionError("text holds a lone UTF-16 surrogate (broken emoji or encoding)")
        return text
    except wh.ConversionError as exc:
        rejects.append(wh.Reject(record_id, name, str(value), f"{stream.object_type}: {exc}; stored as NULL"))
        return None


def _raw_json(record: dict) -> str:
    """The record as JSON for the `_raw` column, escaping any lone surrogate so DuckDB's JSON accepts it."""
    raw = json.dumps(record, separators=(",", ":"), default=str)
    if "\\ud" not in raw:  # fast path: no surrogate escapes at all (they only come from astral characters)
        return raw
    text = json.dumps(record, separators=(",", ":"), default=str, ensure_ascii=False)
    try:
        text.encode("utf-8")
        return raw  # only valid pairs
    except UnicodeEncodeError:
        # As the 6 characters "\\ud800" (an escaped backslash in JSON): kept readable, never half a character.
        escaped = _LONE_SURROGATE.sub(lambda m: f"\\\\u{ord(m.group()):04x}", text)
        return json.dumps(json.loads(escaped), separators=(",", ":"))
