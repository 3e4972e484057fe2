from __future__ import annotations

from datetime import date, timedelta

import pytest

from flows.backfill import chunk_range, validate_window


def test_chunks_cover_the_range_once_in_order():
    chunks = chunk_range(date(2026, 1, 1), date(2026, 1, 17), 7)
    assert chunks == [
        (date(2026, 1, 1), date(2026, 1, 7)),
        (date(2026, 1, 8), date(2026, 1, 14)),
        (date(2026, 1, 15), date(2026, 1, 17)),
    ]
    assert chunk_range(date(2026, 1, 1), date(2026, 1, 1), 7) == [(date(2026, 1, 1), date(2026, 1, 1))]


def test_window_errors_say_what_to_change():
    with pytest.raises(ValueError, match="before start"):
        validate_window(date(2026, 1, 2), date(2026, 1, 1), 7)
    with pytest.raises(ValueError, match="future"):
        validate_window(date.today(), date.today() + timedelta(days=2), 7)
    with pytest.raises(ValueError, match="chunk_days"):
        validate_window(date(2026, 1, 1), date(2026, 1, 2), 0)
