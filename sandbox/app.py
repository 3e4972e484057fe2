"""The sandbox ASGI app: HubSpot routes (sandbox.hubspot_api) and GA4 routes (sandbox.ga4_api) on one
Starlette app, wrapped in the request log and fault injection, which apply to every route alike."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.faults import Faults
from sandbox.hubspot_api import HubSpotApi
from sandbox.ratelimits import RateLimiter
from sandbox.requestlog import DROPPED, RequestLog
from sandbox.store import CrmStore

log = logging.getLogger(__name__)

GA4_PATH_PREFIX = "/v1beta/"


def ga4_routes_for(dataset: Any) -> list[BaseRoute]:
    """GA4 routes when the GA4 stand-in is installed (imported lazily: the HubSpot side works without it)."""
    if dataset is None:
        return []
    try:
        from sandbox.ga4_api import ga4_routes
    except ImportError as exc:
        log.warning("GA4 stand-in not available (%s): serving HubSpot routes only", exc)
        return []
    return list(ga4_routes(dataset))


def create_app(
    store: CrmStore,
    access_token: str,
    *,
    dataset: Any = None,
    rate_limiter: RateLimiter | None = None,
    faults: Faults | None = None,
    request_log: RequestLog | None = None,
    churn: Any = None,
    page_hooks: list | None = None,
    token_scopes: Any = None,
) -> ASGIApp:
    """One ASGI app for the whole sandbox. `dataset` (sandbox.dataset.Dataset) feeds the GA4 routes; `churn`
    (sandbox.churn.Churn) gets a chance to write between the pages of every paged read."""
    hubspot = HubSpotApi(store, access_token, rate_limiter, token_scopes=token_scopes)
    if page_hooks is not None:
        hubspot.page_hooks = page_hooks  # the caller's list: hooks added later apply too
    if churn is not None:
        hubspot.page_hooks.append(churn.between_pages)
    inner = Starlette(routes=[*hubspot.routes(), *ga4_routes_for(dataset)])
    faults = Faults() if faults is None else faults
    request_log = RequestLog() if request_log is None else request_log
    return RequestLogMiddleware(FaultMiddleware(inner, faults), request_log)


class RequestLogMiddleware:
    """Records method, path, status and the number of inputs/filters (set by handlers) of every request."""

    def __init__(self, app: ASGIApp, request_log: RequestLog) -> None:
        self.app = app
        self.request_log = request_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        note: dict[str, Any] = {"status": DROPPED, "inputs": None}
        scope["sandbox.log"] = note
        recorded = False

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self.request_log.record(
                    scope["method"],
                    scope["path"],
                    note["status"],
                    note["inputs"],
                    scope.get("query_string", b"").decode("latin-1"),
                    note.get("properties", ()),
                )

        note["record"] = record  # the fault layer records a dropped request before it closes the socket

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                note["status"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record()  # before the last byte leaves: a client that got its answer finds it in the log
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            record()


class FaultMiddleware:
    """Applies the configured faults: latency, error answers, dropped connections."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        decision = self.faults.decide(scope["path"])
        if decision.latency_ms:
            await asyncio.sleep(decision.latency_ms / 1000)
        if decision.drop:
            note = scope.get("sandbox.log")
            if isinstance(note, dict) and callable(note.get("record")):
                note["record"]()
            await _drop_connection(receive)
            return
        if decision.status is not None:
            await _send_error(send, decision.status, scope["path"].startswith(GA4_PATH_PREFIX))
            return
        await self.app(scope, receive, send)


async def _drop_connection(receive: Receive) -> None:
    """Close the socket without any HTTP answer, as a load balancer resetting the connection would.

    uvicorn does not expose the transport in the ASGI scope; its request cycle object (the owner of `receive`)
    holds it. Marking the cycle disconnected stops uvicorn from writing its own 500 afterwards."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox fault: drop connection")  # other servers: best effort (a 500)
    transport.close()
    cycle.disconnected = True
    await asyncio.sleep(0)


async def _send_error(send: Send, status: int, google_style: bool) -> None:
    if google_style:
        google_status = {
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            502: "UNAVAILABLE",
            503: "UNAVAILABLE",
            504: "DEADLINE_EXCEEDED",
        }
        message = (
            "Exhausted property tokens per hour. (sandbox fault)"
            if status == 429
            else "The service is currently unavailable."
        )
        body: dict[str, Any] = {
            "error": {"code": status, "message": message, "status": google_status.get(status, "UNKNOWN")}
        }
    else:
        body = {
            "status": "error",
            "message": "internal error",
            "category": "INTERNAL_ERROR",
            "correlationId": "00000000-0000-0000-0000-000000000000",
        }
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json;charset=utf-8"),
                (b"content-length", str(len(content)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
