"""The deploy gate rules: the decision and the rows both models are judged on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lib.pipeline_gate import decide, validation_rows


@pytest.mark.parametrize(
    ("metric", "challenger", "champion", "margin", "decision"),
    [
        ("AUC_weighted", 0.93, 0.91, 0.0, "deploy"),
        ("AUC_weighted", 0.91, 0.91, 0.0, "keep"),  # a tie does not beat the champion
        ("AUC_weighted", 0.92, 0.91, 0.02, "keep"),  # better, but not by the margin
        ("AUC_weighted", 0.94, 0.91, 0.02, "deploy"),
        ("AUC_weighted", 0.90, 0.91, -0.02, "deploy"),  # a negative margin tolerates a dip
        ("log_loss", 0.20, 0.25, 0.0, "deploy"),  # lower is better
        ("log_loss", 0.30, 0.25, 0.0, "keep"),
        ("rmse", 9.0, 10.0, 0.5, "deploy"),
        ("accuracy", float("nan"), 0.8, 0.0, "keep"),
    ],
)
def test_decision_rule(metric, challenger, champion, margin, decision) -> None:
    got, reason = decide(metric, challenger, champion, margin)
    assert got == decision
    if champion is not None and challenger == challenger:
        assert f"{challenger:.4f}" in reason and f"{champion:.4f}" in reason


def test_no_live_model_deploys() -> None:
    assert decide("AUC_weighted", 0.7, None, 0.5)[0] == "deploy"


def frame(n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = np.where(rng.random(n) < 0.11, "yes", "no").astype(object)
    y[::97] = None  # rows without a label are not part of the split
    return pd.DataFrame({"age": rng.integers(18, 90, n), "y": y})


def test_holdout_rows_are_stratified_deterministic_and_labelled() -> None:
    df = frame()
    X, y = validation_rows(df, "y", "classification", "holdout", 0.2)
    labelled = df["y"].notna().sum()
    assert len(X) == len(y) == round(labelled * 0.2)
    assert y.notna().all() and "y" not in X.columns
    share = (y == "yes").mean()
    assert abs(share - (df["y"] == "yes").sum() / labelled) < 0.01
    X2, _ = validation_rows(df, "y", "classification", "holdout", 0.2)
    assert X.equals(X2)
    X3, _ = validation_rows(df, "y", "classification", "holdout", 0.2, seed=7)
    assert not X.index.equals(X3.index)


def test_cross_validation_scores_every_labelled_row() -> None:
    df = frame()
    X, y = validation_rows(df, "y", "classification", "cv", 0.2)
    assert len(X) == df["y"].notna().sum()


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.35])
def test_holdout_rows_are_the_engines_own(fraction: float) -> None:
    from lib.local.automl_engine.data import _validation_split
    from lib.local.automl_engine.spec import AutoMLSpec

    df = frame()
    X, _ = validation_rows(df, "y", "classification", "holdout", fraction)
    data = df[df["y"].notna()].reset_index(drop=True)
    codes = (data["y"] == "yes").to_numpy().astype(int)  # classes sorted: no=0, yes=1
    spec = AutoMLSpec(target="y", validation="holdout", holdout_fraction=fraction)
    _, _, engine_rows = _validation_split(spec, data[["age"]].to_numpy(), codes, True)
    assert X.index.tolist() == engine_rows.tolist()


def test_rows_a_model_was_not_trained_on_are_found_by_value() -> None:
    from lib.local.pipelines.gate import unseen_rows

    trained = pd.DataFrame({"age": [30, 40, 50], "job": ["a", "b", "c"], "y": ["no", "yes", "no"]})
    X = pd.DataFrame({"age": [40.0, 41.0, 50.0, 30.0], "job": ["b", "b", "c", "a"]})
    y = pd.Series(["yes", "yes", "yes", "no"])
    # 40/b/yes and 30/a/no were trained on (40.0 here: a newer version read the column with a
    # missing value); 41/b is new, and 50/c/yes has a new label
    assert unseen_rows(X, y, trained, "y").tolist() == [
        False,
        True,
        True,
        False,
    ]
    # a table without the target: rows compared on the features alone
    assert unseen_rows(X.astype({"age": "int64"}), y, trained.drop(columns="y"), "y").tolist() == [
        False,
        True,
        False,
        False,
    ]


def test_a_retrain_on_the_same_rows_compares_the_live_models_own_validation_score(
    tmp_path,
) -> None:
    from lib.local.pipelines.gate import evaluate

    frame = pd.DataFrame({"x": range(400), "y": ["yes", "no"] * 200})
    request = {
        "primary_metric": "AUC_weighted",
        "target": "y",
        "task": "classification",
        "validation": "holdout",
        "holdout_fraction": 0.2,
    }
    result = {"best_metrics": {"AUC_weighted": 0.93}}
    judged = evaluate(
        home=tmp_path,
        frame=frame,
        request=request,
        result=result,
        champion=("m", 1),
        margin=0.0,
        champion_rows=frame,
        champion_score=0.95,
    )
    assert (judged.decision, judged.champion, judged.rows) == ("keep", 0.95, 0)
    assert "the live model's own validation score: it was trained on 80 of the 80" in judged.reason
    better = evaluate(
        home=tmp_path,
        frame=frame,
        request=request,
        result={"best_metrics": {"AUC_weighted": 0.97}},
        champion=("m", 1),
        margin=0.01,
        champion_rows=frame,
        champion_score=0.95,
    )
    assert better.decision == "deploy"
