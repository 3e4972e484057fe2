"""HubSpot CRM API stand-in: the v3 objects / search / batch / properties / pipelines and v4 association
routes the pipeline calls, with HubSpot's shapes, limits, error bodies, bearer auth and rate limits.

The official `hubspot-api-client` must work against it unchanged (`HubSpot(access_token=..., host=base_url)`).
Everything is served from a `sandbox.store.CrmStore`.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.ratelimits import RateLimiter
from sandbox.store import (
    ASSOCIATION_TYPE_IDS,
    ASSOCIATION_TYPE_NAMES,
    DEFAULT_RETURNED_PROPERTIES,
    FIELD_TYPES_BY_TYPE,
    LAST_MODIFIED_PROPERTY,
    VALID_FIELD_TYPES,
    VALID_PROPERTY_TYPES,
    CrmRecord,
    CrmStore,
    format_hubspot_datetime,
)

# HubSpot's documented limits.
LIST_PAGE_MAX = 100
SEARCH_PAGE_MAX = 200
SEARCH_RESULT_CAP = 10_000
SEARCH_MAX_FILTER_GROUPS = 5
SEARCH_MAX_FILTERS_PER_GROUP = 10
SEARCH_MAX_FILTERS_TOTAL = 25
SEARCH_QUERY_MAX_CHARS = 3_000
BATCH_MAX_INPUTS = 100
ASSOCIATIONS_BATCH_MAX_INPUTS = 1_000
ASSOCIATIONS_PAGE_SIZE = 500
EMBEDDED_ASSOCIATIONS_PAGE_SIZE = 100
DEFAULT_LIST_LIMIT = 10
SEARCH_CACHE_SIZE = 8
COLUMN_CACHE_SIZE = 6

# Object type ids HubSpot accepts in paths besides the names.
OBJECT_TYPE_ALIASES = {
    "contacts": "contacts",
    "contact": "contacts",
    "0-1": "contacts",
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
    "line_items": "line_items",
    "line_item": "line_items",
    "0-8": "line_items",
}
SINGULAR_UPPER = {"contacts": "CONTACT", "deals": "DEAL", "line_items": "LINE_ITEM"}
# Properties HubSpot always adds to what was asked for.
ALWAYS_RETURNED = ("createdate", "hs_object_id")

SEARCH_OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}

JSON_MEDIA_TYPE = "application/json;charset=utf-8"


# ---------------------------------------------------------------------------------------------- errors
class HubSpotError(Exception):
    """An error answer with HubSpot's standard body."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        context: dict | None = None,
        errors: list[dict] | None = None,
        sub_category: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.context, self.errors, self.sub_category = context, errors, sub_category

    def body(self) -> dict:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = self.context
        if self.errors:
            body["errors"] = self.errors
        return body


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    try:
        content = text.encode()
    except UnicodeEncodeError:
        # A lone surrogate stored in a property (HubSpot keeps what an integration wrote): sent as the
        # "\ud800" escape (as JSON writers in Java or JavaScript do): the client meets it as in production.
        content = json.dumps(payload, separators=(",", ":")).encode()
    return Response(content, status_code=status, headers=headers, media_type=JSON_MEDIA_TYPE)


def _validation(message: str, **kwargs: Any) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message, **kwargs)


def _object_not_found(raw_id: str) -> HubSpotError:
    return HubSpotError(
        404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", context={"id": [raw_id]}
    )


def error_item(
    category: str, message: str, ids: list[str], *, sub_category: str | None = None, status: str = "error"
) -> dict:
    """One item of a batch answer's ``errors[]``, shaped like HubSpot's ``StandardError`` (every required
    field: status, category, message, context, errors, links)."""
    item: dict[str, Any] = {
        "status": status,
        "category": category,
        "message": message,
        "context": {"ids": ids},
        "errors": [],
        "links": {},
    }
    if sub_category:
        item["subCategory"] = sub_category
    return item


def _already_exists(kind: str, name: str, **kwargs: Any) -> HubSpotError:
    return HubSpotError(
        409,
        "OBJECT_ALREADY_EXISTS",
        f"A {kind} named '{name}' already exists.",
        context={"name": [name]},
        **kwargs,
    )


def _batch_answer(results: list[dict], errors: list[dict], started: str) -> tuple[Any, int]:
    """A batch endpoint's body: 207 Multi-Status with ``errors`` when any input failed, else 200."""
    payload: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": _now_iso(),
    }
    if errors:
        payload["numErrors"] = len(errors)
        payload["errors"] = errors
        return payload, 207
    return payload, 200


def _now_iso() -> str:
    return format_hubspot_datetime(datetime.now(UTC))


# ------------------------------------------------------------------------------------------- scopes
# What a private app's token may do. The sandbox's token has every scope unless given fewer (`token_scopes`):
# a call outside them answers 403 MISSING_SCOPES with HubSpot's body, and the token-info route lists them.
SCOPED_OBJECTS = ("contacts", "deals", "line_items", "companies")
ALL_SCOPES = tuple(
    [f"crm.objects.{o}.{access}" for o in SCOPED_OBJECTS for access in ("read", "write")]
    + [f"crm.schemas.{o}.{access}" for o in SCOPED_OBJECTS for access in ("read", "write")]
)
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"
SANDBOX_HUB_ID = 24_000_001
SANDBOX_APP_ID = 3_100_001


def required_scope(method: str, path: str) -> str | None:
    """The scope HubSpot checks for a call (None for calls any valid token may make)."""
    parts = [p for p in path.split("/") if p]
    write = method.upper() in ("POST", "PATCH", "PUT", "DELETE")
    if len(parts) >= 4 and parts[:3] == ["crm", "v3", "objects"]:
        object_type = OBJECT_TYPE_ALIASES.get(parts[3].lower(), parts[3].lower())
        reads = parts[4:5] in (["search"], ["batch"]) and parts[5:6] != ["update"]
        return f"crm.objects.{object_type}.{'write' if write and not reads else 'read'}"
    if len(parts) >= 4 and parts[:3] == ["crm", "v3", "properties"]:
        object_type = OBJECT_TYPE_ALIASES.get(parts[3].lower(), parts[3].lower())
        return f"crm.schemas.{object_type}.{'write' if write else 'read'}"
    if len(parts) >= 4 and parts[:3] == ["crm", "v3", "pipelines"]:
        object_type = OBJECT_TYPE_ALIASES.get(parts[3].lower(), parts[3].lower())
        return f"crm.objects.{object_type}.read"
    if len(parts) >= 4 and parts[:2] == ["crm", "v4"]:
        from_type = parts[3] if parts[2] == "associations" else parts[4] if len(parts) > 4 else parts[3]
        return f"crm.objects.{OBJECT_TYPE_ALIASES.get(from_type.lower(), from_type.lower())}.read"
    return None


