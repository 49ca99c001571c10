"""One small data set end to end through the quality suite's code path."""

import pandas as pd
from sklearn.datasets import load_wine

from bench import automl_suite as suite


def wine(_ds: suite.SuiteDataset) -> pd.DataFrame:
    """sklearn's bundled wine data (178 rows, 3 classes) with an R-style row-name column."""
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    frame["cultivar"] = frame["cultivar"].map({0: "a", 1: "b", 2: "c"})
    frame.insert(0, "rownames", [str(i + 1) for i in range(len(frame))])
    return frame.drop(columns=["rownames"])


def test_one_dataset_through_the_suite() -> None:
    ds = suite.SuiteDataset("wine", "sklearn", "wine", "cultivar", "classification")
    rows = suite.run_suite([ds], [42], 6, suite.systems(with_flaml=True), loader=wine)

    assert set(rows.system) >= {"opsdeck", "lightgbm", "flaml"}
    assert rows.score.between(0.5, 1.0).all(), rows
    assert rows[rows.system == "opsdeck"].trials.iloc[0] >= 1
    table, line = suite.summary(rows, 6)
    assert list(table.index) == ["wine"]
    assert line.startswith("suite: 1 datasets, below LightGBM on ")
    assert "mean normalised score opsdeck " in line and " vs FLAML " in line
    assert line.endswith(" %") and "budget overrun max " in line


def test_summary_counts_datasets_below_lightgbm_and_normalises() -> None:
    rows = pd.DataFrame(
        [
            {"dataset": "a", "seed": 1, "system": "opsdeck", "score": 0.90, "wall_s": 66.0},
            {"dataset": "a", "seed": 1, "system": "lightgbm", "score": 0.95, "wall_s": 1.0},
            {"dataset": "a", "seed": 1, "system": "flaml", "score": 0.94, "wall_s": 60.0},
            {"dataset": "b", "seed": 1, "system": "opsdeck", "score": 0.80, "wall_s": 30.0},
            {"dataset": "b", "seed": 1, "system": "lightgbm", "score": 0.70, "wall_s": 1.0},
            {"dataset": "b", "seed": 1, "system": "flaml", "score": 0.80, "wall_s": 60.0},
        ]
    )
    _table, line = suite.summary(rows, 60)
    opsdeck = (0.90 / 0.95 + 1.0) / 2
    flaml = (0.94 / 0.95 + 1.0) / 2
    assert line == (
        f"suite: 2 datasets, below LightGBM on 1, mean normalised score opsdeck {opsdeck:.3f} "
        f"vs FLAML {flaml:.3f} vs AutoGluon n/a, budget overrun max 10 %"
    )


def test_split_is_stratified_and_rownames_dropped() -> None:
    ds = suite.SuiteDataset("Hitters", "ISLR", "Hitters", "Salary", "regression")
    frame = suite.load(ds)
    assert "rownames" not in frame.columns and frame["Salary"].notna().all()
    train, test = suite.split(frame, ds, 42)
    assert len(test) == round(0.2 * len(frame)) and not set(train.index) & set(test.index)
