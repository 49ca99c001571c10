"""The engine honours a column choice, drops ID-like columns by default, records the guardrails."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from lib.local import tracking
from lib.local.automl_engine import AutoMLSpec, run_automl
from tests.test_guardrails import r_style, titanic_like


def _run(tmp_path: Path, frame: pd.DataFrame, spec: AutoMLSpec, logs: list[str]):
    tracking.ensure_store(tmp_path)
    return run_automl(
        frame,
        spec,
        tracking_uri=tracking.tracking_uri(tmp_path),
        artifact_dir=tmp_path / "artifacts",
        log=logs.append,
    )


def test_titanic_choice_is_honoured_and_stored(tmp_path: Path) -> None:
    frame = titanic_like()
    logs: list[str] = []
    chosen = ["pclass", "sex", "age"]
    spec = AutoMLSpec(
        target="survived",
        time_budget_s=10,
        max_trials=3,
        estimators=["lgbm"],
        ensemble=False,
        features=chosen,
    )
    result = _run(tmp_path, frame, spec, logs)

    assert [f["name"] for f in result.feature_spec] == chosen
    assert result.left_out == ["boat", "name", "ticket"]
    assert result.best_metrics["AUC_weighted"] < 0.95  # no leak left to ride on
    params = MlflowClient(tracking.tracking_uri(tmp_path)).get_run(result.parent_run_id).data.params
    assert params["features"] == "pclass,sex,age"
    assert any("columns left out: boat, name, ticket" in m for m in logs)
    rows = frame.drop(columns=["survived"]).head(40)
    raw = mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model()
    assert raw.fast_predict(json.loads(rows.to_json(orient="records"))) == list(
        raw.predict(None, rows)
    )


def test_without_a_choice_ids_are_dropped_and_the_leak_alerted(tmp_path: Path) -> None:
    logs: list[str] = []
    spec = AutoMLSpec(
        target="survived", time_budget_s=10, max_trials=2, estimators=["lgbm"], ensemble=False
    )
    result = _run(tmp_path, titanic_like(), spec, logs)

    assert {"name", "ticket"} <= set(result.left_out)
    assert "boat" in [f["name"] for f in result.feature_spec]
    assert any("guardrail Target leakage detection: Alerted" in m and "boat" in m for m in logs)


def test_regression_rownames_dropped_and_missing_targets_removed(tmp_path: Path) -> None:
    frame = r_style(400)
    frame.loc[::25, "price"] = np.nan
    logs: list[str] = []
    spec = AutoMLSpec(
        target="price",
        task="regression",
        primary_metric="r2_score",
        time_budget_s=10,
        max_trials=2,
        estimators=["lgbm"],
        ensemble=False,
    )
    result = _run(tmp_path, frame, spec, logs)

    assert "rownames" in result.left_out
    assert [f["name"] for f in result.feature_spec] == ["carat", "cut"]
    assert any("Missing target values" in m and "16 of 400" in m for m in logs)


def test_multiclass_with_missing_values_serves_the_same_predictions(tmp_path: Path) -> None:
    """Penguins-like: three species, missing measurements and a missing sex; fast path agrees."""
    rng = np.random.default_rng(8)
    n = 344
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], n)
    base = pd.Series(species).map({"Adelie": 38.0, "Chinstrap": 48.0, "Gentoo": 47.0})
    frame = pd.DataFrame(
        {
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
            "bill_length_mm": base.to_numpy() + rng.normal(0, 2.5, n),
            "flipper_length_mm": np.where(species == "Gentoo", 217.0, 192.0) + rng.normal(0, 6, n),
            "sex": rng.choice(["male", "female"], n).astype(object),
            "species": species,
        }
    )
    frame.loc[rng.choice(n, 12, replace=False), "bill_length_mm"] = np.nan
    frame.loc[rng.choice(n, 11, replace=False), "sex"] = None
    logs: list[str] = []
    tracking.ensure_store(tmp_path)
    result = run_automl(
        frame,
        AutoMLSpec(
            target="species",
            time_budget_s=20,
            max_trials=3,
            estimators=["lgbm", "rf"],
            ensemble=False,
        ),
        tracking_uri=tracking.tracking_uri(tmp_path),
        artifact_dir=tmp_path / "artifacts",
        log=logs.append,
        fastpath_dir=tmp_path / "fastpath",
    )
    assert result.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert result.best_metrics["AUC_weighted"] > 0.9
    rows = frame.drop(columns=["species"])
    raw = mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model()
    records = json.loads(rows.to_json(orient="records"))
    assert raw.fast_predict(records) == list(raw.predict(None, rows))
    np.testing.assert_array_equal(
        np.array(raw.fast_predict_proba(records)), raw.predict_proba_frame(rows)
    )
    if result.fastpath and not result.fastpath.get("ok"):
        # Only the time budget may skip the compiled path, and it says so.
        assert "not compiled" in result.fastpath["reason"], result.fastpath
