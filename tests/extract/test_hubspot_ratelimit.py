"""The shared per-portal rate limiter: window arithmetic, sharing, and using (not wasting) the allowance."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from connectors.ratelimit import TIER_LIMITS_PER_10S, PortalRateLimiter, shared_limiter


class FakeClock:
    """Time that moves only when someone sleeps, so window arithmetic is checked exactly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_sliding_window_never_exceeds_its_limit_in_any_window():
    clock = FakeClock()
    limiter = PortalRateLimiter(10, 1.0, 4, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(35):
        limiter.acquire()
        sent.append(clock.now)
    for i in range(len(sent) - 10):
        assert sent[i + 10] - sent[i] >= 1.0  # the 11th request is always a full window after the 1st
    # ... and no slower than that: 35 requests need exactly 3 full windows of waiting.
    assert sent[-1] == pytest.approx(3.0)
    assert limiter.stats.calls == 35 and limiter.stats.waits == 3


def test_search_has_its_own_per_second_limit_outside_the_burst_window():
    clock = FakeClock()
    limiter = PortalRateLimiter(100, 10.0, 4, clock=clock, sleep=clock.sleep)
    for _ in range(8):
        limiter.acquire("search")
    assert clock.now == pytest.approx(limiter._search.window)  # 4 per (1 s + pad): the 5th waited one window
    for _ in range(100):
        limiter.acquire()  # searches did not use the burst allowance
    assert clock.now == pytest.approx(limiter._search.window)
    assert limiter.stats.search_calls == 8


def test_pause_holds_every_request():
    clock = FakeClock()
    limiter = PortalRateLimiter(100, 10.0, 4, clock=clock, sleep=clock.sleep)
    limiter.pause(10.0)
    assert limiter.acquire() == pytest.approx(10.0)


def test_tiers_stay_just_under_hubspot_limits_and_portals_share_one_limiter():
    for tier, limit in TIER_LIMITS_PER_10S.items():
        limiter = PortalRateLimiter.for_tier(tier)
        per_10s = limiter.max_requests * 10.0 / limiter.window_seconds
        assert 0.9 * limit <= per_10s < limit
    a = PortalRateLimiter.for_portal("token-a", "starter")
    assert PortalRateLimiter.for_portal("token-a", "starter") is a is shared_limiter("token-a", "starter")
    assert PortalRateLimiter.for_portal("token-b", "starter") is not a
    with pytest.raises(ValueError, match="HUBSPOT_TIER"):
        PortalRateLimiter.for_tier("gold")


def test_concurrent_callers_reach_the_floor_not_more():
    # 8 threads with 20 ms "latency" share 40 requests per 0.25 s: the first 40 go at once, the other 80 at
    # 160/s, so the floor is 0.5 s. Concurrency must get there, and the limiter must not let it go faster.
    limiter = PortalRateLimiter(40, 0.25, 4)
    requests = 120

    def one_call(_: int) -> None:
        limiter.acquire()
        time.sleep(0.02)

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one_call, range(requests)))
    elapsed = time.monotonic() - started
    floor = (requests - limiter.max_requests) / limiter.rate
    assert floor <= elapsed <= floor * 1.25 + 0.2
