"""Request log: every request the sandbox answered (or dropped), so tests count calls instead of guessing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

# status recorded for a request whose connection was dropped on purpose (no HTTP answer at all)
DROPPED = 0


@dataclass(frozen=True, slots=True)
class RequestLogEntry:
    method: str
    path: str
    status: int
    inputs: int | None  # batch inputs, or search filters; None for other calls
    at: datetime
    query: str = ""
    properties: tuple[str, ...] = ()  # property names a batch write carried (sorted, distinct)


class RequestLog:
    """Thread-safe, append-only list of answered requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[RequestLogEntry] = []

    def record(
        self,
        method: str,
        path: str,
        status: int,
        inputs: int | None = None,
        query: str = "",
        properties: tuple[str, ...] = (),
    ) -> None:
        entry = RequestLogEntry(method, path, status, inputs, datetime.now(UTC), query, properties)
        with self._lock:
            self._entries.append(entry)

    @property
    def entries(self) -> list[RequestLogEntry]:
        with self._lock:
            return list(self._entries)

    def count(
        self,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        path_prefix: str | None = None,
        where: Callable[[RequestLogEntry], bool] | None = None,
    ) -> int:
        """How many requests match every given criterion (path, path prefix, method, status, predicate)."""
        return sum(
            1
            for e in self.entries
            if (method is None or e.method == method.upper())
            and (path is None or e.path == path)
            and (path_prefix is None or e.path.startswith(path_prefix))
            and (status is None or e.status == status)
            and (where is None or where(e))
        )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
