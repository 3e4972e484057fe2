"""One run per portal and at most N portals at once: Prefect global concurrency limits on a real server; and
one HubSpot rate limiter per portal."""

from __future__ import annotations

import contextvars
import threading

import pytest

from connectors.config import Settings
from connectors.hubspot.client import portal_limiter
from flows.concurrency import ALL_PORTALS_LIMIT, portal_limit_name, portal_slot
from flows.locking import WarehouseBusyError


@pytest.fixture
def prefect_api(prefect_server):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield prefect_server


def _portal(name: str, *, cap: int = 4) -> Settings:
    configuration = Settings(
        portals={"slot-a": {"token_env": "TOKEN_A"}, "slot-b": {"token_env": "TOKEN_B"}},
        group={"max_parallel_portals": cap},
    )
    return configuration.for_portal(name, with_token=False)


def _held(settings: Settings, release: threading.Event, held: threading.Event) -> threading.Thread:
    """A thread that holds ``settings``' slot until ``release`` is set (like a running portal flow)."""

    def hold() -> None:
        with portal_slot(settings, wait_seconds=30):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(hold,))  # same Prefect API
    thread.start()
    assert held.wait(30)
    return thread


def test_a_portal_runs_once_at_a_time_and_other_portals_are_not_blocked(prefect_api):
    release, held = threading.Event(), threading.Event()
    holder = _held(_portal("slot-a"), release, held)
    try:
        with (
            pytest.raises(WarehouseBusyError, match="roi-portal-slot-a"),
            portal_slot(_portal("slot-a"), wait_seconds=0),
        ):
            pass
        with portal_slot(_portal("slot-b"), wait_seconds=0):  # another portal: its own slot
            pass
    finally:
        release.set()
        holder.join()
    with portal_slot(_portal("slot-a"), wait_seconds=0):  # released when the run ends
        pass


def test_the_group_cap_limits_portals_running_at_once(prefect_api):
    release, held = threading.Event(), threading.Event()
    holder = _held(_portal("slot-a", cap=1), release, held)
    try:
        with (
            pytest.raises(WarehouseBusyError, match=ALL_PORTALS_LIMIT),
            portal_slot(_portal("slot-b", cap=1), wait_seconds=0),
        ):
            pass
        waited = threading.Thread(target=lambda: (release.wait(1), release.set()))
        waited.start()
        with portal_slot(_portal("slot-b", cap=1), wait_seconds=30):  # gets it once slot-a's run ends
            pass
        waited.join()
    finally:
        release.set()
        holder.join()
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        limits = {
            name: client.read_global_concurrency_limit_by_name(name).limit
            for name in (portal_limit_name("slot-a"), portal_limit_name("slot-b"), ALL_PORTALS_LIMIT)
        }
    assert limits == {"roi-portal-slot-a": 1, "roi-portal-slot-b": 1, ALL_PORTALS_LIMIT: 1}


def test_each_portal_has_its_own_rate_limiter_sized_by_its_tier(monkeypatch):
    monkeypatch.setenv("TOKEN_A", "pat-eu1-aaaaaaaa-0000")
    monkeypatch.setenv("TOKEN_B", "pat-eu1-bbbbbbbb-0000")
    configuration = Settings(
        portals={
            "slot-a": {"token_env": "TOKEN_A", "hubspot_tier": "starter"},
            "slot-b": {"token_env": "TOKEN_B", "hubspot_tier": "professional"},
        }
    )
    a, b = configuration.for_portal("slot-a"), configuration.for_portal("slot-b")
    assert portal_limiter(a) is portal_limiter(configuration.for_portal("slot-a"))  # shared by its steps
    assert portal_limiter(a) is not portal_limiter(b)
    assert portal_limiter(a).max_requests < portal_limiter(b).max_requests


def test_without_a_prefect_server_of_its_own_no_slot_is_taken(tmp_path, monkeypatch):
    """A bare `roi` runs on a throwaway server that never expires leases: a killed run would hold its slot for
    good and every later run would wait. Without PREFECT_API_URL the file lock alone keeps one writer."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from flows.concurrency import uses_a_prefect_server

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(updates={PREFECT_API_URL: None, PREFECT_HOME: str(tmp_path)}):
        assert not uses_a_prefect_server()
        settings = _portal("slot-a")
        # Nested on purpose: with slots, the inner one would find the portal's slot taken.
        with portal_slot(settings, wait_seconds=0), portal_slot(settings, wait_seconds=0):
            pass
    assert not (tmp_path / "prefect.db").exists()  # no throwaway server was started for it
