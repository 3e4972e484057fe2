"""API records -> typed Arrow rows: the one place where HubSpot's string values become warehouse types.

Each property of a declared stream has a type (streams.py); ``records_to_arrow`` converts one page. A value
that does not parse becomes NULL plus a ``Reject`` naming the record and the field.
"""

from __future__ import annotations

import json
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
            ids.append(int(record_id))
        except ValueError:
            rejects.append(
                wh.Reject(record_id, "id", record_id, "record id is not an integer; record skipped")
            )
            continue
        props = record.get("properties") or {}
        for name, kind in typed:
            value = props.get(name)
            convert = _CONVERTERS.get(kind)
            if convert is not None and value is not None:
                try:
                    value = convert(value)
                except wh.ConversionError as exc:
                    rejects.append(wh.Reject(record_id, name, str(value), f"{stream.object_type}: {exc}"))
                    value = None
            elif value is not None and not isinstance(value, str):
                value = str(value)
            columns[name].append(value)
        raws.append(json.dumps(record, separators=(",", ":"), default=str))
        archived.append(bool(record.get("archived")))
        archived_at.append(wh.to_utc_datetime(record.get("archivedAt")) if record.get("archivedAt") else None)
    arrays = {"id": pa.array(ids, pa.int64())}
    for name, kind in typed:
        arrays[name] = pa.array(columns[name], _ARROW_TYPES[kind])
    arrays["_raw"] = pa.array(raws, pa.string())
    arrays["archived"] = pa.array(archived, pa.bool_())
    arrays["archived_at"] = pa.array(archived_at, pa.timestamp("us", tz="UTC"))
    arrays["_run_id"] = pa.array([run_id] * len(ids), pa.string())
    arrays["_loaded_at"] = pa.array([datetime.now(UTC)] * len(ids), pa.timestamp("us", tz="UTC"))
    return pa.table(arrays), rejects
