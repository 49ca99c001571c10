"""A result as text: the ab-like summary the command line prints, and the SLO verdict."""

from __future__ import annotations

from typing import Any

from lib.benchmark.config import BenchmarkResult


def slo_verdict(slo: dict[str, Any]) -> str:
    """'PASS', or 'FAIL: ' and the reasons."""
    return "PASS" if slo["passed"] else "FAIL: " + "; ".join(slo["reasons"])


def format_summary(result: BenchmarkResult) -> str:
    """An ab-like text summary."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = [
        f"Target:                 {result.target}",
        f"Tool:                   {result.tool} ({result.workers} client worker(s) on {result.cores} cores"
        + (f", client CPU {result.client_cpu_s:.2f} s" if result.client_cpu_s is not None else "")
        + ")",
        f"Concurrency Level:      {result.concurrency}",
        f"Keep-alive:             {'yes' if result.keep_alive else 'no (new connection per request)'}",
        f"Time taken for tests:   {result.duration_s:.3f} seconds ({result.stopped})",
        f"Complete requests:      {result.requests} (+{result.warmup} warm-up)",
        f"Failed requests:        {result.errors} ({result.error_rate:.2%})",
        f"Requests per second:    {result.throughput_rps:.2f} [#/sec] (mean)",
        f"Latency mean:           {ms(result.mean_ms)} [ms]",
        "",
        "Percentage of the requests served within a certain time (ms)",
    ]
    for name in ("min", "p50", "p90", "p95", "p99", "max"):
        lines.append(f"  {name:>4}  {ms(getattr(result, f'{name}_ms'))}")
    lines.append("")
    lines.append(
        "Status codes: " + ", ".join(f"{k}={v}" for k, v in sorted(result.status_counts.items()))
    )
    kinds = {k: v for k, v in result.error_kinds.items() if v}
    if kinds:
        lines.append("Errors: " + ", ".join(f"{k}={v}" for k, v in kinds.items()))
    if result.slo is not None:
        lines.append(f"SLO: {slo_verdict(result.slo)}")
    return "\n".join(lines)
