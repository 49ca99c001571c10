"""Result statistics, always from raw samples: percentiles, error kinds, histogram, per-second series, SLO."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from lib.benchmark.config import (
    STATUS_CONNECTION_ERROR,
    STATUS_PROTOCOL_ERROR,
    STATUS_TIMEOUT,
    STATUS_UNKNOWN,
    BenchmarkConfig,
    BenchmarkResult,
    Samples,
    status_name,
)

PERCENTILES = (50, 90, 95, 99)


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def answered(statuses: Sequence[int] | np.ndarray) -> np.ndarray:
    """Mask of requests that got an HTTP response (any code) or were imported without a status."""
    st = np.asarray(statuses, dtype=np.int64)
    return (st > 0) | (st == STATUS_UNKNOWN)


def percentiles(
    latencies_ms: Sequence[float] | np.ndarray, qs: Sequence[float] = PERCENTILES
) -> dict[str, float | None]:
    """Percentiles of raw samples (linear interpolation), as {'p50_ms': ..., ...}."""
    arr = np.asarray(latencies_ms, dtype=float)
    if arr.size == 0:
        return {f"p{q:g}_ms": None for q in qs}
    values = np.percentile(arr, list(qs))
    return {f"p{q:g}_ms": _num(v) for q, v in zip(qs, values, strict=True)}


def error_kinds(statuses: Sequence[int] | np.ndarray) -> dict[str, int]:
    """Counts of failed requests by kind."""
    st = np.asarray(statuses, dtype=np.int64)
    return {
        "timeout": int(np.count_nonzero(st == STATUS_TIMEOUT)),
        "connection": int(np.count_nonzero(st == STATUS_CONNECTION_ERROR)),
        "protocol": int(np.count_nonzero(st == STATUS_PROTOCOL_ERROR)),
        "http_4xx": int(np.count_nonzero((st >= 400) & (st < 500))),
        "http_5xx": int(np.count_nonzero(st >= 500)),
    }


def summarize(
    latencies_ms: Sequence[float] | np.ndarray,
    statuses: Sequence[int] | np.ndarray,
    started: float,
    ended: float,
) -> dict[str, Any]:
    """Throughput, latency statistics and error counts of one run.

    ``started``/``ended`` are in seconds on any common clock. Latency statistics cover
    requests that got an HTTP response (any status); timeouts and connection errors have
    no meaningful latency and are only counted. Throughput counts every finished request.
    """
    lat = np.asarray(latencies_ms, dtype=float)
    st = np.asarray(statuses, dtype=np.int64)
    if lat.shape != st.shape:
        raise ValueError("latencies and statuses differ in length")
    replied = lat[answered(st)]
    elapsed = max(0.0, ended - started)
    kinds = error_kinds(st)
    errors = sum(kinds.values())
    codes, counts = np.unique(st, return_counts=True)
    summary: dict[str, Any] = {
        "requests": int(st.size),
        "ok": int(st.size - errors),
        "errors": int(errors),
        "error_rate": round(errors / st.size, 6) if st.size else 0.0,
        "duration_s": round(elapsed, 6),
        "throughput_rps": round(st.size / elapsed, 3) if elapsed > 0 else 0.0,
        "mean_ms": _num(replied.mean()) if replied.size else None,
        "min_ms": _num(replied.min()) if replied.size else None,
        **percentiles(replied),
        "max_ms": _num(replied.max()) if replied.size else None,
        "status_counts": {status_name(c): int(n) for c, n in zip(codes, counts, strict=True)},
        "error_kinds": kinds,
    }
    return summary


def latency_histogram(
    latencies_ms: Sequence[float] | np.ndarray, bins: int = 30
) -> list[dict[str, float]]:
    """Equal-width histogram from the fastest to the slowest sample."""
    arr = np.asarray(latencies_ms, dtype=float)
    if arr.size == 0:
        return []
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return [{"lo_ms": lo, "hi_ms": hi, "count": int(arr.size)}]
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    return [
        {"lo_ms": round(float(a), 4), "hi_ms": round(float(b), 4), "count": int(n)}
        for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)
    ]


def per_second_series(
    end_s: Sequence[float] | np.ndarray,
    latencies_ms: Sequence[float] | np.ndarray,
    statuses: Sequence[int] | np.ndarray,
    duration_s: float | None = None,
) -> list[dict[str, float]]:
    """Throughput and latency percentiles per second of the run, by completion time.

    ``end_s`` is each request's completion time in seconds since the run started. The last
    bin is usually partial: its rate is divided by its real width so the chart does not dip.
    """
    end = np.asarray(end_s, dtype=float)
    lat = np.asarray(latencies_ms, dtype=float)
    st = np.asarray(statuses, dtype=np.int64)
    if end.size == 0:
        return []
    total = float(duration_s) if duration_s else float(end.max())
    n_bins = max(1, int(np.ceil(total)) if total > 0 else 1)
    idx = np.clip(np.floor(end).astype(np.int64), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = idx == b
        width = min(1.0, total - b) if total > b else 1.0
        width = width if width > 0 else 1.0
        sel_st = st[mask]
        pct = percentiles(lat[mask & answered(st)], (50, 95, 99))
        n_err = int(np.count_nonzero((sel_st >= 400) | (sel_st < 0)))
        rows.append(
            {
                "second": b,
                "requests": int(mask.sum()),
                "rps": round(int(mask.sum()) / width, 3),
                "errors": n_err,
                **pct,
            }
        )
    return rows


def evaluate_slo(
    summary: dict[str, Any], p95_ms: float | None, max_error_rate: float | None
) -> dict[str, Any] | None:
    """Pass/fail against a p95 target and a maximum error rate; None when no SLO is set."""
    if p95_ms is None and max_error_rate is None:
        return None
    reasons = []
    if p95_ms is not None:
        p95 = summary.get("p95_ms")
        if p95 is None or p95 > p95_ms:
            reasons.append(f"p95 {p95} ms > {p95_ms} ms")
    if max_error_rate is not None and summary.get("error_rate", 0.0) > max_error_rate:
        reasons.append(f"error rate {summary['error_rate']:.4f} > {max_error_rate}")
    return {
        "p95_ms": p95_ms,
        "max_error_rate": max_error_rate,
        "passed": not reasons,
        "reasons": reasons,
    }


def build_result(
    config: BenchmarkConfig,
    samples: Samples,
    *,
    duration_s: float,
    started_at: datetime,
    tool: str = "opsdeck",
    stopped: str = "completed",
    workers: int = 1,
    client_cpu_s: float | None = None,
    command: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> BenchmarkResult:
    """Turn raw samples into a BenchmarkResult (``overrides`` replaces computed summary values)."""
    summary = summarize(samples.latency_ms, samples.status, 0.0, duration_s)
    summary.update(overrides or {})
    end_s = (samples.start_ms + samples.latency_ms) / 1000.0
    return BenchmarkResult(
        tool=tool,
        target=config.url,
        started_at=started_at.isoformat(timespec="seconds"),
        duration_s=summary["duration_s"],
        concurrency=config.concurrency,
        requests=summary["requests"],
        keep_alive=config.keep_alive,
        throughput_rps=summary["throughput_rps"],
        mean_ms=summary["mean_ms"],
        min_ms=summary["min_ms"],
        p50_ms=summary["p50_ms"],
        p90_ms=summary["p90_ms"],
        p95_ms=summary["p95_ms"],
        p99_ms=summary["p99_ms"],
        max_ms=summary["max_ms"],
        ok=summary["ok"],
        errors=summary["errors"],
        error_rate=summary["error_rate"],
        status_counts=summary["status_counts"],
        error_kinds=summary["error_kinds"],
        histogram=latency_histogram(samples.latency_ms[answered(samples.status)]),
        series=per_second_series(end_s, samples.latency_ms, samples.status, duration_s),
        slo=evaluate_slo(summary, config.slo_p95_ms, config.slo_max_error_rate),
        stopped=stopped,
        warmup=config.warmup,
        workers=workers,
        client_cpu_s=None if client_cpu_s is None else round(client_cpu_s, 4),
        label=config.label,
        command=command,
        config=config.to_dict(),
        samples=samples,
    )
