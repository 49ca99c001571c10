"""Benchmarks page on a local workspace with saved runs (no load generated)."""

from __future__ import annotations

from tests.pages.conftest import open_page
from tests.support.populate import benchmark_run


def test_a_short_run_reads_in_full_and_explains_its_charts(local_workspace) -> None:
    benchmark_run(local_workspace, requests=5000, duration_s=1.6)
    at = open_page("benchmarks.py")
    assert not at.exception, at.exception
    cards = {m.label: m.value for m in at.metric}
    # Units in the labels keep the values short enough for six cards at 1,400 px.
    assert set(cards) >= {"Throughput (req/s)", "Errors", "p50 (ms)", "p95 (ms)", "p99 (ms)"}
    assert all(len(v) <= 12 for v in cards.values()), cards
    assert any("lasted under 2 s" in c.value for c in at.caption)
    assert not at.get("status")


def test_history_of_many_runs_selects_the_newest(local_workspace) -> None:
    ids = [benchmark_run(local_workspace, requests=200, duration_s=5, seed=i) for i in range(3)]
    at = open_page("benchmarks.py")
    assert not at.exception, at.exception
    assert at.dataframe(key="bench_history").value["id"].tolist() == sorted(ids, reverse=True)
    assert not any("lasted under 2 s" in c.value for c in at.caption)
