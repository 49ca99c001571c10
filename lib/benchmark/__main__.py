"""Command line: ``python -m lib.benchmark --url URL [-c 8] [-n 5000 | --duration 30] ...``.

Prints an ab-like summary; ``--json`` writes the result, ``--history`` saves the run in a
history folder. Exit status 1 when an SLO was given and missed, 2 on a usage problem.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from lib.benchmark.client import load_bodies
from lib.benchmark.config import BenchmarkConfig, Progress
from lib.benchmark.engine import run_benchmark
from lib.benchmark.summary import format_summary

DESCRIPTION = (
    "Latency benchmark: a closed-loop HTTP load generator with statistics from raw samples."
)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lib.benchmark", description=DESCRIPTION)
    p.add_argument("--url", required=True)
    p.add_argument("--key-env", help="name of the environment variable holding the key")
    p.add_argument("--body-file", type=Path, help=".json (one body or a list) or .jsonl")
    p.add_argument("--method", default=None, help="default: POST with a body, GET without")
    p.add_argument("--concurrency", "-c", type=int, default=1)
    p.add_argument("--requests", "-n", type=int, default=None)
    p.add_argument("--duration", type=float, default=None, help="seconds (instead of --requests)")
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--order", choices=["cycle", "random"], default="cycle")
    p.add_argument("--no-keepalive", action="store_true", help="a new connection per request")
    p.add_argument("--workers", type=int, default=0, help="client processes (0 = auto)")
    p.add_argument("--slo-p95", type=float, default=None, help="target p95 in ms")
    p.add_argument("--slo-error-rate", type=float, default=None, help="maximum error rate (0-1)")
    p.add_argument("--label", default="")
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    p.add_argument("--history", type=Path, default=None, help="save the run in this history folder")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one load test from the command line; returns the exit status."""
    args = _parse_args(argv)
    key = None
    if args.key_env:
        key = os.environ.get(args.key_env)
        if not key:
            print(f"environment variable {args.key_env} is not set", file=sys.stderr)
            return 2
    bodies = load_bodies(args.body_file) if args.body_file else None
    requests = args.requests if args.requests is not None else (None if args.duration else 1000)
    config = BenchmarkConfig(
        url=args.url,
        key=key,
        method=args.method or ("POST" if bodies else "GET"),
        concurrency=args.concurrency,
        requests=requests,
        duration_s=args.duration,
        warmup=args.warmup,
        timeout_s=args.timeout,
        body_order=args.order,
        keep_alive=not args.no_keepalive,
        workers=args.workers,
        slo_p95_ms=args.slo_p95,
        slo_max_error_rate=args.slo_error_rate,
        label=args.label,
    )
    tty = sys.stderr.isatty()

    def show(p: Progress) -> None:
        if tty:
            print(
                f"\r{p.fraction:6.1%}  {p.done} done  {p.rps:8.1f} req/s  {p.errors} errors",
                end="",
                file=sys.stderr,
            )

    cancel = threading.Event()
    try:
        result = run_benchmark(config, bodies, on_progress=show, cancel=cancel)
    except KeyboardInterrupt:
        return 130
    if tty:
        print(file=sys.stderr)
    print(format_summary(result))
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2))
    if args.history:
        # Imported here: worker processes re-import this module, and history needs pandas.
        from lib.benchmark.history import BenchmarkHistory

        run_id = BenchmarkHistory(args.history).save(result, result.samples, config)
        print(f"Saved as {run_id}")
    if result.slo is not None and not result.slo["passed"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
