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
    at.session_state["bench_charts"] = "Over time"
    at.run()
    assert any("lasted under 2 s" in c.value for c in at.caption)
    assert not at.get("status")


def test_a_run_where_no_request_succeeded_says_so(local_workspace) -> None:
    """20 requests to a port nothing listens on read 'Completed, 854 req/s, p50 0.00 ms'."""
    benchmark_run(local_workspace, requests=20, duration_s=0.1, refused=True)
    at = open_page("benchmarks.py")
    assert not at.exception, at.exception
    assert any(e.value.startswith("No request succeeded (connection ×20)") for e in at.error)
    cards = {m.label: m.value for m in at.metric}
    assert cards["p50 (ms)"] == cards["Mean (ms)"] == "–" and cards["Errors"] == "20 (100.0%)"


def test_history_of_many_runs_selects_the_newest(local_workspace) -> None:
    ids = [benchmark_run(local_workspace, requests=200, duration_s=5, seed=i) for i in range(3)]
    at = open_page("benchmarks.py")
    assert not at.exception, at.exception
    assert at.dataframe(key="bench_history").value["id"].tolist() == sorted(ids, reverse=True)
    at.session_state["bench_charts"] = "Over time"
    at.run()
    assert len(at.get("plotly_chart")) == 2
    assert not any("lasted under 2 s" in c.value for c in at.caption)


def test_ab_with_a_key_says_the_key_shows_in_the_process_list_before_it_runs(
    local_workspace, monkeypatch
) -> None:
    import lib.benchmark

    monkeypatch.setattr(lib.benchmark, "ab_available", lambda: "/usr/bin/ab")
    monkeypatch.setattr(lib.benchmark, "ab_key_notice", lambda key: key and "visible to every")
    at = open_page("benchmarks.py")
    at.selectbox(key="bench_target").set_value("Custom URL").run()
    at.text_input(key="bench_url").set_value("http://127.0.0.1:9/score").run()
    at.text_input(key="bench_key").set_value("s3cret").run()
    assert not any("visible to every" in w.value for w in at.warning)  # opsdeck: no argv
    assert not at.button(key="bench_run").disabled
    at.radio(key="bench_tool").set_value("ab").run()
    assert any("visible to every" in w.value for w in at.warning)
    assert at.button(key="bench_run").disabled
    at.checkbox(key="bench_ab_key_visible").check().run()
    assert not at.button(key="bench_run").disabled
    assert not any("s3cret" in c.value for c in at.code)  # the shown command masks it
