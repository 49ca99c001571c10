"""The Logs page's time windows: whole bins, ending now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lib import logs_view


@pytest.mark.parametrize("label", list(logs_view.RANGES))
def test_window_starts_on_a_bin_boundary_and_covers_the_range(label: str) -> None:
    span, bin_s = logs_view.RANGES[label]
    now = datetime(2026, 3, 4, 10, 17, 43, 250_000, tzinfo=UTC)
    query = logs_view.window(label, "ep", now)
    assert query.until == now and query.endpoint == "ep"
    assert query.since.timestamp() % bin_s == 0
    assert now - span - timedelta(seconds=bin_s) < query.since <= now - span


def test_window_is_the_same_within_a_bin() -> None:
    now = datetime(2026, 3, 4, 10, 17, 5, tzinfo=UTC)
    first = logs_view.window("Last hour", None, now)
    later = logs_view.window("Last hour", None, now + timedelta(seconds=50))
    assert first.since == later.since
    assert logs_view.window("Last hour", None, now + timedelta(seconds=60)).since > first.since
