"""A publish killed with SIGKILL mid-run: the next run re-sends at most the batches that were in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from publish_helpers import accepted_inputs, batch_updates, hubspot_values, sandbox_settings

from connectors.hubspot.publish import BATCH_SIZE, publish_to_hubspot
from connectors.ratelimit import reset_registry

KILL_AFTER_ACCEPTED_BATCHES = 2
PUBLISH_IN_A_CHILD = """
import sys
from connectors.config import load_settings
from connectors.hubspot.publish import publish_to_hubspot
publish_to_hubspot(load_settings(None), sys.argv[1], "killed-publish", workers=1)
"""


def _accepted_batches(portal) -> int:
    return sum(1 for e in batch_updates(portal) if e.status in (200, 207))


def test_publish_killed_mid_run_resends_at_most_the_batch_in_flight(portal, warehouse, tmp_path, monkeypatch):
    for name in ("GA4_PROPERTY_ID", "GA4_API_ENDPOINT", "ROI_SPEND_FILE", "ROI_TAGGING_PLAN"):
        monkeypatch.delenv(name, raising=False)
    settings = sandbox_settings(portal, warehouse)
    preview = publish_to_hubspot(settings, warehouse, "preview", dry_run=True)
    to_send = sum(preview.records_changed.values())
    assert to_send > 2 * BATCH_SIZE  # at least 3 batches: the kill lands after 2, before the last

    # Slow answers so the kill lands between batches, as a real crash would; the child sends one at a time.
    portal.faults.configure(latency_ms=150)
    portal.request_log.clear()
    env = {
        **os.environ,
        "HUBSPOT_ACCESS_TOKEN": portal.access_token,
        "HUBSPOT_BASE_URL": portal.base_url,
        "ROI_DATABASE": str(warehouse),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", PUBLISH_IN_A_CHILD, str(warehouse)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _accepted_batches(portal) < KILL_AFTER_ACCEPTED_BATCHES:
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never got its batches accepted"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    time.sleep(0.5)  # let a request already on the wire finish in the sandbox before counting
    acknowledged = accepted_inputs(portal)
    assert 0 < acknowledged < to_send

    # Recovery: a normal publish. Whatever HubSpot acknowledged and the warehouse recorded is not sent again.
    portal.faults.clear()
    portal.request_log.clear()
    reset_registry()
    recovery = publish_to_hubspot(settings, warehouse, "recovery")
    assert recovery.ok
    resent = accepted_inputs(portal) - (to_send - acknowledged)
    assert 0 <= resent <= BATCH_SIZE, f"{resent} records sent twice (at most the one batch in flight)"
    # And the portal converged: the next publish has nothing to send.
    portal.request_log.clear()
    again = publish_to_hubspot(settings, warehouse, "after-recovery")
    assert sum(again.records_changed.values()) == 0 and batch_updates(portal) == []
    assert all(v for v in hubspot_values(portal, "deals").values())
