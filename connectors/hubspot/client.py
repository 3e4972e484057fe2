"""The HubSpot client and the ONE way every call goes out: a limiter slot, then retries with backoff.

The official ``hubspot-api-client`` is built with its own retries switched off (``Retry(0)``): every attempt
goes through the portal's shared ``PortalRateLimiter`` and ``HubSpotCaller`` retries 429 / 5xx / timeouts /
dropped connections / bodies cut off mid-read for every method, POST included (the SDK's urllib3 Retry would
skip POST). Extract and publish use the same caller, so a 429 seen by one holds back the other.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.config import ConfigError, Settings, redact
from connectors.ratelimit import PortalRateLimiter

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # per HTTP call
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 8.0
TEN_SECONDLY_PAUSE_SECONDS = 10.0  # a 429 on the burst window: let HubSpot's 10 s window drain
SECONDLY_PAUSE_SECONDS = 1.0  # a 429 on search's per-second limit
RETRY_AFTER_MAX_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = (5.0, 60.0)  # (connect, read)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class HubSpotError(RuntimeError):
    """Base of every HubSpot failure the connectors raise; the message says what and the fix."""


class HubSpotCallError(HubSpotError):
    """One call failed for good: a non-retryable answer, or still failing after the last attempt.

    ``status`` is HubSpot's HTTP status (None for a transport error), ``body`` its parsed JSON error body,
    ``retryable`` whether the failure was transient (retries exhausted) rather than a refusal.
    """

    def __init__(self, message: str, status: int | None, body: dict, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retryable = retryable


class DailyLimitReached(HubSpotCallError):
    """The portal's daily request allowance is used up (429 policyName DAILY): nothing helps before midnight
    in the portal's time zone."""


class StoppedByAnotherStream(HubSpotError):
    """Another thread of the same run hit a fatal error (bad token, daily limit): this one stops too."""


@dataclass
class CallStats:
    """Calls and retries of one stream (or one publish), counted across threads."""

    calls: int = 0
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, calls: int = 0, retries: int = 0) -> None:
        with self.lock:
            self.calls += calls
            self.retries += retries


@dataclass(frozen=True)
class Answer:
    """One successful HTTP answer: status (200, 201, 207 ...) and parsed JSON body."""

    status: int
    body: dict


def is_transport_error(exc: BaseException) -> bool:
    """urllib3 MaxRetryError / ProtocolError / timeouts, or the SDK's status-0 ApiException."""
    import urllib3.exceptions as u3

    if isinstance(exc, u3.HTTPError | ConnectionError | TimeoutError):
        return True
    return getattr(exc, "status", None) == 0


def parse_error_body(raw: Any) -> dict:
    """HubSpot's JSON error body as a dict ({"message": ...} when it is not JSON)."""
    if raw is None:
        return {}
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {"message": str(raw)[:300]}
    return parsed if isinstance(parsed, dict) else {"message": str(parsed)[:300]}


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) and status > 0 else None


