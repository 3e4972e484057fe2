"""Associations of the records read in a run, through the v4 batch endpoint (all pages of each)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.hubspot.client import CallStats, HubSpotCaller
from connectors.hubspot.streams import AssociationStream

ASSOCIATION_BATCH_SIZE = 1_000  # ids per v4 batch read: HubSpot's maximum (each call counts)
# A reverse association read (deal -> contact) is stored with the type id of the table's direction.
REVERSE_TYPE_IDS = {3: 4, 4: 3, 19: 20, 20: 19}


def association_rows(
    call: HubSpotCaller,
    client: Any,
    assoc: AssociationStream,
    from_type: str,
    ids: Sequence[int],
    stats: CallStats,
) -> list[tuple[int, int, int | None]]:
    """(table from id, table to id, type id) for each association of ``ids`` (of ``from_type``), all pages."""
    reverse = from_type != assoc.from_type
    to_type = assoc.from_type if reverse else assoc.to_type
    api = client.crm.associations.v4.batch_api
    rows: list[tuple[int, int, int | None]] = []
    pending: list[dict] = [{"id": str(i)} for i in ids]
    while pending:
        page = call(
            f"associations {from_type}->{to_type}",
            api.get_page,
            from_type,
            to_type,
            {"inputs": pending},
            stats=stats,
        )
        pending = []
        for result in page.get("results") or []:
            source = int((result.get("from") or result.get("_from") or {})["id"])
            for link in result.get("to") or []:
                types = link.get("associationTypes") or []
                defined = [t for t in types if t.get("category") == "HUBSPOT_DEFINED"] or types
                type_id = defined[0].get("typeId") if defined else None
                target = int(link["toObjectId"])
                if reverse:
                    rows.append((target, source, REVERSE_TYPE_IDS.get(type_id, type_id)))
                else:
                    rows.append((source, target, type_id))
            after = ((result.get("paging") or {}).get("next") or {}).get("after")
            if after:
                pending.append({"id": str(source), "after": after})
    return rows
