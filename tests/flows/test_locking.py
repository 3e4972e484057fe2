from __future__ import annotations

import threading
import time

import pytest

from flows.locking import WarehouseBusyError, lock_path_for, warehouse_lock


def test_second_writer_stops_with_the_holder_named(tmp_path):
    db = tmp_path / "w.duckdb"
    with warehouse_lock(db, run_id="first-run"):
        with (
            pytest.raises(WarehouseBusyError) as info,
            warehouse_lock(db, run_id="second-run", wait_seconds=0.3),
        ):
            pytest.fail("two writers held the lock at once")
        assert "first-run" in str(info.value)
        assert "--lock-wait" in str(info.value)
    assert lock_path_for(db).name == "w.duckdb.lock"


def test_second_writer_waits_for_the_first_to_finish(tmp_path):
    db = tmp_path / "w.duckdb"
    order: list[str] = []
    released = threading.Event()

    def first() -> None:
        with warehouse_lock(db, run_id="a"):
            order.append("a-start")
            released.wait(5)
            time.sleep(0.3)
            order.append("a-end")

    thread = threading.Thread(target=first)
    thread.start()
    while not order:
        time.sleep(0.01)
    released.set()
    with warehouse_lock(db, run_id="b", wait_seconds=5):
        order.append("b-start")
    thread.join()
    assert order == ["a-start", "a-end", "b-start"]
