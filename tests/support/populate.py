"""A populated local workspace without training: finished AutoML runs written the way a job
process writes them (claim, progress, trial rows, finish), for page tests and `bench/`."""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from typing import Any

from lib.local.jobs import JobContext
from lib.workspace import AutoMLRequest, Job, Workspace

ESTIMATORS = ("lgbm", "xgboost", "rf", "extra_tree", "lrl1")


def finished_automl_run(
    ws: Workspace,
    dataset: str = "bank",
    trials: int = 20,
    ensemble_score: float | None = 0.951,
    seed: int = 0,
) -> Job:
    """A Completed AutoML job with `trials` trials and a per-algorithm board (+ ensemble)."""
    rng = random.Random(seed)
    jobs = ws.extras["jobs"]
    request = AutoMLRequest(
        dataset=dataset,
        dataset_version=1,
        target="y",
        task="classification",
        primary_metric="AUC_weighted",
        time_budget_s=60,
    )
    job = jobs.submit("automl", f"automl: {dataset} v1 → y", {"request": asdict(request)}, False)
    with jobs.store.transaction() as tx:
        tx.execute("UPDATE jobs SET state='Running' WHERE id=?", (job.id,))
    ctx = JobContext(jobs.store, job.id)
    ctx.start()
    best: float | None = None
    per_estimator: dict[str, dict[str, Any]] = {}
    with jobs.store.transaction() as tx:
        for n in range(1, trials + 1):
            estimator = ESTIMATORS[n % len(ESTIMATORS)]
            score = round(0.85 + 0.09 * rng.random(), 4)
            best = score if best is None else max(best, score)
            tx.execute(
                """INSERT INTO trials(job_id, trial, estimator, primary_metric, best_so_far,
                   metrics, config, duration_s, wall_time_s) VALUES (?,?,?,?,?,?,?,?,?)""",
                (
                    job.id,
                    n,
                    estimator,
                    score,
                    best,
                    json.dumps({"AUC_weighted": score, "accuracy": score - 0.05}),
                    json.dumps({"n_estimators": 4 + n}),
                    0.5,
                    2.0 * n,
                ),
            )
            row = per_estimator.get(estimator)
            if row is None or score > row["AUC_weighted"]:
                per_estimator[estimator] = {
                    "estimator": estimator,
                    "AUC_weighted": score,
                    "accuracy": score - 0.05,
                    "trial": n,
                }
    rows = list(per_estimator.values())
    if ensemble_score is not None:
        rows.append(
            {
                "estimator": "ensemble",
                "AUC_weighted": ensemble_score,
                "accuracy": 0.9,
                "trial": None,
            }
        )
    ctx.progress(phase="Done", trials=trials, best_score=best, current_estimator="lrl1")
    ctx.finish("Completed", {"per_estimator": rows, "best_estimator": "lgbm"})
    return jobs.get(job.id)


def benchmark_run(
    ws: Workspace,
    requests: int = 5000,
    duration_s: float = 1.6,
    seed: int = 0,
    refused: bool = False,
) -> str:
    """A saved benchmark run of `requests` samples over `duration_s`, as the engine saves one
    (`refused`: every connection refused, as against a URL nothing listens on)."""
    from datetime import UTC, datetime

    import numpy as np

    from lib.benchmark import BenchmarkConfig, Samples
    from lib.benchmark.stats import build_result

    rng = np.random.default_rng(seed)
    latency = rng.lognormal(np.log(2.5), 0.35, requests)
    start = np.sort(rng.uniform(0, duration_s * 1000 - latency.max(), requests))
    status = np.where(rng.random(requests) < 0.002, 500, 200).astype(np.int16)
    if refused:
        from lib.benchmark.stats import STATUS_CONNECTION_ERROR

        status[:] = STATUS_CONNECTION_ERROR
    samples = Samples(start, latency, status)
    config = BenchmarkConfig(url="http://127.0.0.1:9/score", concurrency=8, requests=requests)
    result = build_result(config, samples, duration_s=duration_s, started_at=datetime.now(UTC))
    return ws.benchmarks.history.save(result, samples, config)


def trained(ws: Workspace, dataset: str, target: str, budget_s: float = 15) -> Job:
    """A real AutoML run of a few LightGBM trials on version 1 of `dataset`, completed."""
    from tests.support.waiting import wait_for

    job = ws.automl.submit(
        AutoMLRequest(
            dataset=dataset,
            dataset_version=1,
            target=target,
            time_budget_s=budget_s,
            max_trials=3,
            estimators=["lgbm"],
            ensemble=False,
        )
    )
    done = wait_for(lambda: (j := ws.automl.get(job.id)).is_terminal and j, 240, what="the job")
    assert done.state == "Completed", ws.automl.log_tail(job.id)
    return done
