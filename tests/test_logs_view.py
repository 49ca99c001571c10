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


def test_the_failed_tile_is_red_only_when_something_failed() -> None:
    """'Failed 0' stood beside a red '↑ 0.0%'."""
    from lib.appinsights import RequestKpis

    none = logs_view.kpi_tiles(RequestKpis(requests=50, failed=0))[1]
    some = logs_view.kpi_tiles(RequestKpis(requests=50, failed=2))[1]
    assert (none.label, none.value, none.delta, none.delta_color) == ("Failed", "0", "0.0%", "off")
    assert (some.value, some.delta, some.delta_color) == ("2", "4.0%", "inverse")
