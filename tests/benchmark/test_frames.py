"""Results for people: the chart frames of one or several runs, the text summary, the SLO verdict."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from lib.benchmark import (
    STATUS_TIMEOUT,
    STATUS_UNKNOWN,
    BenchmarkConfig,
    Samples,
    build_result,
    comparison_frames,
    format_summary,
    run_label,
    slo_verdict,
    status_count_frame,
)


def make_run(
    label: str, statuses: list[int], tool: str = "opsdeck", slo_p95_ms: float | None = None
):
    config = BenchmarkConfig(url="http://127.0.0.1:9/score", concurrency=2, requests=len(statuses),
                             label=label, slo_p95_ms=slo_p95_ms)  # fmt: skip
    n = len(statuses)
    samples = Samples(
        np.linspace(0.0, 1500.0, n),
        np.arange(1.0, n + 1.0),
        np.asarray(statuses, dtype=np.int16),
    )
    return build_result(config, samples, duration_s=2.0, started_at=datetime.now(UTC), tool=tool)


def test_one_run_is_drawn_without_a_run_dimension() -> None:
    result = make_run("solo", [200, 200, 500, STATUS_TIMEOUT])
    frames = comparison_frames({"20260101T000000-opsdeck-abcdef12": (result, result.samples)})
    assert frames.by is None
    # The timeout has no latency; the 500 got an answer and keeps its latency.
    assert frames.latencies["latency_ms"].tolist() == [1.0, 2.0, 3.0]
    assert "run" not in frames.series.columns
    assert frames.series["second"].tolist() == [0, 1]
    assert frames.series["requests"].tolist() == [2.0, 2.0]  # requests per second of each bin
    assert frames.series["errors"].tolist() == [0, 2]
    assert {"p50", "p95", "p99"} <= set(frames.series.columns)
    row = frames.percentiles.iloc[0]
    assert row["run"] == "solo · opsdeck c=2 · cdef12"
    assert row["p50"] == result.p50_ms and row["max"] == result.max_ms


def test_several_runs_overlay_by_label() -> None:
    a = make_run("a", [200] * 4)
    b = make_run("b", [STATUS_UNKNOWN] * 3, tool="ab")  # ab's samples carry no status
    frames = comparison_frames({"run-aaaaaa": (a, a.samples), "run-bbbbbb": (b, None)})
    assert frames.by == "run"
    assert set(frames.latencies["run"]) == {run_label("run-aaaaaa", a)}  # b has no samples
    assert set(frames.series["run"]) == {run_label("run-aaaaaa", a), run_label("run-bbbbbb", b)}
    assert frames.percentiles["run"].tolist() == [
        "a · opsdeck c=2 · aaaaaa",
        "b · ab c=2 · bbbbbb",
    ]
    with_samples = comparison_frames({"run-bbbbbb": (b, b.samples)})
    assert len(with_samples.latencies) == 3  # imported samples count as answered


def test_a_label_is_drawn_as_typed_not_as_html() -> None:
    """Plotly reads trace names as HTML: a label "<b>x</b>" came out bold in the legend."""
    tagged = make_run("before <b>x</b> & y", [200] * 3)
    plain = make_run("after", [200] * 3)
    frames = comparison_frames(
        {"run-aaaaaa": (tagged, tagged.samples), "run-bbbbbb": (plain, None)}
    )
    assert (
        frames.percentiles["run"].tolist()[0]
        == "before &lt;b&gt;x&lt;/b&gt; &amp; y · opsdeck c=2 · aaaaaa"
    )


def test_no_runs_gives_empty_frames_with_columns() -> None:
    frames = comparison_frames({})
    assert frames.latencies.empty and list(frames.latencies.columns) == ["latency_ms", "run"]
    assert frames.series.empty and frames.percentiles.empty


def test_status_count_frame() -> None:
    result = make_run("x", [200, 200, 404, STATUS_TIMEOUT])
    frame = status_count_frame(result)
    assert dict(zip(frame["code"], frame["count"], strict=True)) == {
        "200": 2,
        "404": 1,
        "timeout": 1,
    }


def test_summary_text_and_slo_verdict() -> None:
    passed = make_run("ok", [200] * 4, slo_p95_ms=100.0)
    text = format_summary(passed)
    assert "Complete requests:      4 (+0 warm-up)" in text
    assert "Failed requests:        0 (0.00%)" in text
    assert text.endswith("SLO: PASS")
    failed = make_run("slow", [200] * 4, slo_p95_ms=1.0)
    assert slo_verdict(failed.slo).startswith("FAIL: p95 ")
    assert "SLO" not in format_summary(make_run("none", [200]))
