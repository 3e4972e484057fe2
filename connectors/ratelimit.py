"""One shared client-side rate limiter per HubSpot portal, kept just under HubSpot's limits.

HubSpot counts requests per portal in a rolling 10-second window (per tier) and CRM search separately at 5 per
second. Every stream, thread and the publisher of one portal must draw from the same allowance, so limiters
come from a registry keyed by a hash of the token (``PortalRateLimiter.for_portal``). The limiter is a sliding
window, not a token bucket, because that is how HubSpot counts; the margins below absorb the latency jitter
between the moment we send and the moment HubSpot counts the request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# HubSpot burst limits per 10 s (private apps; Professional and Enterprise alike) and what we allow ourselves:
# a few requests and 150 ms of window below, so that arrival jitter on HubSpot's side never makes our
# 10-second window look like 9.9 seconds there.
TIER_LIMITS_PER_10S = {"starter": 100, "professional": 190, "enterprise": 190}
TIER_HEADROOM = {"starter": 3, "professional": 5, "enterprise": 5}
# HubSpot's paid API limit increase (Professional / Enterprise only): 250 per 10 s.
LIMIT_INCREASE_PER_10S = 250
LIMIT_INCREASE_HEADROOM = 6
WINDOW_SECONDS = 10.0
WINDOW_PAD_SECONDS = 0.15
SEARCH_PER_SECOND = 5  # HubSpot CRM search, per portal
# 5 searches per 1.1 s: the 0.1 s pad absorbs arrival jitter (a refused search costs a 1 s back-off), and a
# full read's downward search chain is bound by this rate.
SEARCH_HEADROOM = 0
SEARCH_WINDOW_PAD_SECONDS = 0.1
# HubSpot exempts search from the ten-secondly window (spec: x-hubspot-rate-limit-exemptions); keep it
# separate.
SEARCH_COUNTS_TOWARD_BURST = False

RequestKind = str  # "default" | "search"


@dataclass
class LimiterStats:
    calls: int = 0
    search_calls: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    pauses: int = 0


class _SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds. Not thread-safe on its own (the limiter locks)."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"rate limit needs limit >= 1 and window > 0, got {limit} per {window}s")
        self.limit = limit
        self.window = window
        self._sent: deque[float] = deque()

    def delay(self, now: float) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        horizon = now - self.window
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return 0.0
        return self._sent[len(self._sent) - self.limit] + self.window - now

    def record(self, now: float) -> None:
        self._sent.append(now)


class PortalRateLimiter:
    """Thread-safe sliding-window limiter for one portal: ``acquire()`` before every HTTP request.

    ``acquire("search")`` also respects the separate search limit. ``pause(seconds)`` makes every thread wait
    (used after a 429 TEN_SECONDLY_ROLLING: HubSpot's window must drain).
    """

    def __init__(
        self,
        max_requests: int | None = None,
        window_seconds: float = WINDOW_SECONDS + WINDOW_PAD_SECONDS,
        search_per_second: int = SEARCH_PER_SECOND - SEARCH_HEADROOM,
        *,
        tier: str | None = None,
        api_limit_increase: bool = False,
        search_window_seconds: float = 1.0 + SEARCH_WINDOW_PAD_SECONDS,
        search_counts_toward_burst: bool = SEARCH_COUNTS_TOWARD_BURST,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_requests is None:
            max_requests = self.tier_allowance(tier or "professional", api_limit_increase)
        self.tier = tier
        self.api_limit_increase = api_limit_increase
        self._burst = _SlidingWindow(max_requests, window_seconds)
        self._search = _SlidingWindow(search_per_second, search_window_seconds)
        self._search_counts_toward_burst = search_counts_toward_burst
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._clock = clock
        self._sleep = sleep
        self.stats = LimiterStats()

    # -- construction ---------------------------------------------------------------------------------------

    @staticmethod
    def tier_allowance(tier: str, api_limit_increase: bool = False) -> int:
        """Requests per 10 s we allow ourselves on a portal of ``tier`` (with or without the API limit
        increase)."""
        tier = (tier or "").strip().lower()
        if tier not in TIER_LIMITS_PER_10S:
            raise ValueError(
                f"Unknown HubSpot tier {tier!r}: use one of {', '.join(TIER_LIMITS_PER_10S)} (HUBSPOT_TIER)."
            )
        if api_limit_increase:
            if tier == "starter":
                raise ValueError(
                    "HUBSPOT_API_LIMIT_INCREASE is set but the tier is starter: HubSpot sells the API limit "
                    "increase for Professional and Enterprise portals only. Fix the tier or unset it."
                )
            return LIMIT_INCREASE_PER_10S - LIMIT_INCREASE_HEADROOM
        return TIER_LIMITS_PER_10S[tier] - TIER_HEADROOM[tier]

    @classmethod
    def for_tier(cls, tier: str, api_limit_increase: bool = False, **kwargs: object) -> PortalRateLimiter:
        """A new limiter sized for ``tier`` (starter|professional|enterprise) and the API limit increase."""
        allowance = cls.tier_allowance(tier, api_limit_increase)
        return cls(allowance, tier=tier, api_limit_increase=api_limit_increase, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def for_portal(
        cls, token: str | None, tier: str = "professional", api_limit_increase: bool = False
    ) -> PortalRateLimiter:
        """The one shared limiter of the portal behind ``token`` (created on first use, sized by ``tier`` and
        the API limit increase)."""
        return _registry.get(token, tier, api_limit_increase)

    # -- use ------------------------------------------------------------------------------------------------

    @property
    def max_requests(self) -> int:
        return self._burst.limit

    @property
    def window_seconds(self) -> float:
        return self._burst.window

    @property
    def rate(self) -> float:
        """Sustained requests per second this limiter allows."""
        return self._burst.limit / self._burst.window

    def acquire(self, kind: RequestKind = "default") -> float:
        """Block until one request of ``kind`` may be sent; returns the seconds waited."""
        is_search = kind == "search"
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                delay = max(0.0, self._paused_until - now)
                if not is_search or self._search_counts_toward_burst:
                    delay = max(delay, self._burst.delay(now))
                if is_search:
                    delay = max(delay, self._search.delay(now))
                if delay <= 0:
                    if not is_search or self._search_counts_toward_burst:
                        self._burst.record(now)
                    if is_search:
                        self._search.record(now)
                        self.stats.search_calls += 1
                    self.stats.calls += 1
                    if waited > 0:
                        self.stats.waits += 1
                        self.stats.wait_seconds += waited
                    return waited
            # Sleep outside the lock so other threads can take slots that free up for their kind.
            self._sleep(delay)
            waited += delay

    def pause(self, seconds: float) -> None:
        """Hold every request of this portal for ``seconds`` (e.g. after a 429 on the 10-second window)."""
        with self._lock:
            until = self._clock() + seconds
            if until > self._paused_until:
                self._paused_until = until
                self.stats.pauses += 1


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limiters: dict[str, PortalRateLimiter] = {}

    @staticmethod
    def _key(token: str | None) -> str:
        # Keyed by a hash: the registry must never hold the token itself.
        return hashlib.sha256((token or "").encode()).hexdigest()

    def get(self, token: str | None, tier: str, api_limit_increase: bool = False) -> PortalRateLimiter:
        key = self._key(token)
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None or (limiter.tier, limiter.api_limit_increase) != (tier, api_limit_increase):
                limiter = PortalRateLimiter.for_tier(tier, api_limit_increase)
                self._limiters[key] = limiter
            return limiter

    def clear(self) -> None:
        with self._lock:
            self._limiters.clear()


_registry = _Registry()


def shared_limiter(
    token: str | None, tier: str = "professional", api_limit_increase: bool = False
) -> PortalRateLimiter:
    """Alias of PortalRateLimiter.for_portal."""
    return _registry.get(token, tier, api_limit_increase)


def reset_registry() -> None:
    """Forget every shared limiter (tests start fresh portals)."""
    _registry.clear()