class HubSpotCaller:
    """Runs one SDK call: a limiter slot, then retries with backoff + jitter on transient failures.

    ``call(what, fn, *args, kind="default"|"search", stats=None, **kwargs)`` returns the parsed JSON body;
    ``call.answer(...)`` returns status and body. ``what`` names the call in errors and logs. Thread-safe;
    ``calls`` / ``retries`` count every attempt made through this caller. ``stop`` is shared by the threads
    of one run: after a fatal error (401, 403, daily limit) the others stop at their next call.
    """

    def __init__(
        self,
        limiter: PortalRateLimiter | None,
        settings: Settings | None = None,
        stop: threading.Event | None = None,
        sleep: Callable[[float], None] = time.sleep,
        *,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.limiter = limiter
        self.settings = settings
        self.stop = stop or threading.Event()
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._rng = random.Random()
        self._totals = CallStats()

    @property
    def calls(self) -> int:
        return self._totals.calls

    @property
    def retries(self) -> int:
        return self._totals.retries

    def __call__(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        kind: str = "default",
        stats: CallStats | None = None,
        **kwargs: Any,
    ) -> dict:
        return self.answer(what, fn, *args, kind=kind, stats=stats, **kwargs).body

    def answer(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        kind: str = "default",
        stats: CallStats | None = None,
        **kwargs: Any,
    ) -> Answer:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_SECONDS)
        kwargs["_preload_content"] = False  # raw JSON: faster than SDK models, and keeps every field
        for attempt in range(1, self.max_attempts + 1):
            if self.stop.is_set():
                raise StoppedByAnotherStream(f"{what}: stopped because another stream hit a fatal error")
            if self.limiter is not None:
                self.limiter.acquire(kind)
            self._count(stats, calls=1)
            try:
                response = fn(*args, **kwargs)
                try:
                    # Read the body inside the loop: a connection cut mid-body is retried too.
                    body = json.loads(response.data or b"{}")
                finally:
                    response.release_conn()
                return Answer(int(getattr(response, "status", 200) or 200), body)
            except Exception as exc:
                delay = self._retry_delay(what, exc, attempt)
            self._count(stats, retries=1)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _count(self, stats: CallStats | None, calls: int = 0, retries: int = 0) -> None:
        self._totals.add(calls, retries)
        if stats is not None:
            stats.add(calls, retries)

    def _retry_delay(self, what: str, exc: Exception, attempt: int) -> float:
        """Seconds to wait before the next attempt, or raise HubSpotCallError when there is none."""
        status = _status_of(exc)
        body = parse_error_body(getattr(exc, "body", None))
        backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        backoff = backoff / 2 + self._rng.random() * backoff / 2  # jitter: threads don't retry in lockstep
        truncated = status is None and isinstance(exc, ValueError)  # body cut off mid-read
        if is_transport_error(exc) or truncated or (status in RETRYABLE_STATUSES and status != 429):
            reason = f"{type(exc).__name__} {status or ''}".strip()
        elif status == 429:
            policy = str(body.get("policyName") or "").upper()
            if policy == "DAILY":
                self.stop.set()
                raise DailyLimitReached(
                    f"{what}: the portal's DAILY API limit is used up ({body.get('message', '')}). "
                    "The run stops; it resumes from the saved cursors after "
                    f"{daily_reset_hint(self.settings)}.",
                    status,
                    body,
                ) from None
            if policy == "SECONDLY":
                backoff = max(backoff, SECONDLY_PAUSE_SECONDS)
            else:
                # The 10-second window is shared by every thread of the portal: hold them all.
                if self.limiter is not None:
                    self.limiter.pause(_retry_after(exc) or TEN_SECONDLY_PAUSE_SECONDS)
                    backoff = 0.0
                else:
                    backoff = _retry_after(exc) or TEN_SECONDLY_PAUSE_SECONDS
            reason = f"429 {policy or 'rate limit'}"
        else:
            message = body.get("message") or getattr(exc, "reason", None) or str(exc)
            hint = ""
            if status == 401:
                hint = " Fix: check HUBSPOT_ACCESS_TOKEN (expired or revoked private app token)."
                self.stop.set()
            elif status == 403:
                hint = " Fix: give the private app the crm.objects.*.read and crm.schemas.*.read scopes."
                self.stop.set()
            raise HubSpotCallError(
                redact(f"{what}: HubSpot answered {status}: {message}.{hint}", self.settings), status, body
            ) from None
        if attempt >= self.max_attempts:
            raise HubSpotCallError(
                redact(
                    f"{what}: still failing after {attempt} attempts ({reason}); try again later.",
                    self.settings,
                ),
                status,
                body,
                retryable=True,
            ) from None
        log.debug("retrying %s after %s (attempt %d, %.2fs)", what, reason, attempt, backoff)
        return backoff


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return min(float(value), RETRY_AFTER_MAX_SECONDS) if value else None
    except ValueError:
        return None


def daily_reset_hint(settings: Settings | None, now: datetime | None = None) -> str:
    """When HubSpot's daily allowance comes back: midnight in the portal's time zone ([hubspot]
    portal_time_zone), said as a local time, in UTC and as a delay."""
    zone_name = settings.hubspot.portal_time_zone if settings is not None else None
    if not zone_name:
        return (
            "the limit resets at midnight in the portal's time zone "
            "(set [hubspot] portal_time_zone to see when)"
        )
    zone = ZoneInfo(zone_name)
    local_now = (now or datetime.now(UTC)).astimezone(zone)
    midnight = datetime.combine(local_now.date() + timedelta(days=1), datetime.min.time(), zone)
    wait = midnight - local_now
    hours, minutes = divmod(int(wait.total_seconds()) // 60, 60)
    return (
        f"the limit resets at midnight {zone_name} ({midnight:%Y-%m-%d %H:%M %Z}, "
        f"{midnight.astimezone(UTC):%H:%M} UTC, in {hours} h {minutes:02d} min)"
    )


def make_client(settings: Settings) -> Any:
    """The official SDK client for the configured portal, with SDK-level retries switched off."""
    from hubspot import HubSpot
    from urllib3.util.retry import Retry

    token = settings.hubspot_token
    if not token:
        raise ConfigError(
            "HubSpot access token is missing: set HUBSPOT_ACCESS_TOKEN or hubspot_access_token in roi.toml."
        )
    # Retry(0): a failure surfaces at once, so HubSpotCaller retries it through the limiter (POST included).
    return HubSpot(access_token=token, host=settings.hubspot_base_url, retry=Retry(0, redirect=False))


def portal_limiter(settings: Settings) -> PortalRateLimiter:
    """The one PortalRateLimiter of this portal, shared by extract and publish."""
    return PortalRateLimiter.for_portal(
        settings.hubspot_token, settings.hubspot_tier, settings.hubspot_api_limit_increase
    )
