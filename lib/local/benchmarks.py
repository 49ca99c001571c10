"""Benchmarks as jobs: the load generator runs in a job process, results land in history.

Works for any endpoint (local or Azure): the target is a URL and a key. The key is handed to
the job in a mode-600 file that the job deletes as soon as it has read it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd

from lib.benchmark import (
    BenchmarkHistory,
    BenchmarkResult,
    Samples,
    build_bodies,
    config_from_request,
    run_ab,
    run_benchmark,
    validate_request,
)
from lib.files import atomic_write
from lib.local.jobs import JobContext, JobManager, handler, log
from lib.workspace import BenchmarkRequest, DatasetService, Job, WorkspaceError


class LocalBenchmarks:
    def __init__(self, jobs: JobManager, datasets: DatasetService | None) -> None:
        self.jobs_manager = jobs
        self.datasets = datasets
        self.history = BenchmarkHistory(jobs.store.home / "benchmarks")

    def start(self, request: BenchmarkRequest, key: str | None) -> Job:
        problems = validate_request(request)
        if problems:
            raise WorkspaceError(" ".join(problems))
        bodies: list[dict[str, Any]] = []
        if request.dataset:
            if self.datasets is None:
                raise WorkspaceError("This workspace has no datasets to build request bodies from.")
            # Built here, where the workspace's datasets are readable (local or Azure).
            frame = self.datasets.load(request.dataset, request.dataset_version)
            bodies = build_bodies(frame, request.columns, request.rows_per_request)
        name = f"{request.tool} c={request.concurrency} → {request.endpoint or request.url}"
        job = self.jobs_manager.submit(
            "benchmark", name, {"request": request.__dict__, "has_key": bool(key)}, start=False
        )
        if bodies:
            atomic_write(
                self.jobs_manager.job_dir(job.id) / "bodies.json", json.dumps(bodies).encode()
            )
        if key:
            key_path = self.jobs_manager.job_dir(job.id) / "key"
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key)
        return self.jobs_manager.release(job.id)

    def jobs(self) -> list[Job]:
        self.jobs_manager.tick()
        return self.jobs_manager.list(kind="benchmark")

    def get(self, job_id: str) -> Job:
        self.jobs_manager.tick()
        return self.jobs_manager.get(job_id)

    def cancel(self, job_id: str) -> Job:
        return self.jobs_manager.cancel(job_id)

    def run_id(self, job_id: str) -> str | None:
        return self.jobs_manager.result(job_id).get("run_id")

    def list(self) -> pd.DataFrame:
        return self.history.list()

    def result(self, run_id: str) -> tuple[BenchmarkResult, Samples | None]:
        return self.history.get(run_id)

    def delete(self, run_id: str) -> None:
        self.history.delete(run_id)

    def log_tail(self, job_id: str, lines: int = 40) -> str:
        return self.jobs_manager.log_tail(job_id, lines)


@handler("benchmark")
def run_benchmark_job(ctx: JobContext, spec: dict[str, Any], settings: Any) -> dict[str, Any]:
    request = BenchmarkRequest(**spec["request"])
    key = None
    key_path = ctx.store.home / "jobs" / ctx.job_id / "key"
    if key_path.exists():
        key = key_path.read_text()
        key_path.unlink()
    bodies: list[Any] = []
    bodies_path = ctx.store.home / "jobs" / ctx.job_id / "bodies.json"
    if bodies_path.exists():
        bodies = json.loads(bodies_path.read_text())
        log(f"{len(bodies)} bodies of {request.rows_per_request} row(s) from {request.dataset}")
    config = config_from_request(request, key)

    def on_progress(p: Any) -> None:
        ctx.progress(
            done=p.done,
            total=p.total,
            fraction=p.fraction,
            rps=p.rps,
            errors=p.errors,
            elapsed_s=p.elapsed_s,
        )

    log(f"{request.tool}: {request.concurrency} concurrent against {request.url}")
    runner = run_ab if request.tool == "ab" else run_benchmark
    result = runner(config, bodies or None, on_progress=on_progress, cancel=ctx.cancel_requested)
    history = BenchmarkHistory(ctx.store.home / "benchmarks")
    run_id = history.save(result, result.samples, config)
    log(
        f"done: {result.requests} requests, {result.throughput_rps:.1f} req/s, "
        f"p50 {result.p50_ms} ms, p99 {result.p99_ms} ms, errors {result.errors} ({result.stopped})"
    )
    if result.stopped == "canceled":
        raise KeyboardInterrupt
    return {
        "run_id": run_id,
        "summary": {k: v for k, v in result.to_dict().items() if k != "config"},
    }
