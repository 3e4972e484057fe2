"""Fault injection for the sandbox: server errors, latency, dropped connections, "fail request N".

Applies to every route (HubSpot and GA4), or only to the paths starting with one of `paths` (e.g. "/v1beta/":
GA4 only). Decisions come from a seeded RNG so a faulty run is reproducible; requests outside `paths` neither
count nor draw. Spec strings (CLI `--faults`):
"error_rate=0.2,latency_ms=80,drop_rate=0.05,fail=3+7,statuses=500+503,seed=1,paths=/v1beta/".
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

DEFAULT_FAULT_STATUSES = (500, 502, 503, 504)
DEFAULT_FAULT_SEED = 1234


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do with one request: delay it, then either drop it, answer `status`, or serve it normally."""

    latency_ms: int = 0
    drop: bool = False
    status: int | None = None


class Faults:
    """Thread-safe fault settings plus the request counter that `fail_requests` refers to (1-based)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def configure(
        self,
        error_rate: float = 0.0,
        statuses: tuple[int, ...] = DEFAULT_FAULT_STATUSES,
        latency_ms: int = 0,
        drop_rate: float = 0.0,
        fail_requests: set[int] | None = None,
        seed: int = DEFAULT_FAULT_SEED,
        paths: tuple[str, ...] = (),
    ) -> Faults:
        """Replace the settings and restart the request count (fail_requests={3}: the 3rd from now)."""
        if not 0.0 <= error_rate <= 1.0 or not 0.0 <= drop_rate <= 1.0:
            raise ValueError(
                f"error_rate and drop_rate must be between 0 and 1, got {error_rate}, {drop_rate}"
            )
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        if not statuses or any(not 400 <= s <= 599 for s in statuses):
            raise ValueError(f"fault statuses must be HTTP error codes, got {statuses}")
        with self._lock:
            self.error_rate = error_rate
            self.statuses = tuple(statuses)
            self.latency_ms = latency_ms
            self.drop_rate = drop_rate
            self.fail_requests = set(fail_requests or ())
            self._rng = random.Random(seed)
            self.requests_seen = 0
            self.paths = tuple(paths)
        return self

    def clear(self) -> None:
        self.configure()

    @property
    def active(self) -> bool:
        return bool(self.error_rate or self.latency_ms or self.drop_rate or self.fail_requests)

    def applies_to(self, path: str) -> bool:
        return not self.paths or path.startswith(self.paths)

    def decide(self, path: str = "/") -> FaultDecision:
        """Count one request and decide its fate."""
        with self._lock:
            if not self.applies_to(path):
                return FaultDecision()
            self.requests_seen += 1
            if not (self.error_rate or self.latency_ms or self.drop_rate or self.fail_requests):
                return FaultDecision()
            number = self.requests_seen
            # Always draw both numbers so the sequence of decisions depends only on the seed and the count.
            drop_draw, error_draw = self._rng.random(), self._rng.random()
            status_pick = self._rng.choice(self.statuses)
            if number in self.fail_requests:
                return FaultDecision(self.latency_ms, status=self.statuses[0])
            if drop_draw < self.drop_rate:
                return FaultDecision(self.latency_ms, drop=True)
            if error_draw < self.error_rate:
                return FaultDecision(self.latency_ms, status=status_pick)
            return FaultDecision(self.latency_ms)

    @classmethod
    def from_spec(cls, spec: str | None) -> Faults:
        faults = cls()
        if spec:
            faults.configure(**parse_fault_spec(spec))
        return faults


def parse_fault_spec(spec: str) -> dict:
    """ "error_rate=0.2,latency_ms=80,drop_rate=0.05,fail=3+7" -> keyword arguments for Faults.configure."""
    settings: dict = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        try:
            if not sep:
                raise ValueError("expected key=value")
            if key == "error_rate":
                settings["error_rate"] = float(value)
            elif key == "drop_rate":
                settings["drop_rate"] = float(value)
            elif key == "latency_ms":
                settings["latency_ms"] = int(value)
            elif key == "fail":
                settings["fail_requests"] = {int(n) for n in value.split("+") if n}
            elif key == "statuses":
                settings["statuses"] = tuple(int(n) for n in value.split("+") if n)
            elif key == "seed":
                settings["seed"] = int(value)
            elif key == "paths":
                settings["paths"] = tuple(p for p in value.split("+") if p)
            else:
                raise ValueError(
                    "unknown key (use error_rate, latency_ms, drop_rate, fail, statuses, seed, paths)"
                )
        except ValueError as exc:
            raise ValueError(f"bad fault spec part {part!r} in {spec!r}: {exc}") from None
    return settings
