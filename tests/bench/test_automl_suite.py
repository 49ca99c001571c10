"""One small data set end to end through the quality suite's code path."""

import sys

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


def test_a_failed_autogluon_fit_is_an_na_cell(tmp_path) -> None:
    # this venv has no AutoGluon: the fit script reads the split, then fails on the import
    ds = suite.SuiteDataset("wine", "sklearn", "wine", "cultivar", "classification")
    frame = wine(ds)
    frame["note"] = ["x" if i % 3 else None for i in range(len(frame))]
    train, test = suite.split(frame, ds, 42)
    fits = suite.autogluon_systems(sys.executable)
    assert set(fits) == {"autogluon_medium", "autogluon_best"}
    result = fits["autogluon_medium"](ds, train, test, 5, 42, tmp_path)
    assert result.score != result.score and "autogluon" in (result.error or "")
    written = pd.read_parquet(tmp_path / "ag_wine_42_train.parquet")
    assert written["cultivar"].tolist() == train["cultivar"].tolist()
    assert written["note"].isna().sum() == train["note"].isna().sum() > 0


def test_summary_takes_the_better_autogluon_preset_scored_everywhere() -> None:
    def rows(best_b: float) -> pd.DataFrame:
        scores = {
            ("a", "opsdeck"): 0.9,
            ("a", "lightgbm"): 0.9,
            ("a", "autogluon_medium"): 0.8,
            ("a", "autogluon_best"): 1.0,
            ("b", "opsdeck"): 1.0,
            ("b", "lightgbm"): 1.0,
            ("b", "autogluon_medium"): 0.6,
            ("b", "autogluon_best"): best_b,
        }
        return pd.DataFrame(
            [
                {"dataset": d, "seed": 1, "system": s, "score": v, "wall_s": 60.0}
                for (d, s), v in scores.items()
            ]
        )

    _table, line = suite.summary(rows(0.5), 60)
    assert " vs AutoGluon 0.750, " in line  # best: (1.0 + 0.5) / 2 beats medium (0.8 + 0.6) / 2
    table, line = suite.summary(rows(float("nan")), 60)
    assert " vs AutoGluon 0.700, " in line  # best failed on b: medium is the only complete one
    assert table.loc["b", "autogluon_best"] != table.loc["b", "autogluon_best"]


def test_rows_kept_from_an_earlier_run_are_not_fitted_again() -> None:
    ds = suite.SuiteDataset("wine", "sklearn", "wine", "cultivar", "classification")
    fitted: list[str] = []

    def system(name: str, score: float):  # noqa: ANN202
        def fit(*_args) -> suite.Fit:  # noqa: ANN002
            fitted.append(name)
            return suite.Fit(score, 1.0, 3)

        return fit

    compared = {"opsdeck": system("opsdeck", 0.97), "lightgbm": system("lightgbm", 0.95)}
    earlier = pd.DataFrame(
        [
            # the peer at this budget is reused; ours was rerun; another budget is ignored
            {
                "dataset": "wine",
                "task": "classification",
                "seed": 42,
                "system": "lightgbm",
                "budget": 6.0,
                "score": 0.93,
                "wall_s": 1.0,
                "trials": None,
            },
            {
                "dataset": "wine",
                "task": "classification",
                "seed": 7,
                "system": "lightgbm",
                "budget": 60.0,
                "score": 0.5,
                "wall_s": 1.0,
                "trials": None,
            },
        ]
    )
    heard: list[dict] = []
    rows = suite.run_suite([ds], [42, 7], 6, compared, wine, kept=earlier, on_row=heard.append)
    assert fitted == ["opsdeck", "opsdeck", "lightgbm"]
    got = rows.set_index(["seed", "system"]).score
    assert got[(42, "lightgbm")] == 0.93 and got[(7, "lightgbm")] == 0.95
    assert [(r["seed"], r["system"]) for r in heard] == [
        (42, "opsdeck"),
        (7, "opsdeck"),
        (7, "lightgbm"),
    ]