def missing_scope_error(scope: str) -> HubSpotError:
    return HubSpotError(
        403,
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. Read more about required scopes "
        "here: https://developers.hubspot.com/scopes.",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
    )


# --------------------------------------------------------------------------------------- the API object
class HubSpotApi:
    """Route handlers bound to one store, one access token and one rate limiter."""

    def __init__(
        self,
        store: CrmStore,
        access_token: str,
        rate_limiter: RateLimiter | None = None,
        token_scopes: Iterable[str] | None = None,
    ) -> None:
        self.store = store
        self.access_token = access_token
        self.token_scopes = frozenset(ALL_SCOPES if token_scopes is None else token_scopes)
        self.rate_limiter = rate_limiter or RateLimiter(enabled=False)
        self._search_cache: OrderedDict[tuple, list[int]] = OrderedDict()
        self._search_cache_lock = threading.Lock()
        # Called before every list or search page is served (the churn writer writes mid-read here).
        self.page_hooks: list[Callable[[], None]] = []
        self._columns: OrderedDict[tuple[str, str], tuple[tuple[int, int], dict[int, Any]]] = OrderedDict()

    def routes(self) -> list[Route]:
        h = self._endpoint
        objects = "/crm/v3/objects/{object_type}"
        return [
            Route(TOKEN_INFO_PATH, self.token_info, methods=["POST"]),
            Route(objects, h(self.list_objects), methods=["GET"]),
            Route(objects, h(self.create_object), methods=["POST"]),
            Route(objects + "/merge", h(self.merge_objects), methods=["POST"]),
            Route("/crm/v3/objects/contacts/gdpr-delete", h(self.gdpr_delete), methods=["POST"]),
            Route(objects + "/search", h(self.search, is_search=True), methods=["POST"]),
            Route(objects + "/batch/read", h(self.batch_read), methods=["POST"]),
            Route(objects + "/batch/update", h(self.batch_update), methods=["POST"]),
            Route(objects + "/{object_id}", h(self.read_object), methods=["GET"]),
            Route(objects + "/{object_id}", h(self.update_object), methods=["PATCH"]),
            Route(objects + "/{object_id}", h(self.archive_object), methods=["DELETE"]),
            Route("/crm/v3/properties/{object_type}", h(self.list_properties), methods=["GET"]),
            Route("/crm/v3/properties/{object_type}", h(self.create_property), methods=["POST"]),
            Route("/crm/v3/properties/{object_type}/groups", h(self.list_groups), methods=["GET"]),
            Route("/crm/v3/properties/{object_type}/groups", h(self.create_group), methods=["POST"]),
            Route("/crm/v3/properties/{object_type}/{name}", h(self.read_property), methods=["GET"]),
            Route("/crm/v3/properties/{object_type}/{name}", h(self.update_property), methods=["PATCH"]),
            Route("/account-info/v3/details", h(self.account_details), methods=["GET"]),
            Route("/crm/v3/pipelines/{object_type}", h(self.list_pipelines), methods=["GET"]),
            Route("/crm/v3/pipelines/{object_type}/{pipeline_id}", h(self.read_pipeline), methods=["GET"]),
            Route(
                "/crm/v4/associations/{from_type}/{to_type}/batch/read",
                h(self.associations_batch_read),
                methods=["POST"],
            ),
            Route(
                "/crm/v4/objects/{from_type}/{object_id}/associations/{to_type}",
                h(self.associations_page),
                methods=["GET"],
            ),
        ]

    # ------------------------------------------------------------------ auth, rate limits, error handling
    def _endpoint(
        self, handler: Callable[[Request], Awaitable[tuple[Any, int]]], is_search: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            auth_error = self._check_auth(request)
            if auth_error is not None:
                return json_response(auth_error.body(), auth_error.status)
            scope = required_scope(request.method, request.url.path)
            if scope is not None and scope not in self.token_scopes:
                refused = missing_scope_error(scope)
                return json_response(refused.body(), refused.status)
            decision = self.rate_limiter.check(is_search=is_search)
            if not decision.allowed:
                return json_response(decision.error_body(), 429, decision.headers)
            try:
                payload, status = await handler(request)
            except HubSpotError as error:
                return json_response(error.body(), error.status, decision.headers)
            if status == 204:
                return Response(status_code=204, headers=decision.headers)
            return json_response(payload, status, decision.headers)

        return endpoint

    async def token_info(self, request: Request) -> Response:
        """POST /oauth/v2/private-apps/get/access-token-info {"tokenKey": ...}: the private app's scopes."""
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            body = {}
        token = body.get("tokenKey") if isinstance(body, dict) else None
        if not token or str(token).strip() != self.access_token:
            refused = HubSpotError(400, "BAD_REQUEST", "Invalid token key.")
            return json_response(refused.body(), refused.status)
        return json_response(
            {
                "userId": 1,
                "hubId": SANDBOX_HUB_ID,
                "appId": SANDBOX_APP_ID,
                "scopes": sorted(self.token_scopes),
            },
            200,
        )

    def _between_pages(self) -> None:
        for hook in self.page_hooks:
            hook()

    def _check_auth(self, request: Request) -> HubSpotError | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not token.strip():
            return HubSpotError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
                "oauth-overview",
            )
        if token.strip() != self.access_token:
            # Never echo the token back: it would land in client logs.
            return HubSpotError(
                401, "INVALID_AUTHENTICATION", "The access token provided is invalid or has been revoked."
            )
        return None

    # -------------------------------------------------------------------------------- shared helpers
    def _object_type(self, raw: str) -> str:
        object_type = OBJECT_TYPE_ALIASES.get(raw.lower())
        if object_type is None:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {raw}")
        return object_type

    def _returned_names(self, object_type: str, requested: list[str] | None) -> list[str]:
        """Which properties go in a response: HubSpot's defaults when none were asked for, else the asked-for
        ones that exist plus createdate / last-modified / hs_object_id."""
        if not requested:
            return list(DEFAULT_RETURNED_PROPERTIES[object_type])
        names = dict.fromkeys(n for n in requested if self.store.property(object_type, n) is not None)
        for always in (*ALWAYS_RETURNED, LAST_MODIFIED_PROPERTY[object_type]):
            names.setdefault(always, None)
        return list(names)

    def _record_json(
        self, object_type: str, record: CrmRecord, names: list[str], associations: list[str] | None = None
    ) -> dict:
        props = record.properties
        body: dict[str, Any] = {
            "id": str(record.id),
            "properties": dict(zip(names, map(props.get, names), strict=False)),
            "createdAt": format_hubspot_datetime(record.created_at),
            "updatedAt": format_hubspot_datetime(record.updated_at),
            "archived": record.archived,
        }
        if record.archived_at is not None:
            body["archivedAt"] = format_hubspot_datetime(record.archived_at)
        if associations:
            embedded = {}
            for to_type in associations:
                links = self.store.associations(object_type, record.id, to_type)
                if not links:
                    continue  # HubSpot leaves out association types with nothing in them
                label = ASSOCIATION_TYPE_NAMES[(object_type, to_type)]
                page = links[:EMBEDDED_ASSOCIATIONS_PAGE_SIZE]
                entry: dict[str, Any] = {"results": [{"id": str(to_id), "type": label} for to_id, _ in page]}
                if len(links) > EMBEDDED_ASSOCIATIONS_PAGE_SIZE:
                    after = str(page[-1][0])
                    entry["paging"] = {
                        "next": {
                            "after": after,
                            "link": f"/crm/v4/objects/{object_type}/{record.id}/associations/{to_type}"
                            f"?after={after}",
                        }
                    }
                embedded[to_type] = entry
            if embedded:
                body["associations"] = embedded
        return body

    def _association_types(self, object_type: str, requested: list[str]) -> list[str]:
        found = []
        for raw in requested:
            to_type = OBJECT_TYPE_ALIASES.get(raw.lower())
            if to_type and (object_type, to_type) in ASSOCIATION_TYPE_IDS:
                found.append(to_type)
        return found

    # --------------------------------------------------------------------------------------- objects
    async def list_objects(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        query = request.query_params
        limit = _int_param(query.get("limit"), "limit", DEFAULT_LIST_LIMIT)
        if not 1 <= limit <= LIST_PAGE_MAX:
            raise _validation(
                f"limit must be between 1 and {LIST_PAGE_MAX}, got {limit}", context={"limit": [str(limit)]}
            )
        after_raw = query.get("after")
        after = None
        if after_raw:
            after = _int_param(after_raw, "after", 0)
        archived = _bool_param(query.get("archived"))
        names = self._returned_names(object_type, _multi_param(query, "properties"))
        association_types = self._association_types(object_type, _multi_param(query, "associations"))
        self._between_pages()
        records, next_after = self.store.page(object_type, after, limit, archived=archived)
        _note_inputs(request, None)
        payload: dict[str, Any] = {
            "results": [self._record_json(object_type, r, names, association_types) for r in records]
        }
        if next_after is not None:
            payload["paging"] = {
                "next": {"after": str(next_after), "link": f"{request.url.path}?after={next_after}"}
            }
        return payload, 200

    async def read_object(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        query = request.query_params
        raw_id = request.path_params["object_id"]
        archived = _bool_param(query.get("archived"))
        record = self._find(object_type, raw_id, query.get("idProperty"))
        if record is None or record.archived != archived:
            raise _object_not_found(raw_id)
        names = self._returned_names(object_type, _multi_param(query, "properties"))
        association_types = self._association_types(object_type, _multi_param(query, "associations"))
        return self._record_json(object_type, record, names, association_types), 200

    def _find(self, object_type: str, raw_id: str, id_property: str | None = None) -> CrmRecord | None:
        if id_property and id_property != "hs_object_id":
            if self.store.property(object_type, id_property) is None:
                raise _validation(f"Property {id_property} does not exist for {object_type}")
            wanted = raw_id.lower()
            for record in self.store.iter_records(object_type):
                if (record.properties.get(id_property) or "").lower() == wanted:
                    return record
            return None
        try:
            # An id merged into another record answers with that record (its new id).
            return self.store.get(object_type, self.store.resolve(object_type, int(raw_id)))
        except ValueError:
            return None

    async def update_object(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        body = await _json_body(request)
        raw_id = request.path_params["object_id"]
        record = self._find(object_type, raw_id, request.query_params.get("idProperty"))
        if record is None or record.archived:
            raise _object_not_found(raw_id)
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise _validation("Invalid input JSON: 'properties' must be an object of property name to value")
        cleaned = self._validate_values(object_type, properties)
        updated = self._apply_update(object_type, record.id, cleaned)
        return self._record_json(
            object_type,
            updated,
            list(dict.fromkeys([*properties, *ALWAYS_RETURNED, LAST_MODIFIED_PROPERTY[object_type]])),
        ), 200

    async def create_object(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        body = await _json_body(request)
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise _validation("Invalid input JSON: 'properties' must be an object of property name to value")
        cleaned = self._validate_values(object_type, properties)
        with self.store.lock:
            if object_type == "deals" and "dealstage" in cleaned:
                cleaned = {**cleaned, **self._stage_derived(cleaned.get("dealstage"))}
            record = self.store.create(object_type, cleaned)
        names = list(dict.fromkeys([*properties, *ALWAYS_RETURNED, LAST_MODIFIED_PROPERTY[object_type]]))
        return self._record_json(object_type, record, names), 201

    async def archive_object(self, request: Request) -> tuple[Any, int]:
        """DELETE: archive (HubSpot's "delete"; restorable until purged). Archiving twice is a 204 too."""
        object_type = self._object_type(request.path_params["object_type"])
        raw_id = request.path_params["object_id"]
        record = self._find(object_type, raw_id)
        if record is None:
            raise _object_not_found(raw_id)
        self.store.archive(object_type, record.id, datetime.now(UTC))
        return None, 204

    async def merge_objects(self, request: Request) -> tuple[Any, int]:
        """POST .../merge {primaryObjectId, objectIdToMerge}: a NEW record with a new id holds both."""
        object_type = self._object_type(request.path_params["object_type"])
        body = await _json_body(request)
        primary_raw, other_raw = str(body.get("primaryObjectId", "")), str(body.get("objectIdToMerge", ""))
        if not primary_raw or not other_raw:
            raise _validation("Invalid input JSON: 'primaryObjectId' and 'objectIdToMerge' are required")
        primary = self._find(object_type, primary_raw)
        other = self._find(object_type, other_raw)
        for raw, record in ((primary_raw, primary), (other_raw, other)):
            if record is None or record.archived:
                raise _object_not_found(raw)
        if primary.id == other.id:  # type: ignore[union-attr]
            raise _validation(f"Cannot merge {object_type} {primary_raw} with itself")
        merged = self.store.merge(object_type, primary.id, other.id, datetime.now(UTC))  # type: ignore[union-attr]
        names = self._returned_names(object_type, ["hs_merged_object_ids"])
        return self._record_json(object_type, merged, names), 200

    async def gdpr_delete(self, request: Request) -> tuple[Any, int]:
        """POST /crm/v3/objects/contacts/gdpr-delete {objectId, idProperty?}: purge the contact at once."""
        body = await _json_body(request)
        raw_id = str(body.get("objectId", ""))
        if not raw_id:
            raise _validation("Invalid input JSON: 'objectId' is required")
        record = self._find("contacts", raw_id, body.get("idProperty"))
        if record is None:
            raise _object_not_found(raw_id)
        self.store.purge("contacts", record.id)
        return None, 204

    # ---------------------------------------------------------------------------------------- batch
    def _batch_inputs(self, body: dict, request: Request) -> list[dict]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise _validation("Invalid input JSON: 'inputs' must be a list of objects")
        limit = BATCH_MAX_INPUTS
        if body.get("propertiesWithHistory"):
            limit = 50
        if len(inputs) > limit:
            raise _validation(
                f"Too many inputs: the maximum number of inputs supported in a batch request is "
                f"{limit}, got {len(inputs)}",
                context={"inputs": [str(len(inputs))]},
            )
        _note_inputs(request, len(inputs))
        return inputs

    def _missing_error(self, object_type: str, ids: list[str]) -> dict:
        return error_item(
            "OBJECT_NOT_FOUND",
            f"Could not get some {SINGULAR_UPPER[object_type]} objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            ids,
        )

    def _batch_objects_answer(
        self, object_type: str, results: list[dict], missing: list[str], started: str
    ) -> tuple[Any, int]:
        """HubSpot's batch answer for objects: 404 when no id was found, 207 listing the missing ones when
        some were, 200 otherwise."""
        if missing and not results:
            raise HubSpotError(
                404,
                "OBJECT_NOT_FOUND",
                self._missing_error(object_type, missing)["message"],
                context={"ids": missing},
            )
        errors = [self._missing_error(object_type, missing)] if missing else []
        return _batch_answer(results, errors, started)

    async def batch_read(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        body = await _json_body(request)
        inputs = self._batch_inputs(body, request)
        archived = _bool_param(request.query_params.get("archived"))
        requested = body.get("properties") or []
        if not isinstance(requested, list):
            raise _validation("Invalid input JSON: 'properties' must be a list of property names")
        names = self._returned_names(object_type, [str(n) for n in requested])
        id_property = body.get("idProperty")
        started = _now_iso()
        results, missing = [], []
        for item in inputs:
            raw_id = str(item.get("id", ""))
            record = self._find(object_type, raw_id, id_property)
            if record is None or record.archived != archived:
                missing.append(raw_id)
            else:
                results.append(self._record_json(object_type, record, names))
        return self._batch_objects_answer(object_type, results, missing, started)

    async def batch_update(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        body = await _json_body(request)
        inputs = self._batch_inputs(body, request)
        _note_properties(request, inputs)
        seen: set[str] = set()
        duplicates = []
        for item in inputs:
            raw_id = str(item.get("id", ""))
            if raw_id in seen:
                duplicates.append(raw_id)
            seen.add(raw_id)
            if not isinstance(item.get("properties"), dict):
                raise _validation(f"Invalid input JSON: input for id {raw_id!r} needs a 'properties' object")
        if duplicates:
            raise _validation(
                f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique",
                context={"ids": duplicates},
            )
        # HubSpot validates every value first: one invalid value refuses the whole batch (400).
        cleaned = [self._validate_values(object_type, item["properties"]) for item in inputs]
        started = _now_iso()
        results, missing = [], []
        for item, properties in zip(inputs, cleaned, strict=True):
            raw_id = str(item["id"])
            record = self._find(object_type, raw_id, item.get("idProperty"))
            if record is None or record.archived:
                missing.append(raw_id)
                continue
            updated = self._apply_update(object_type, record.id, properties)
            names = list(
                dict.fromkeys([*item["properties"], *ALWAYS_RETURNED, LAST_MODIFIED_PROPERTY[object_type]])
            )
            results.append(self._record_json(object_type, updated, names))
        return self._batch_objects_answer(object_type, results, missing, started)

    def _apply_update(self, object_type: str, record_id: int, properties: dict[str, str | None]) -> CrmRecord:
        with self.store.lock:
            if object_type == "deals" and "dealstage" in properties:
                properties = {**properties, **self._stage_derived(properties.get("dealstage"))}
            return self.store.update(object_type, record_id, properties)

    def _stage_derived(self, stage_id: str | None) -> dict[str, str | None]:
        return self.store.deal_stage_fields(stage_id)

    def _validate_values(self, object_type: str, properties: dict) -> dict[str, str | None]:
        """Check each value against its property definition; raise HubSpot's 400 listing every bad value."""
        problems: list[dict] = []
        cleaned: dict[str, str | None] = {}
        for name, raw in properties.items():
            definition = self.store.property(object_type, name)
            value = "" if raw is None else str(raw) if not isinstance(raw, bool) else str(raw).lower()
            if definition is None:
                problems.append(
                    _problem(name, value, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            meta = definition.get("modificationMetadata") or {}
            if meta.get("readOnlyValue") or definition.get("calculated"):
                problems.append(
                    _problem(
                        name,
                        value,
                        "READ_ONLY_VALUE",
                        f"{name} is a read only property; its value cannot be set.",
                    )
                )
                continue
            if value == "":
                cleaned[name] = ""  # an empty string clears the property
                continue
            try:
                cleaned[name] = _coerce_value(definition, value, self._enum_values(object_type, definition))
            except ValueError as exc:
                code, message = exc.args
                problems.append(_problem(name, value, code, message))
        if problems:
            detail = json.dumps(
                [
                    {
                        "isValid": False,
                        "message": p["message"],
                        "error": p["code"],
                        "name": p["context"]["propertyName"][0],
                    }
                    for p in problems
                ]
            )
            raise _validation(f"Property values were not valid: {detail}", errors=problems)
        return cleaned

    def _enum_values(self, object_type: str, definition: dict) -> set[str] | None:
        if definition.get("type") not in ("enumeration", "bool"):
            return None
        name = definition["name"]
        if object_type == "deals" and name == "pipeline":
            return {p["id"] for p in self.store.pipelines("deals")}
        if object_type == "deals" and name == "dealstage":
            return {s["id"] for p in self.store.pipelines("deals") for s in p.get("stages", [])}
        options = definition.get("options") or []
        if definition.get("type") == "bool":
            return {"true", "false"}
        return {o["value"] for o in options} if options else None

    # ---------------------------------------------------------------------------------------- search
    async def search(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        body = await _json_body(request)
        groups = body.get("filterGroups") or []
        sorts = body.get("sorts") or []
        text_query = body.get("query")
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise _validation("Invalid input JSON: 'filterGroups' must be a list of objects")
        total_filters = sum(len(g.get("filters") or []) for g in groups)
        _note_inputs(request, total_filters)
        if len(groups) > SEARCH_MAX_FILTER_GROUPS:
            raise _validation(
                f"Too many filter groups: at most {SEARCH_MAX_FILTER_GROUPS}, got {len(groups)}"
            )
        if any(len(g.get("filters") or []) > SEARCH_MAX_FILTERS_PER_GROUP for g in groups):
            raise _validation(f"Too many filters in a group: at most {SEARCH_MAX_FILTERS_PER_GROUP}")
        if total_filters > SEARCH_MAX_FILTERS_TOTAL:
            raise _validation(
                f"Too many filters: at most {SEARCH_MAX_FILTERS_TOTAL} in all, got {total_filters}"
            )
        if text_query is not None and len(str(text_query)) > SEARCH_QUERY_MAX_CHARS:
            raise _validation(f"query is longer than {SEARCH_QUERY_MAX_CHARS} characters")
        limit = _int_value(body.get("limit", DEFAULT_LIST_LIMIT), "limit")
        if not 1 <= limit <= SEARCH_PAGE_MAX:
            raise _validation(f"limit must be between 1 and {SEARCH_PAGE_MAX}, got {limit}")
        offset = _int_value(body.get("after") or 0, "after")
        if offset < 0:
            raise _validation(f"after must be >= 0, got {offset}")
        if offset >= SEARCH_RESULT_CAP:
            raise _validation(
                f"Paging past {SEARCH_RESULT_CAP:,} results is not supported (after={offset}). The search "
                f"endpoints return at most {SEARCH_RESULT_CAP:,} results per query: narrow the filters, e.g. "
                f"restart with a higher lower bound on the sort property.",
                context={"after": [str(offset)]},
            )
        if len(sorts) > 1:
            raise _validation("Only one sort is supported")
        requested = body.get("properties") or []
        names = self._returned_names(object_type, [str(n) for n in requested])
        self._between_pages()
        ids = self._matching_ids(object_type, groups, sorts, text_query)
        visible = ids[:SEARCH_RESULT_CAP]
        page_ids = visible[offset : offset + limit]
        payload: dict[str, Any] = {"total": len(ids), "results": []}
        for record_id in page_ids:
            record = self.store.search_get(object_type, record_id)  # as the (lagging) index has it
            if record is not None:
                payload["results"].append(self._record_json(object_type, record, names))
        if offset + limit < len(ids):
            # Like HubSpot, offer the next offset even when it hits the cap (the next call then gets a 400).
            payload["paging"] = {"next": {"after": str(offset + limit)}}
        return payload, 200

    def _matching_ids(self, object_type: str, groups: list[dict], sorts: list, text_query: Any) -> list[int]:
        """Ids matching the query, in result order. A sync windows past the 10k cap by adding
        `hs_object_id > last id` to the same query: the query without that floor is computed (and cached)
        once, and each window only cuts it, so walking a large store costs one scan, not one per window."""
        floor = _id_floor(groups)
        if floor is None:
            return self._matching_ids_uncut(object_type, groups, sorts, text_query)
        rest = [f for f in groups[0].get("filters") or [] if not _is_id_floor_filter(f)]
        base = self._matching_ids_uncut(object_type, [{**groups[0], "filters": rest}], sorts, text_query)
        sort = sorts[0] if sorts else None
        if sort is None or (
            isinstance(sort, dict)
            and sort.get("propertyName") == "hs_object_id"
            and str(sort.get("direction", "ASCENDING")).upper() == "ASCENDING"
        ):
            return base[bisect.bisect_right(base, floor) :]  # id order: one bisect
        return [i for i in base if i > floor]

    def _matching_ids_uncut(
        self, object_type: str, groups: list[dict], sorts: list, text_query: Any
    ) -> list[int]:
        key = (
            object_type,
            json.dumps([groups, sorts, text_query], sort_keys=True, default=str),
            self.store.refresh_search_index(object_type),
            self.store.version,
        )
        with self._search_cache_lock:
            cached = self._search_cache.get(key)
            if cached is not None:
                self._search_cache.move_to_end(key)
                return cached
        predicates = [
            [self._filter_predicate(object_type, f) for f in g.get("filters") or []] for g in groups
        ]
        needle = str(text_query).strip().lower() if text_query else ""
        text_fields = [
            n
            for n in DEFAULT_RETURNED_PROPERTIES[object_type]
            if (self.store.property(object_type, n) or {}).get("type") == "string"
        ]
        sort_key = self._sort_key(object_type, sorts[0]) if sorts else None
        matches: list[int] = []
        for record in self.store.search_records(object_type):
            if predicates and not any(all(p(record) for p in group) for group in predicates):
                continue
            if needle and not any(needle in (record.properties.get(n) or "").lower() for n in text_fields):
                continue
            matches.append(record.id)
        if sort_key is not None and sort_key[0] is None:
            ordered = (
                matches[::-1] if sort_key[1] else matches
            )  # hs_object_id: the scan is already in id order
        elif sort_key is not None:
            column, descending = sort_key
            present = [(column[i], i) for i in matches if i in column]
            present.sort(reverse=descending)
            ordered = [i for _, i in present] + [i for i in matches if i not in column]
        else:
            ordered = matches
        with self._search_cache_lock:
            self._search_cache[key] = ordered
            while len(self._search_cache) > SEARCH_CACHE_SIZE:
                self._search_cache.popitem(last=False)
        return ordered

    def _property_kind(self, object_type: str, name: str) -> str:
        definition = self.store.property(object_type, name)
        if definition is None:
            raise _validation(
                f"Property {name!r} does not exist on {object_type}", context={"propertyName": [name]}
            )
        kind = definition.get("type")
        return kind if kind in ("number", "datetime", "date") else "string"

    def _column(self, object_type: str, name: str) -> dict[int, Any]:
        """record id -> comparable value (Decimal, epoch ms or lower-case text) of one property, for the live
        records that have it. Converted once per store version: windowed searches on big stores stay cheap."""
        kind = self._property_kind(object_type, name)
        key = (object_type, name)
        version = (self.store.refresh_search_index(object_type), self.store.version)
        with self._search_cache_lock:
            hit = self._columns.get(key)
            if hit is not None and hit[0] == version:
                self._columns.move_to_end(key)
                return hit[1]
        convert = _CONVERTERS[kind]
        values: dict[int, Any] = {}
        for record in self.store.search_records(object_type):
            raw = record.properties.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[record.id] = convert(raw)
            except (ValueError, InvalidOperation):
                continue  # a value HubSpot could not index is not found by comparisons either
        with self._search_cache_lock:
            self._columns[key] = (version, values)
            while len(self._columns) > COLUMN_CACHE_SIZE:
                self._columns.popitem(last=False)
        return values

    def _sort_key(self, object_type: str, sort: Any) -> tuple[dict[int, Any] | None, bool]:
        if isinstance(sort, str):  # the SDK types sorts as strings; accept "prop" / "-prop"
            name, direction = sort.lstrip("-"), "DESCENDING" if sort.startswith("-") else "ASCENDING"
        elif isinstance(sort, dict):
            name, direction = (
                str(sort.get("propertyName", "")),
                str(sort.get("direction", "ASCENDING")).upper(),
            )
        else:
            raise _validation("Invalid sort: expected {'propertyName': ..., 'direction': 'ASCENDING'}")
        if direction not in ("ASCENDING", "DESCENDING"):
            raise _validation(f"Invalid sort direction {direction!r}: use ASCENDING or DESCENDING")
        if name == "hs_object_id":
            return None, direction == "DESCENDING"
        return self._column(object_type, name), direction == "DESCENDING"

    def _filter_predicate(self, object_type: str, flt: Any) -> Callable[[CrmRecord], bool]:
        if not isinstance(flt, dict):
            raise _validation("Invalid filter: expected an object with propertyName, operator and value")
        name = str(flt.get("propertyName", ""))
        operator = str(flt.get("operator", "")).upper()
        if operator not in SEARCH_OPERATORS:
            raise _validation(
                f"Invalid operator {operator!r} for property {name!r}; use one of "
                f"{', '.join(sorted(SEARCH_OPERATORS))}"
            )
        kind = self._property_kind(object_type, name)
        convert = _CONVERTERS[kind]

        def target(value: Any, field: str) -> Any:
            if value is None:
                raise _validation(f"Filter on {name!r} with operator {operator} needs '{field}'")
            try:
                return convert(str(value))
            except (ValueError, InvalidOperation):
                raise _validation(f"Invalid {field} {value!r} for {kind} property {name!r}") from None

        if operator == "HAS_PROPERTY":
            return lambda record: record.properties.get(name) not in (None, "")
        if operator == "NOT_HAS_PROPERTY":
            return lambda record: record.properties.get(name) in (None, "")
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = str(flt.get("value", "")).lower().strip("*")

            def contains(record: CrmRecord) -> bool:
                return token in (record.properties.get(name) or "").lower()

            return contains if operator == "CONTAINS_TOKEN" else (lambda record: not contains(record))
        column = self._column(object_type, name)
        if operator in ("IN", "NOT_IN"):
            values = flt.get("values")
            if not isinstance(values, list) or not values:
                raise _validation(
                    f"Filter on {name!r} with operator {operator} needs a non-empty 'values' list"
                )
            wanted = {target(v, "values") for v in values}
            if operator == "IN":
                return lambda record: column.get(record.id) in wanted
            return lambda record: column.get(record.id) not in wanted
        value = target(flt.get("value"), "value")
        if operator == "BETWEEN":
            high = target(flt.get("highValue"), "highValue")
            return lambda record: (v := column.get(record.id)) is not None and value <= v <= high
        if operator == "NEQ":
            return lambda record: column.get(record.id) != value
        compare = {
            "EQ": lambda a, b: a == b,
            "LT": lambda a, b: a < b,
            "LTE": lambda a, b: a <= b,
            "GT": lambda a, b: a > b,
            "GTE": lambda a, b: a >= b,
        }[operator]
        return lambda record: (v := column.get(record.id)) is not None and compare(v, value)

    # ------------------------------------------------------------------------------------ properties
    async def list_properties(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        archived = _bool_param(request.query_params.get("archived"))
        return {
            "results": [p for p in self.store.properties(object_type) if bool(p.get("archived")) == archived]
        }, 200

    async def read_property(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        name = request.path_params["name"]
        definition = self.store.property(object_type, name)
        if definition is None:
            raise HubSpotError(
                404,
                "OBJECT_NOT_FOUND",
                f"Unable to find property {name} for {object_type}",
                context={"propertyName": [name]},
            )
        return definition, 200

    async def create_property(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        body = await _json_body(request)
        missing = [f for f in ("name", "label", "type", "fieldType", "groupName") if not body.get(f)]
        if missing:
            raise _validation(
                f"Property definition is missing required field(s): {', '.join(missing)}",
                context={"missing": missing},
            )
        name = str(body["name"])
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise _validation(
                f"Property name {name!r} is invalid: use lower-case letters, digits and _ and start "
                f"with a letter"
            )
        kind, field_type = body["type"], body["fieldType"]
        if kind not in VALID_PROPERTY_TYPES:
            raise _validation(
                f"Invalid type {kind!r} for property {name}; use one of {', '.join(VALID_PROPERTY_TYPES)}"
            )
        if field_type not in VALID_FIELD_TYPES or field_type not in FIELD_TYPES_BY_TYPE[kind]:
            raise _validation(
                f"fieldType {field_type!r} is not valid for type {kind!r} (property {name}); use one "
                f"of {', '.join(FIELD_TYPES_BY_TYPE[kind])}"
            )
        with self.store.lock:
            if self.store.property(object_type, name) is not None:
                raise _already_exists("property", name, sub_category="PropertyCrudError.PROPERTY_EXISTS")
            if body["groupName"] not in {g["name"] for g in self.store.groups(object_type)}:
                raise _validation(
                    f"Property group {body['groupName']!r} does not exist for {object_type}; create "
                    f"it first (POST /crm/v3/properties/{object_type}/groups)"
                )
            now = _now_iso()
            definition = {
                "description": "",
                "options": [],
                "displayOrder": -1,
                "hidden": False,
                "formField": False,
                "calculated": False,
                "externalOptions": False,
                "hasUniqueValue": False,
                **{k: v for k, v in body.items() if k not in ("modificationMetadata", "hubspotDefined")},
                "hubspotDefined": False,
                "archived": False,
                "createdAt": now,
                "updatedAt": now,
                "modificationMetadata": {
                    "archivable": True,
                    "readOnlyDefinition": False,
                    "readOnlyValue": False,
                },
            }
            definition["options"] = _check_options(name, kind, definition.get("options") or [])
            self.store.define_property(object_type, definition)
        return definition, 201

    async def update_property(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        name = request.path_params["name"]
        body = await _json_body(request)
        with self.store.lock:
            definition = self.store.property(object_type, name)
            if definition is None:
                raise HubSpotError(
                    404,
                    "OBJECT_NOT_FOUND",
                    f"Unable to find property {name} for {object_type}",
                    context={"propertyName": [name]},
                )
            if definition.get("modificationMetadata", {}).get("readOnlyDefinition"):
                raise _validation(f"Property {name} is HubSpot-defined and its definition cannot be changed")
            updated = {**definition, **{k: v for k, v in body.items() if k not in ("name", "hubspotDefined")}}
            if "type" in body or "fieldType" in body:
                kind, field_type = updated["type"], updated["fieldType"]
                if kind not in VALID_PROPERTY_TYPES or field_type not in FIELD_TYPES_BY_TYPE.get(kind, ()):
                    raise _validation(
                        f"fieldType {field_type!r} is not valid for type {kind!r} (property {name})"
                    )
            updated["options"] = _check_options(name, updated["type"], updated.get("options") or [])
            updated["updatedAt"] = _now_iso()
            self.store.define_property(object_type, updated)
        return updated, 200

    async def list_groups(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        return {"results": self.store.groups(object_type)}, 200

    async def create_group(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        body = await _json_body(request)
        if not body.get("name") or not body.get("label"):
            raise _validation("A property group needs 'name' and 'label'")
        with self.store.lock:
            if any(g["name"] == body["name"] for g in self.store.groups(object_type)):
                raise _already_exists("property group", str(body["name"]))
            group = {
                "name": str(body["name"]),
                "label": str(body["label"]),
                "displayOrder": int(body.get("displayOrder", -1)),
                "archived": False,
            }
            self.store.define_group(object_type, group)
        return group, 201

    # ------------------------------------------------------------------------------------- pipelines
    async def account_details(self, request: Request) -> tuple[Any, int]:
        """The portal's details as HubSpot's account-info API returns them (PortalInformationResponse)."""
        zone = self.rate_limiter.time_zone
        offset = datetime.now(zone).utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds()) // 60
        return {
            "accountType": "STANDARD",
            "additionalCurrencies": list(self.store.additional_currencies),
            "companyCurrency": self.store.company_currency,
            "dataHostingLocation": "eu1",
            "portalId": SANDBOX_HUB_ID,
            "portalName": "Bougies Lumière (sandbox)",
            "timeZone": str(zone),
            "uiDomain": "app-eu1.hubspot.com",
            "utcOffset": f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}",
            "utcOffsetMilliseconds": minutes * 60_000,
        }, 200

    async def list_pipelines(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        return {"results": self.store.pipelines(object_type)}, 200

    async def read_pipeline(self, request: Request) -> tuple[Any, int]:
        object_type = self._object_type(request.path_params["object_type"])
        pipeline_id = request.path_params["pipeline_id"]
        for pipeline in self.store.pipelines(object_type):
            if pipeline["id"] == pipeline_id:
                return pipeline, 200
        raise HubSpotError(
            404, "OBJECT_NOT_FOUND", f"Unable to find pipeline {pipeline_id} for {object_type}"
        )

    # ---------------------------------------------------------------------------------- associations
    def _association_pair(self, request: Request) -> tuple[str, str]:
        from_type = self._object_type(request.path_params["from_type"])
        to_type = self._object_type(request.path_params["to_type"])
        if (from_type, to_type) not in ASSOCIATION_TYPE_IDS:
            raise _validation(f"Associations from {from_type} to {to_type} are not supported by the sandbox")
        return from_type, to_type

    def _association_page(
        self, from_type: str, from_id: int, to_type: str, after: str | None, limit: int
    ) -> tuple[list[dict], str | None]:
        links = self.store.associations(from_type, from_id, to_type)
        if after:
            cursor = _int_value(after, "after")
            links = [link for link in links if link[0] > cursor]
        page = links[:limit]
        results = [
            {
                "toObjectId": to_id,
                "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}],
            }
            for to_id, type_id in page
        ]
        next_after = str(page[-1][0]) if len(links) > limit and page else None
        return results, next_after

    async def associations_batch_read(self, request: Request) -> tuple[Any, int]:
        from_type, to_type = self._association_pair(request)
        body = await _json_body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise _validation("Invalid input JSON: 'inputs' must be a list of objects with an 'id'")
        if len(inputs) > ASSOCIATIONS_BATCH_MAX_INPUTS:
            raise _validation(f"Too many inputs: at most {ASSOCIATIONS_BATCH_MAX_INPUTS}, got {len(inputs)}")
        _note_inputs(request, len(inputs))
        started = _now_iso()
        results, missing, without = [], [], []
        for item in inputs:
            raw_id = str(item.get("id", ""))
            try:
                record = self.store.get(from_type, int(raw_id))
            except ValueError:
                record = None
            if record is None or record.archived:
                missing.append(raw_id)
                continue
            to, next_after = self._association_page(
                from_type, record.id, to_type, item.get("after"), ASSOCIATIONS_PAGE_SIZE
            )
            if not to and not item.get("after"):
                without.append(raw_id)
                continue
            result: dict[str, Any] = {"from": {"id": raw_id}, "to": to}
            if next_after is not None:
                result["paging"] = {"next": {"after": next_after}}
            results.append(result)
        errors = []
        if missing:
            errors.append(self._missing_error(from_type, missing))
        if without:
            errors.append(
                error_item(
                    "OBJECT_NOT_FOUND",
                    f"No {to_type} is associated with {from_type} {', '.join(without)}.",
                    without,
                    sub_category="crm.associations.NO_ASSOCIATIONS_FOUND",
                )
            )
        return _batch_answer(results, errors, started)

    async def associations_page(self, request: Request) -> tuple[Any, int]:
        from_type, to_type = self._association_pair(request)
        raw_id = request.path_params["object_id"]
        limit = _int_param(request.query_params.get("limit"), "limit", ASSOCIATIONS_PAGE_SIZE)
        if not 1 <= limit <= ASSOCIATIONS_PAGE_SIZE:
            raise _validation(f"limit must be between 1 and {ASSOCIATIONS_PAGE_SIZE}, got {limit}")
        try:
            record = self.store.get(from_type, int(raw_id))
        except ValueError:
            record = None
        if record is None or record.archived:
            raise HubSpotError(
                404, "OBJECT_NOT_FOUND", f"{from_type} {raw_id} does not exist", context={"ids": [raw_id]}
            )
        results, next_after = self._association_page(
            from_type, record.id, to_type, request.query_params.get("after"), limit
        )
        payload: dict[str, Any] = {"results": results}
        if next_after is not None:
            payload["paging"] = {
                "next": {"after": next_after, "link": f"{request.url.path}?after={next_after}"}
            }
        return payload, 200


# ------------------------------------------------------------------------------------- value helpers
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def _datetime_ms(raw: str) -> int:
    """Epoch ms from epoch-ms text or an ISO date/datetime (integer arithmetic: no float rounding)."""
    text = raw.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // _ONE_MS


def _number(raw: str) -> int | Decimal:
    """A number property value; plain integers (ids, counts) stay int, which compares and sorts faster."""
    text = raw.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(raw)
    return value


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "number": _number,
    "datetime": _datetime_ms,
    "date": _datetime_ms,
    "string": str.lower,  # text comparisons ignore case, as HubSpot's do
}


def _coerce_value(definition: dict, value: str, allowed: set[str] | None) -> str:
    """The value as HubSpot stores it, or ValueError((code, message)) the way HubSpot words it."""
    kind = definition.get("type")
    name = definition["name"]
    if kind == "number":
        try:
            _number(value)
        except (InvalidOperation, ValueError):
            raise ValueError("INVALID_DECIMAL", f"{value} was not a valid number.") from None
        return value.strip()
    if kind == "bool":
        if value.lower() not in ("true", "false"):
            raise ValueError("INVALID_BOOLEAN", f"{value} was not a valid boolean (use true or false).")
        return value.lower()
    if kind == "enumeration":
        if allowed is not None:
            chosen = (
                [v for v in value.split(";") if v] if definition.get("fieldType") == "checkbox" else [value]
            )
            bad = [v for v in chosen if v not in allowed]
            if bad:
                raise ValueError(
                    "INVALID_OPTION",
                    f"{bad[0]} was not one of the allowed options: [{', '.join(sorted(allowed))}]",
                )
        return value
    if kind in ("datetime", "date"):
        try:
            ms = _datetime_ms(value)
        except ValueError:
            raise ValueError(
                "INVALID_DATETIME" if kind == "datetime" else "INVALID_DATE",
                f"{value} is not a valid {kind} for {name}: send epoch milliseconds or ISO 8601",
            ) from None
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
        if kind == "date":
            if ms % 86_400_000:
                raise ValueError(
                    "INVALID_DATE",
                    f"{value} is at {moment.strftime('%H:%M:%S')}.{ms % 1000:03d} UTC, not midnight!",
                )
            return moment.strftime("%Y-%m-%d")
        return format_hubspot_datetime(moment)
    return value


def _problem(name: str, value: str, code: str, message: str) -> dict:
    return {"message": message, "code": code, "context": {"propertyName": [name], "value": [value]}}


def _check_options(name: str, kind: str, options: list) -> list[dict]:
    if not isinstance(options, list):
        raise _validation(f"options of property {name} must be a list")
    cleaned = []
    for i, option in enumerate(options):
        if not isinstance(option, dict) or "value" not in option or "label" not in option:
            raise _validation(f"option {i} of property {name} needs 'label' and 'value'")
        cleaned.append({"displayOrder": i, "hidden": False, "description": "", **option})
    values = [o["value"] for o in cleaned]
    if len(values) != len(set(values)):
        raise _validation(f"options of property {name} have duplicate values")
    if kind == "enumeration" and not cleaned:
        raise _validation(f"enumeration property {name} needs at least one option")
    return cleaned


def _is_id_floor_filter(flt: Any) -> bool:
    return (
        isinstance(flt, dict)
        and flt.get("propertyName") == "hs_object_id"
        and str(flt.get("operator", "")).upper() in ("GT", "GTE")
        and str(flt.get("value", "")).strip().lstrip("-").isdigit()
    )


def _id_floor(groups: list[dict]) -> int | None:
    """The id every match must exceed when the only filter group says `hs_object_id GT/GTE n`, else None."""
    if len(groups) != 1 or not isinstance(groups[0], dict):
        return None
    floors = [
        int(f["value"]) - (1 if str(f["operator"]).upper() == "GTE" else 0)
        for f in groups[0].get("filters") or []
        if _is_id_floor_filter(f)
    ]
    return max(floors) if floors else None


def _note_inputs(request: Request, inputs: int | None) -> None:
    note = request.scope.get("sandbox.log")
    if isinstance(note, dict):
        note["inputs"] = inputs


def _note_properties(request: Request, inputs: list[dict]) -> None:
    """Property names a batch write carries, for the request log (tests check what a client wrote)."""
    note = request.scope.get("sandbox.log")
    if isinstance(note, dict):
        names = {
            str(n) for item in inputs if isinstance(item.get("properties"), dict) for n in item["properties"]
        }
        note["properties"] = tuple(sorted(names))


async def _json_body(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise _validation("Invalid input JSON: the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _validation("Invalid input JSON: expected an object")
    return body


def _multi_param(query: Any, name: str) -> list[str]:
    """A list parameter sent repeated (?p=a&p=b, as the SDK does) or comma-joined (?p=a,b), or both."""
    values: list[str] = []
    for raw in query.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def _int_param(raw: str | None, name: str, default: int) -> int:
    return default if raw in (None, "") else _int_value(raw, name)


def _int_value(raw: Any, name: str) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise _validation(f"{name} must be an integer, got {raw!r}") from None


def _bool_param(raw: str | None) -> bool:
    return (raw or "").lower() == "true"


def hubspot_routes(
    store: CrmStore, access_token: str, rate_limiter: RateLimiter | None = None
) -> list[Route]:
    return HubSpotApi(store, access_token, rate_limiter).routes()
