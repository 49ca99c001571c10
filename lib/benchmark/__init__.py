"""Latency benchmarks, backend-agnostic: a closed-loop HTTP load generator and its results.

Read top-down: ``config`` (what to run, what comes back), ``client`` (raw asyncio HTTP/1.1),
``engine`` (worker processes, common start, raw samples), ``stats`` (numbers from raw samples),
``ab`` (ApacheBench as a second opinion), ``history`` (runs on disk), ``request`` (from the
Benchmarks form to a run), ``frames`` and ``summary`` (results for charts and for people).
Shell: ``python -m lib.benchmark --help``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lib.benchmark.ab import (
    AB_KEY_NOTICE,
    AbError,
    ab_available,
    ab_command,
    ab_key_notice,
    display_command,
    parse_ab_csv,
    parse_ab_gnuplot,
    parse_ab_output,
    result_from_ab,
    run_ab,
)
from lib.benchmark.client import build_requests, encode_body, load_bodies
from lib.benchmark.config import (
    STATUS_CONNECTION_ERROR,
    STATUS_PROTOCOL_ERROR,
    STATUS_TIMEOUT,
    STATUS_UNKNOWN,
    BenchmarkConfig,
    BenchmarkResult,
    Progress,
    Samples,
    status_name,
)
from lib.benchmark.engine import is_cancelled, resolve_workers, run_benchmark
from lib.benchmark.stats import (
    PERCENTILES,
    answered,
    build_result,
    error_kinds,
    evaluate_slo,
    latency_histogram,
    per_second_series,
    percentiles,
    summarize,
)
from lib.benchmark.summary import format_summary, slo_verdict

if TYPE_CHECKING:
    from lib.benchmark.frames import (
        ComparisonFrames,
        comparison_frames,
        run_label,
        status_count_frame,
    )
    from lib.benchmark.history import LIST_COLUMNS, BenchmarkHistory
    from lib.benchmark.request import (
        MAX_BODIES,
        TOOLS,
        build_bodies,
        config_from_request,
        equivalent_ab_command,
        request_from_form,
        slo_targets,
        validate_request,
    )

# Worker processes import this package when they start: the parts that need pandas (or the
# workspace seam) load on first use, so a worker is ready without importing them.
_LAZY = {
    "ComparisonFrames": "frames",
    "comparison_frames": "frames",
    "run_label": "frames",
    "status_count_frame": "frames",
    "LIST_COLUMNS": "history",
    "BenchmarkHistory": "history",
    "MAX_BODIES": "request",
    "TOOLS": "request",
    "build_bodies": "request",
    "config_from_request": "request",
    "equivalent_ab_command": "request",
    "request_from_form": "request",
    "slo_targets": "request",
    "validate_request": "request",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AB_KEY_NOTICE",
    "LIST_COLUMNS",
    "MAX_BODIES",
    "PERCENTILES",
    "STATUS_CONNECTION_ERROR",
    "STATUS_PROTOCOL_ERROR",
    "STATUS_TIMEOUT",
    "STATUS_UNKNOWN",
    "TOOLS",
    "AbError",
    "BenchmarkConfig",
    "BenchmarkHistory",
    "BenchmarkResult",
    "ComparisonFrames",
    "Progress",
    "Samples",
    "ab_available",
    "ab_command",
    "ab_key_notice",
    "answered",
    "build_bodies",
    "build_requests",
    "build_result",
    "comparison_frames",
    "config_from_request",
    "display_command",
    "encode_body",
    "equivalent_ab_command",
    "error_kinds",
    "evaluate_slo",
    "format_summary",
    "is_cancelled",
    "latency_histogram",
    "load_bodies",
    "parse_ab_csv",
    "parse_ab_gnuplot",
    "parse_ab_output",
    "per_second_series",
    "percentiles",
    "request_from_form",
    "resolve_workers",
    "result_from_ab",
    "run_ab",
    "run_benchmark",
    "run_label",
    "slo_targets",
    "slo_verdict",
    "status_count_frame",
    "status_name",
    "summarize",
    "validate_request",
]
