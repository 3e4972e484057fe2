"""HubSpot rate limits for private apps: a 10-second rolling burst window per tier, a separate per-second
limit for CRM search, and a daily quota that resets at midnight in the portal's time zone. Answers carry
HubSpot's X-HubSpot-RateLimit-* headers and 429 bodies.

Per HubSpot's published limits: Starter 100 / 10 s, Professional and Enterprise 190 / 10 s; the paid
"API limit increase" raises the burst to 250 / 10 s and adds 1,000,000 requests a day.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

# Requests per 10-second rolling window, and per day, by account tier (HubSpot private-app limits).
BURST_WINDOW_MS = 10_000
SEARCH_WINDOW_MS = 1_000
SEARCH_PER_SECOND = 5
TIER_LIMITS: dict[str, tuple[int, int]] = {
    "starter": (100, 250_000),
    "professional": (190, 650_000),
    "enterprise": (190, 1_000_000),
}
# The API limit increase (Professional and Enterprise): burst 250 / 10 s and this much more per day.
LIMIT_INCREASE_BURST = 250
LIMIT_INCREASE_DAILY = 1_000_000
DEFAULT_PORTAL_TIME_ZONE = "Europe/Paris"

POLICY_BURST = "TEN_SECONDLY_ROLLING"
POLICY_SEARCH = "SECONDLY"
POLICY_DAILY = "DAILY"
_POLICY_MESSAGES = {
    POLICY_BURST: "You have reached your ten_secondly_rolling limit.",
    POLICY_SEARCH: "You have reached your secondly limit.",
    POLICY_DAILY: "You have reached your daily limit.",
}


@dataclass(slots=True)
class RateDecision:
    allowed: bool
    headers: dict[str, str] = field(default_factory=dict)
    policy: str | None = None

    def error_body(self) -> dict:
        """The JSON body HubSpot sends with a 429."""
        return {
            "status": "error",
            "message": _POLICY_MESSAGES[self.policy or POLICY_BURST],
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": self.policy,
            "groupName": "publicapi:private-app",
        }


class RateLimiter:
    """Sliding-window counters for one portal. Thread-safe; `enabled=False` lets everything through."""

    def __init__(
        self,
        tier: str = "professional",
        enabled: bool = True,
        daily_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        api_limit_increase: bool = False,
        time_zone: str = DEFAULT_PORTAL_TIME_ZONE,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if tier not in TIER_LIMITS:
            raise ValueError(f"unknown HubSpot tier {tier!r}: use one of {', '.join(TIER_LIMITS)}")
        if api_limit_increase and tier == "starter":
            raise ValueError("the API limit increase is sold for Professional and Enterprise portals only")
        self.tier = tier
        self.enabled = enabled
        self.api_limit_increase = api_limit_increase
        self.burst_limit, default_daily = TIER_LIMITS[tier]
        if api_limit_increase:
            self.burst_limit, default_daily = LIMIT_INCREASE_BURST, default_daily + LIMIT_INCREASE_DAILY
        self.daily_limit = default_daily if daily_limit is None else daily_limit
        self.time_zone = ZoneInfo(time_zone)
        self._wall_clock = wall_clock
        self._day: date = self._portal_day()
        self._clock = clock
        self._lock = threading.Lock()
        self._burst: deque[float] = deque()
        self._search: deque[float] = deque()
        self.daily_used = 0

    def reset(self) -> None:
        with self._lock:
            self._burst.clear()
            self._search.clear()
            self.daily_used = 0

    def check(self, is_search: bool = False) -> RateDecision:
        """Count one request (when allowed) and say whether it may go through, with the headers to send."""
        if not self.enabled:
            return RateDecision(True)
        now = self._clock()
        with self._lock:
            _expire(self._burst, now - BURST_WINDOW_MS / 1000)
            _expire(self._search, now - SEARCH_WINDOW_MS / 1000)
            today = self._portal_day()
            if today != self._day:  # midnight in the portal's time zone: a new daily allowance
                self._day, self.daily_used = today, 0
            if self.daily_used >= self.daily_limit:
                return RateDecision(False, self._headers(is_search), POLICY_DAILY)
            if is_search:
                # Search is exempt from the ten-secondly window; it has its own per-second limit, no headers.
                if len(self._search) >= SEARCH_PER_SECOND:
                    return RateDecision(False, {}, POLICY_SEARCH)
                self._search.append(now)
                self.daily_used += 1
                return RateDecision(True)
            if len(self._burst) >= self.burst_limit:
                return RateDecision(False, self._headers(False), POLICY_BURST)
            self._burst.append(now)
            self.daily_used += 1
            return RateDecision(True, self._headers(False))

    def _portal_day(self) -> date:
        return self._wall_clock().astimezone(self.time_zone).date()

    def _headers(self, is_search: bool) -> dict[str, str]:
        if is_search:
            return {}
        return {
            "X-HubSpot-RateLimit-Max": str(self.burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(self.burst_limit - len(self._burst), 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(BURST_WINDOW_MS),
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(self.daily_limit - self.daily_used, 0)),
        }


def _expire(window: deque[float], cutoff: float) -> None:
    while window and window[0] <= cutoff:
        window.popleft()
