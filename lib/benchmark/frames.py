"""The frames the benchmark charts draw, built from stored results (one run or several)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

from lib.benchmark.config import BenchmarkResult, Samples
from lib.benchmark.stats import answered

PERCENTILE_FIELDS = {
    "p50": "p50_ms",
    "p90": "p90_ms",
    "p95": "p95_ms",
    "p99": "p99_ms",
    "max": "max_ms",
}


def run_label(run_id: str, result: BenchmarkResult) -> str:
    """A short name for a run in legends: label or target, tool, concurrency, end of the id."""
    return f"{result.label or result.target} · {result.tool} c={result.concurrency} · {run_id[-6:]}"


@dataclass
class ComparisonFrames:
    """What the benchmark charts draw for one or several runs."""

    latencies: pd.DataFrame  # latency_ms, run: one row per answered request
    series: pd.DataFrame  # second, requests (per s), errors, p50, p95, p99[, run when several]
    percentiles: pd.DataFrame  # run, p50, p90, p95, p99, max: one row per run
    by: str | None  # "run" when several runs are overlaid


def comparison_frames(
    results: dict[str, tuple[BenchmarkResult, Samples | None]],
) -> ComparisonFrames:
    """Latency samples, per-second series and percentile rows of the given runs, by run label."""
    several = len(results) > 1
    latencies, series, rows = [], [], []
    for run_id, (result, samples) in results.items():
        # Plotly reads legend and hover names as HTML: a label's "<b>" is text, as typed.
        name = html.escape(run_label(run_id, result), quote=False)
        if samples is not None and len(samples):
            ok = answered(samples.status)
            latencies.append(pd.DataFrame({"latency_ms": samples.latency_ms[ok], "run": name}))
        if result.series:
            frame = pd.DataFrame(result.series).drop(columns=["requests"], errors="ignore")
            frame = frame.rename(
                columns={"rps": "requests", "p50_ms": "p50", "p95_ms": "p95", "p99_ms": "p99"}
            )
            if several:
                frame["run"] = name
            series.append(frame)
        rows.append({"run": name, **{k: getattr(result, v) for k, v in PERCENTILE_FIELDS.items()}})
    return ComparisonFrames(
        latencies=pd.concat(latencies, ignore_index=True)
        if latencies
        else pd.DataFrame(columns=["latency_ms", "run"]),
        series=pd.concat(series, ignore_index=True) if series else pd.DataFrame(),
        percentiles=pd.DataFrame(rows, columns=["run", *PERCENTILE_FIELDS]),
        by="run" if several else None,
    )


def status_count_frame(result: BenchmarkResult) -> pd.DataFrame:
    """One row per status code (or error kind) with its count."""
    return pd.DataFrame(
        [{"code": code, "count": n} for code, n in result.status_counts.items()],
        columns=["code", "count"],
    )
