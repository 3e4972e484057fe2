"""Prefect global concurrency limits for portal runs: one run per portal, at most N portals at once.

What Prefect 3.8.8 offers, and why these: a deployment's ``concurrency_limit`` counts the runs of ONE
deployment (nightly, backfill and publish of one portal are three deployments, and the nightly runs of all
portals are one); tag-based limits apply to task runs only, never to flow runs. A global concurrency limit
(GCL) can be held by any flow run, whichever deployment, worker or CLI started it, so every portal flow holds
two slots for its whole run, taken together:

- ``roi-portal-<name>`` (limit 1): one writer per portal warehouse, across nightly / backfill / publish;
- ``roi-portals`` (limit ``[group] max_parallel_portals``): how many portals run at once.

Slots are leased: a run killed without releasing them frees them when its lease runs out (LEASE_SECONDS). The
file lock (flows.locking) stays underneath: it also covers scripts that do not go through Prefect.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from connectors.config import Settings
from flows.locking import WarehouseBusyError

ALL_PORTALS_LIMIT = "roi-portals"
PORTAL_LIMIT_PREFIX = "roi-portal-"
DEFAULT_PORTAL = "default"  # the portal of a configuration without [portals]
# A crashed run's slots come back after this long; a live run renews its lease every LEASE_SECONDS / 2 or so.
LEASE_SECONDS = 120.0


def portal_limit_name(portal: str | None) -> str:
    return PORTAL_LIMIT_PREFIX + (portal or DEFAULT_PORTAL)


def wanted_limits(settings: Settings) -> dict[str, int]:
    """Every limit the configuration needs, with its size."""
    limits = {ALL_PORTALS_LIMIT: settings.group.max_parallel_portals}
    for name in settings.portal_names() or [None]:
        limits[portal_limit_name(name)] = 1
    return limits


def ensure_limits(limits: dict[str, int]) -> None:
    """Create the limits that do not exist yet and resize those whose size changed in roi.toml."""
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
    (None: wait as long as it takes, as queued deployment runs do)."""
    from prefect.concurrency.sync import concurrency

    name = portal_limit_name(settings.portal)
    ensure_limits({name: 1, ALL_PORTALS_LIMIT: settings.group.max_parallel_portals})
    slots = concurrency(
        [name, ALL_PORTALS_LIMIT],
        occupy=1,
        # Prefect's timeout of 0 gives up before its first request: "no wait" is one attempt instead.
        timeout_seconds=wait_seconds or None,
        max_retries=0 if wait_seconds == 0 else None,
        lease_duration=LEASE_SECONDS,
        strict=True,
        # A missed renewal (a busy API server) must not kill a run that is writing its warehouse.
        raise_on_lease_renewal_failure=False,
    )
    with ExitStack() as stack:
        try:  # only the acquisition: an error of the block itself is not ours to translate
            stack.enter_context(slots)
        except Exception as exc:
            if not _slot_taken(exc):
                raise
            raise WarehouseBusyError(
                f"Portal {settings.portal or DEFAULT_PORTAL!r}: another run of this portal holds its slot, "
                f"or {settings.group.max_parallel_portals} portals are already running ([group] "
                f"max_parallel_portals); waited {wait_seconds or 0:g} s",
                "wait for it to finish (Prefect UI: Concurrency), or pass a longer --lock-wait (flow "
                "parameter lock_wait_seconds)",
            ) from None
        yield


def _slot_taken(exc: BaseException) -> bool:
    """A wait that timed out, or the one attempt of a no-wait acquisition refused with 423 Locked."""
    if isinstance(exc, TimeoutError):
        return True
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    return getattr(response, "status_code", None) == 423


class _ExpectedRefusals(logging.Filter):
    """Prefect logs an ERROR for every acquisition that waited in vain; ours are expected and reported as
    WarehouseBusyError, so those lines only add noise (the CLI prints one line per error)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "ConcurrencySlotAcquisitionWithLeaseService" not in record.getMessage()


logging.getLogger("prefect._internal.concurrency").addFilter(_ExpectedRefusals())
