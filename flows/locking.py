"""One writer at a time per DuckDB file.

DuckDB itself refuses a second read-write process with an IOException that surfaces deep inside a connector,
possibly after API calls were already spent. We take an advisory lock on `<db>.lock` before the first call
instead, so a second run either waits (bounded) or stops with a message that says who holds the file.
The Prefect deployment concurrency limit (prefect.yaml) serialises scheduled runs; this lock also covers
CLI runs and ad-hoc scripts that do not go through a deployment.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from connectors.errors import EXIT_BUSY, RoiError

LOCK_SUFFIX = ".lock"
POLL_SECONDS = 0.2


class WarehouseBusyError(RoiError):
    """Another run holds the write lock on the warehouse file and did not release it in time."""

    exit_code = EXIT_BUSY


def lock_path_for(db_path: str | Path) -> Path:
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + LOCK_SUFFIX)


def read_lock_holder(db_path: str | Path) -> dict:
    """What the current (or last) holder wrote into the lock file; {} when unknown."""
    try:
        return json.loads(lock_path_for(db_path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def warehouse_lock(db_path: str | Path, *, run_id: str, wait_seconds: float = 0) -> Iterator[Path]:
    """Hold the exclusive write lock on `db_path` for the duration of the block.

    Waits up to `wait_seconds` for a running writer to finish, then raises WarehouseBusyError naming
    the holder.
    flock locks belong to the open file description, so this also excludes a second writer inside one process.
    """
    path = lock_path_for(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - closed in finally; "a+" never truncates the holder's note
    deadline = time.monotonic() + max(wait_seconds, 0)
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = read_lock_holder(db_path)
                    who = (
                        f"run {holder.get('run_id', '?')} (pid {holder.get('pid', '?')}, "
                        f"since {holder.get('since', '?')})"
                        if holder
                        else "another process"
                    )
                    raise WarehouseBusyError(
                        f"The warehouse {db_path} is being written by {who}; waited {wait_seconds:g} s "
                        "(one run at a time may write a DuckDB file)",
                        "wait for it to finish, or pass a longer --lock-wait (flow parameter "
                        "lock_wait_seconds)",
                    ) from None
                time.sleep(POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        note = {
            "run_id": run_id,
            "pid": os.getpid(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        handle.write(json.dumps(note))
        handle.flush()
        yield path
    finally:
        # Closing the descriptor releases the flock even if the holder note could not be written.
        handle.close()
