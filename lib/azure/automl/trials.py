"""AutoML child runs as trials: the trial table, the leaderboard, progress and the best trial."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from lib.automl_rules import TRIAL_COLUMNS
from lib.azure.automl.translate import with_metric_aliases
from lib.metrics import higher_is_better

MLFLOW_STATES = {
    "SCHEDULED": "Queued",
    "RUNNING": "Running",
    "FINISHED": "Completed",
    "FAILED": "Failed",
    "KILLED": "Canceled",
}
BEST_CHILD_TAG = "automl_best_child_run_id"


def _seconds(start_ms: int | None, end_ms: int | None) -> float | None:
    if not start_ms:
        return None
    end = end_ms or int(datetime.now(UTC).timestamp() * 1000)
    return max(0.0, (end - start_ms) / 1000.0)


def _first(*candidates: Any) -> str:
    return next((str(c) for c in candidates if c not in (None, "")), "")


def run_algorithm(run: Any) -> str:
    """The algorithm of an AutoML child run, from the fields Azure records (else 'unknown')."""
    tags, params = run.data.tags, run.data.params
    return _first(
        tags.get("run_algorithm"),
        params.get("run_algorithm"),
        params.get("algorithm_name"),
        tags.get("algorithm_name"),
        "unknown",
    )


def _is_better(score: float, best: float | None, higher: bool) -> bool:
    return best is None or (score > best if higher else score < best)


def trial_frame(parent: Any, trials: list[tuple[int, Any]], metric: str) -> pd.DataFrame:
    """One row per trial (`TRIAL_COLUMNS` then every metric Azure logged on it)."""
    higher = higher_is_better(metric)
    rows = []
    best: float | None = None
    for number, run in trials:
        metrics = with_metric_aliases(run.data.metrics)
        score = metrics.get(metric)
        if score is not None and _is_better(score, best, higher):
            best = score
        config = dict(run.data.params)
        if pre := _first(run.data.tags.get("run_preprocessor"), config.get("run_preprocessor")):
            config.setdefault("run_preprocessor", pre)
        rows.append(
            {
                "trial": number,
                "estimator": run_algorithm(run),
                "primary_metric": score,
                "best_so_far": best,
                "duration_s": _seconds(run.info.start_time, run.info.end_time),
                "wall_time_s": _seconds(parent.info.start_time, run.info.end_time),
                "status": MLFLOW_STATES.get(run.info.status, run.info.status),
                "config": config,
                "run_id": run.info.run_id,
                **metrics,
            }
        )
    if not rows:
        return pd.DataFrame(columns=TRIAL_COLUMNS)
    return pd.DataFrame(rows)


def trial_progress(frame: pd.DataFrame) -> dict[str, Any]:
    """Trial count, best score so far and the algorithm being tried, from the trial table."""
    if frame.empty:
        return {"trials": 0}
    running = frame[frame["status"] == "Running"]
    current = running["estimator"].iloc[-1] if not running.empty else None
    best = frame["best_so_far"].dropna()
    return {
        "trials": int(len(frame)),
        "best_score": float(best.iloc[-1]) if not best.empty else None,
        "current_estimator": current or frame["estimator"].iloc[-1],
    }


def leaderboard_frame(
    frame: pd.DataFrame, metric: str, per_estimator: bool = False
) -> pd.DataFrame:
    """Trials sorted best first, the score under the metric's name; or each algorithm's best."""
    if frame.empty:
        return frame
    frame = frame.drop(columns=["primary_metric", "best_so_far"]).assign(
        **{metric: frame["primary_metric"]}
    )
    ascending = not higher_is_better(metric)
    frame = frame.sort_values(metric, ascending=ascending, na_position="last", kind="stable")
    if per_estimator:
        frame = frame.dropna(subset=[metric]).drop_duplicates("estimator", keep="first")
    return frame.reset_index(drop=True)


def best_run(
    parent: Any, trials: list[tuple[int, Any]], metric: str, read_run: Callable[[str], Any]
) -> Any | None:
    """The trial Azure names best on the parent run, else the best scored one (None if none).

    Azure's pick may be a run outside `trials` (e.g. an ensemble child): `read_run` fetches it.
    """
    if named := parent.data.tags.get(BEST_CHILD_TAG):
        found = next((r for _, r in trials if r.info.run_id == named), None)
        return found if found is not None else read_run(named)
    scored = [r for _, r in trials if metric in with_metric_aliases(r.data.metrics)]
    if not scored:
        return None
    pick = max if higher_is_better(metric) else min
    return pick(scored, key=lambda r: with_metric_aliases(r.data.metrics)[metric])


def describe_best(run: Any) -> dict[str, Any]:
    """run_id, estimator and metrics of the chosen trial."""
    return {
        "run_id": run.info.run_id,
        "estimator": run_algorithm(run),
        "metrics": with_metric_aliases(run.data.metrics),
    }
