"""The scripts Azure runs as pipeline steps agree with opsdeck's own rules.

They cannot import opsdeck inside Azure, so they restate the holdout split and the gate; these
tests hold the two together, and run the split script end to end on a local file.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lib.azure.pipelines import steps
from lib.pipeline_gate import decide, validation_rows

sys.path.insert(0, steps.__path__[0])  # the scripts import each other as top-level modules
from lib.azure.pipelines.steps import deploy, gate, split  # noqa: E402


def bank_like(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    age = rng.integers(18, 90, n)
    y = np.where(age + rng.normal(0, 15, n) > 60, "yes", "no").astype(object)
    y[::53] = None
    return pd.DataFrame({"age": age, "balance": rng.normal(1000, 500, n).round(2), "y": y})


def test_split_script_writes_the_same_holdout_as_opsdeck(tmp_path) -> None:
    frame = bank_like()
    source = tmp_path / "bank.csv"
    frame.to_csv(source, index=False)
    out = {name: tmp_path / name for name in ("train", "valid", "all")}
    split.main(
        [
            "--data",
            str(source),
            "--target",
            "y",
            "--holdout_fraction",
            "0.25",
            *[arg for name, path in out.items() for arg in (f"--{name}", str(path))],
        ]
    )
    valid = pd.read_csv(out["valid"] / "data.csv")
    train = pd.read_csv(out["train"] / "data.csv")
    X, y = validation_rows(frame, "y", "classification", "holdout", 0.25)
    assert valid["age"].tolist() == X["age"].tolist()
    assert valid["y"].tolist() == y.tolist()
    assert len(train) + len(valid) == frame["y"].notna().sum()
    assert "read_delimited" in (out["valid"] / "MLTable").read_text()


def test_split_script_reads_a_spreadsheet_dataset(tmp_path) -> None:
    frame = bank_like(120)
    source = tmp_path / "bank.xlsx"
    frame.to_excel(source, index=False, engine="openpyxl")
    out = {name: tmp_path / name for name in ("train", "valid", "all")}
    split.main(
        ["--data", str(source), "--file_format", "excel", "--target", "y"]
        + [arg for name, path in out.items() for arg in (f"--{name}", str(path))]
    )
    every = pd.read_csv(out["all"] / "data.csv")
    assert every["age"].tolist() == frame.loc[frame["y"].notna(), "age"].tolist()


@pytest.mark.parametrize(
    ("metric", "challenger", "champion", "margin"),
    [
        ("AUC_weighted", 0.93, 0.91, 0.0),
        ("AUC_weighted", 0.91, 0.91, 0.0),
        ("AUC_weighted", 0.92, 0.91, 0.02),
        ("log_loss", 0.2, 0.25, 0.0),
        ("rmse", 9.0, 10.0, 2.0),
        ("accuracy", 0.8, None, 0.5),
        ("accuracy", math.nan, 0.8, 0.0),
    ],
)
def test_gate_script_decides_as_opsdeck(metric, challenger, champion, margin) -> None:
    assert gate.decide(metric, challenger, champion, margin) == decide(
        metric, challenger, champion, margin
    )


@pytest.mark.parametrize(
    "metric", ["AUC_weighted", "accuracy", "precision_score_weighted", "log_loss"]
)
def test_gate_script_metrics_match_the_engines(metric: str) -> None:
    from lib.local.automl_engine import compute_metrics

    frame = bank_like().dropna()
    X, y = frame[["age", "balance"]], frame["y"]
    model = LogisticRegression(max_iter=500).fit(X, y)
    ours = gate.metric_value(metric, y, model, X, "classification")
    codes = np.array([list(model.classes_).index(v) for v in y])
    engine = compute_metrics("classification", codes, model.predict_proba(X), 0.5)[metric]
    assert ours == pytest.approx(engine, abs=1e-9)


def test_deploy_script_alternates_blue_and_green() -> None:
    assert deploy.next_colour({}) == "blue"
    assert deploy.next_colour({"blue": 100}) == "green"
    assert deploy.next_colour({"green": 100, "blue": 0}) == "blue"
