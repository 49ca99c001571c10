"""From the Benchmarks form to a load test: the request, its checks, its bodies, its engine config.

A ``BenchmarkRequest`` (the seam's type) is what a page submits to any backend's benchmark
service; ``config_from_request`` turns it into the engine's ``BenchmarkConfig`` (in the job
process, and on the page for the equivalent ``ab`` command).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

import pandas as pd

from lib.benchmark.ab import ab_command, display_command
from lib.benchmark.config import BenchmarkConfig
from lib.workspace import BenchmarkRequest, WorkspaceError

MAX_BODIES = 500
TOOLS = ("opsdeck", "ab")
# Shown in the equivalent command before a target URL is typed.
PLACEHOLDER_URL = "http://127.0.0.1/score"


def slo_targets(
    p95_ms: float | None, max_error_percent: float | None
) -> tuple[float | None, float | None]:
    """(p95 ms, max error rate 0-1) from the form: a p95 target (> 0) and an error-rate ceiling
    each apply on their own (0 or None: not set; a p95 target alone allows no error)."""
    p95 = float(p95_ms) if p95_ms else None
    if max_error_percent is None or (not max_error_percent and p95 is None):
        return p95, None
    return p95, float(max_error_percent) / 100


def request_from_form(
    *,
    url: str | None,
    endpoint: str | None = None,
    concurrency: int = 8,
    requests: int | None = None,
    duration_s: float | None = None,
    warmup: int = 0,
    timeout_s: float = 10.0,
    rows_per_request: int = 1,
    dataset: str | None = None,
    columns: list[str] | None = None,
    keep_alive: bool = True,
    tool: str = "opsdeck",
    slo_p95_ms: float | None = None,
    slo_max_error_percent: float | None = None,
    label: str = "",
) -> BenchmarkRequest:
    """The request the form describes: a request count or (when given) a duration, and the SLO."""
    p95, error_rate = slo_targets(slo_p95_ms, slo_max_error_percent)
    return BenchmarkRequest(
        url=url or "",
        endpoint=endpoint or "",
        concurrency=int(concurrency),
        requests=int(requests) if requests and not duration_s else None,
        duration_s=float(duration_s) if duration_s else None,
        warmup=int(warmup),
        timeout_s=float(timeout_s),
        rows_per_request=int(rows_per_request),
        dataset=dataset or "",
        columns=list(columns or []),
        keep_alive=bool(keep_alive),
        tool=tool,
        slo_p95_ms=p95,
        slo_max_error_rate=error_rate,
        label=label,
    )


def validate_request(request: BenchmarkRequest) -> list[str]:
    """Every problem with a request, one sentence each (empty when it can run)."""
    problems = []
    if not request.url.startswith(("http://", "https://")):
        problems.append("The target URL must start with http:// or https://.")
    if not 1 <= request.concurrency <= 1000:
        problems.append("Concurrency must be between 1 and 1,000.")
    if request.duration_s is None and not (request.requests and request.requests >= 1):
        problems.append("Give a request count or a duration.")
    if request.requests is not None and request.requests > 1_000_000:
        problems.append("At most 1,000,000 requests per run.")
    if request.duration_s is not None and not 1 <= request.duration_s <= 3600:
        problems.append("The duration must be between 1 s and 1 h.")
    if not 1 <= request.rows_per_request <= 10_000:
        problems.append("Rows per request must be between 1 and 10,000.")
    if request.tool not in TOOLS:
        problems.append("The tool must be opsdeck or ab.")
    return problems


def build_bodies(
    frame: pd.DataFrame,
    columns: list[str],
    rows_per_request: int,
    count: int = MAX_BODIES,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """`{"data": [...]}` bodies made of real rows, cycled through the dataset."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise WorkspaceError(f"The dataset lacks the model's column(s): {', '.join(missing)}.")
    data = frame[columns] if columns else frame
    # JSON has no NaN: missing values travel as null.
    records = json.loads(data.to_json(orient="records"))
    if not records:
        raise WorkspaceError("The dataset has no rows to send.")
    rng = random.Random(seed)
    start_points = [rng.randrange(len(records)) for _ in range(count)]
    bodies = []
    for start in start_points:
        rows = [records[(start + i) % len(records)] for i in range(rows_per_request)]
        bodies.append({"data": rows})
    return bodies


def config_from_request(request: BenchmarkRequest, key: str | None) -> BenchmarkConfig:
    """The engine config of a request (a duration, when set, wins over a request count)."""
    return BenchmarkConfig(
        url=request.url,
        key=key,
        concurrency=request.concurrency,
        requests=request.requests if request.duration_s is None else None,
        duration_s=request.duration_s,
        warmup=request.warmup,
        timeout_s=request.timeout_s,
        body_order=request.body_order,
        keep_alive=request.keep_alive,
        slo_p95_ms=request.slo_p95_ms,
        slo_max_error_rate=request.slo_max_error_rate,
        label=request.label or request.endpoint,
    )


def equivalent_ab_command(request: BenchmarkRequest, key: str | None) -> str:
    """The Apache Bench command line that loads the target the same way, key masked."""
    config = config_from_request(replace(request, url=request.url or PLACEHOLDER_URL), key)
    return display_command(ab_command(config, "body.json"))
