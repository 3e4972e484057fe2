"""Prefect global concurrency limits for portal runs: one run per portal, at most N portals at once.

What Prefect 3.8.8 offers, and why these: a deployment's ``concurrency_limit`` counts the runs of ONE
deployment (nightly, backfill and publish of one portal are three deployments, and the nightly runs of all
portals are one); tag-based limits apply to task runs only, never to flow runs. A global concurrency limit
(GCL) can be held by any flow run, whichever deployment, worker or CLI started it, so every portal flow holds
two slots for its whole run, taken together:

- ``roi-portal-<name>`` (limit 1): one writer per portal warehouse, across nightly / backfill / publish;
- ``roi-portals`` (limit ``[group] max_parallel_portals``): how many portals run at once.

Slots are leased: a run killed without releasing them frees them when its lease runs out (LEASE_SECONDS). The
flows take the warehouse's file lock (flows.locking) first, then these slots: a second run of a portal on the
same machine is told which run holds the file, and the lock also covers scripts that bypass Prefect.

Only against a Prefect server of its own (PREFECT_API_URL set: deployments, workers, `roi` pointed at a
server). Without one, each `roi` command starts a throwaway (ephemeral) server on ~/.prefect's database that
keeps leases in its memory and runs no lease expiry: a run killed there would hold its slot for good, and
every later run would wait on it. On one machine the file lock is the guarantee. A persistent server also
keeps leases in memory by default: restarted while runs hold slots, it keeps those slots taken
(docs/operations.md, "One writer per DuckDB file", says how to free them).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import httpx

from connectors.config import Settings
from flows.locking import WarehouseBusyError

ALL_PORTALS_LIMIT = "roi-portals"
PORTAL_LIMIT_PREFIX = "roi-portal-"
DEFAULT_PORTAL = "default"  # the portal of a configuration without [portals]
# A crashed run's slots come back after this long; a live run renews its lease every LEASE_SECONDS / 2 or so.
LEASE_SECONDS = 120.0
RETRY_SECONDS = 2.0  # between two attempts at a taken slot (the server's Retry-After when shorter)

log = logging.getLogger(__name__)


def portal_limit_name(portal: str | None) -> str:
    return PORTAL_LIMIT_PREFIX + (portal or DEFAULT_PORTAL)


def wanted_limits(settings: Settings) -> dict[str, int]:
    """Every limit the configuration needs, with its size."""
    limits = {ALL_PORTALS_LIMIT: settings.group.max_parallel_portals}
    for name in settings.portal_names() or [None]:
        limits[portal_limit_name(name)] = 1
    return limits


def uses_a_prefect_server() -> bool:
    """True when flows report to a configured Prefect API, False on the ephemeral server of a bare `roi`."""
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def ensure_limits(limits: dict[str, int]) -> None:
    """Create the limits that do not exist yet and resize those whose size changed in roi.toml."""
    if not uses_a_prefect_server():
        return
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        for name, size in limits.items():
            try:
                client.upsert_global_concurrency_limit_by_name(name, size)
            except ObjectAlreadyExists:  # another run created it between our read and our create
                client.upsert_global_concurrency_limit_by_name(name, size)


@contextmanager
def portal_slot(settings: Settings, *, wait_seconds: float | None) -> Iterator[None]:
    """Hold this portal's slot and one of the group's for the block; WarehouseBusyError after ``wait_seconds``
    (None: wait as long as it takes, as queued deployment runs do).

    The lease is taken, renewed and released with a client of the Prefect API in use at that moment (Prefect's
    own ``concurrency()`` keeps one client per process for each set of limit names, bound to the first API it
    saw).
    """
    if not uses_a_prefect_server():  # the warehouse's file lock is the one-writer guarantee (module doc)
        yield
        return
    name = portal_limit_name(settings.portal)
    ensure_limits({name: 1, ALL_PORTALS_LIMIT: settings.group.max_parallel_portals})
    lease_id = _acquire([name, ALL_PORTALS_LIMIT], wait_seconds)
    if lease_id is None:
        who = settings.portal or DEFAULT_PORTAL
        raise WarehouseBusyError(
            f"Portal {who!r}: another run of this portal holds its slot ({name}), or "
            f"{settings.group.max_parallel_portals} portals are already running ({ALL_PORTALS_LIMIT}, "
            f"[group] max_parallel_portals); waited {wait_seconds or 0:g} s",
            "wait for it to finish (`roi portals`, Prefect UI: Concurrency), or pass a longer --lock-wait "
            "(flow parameter lock_wait_seconds)",
        )
    stop = threading.Event()
    renewer = threading.Thread(
        target=contextvars.copy_context().run,  # the same Prefect settings (API URL) as this thread
        args=(_renew_until, lease_id, stop),
        name=f"lease-{name}",
        daemon=True,
    )
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=10)
        _release(lease_id)


def _acquire(names: list[str], wait_seconds: float | None) -> UUID | None:
    """The lease id once every limit of ``names`` gave a slot; None when ``wait_seconds`` ran out first."""
    from prefect.client.orchestration import get_client

    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    with get_client(sync_client=True) as client:
        while True:
            try:
                response = client.increment_concurrency_slots_with_lease(
                    names=names, slots=1, mode="concurrency", lease_duration=LEASE_SECONDS
                )
                return UUID(response.json()["lease_id"])
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 423:  # 423 Locked: no free slot now
                    raise
                retry_after = float(exc.response.headers.get("Retry-After") or RETRY_SECONDS)
            if deadline is not None and time.monotonic() + min(retry_after, RETRY_SECONDS) > deadline:
                return None
            time.sleep(min(retry_after, RETRY_SECONDS))


def _renew_until(lease_id: UUID, stop: threading.Event) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        while not stop.wait(LEASE_SECONDS / 3):
            try:
                client.renew_concurrency_lease(lease_id=lease_id, lease_duration=LEASE_SECONDS)
            except Exception as exc:  # a busy API server: try again at the next turn, the lease still runs
                log.warning("Could not renew the portal slot's lease %s (%s); retrying", lease_id, exc)


def _release(lease_id: UUID) -> None:
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            client.release_concurrency_slots_with_lease(lease_id=lease_id)
    except Exception as exc:  # the lease runs out by itself after LEASE_SECONDS
        log.warning(
            "Could not release the portal slot's lease %s (%s); it expires in %g s",
            lease_id,
            exc,
            LEASE_SECONDS,
        )
