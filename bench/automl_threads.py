"""Booster fits on one thread against every core, under the engine's passive OpenMP wait policy.

The AutoML engine fits LightGBM and XGBoost on one thread below
``members.MULTI_THREAD_MIN_CELLS`` matrix cells and on every core above it. This measures both
on Bank Marketing as the engine encodes it and on synthetic matrices of growing size, so the
threshold can be checked on any machine:

    .venv/bin/python -m bench.automl_threads [--repeat 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the engine runs, before OpenMP loads

import argparse  # noqa: E402
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.automl_quality import sample_data_path  # noqa: E402
from lib.local.automl_engine.members import MULTI_THREAD_MIN_CELLS, booster_threads  # noqa: E402
from lib.local.guardrails import MAX_CATEGORIES  # noqa: E402
from lib.local.tabular_model import Encoder  # noqa: E402


def bank_matrix() -> tuple[str, np.ndarray, np.ndarray]:
    df = pd.read_csv(sample_data_path())
    X_df = df.drop(columns=["y"])
    X = Encoder.from_frame(X_df, max_categories=MAX_CATEGORIES).encode_frame(X_df)
    return "Bank Marketing", X, (df["y"] == "yes").to_numpy(dtype=int)


def synthetic(rows: int, features: int = 30) -> tuple[str, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, features))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=rows) > 0).astype(int)
    return f"synthetic {rows:,} x {features}", X, y


def timed(make: Callable[[], object], X: np.ndarray, y: np.ndarray, repeat: int) -> float:
    """Median seconds of ``make().fit(X, y)``."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        make().fit(X, y)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    matrices = [bank_matrix(), *(synthetic(n) for n in (2_000, 50_000, 200_000))]
    for name, X, y in matrices:
        for lib, make in (
            ("LightGBM", lambda n: lgb.LGBMClassifier(n_estimators=100, n_jobs=n, verbose=-1)),
            ("XGBoost", lambda n: xgb.XGBClassifier(n_estimators=100, max_depth=6, n_jobs=n)),
        ):
            one = timed(lambda make=make: make(1), X, y, args.repeat)
            every = timed(lambda make=make: make(cores), X, y, args.repeat)
            rows.append(
                {
                    "matrix": name,
                    "cells": X.size,
                    "library": lib,
                    "1 thread s": one,
                    f"{cores} threads s": every,
                    "1 thread faster x": every / one,
                    "engine uses": booster_threads(X.shape[0], X.shape[1], cores),
                }
            )
            print(f"{name} {lib}: 1 thread {one:.2f}s, {cores} threads {every:.2f}s", flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    bank = table[table.matrix == "Bank Marketing"].set_index("library")["1 thread faster x"]
    # the engine's choice is right where the thread count it picks is the faster one
    faster = np.where(table["1 thread s"] <= table[f"{cores} threads s"], 1, cores)
    agree = int((faster == table["engine uses"]).sum())
    print(
        f"\nthreads: on Bank Marketing one thread is {bank['LightGBM']:.1f}x (LightGBM) and "
        f"{bank['XGBoost']:.1f}x (XGBoost) as fast as {cores}; the engine's choice "
        f"(one thread below {MULTI_THREAD_MIN_CELLS:,} cells) is the faster on {agree} of "
        f"{len(table)} fits"
    )


if __name__ == "__main__":
    main()
