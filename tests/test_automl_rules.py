import numpy as np
import pandas as pd
import pytest

from lib.automl_rules import (
    AUTO_CV_ROWS,
    ESTIMATORS,
    RARE_CLASSES_SHOWN,
    TRIAL_COLUMNS,
    resolve_validation,
    suggest_target,
    suggest_task,
    validate_request,
)
from lib.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from lib.tabular import MISSING_TOKENS, parse_table
from lib.tabular.profile import profile_frame
from lib.workspace import AutoMLRequest


def frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "cat": rng.choice(["a", "b"], size=n),
            "y": rng.choice(["yes", "no"], size=n),
            "amount": rng.normal(100, 10, size=n),
        }
    )


def req(**kw) -> AutoMLRequest:
    base = {"dataset": "d", "dataset_version": 1, "target": "y"}
    return AutoMLRequest(**{**base, **kw})


def test_experiment_names_are_checked_as_pipelines_check_them() -> None:
    """`../x` reached MLflow as an experiment; an empty name said nothing about being needed."""
    for bad, said in (("../x", "use letters, digits"), ("  ", "is required"), ("a" * 256, "255")):
        problems = validate_request(req(experiment_name=bad), frame())
        assert (
            len(problems) == 1 and problems[0].startswith("Experiment name") and said in problems[0]
        )
    assert validate_request(req(experiment_name="churn-2026.q1_b"), frame()) == []
    from lib.pipeline_rules import ParameterError, check_spec
    from lib.workspace import PipelineSpec

    with pytest.raises(ParameterError, match="experiment_name: an experiment name is required"):
        check_spec(PipelineSpec(dataset="d", target="y", experiment_name=""))


def test_good_request_has_no_problems() -> None:
    assert validate_request(req(), frame()) == []
    assert (
        validate_request(
            req(target="amount", task="regression", primary_metric="r2_score"), frame()
        )
        == []
    )


@pytest.mark.parametrize(
    ("kwargs", "data", "message"),
    [
        ({"target": "nope"}, frame(), "not in the dataset"),
        ({}, frame().assign(y="yes"), "only one class"),
        ({}, frame(20), "at least 50 are needed"),
        ({"primary_metric": "r2_score"}, frame(), "not a classification metric"),
        ({"task": "regression", "primary_metric": "rmse"}, frame(), "numeric target"),
        ({"time_budget_s": 5}, frame(), "at least 10 s"),
        ({"validation": "holdout", "holdout_fraction": 0.9}, frame(), "between 0.05 and 0.5"),
        ({"validation": "cv", "n_folds": 1}, frame(), "between 2 and 20 folds"),
        ({"max_trials": 0}, frame(), "at least 1"),
        ({"task": "ranking"}, frame(), "classification or regression"),
        ({"target": "amount"}, frame(), "is this a regression target?"),
        ({}, frame(400).assign(y=[f"sku{i % 150}" for i in range(400)]), "150 classes; at most"),
    ],
)
def test_problems_are_named(kwargs, data, message) -> None:
    problems = validate_request(req(**kwargs), data)
    assert any(message in p for p in problems), problems


def test_rare_class_blocks_cross_validation() -> None:
    data = frame()
    data.loc[:2, "y"] = "maybe"  # three rows of a third class
    assert validate_request(req(), data) == []
    problems = validate_request(req(validation="cv", n_folds=5), data)
    assert any("maybe" in p and "fewer than 5" in p for p in problems)


def test_many_rare_classes_are_counted_not_all_listed() -> None:
    data = frame()
    data.loc[: RARE_CLASSES_SHOWN + 6, "y"] = [f"kind{i}" for i in range(RARE_CLASSES_SHOWN + 7)]
    (problem,) = [p for p in validate_request(req(), data) if "rows, which validation" in p]
    assert problem.startswith(f"{RARE_CLASSES_SHOWN + 7} classes have fewer than 2 rows")
    assert "kind0 (1)" in problem and f"kind{RARE_CLASSES_SHOWN}" not in problem
    assert "and 7 more" in problem and "choose another target" in problem


def test_an_infinite_number_to_predict_is_refused_with_its_rows() -> None:
    """It failed in the job as 'Input y contains infinity', naming no column or row."""
    data = frame()
    data["amount"] = data["amount"].astype(float)
    data.loc[[3, 40], "amount"] = [np.inf, -np.inf]
    regression = req(target="amount", task="regression", primary_metric="r2_score")
    (problem,) = validate_request(regression, data)
    assert "'amount' holds 2 infinite value(s) (data rows 4, 41)" in problem
    assert "inf among the missing-value words" in problem
    # ... which does read them as missing
    body = b"x,amount\n" + b"".join(b"%d,%d.5\n" % (i, i) for i in range(60)) + b"1,-inf\n"
    read = parse_table("a.csv", body, missing_tokens=[*MISSING_TOKENS, "inf", "-inf"])
    assert read.frame["amount"].isna().sum() == 1 and read.missing == {"amount": {"-inf": 1}}
    assert validate_request(regression, read.frame.assign(y=["a", "b"] * 30 + ["a"])) == []
    prof = profile_frame(data)
    assert suggest_task(prof, "amount") == "regression"  # no mean, numbers all the same


def test_every_offered_metric_is_accepted_for_its_task() -> None:
    for metric in CLASSIFICATION_METRICS:
        assert validate_request(req(primary_metric=metric), frame()) == []
    for metric in REGRESSION_METRICS:
        regression = req(target="amount", task="regression", primary_metric=metric)
        assert validate_request(regression, frame()) == []


def profile(rows: list[tuple[str, int, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["column", "distinct", "mean"])


def test_suggested_target_prefers_a_conventional_name() -> None:
    prof = profile([("age", 60, 40.0), ("y", 2, None), ("job", 12, None)])
    assert suggest_target(["age", "y", "job"], prof) == "y"


def test_suggested_target_else_the_last_low_cardinality_column() -> None:
    prof = profile([("grade", 5, None), ("age", 60, 40.0), ("churned", 2, None), ("id", 900, 4.0)])
    assert suggest_target(["grade", "age", "churned", "id"], prof) == "churned"
    assert suggest_target(["id"], profile([("id", 900, 4.0)])) == "id"


def test_suggested_target_on_titanic_like_data_is_the_outcome_not_a_port() -> None:
    """Survived (0/1) over Sex (two words) and Embarked (the last low-cardinality column)."""
    columns = ["PassengerId", "Pclass", "Sex", "Age", "Fare", "Embarked", "Outcome01"]
    prof = pd.DataFrame(
        [
            ("PassengerId", 891, 446.0, 1.0, 891.0, ""),
            ("Pclass", 3, 2.3, 1.0, 3.0, ""),
            ("Sex", 2, None, None, None, "male (577), female (314)"),
            ("Age", 88, 29.7, 0.42, 80.0, ""),
            ("Fare", 248, 32.2, 0.0, 512.3, ""),
            ("Embarked", 3, None, None, None, "S (644), C (168), Q (77)"),
            ("Outcome01", 2, 0.38, 0.0, 1.0, ""),
        ],
        columns=["column", "distinct", "mean", "min", "max", "top_values"],
    )
    assert suggest_target(columns, prof) == "Outcome01"
    assert suggest_target(["Survived", *columns], prof) == "Survived"  # a known name, any case
    words = prof.assign(column=prof["column"].replace({"Outcome01": "Left"}))
    words.loc[6, ["mean", "min", "max", "top_values"]] = [None, None, None, "No (60), Yes (40)"]
    assert suggest_target([*columns[:-1], "Left"], words) == "Left"


def test_suggested_task_follows_the_target_profile() -> None:
    prof = profile([("price", 500, 12.5), ("rating", 5, 3.1), ("label", 3, None)])
    assert suggest_task(prof, "price") == "regression"
    assert suggest_task(prof, "rating") == "classification"  # numeric but few values
    assert suggest_task(prof, "label") == "classification"
    assert suggest_task(prof, "absent") == "classification"


def _suggested(table: pd.DataFrame) -> tuple[str, str]:
    from lib.tabular.profile import profile_frame

    prof = profile_frame(table)
    target = suggest_target(list(table.columns), prof, len(table))
    return target, suggest_task(prof, target)


def test_the_last_column_is_the_suggested_label_unless_it_reads_as_something_else() -> None:
    """UCI's files and most exports end with the label; a 0/1 column before it is a feature."""
    rng = np.random.default_rng(1)
    n = 400
    hours = pd.DataFrame(
        {
            "instant": np.arange(1, n + 1),
            "dteday": pd.date_range("2011-01-01", periods=n, freq="h"),
            "holiday": rng.integers(0, 2, n),
            "workingday": rng.integers(0, 2, n),
            "temp": rng.random(n),
            "casual": rng.integers(0, 300, n),
            "cnt": rng.integers(1, 900, n),
        }
    )
    assert _suggested(hours) == ("cnt", "regression")
    # grades 0-20 in 18 values: a number to predict, not 18 classes of a few rows
    grades = pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], n),
            "romantic": rng.choice(["yes", "no"], n),
            "G2": rng.integers(0, 21, n),
            "G3": rng.choice([*range(3, 21)], n),
        }
    )
    assert _suggested(grades) == ("G3", "regression")
    # a diagnosis 0-4 last, with no header: classes
    heart = pd.DataFrame({"column_1": rng.normal(50, 9, n), "column_2": rng.integers(0, 2, n)})
    heart["column_3"] = rng.integers(0, 5, n)
    assert _suggested(heart) == ("column_3", "classification")
    # Kaggle's names win wherever the column is
    houses = pd.DataFrame({"Id": np.arange(n), "SalePrice": rng.integers(50_000, 500_000, n)})
    houses["CentralAir"] = rng.choice(["Y", "N"], n)
    assert _suggested(houses) == ("SalePrice", "regression")
    loans = pd.DataFrame({"Loan_ID": [f"LP{i:05d}" for i in range(n)]})
    loans["Loan_Status"] = rng.choice(["Y", "N"], n)
    loans["Property_Area"] = rng.choice(["Urban", "Rural", "Semiurban"], n)
    assert _suggested(loans)[0] == "Loan_Status"
    # Kaggle's Give Me Some Credit: the label first, after a blank-named index column
    credit = pd.DataFrame(
        {"column_1": np.arange(1, n + 1), "SeriousDlqin2yrs": rng.integers(0, 2, n)}
    )
    credit["NumberOfDependents"] = rng.integers(0, 6, n)
    assert _suggested(credit) == ("SeriousDlqin2yrs", "classification")
    # California housing's Kaggle file ends with ocean_proximity, a feature
    houses = pd.DataFrame({"median_income": rng.random(n) * 10})
    houses["median_house_value"] = rng.integers(15_000, 500_001, n)
    houses["ocean_proximity"] = rng.choice(["INLAND", "NEAR BAY", "<1H OCEAN"], n)
    assert _suggested(houses) == ("median_house_value", "regression")
    # an HR file's salary is a feature beside the outcome in its last column
    staff = pd.DataFrame({"Salary": rng.integers(30_000, 90_000, n)})
    staff["left_company"] = rng.choice(["Yes", "No"], n)
    assert _suggested(staff) == ("left_company", "classification")


def test_a_last_column_that_is_an_id_a_date_or_mostly_empty_is_not_the_label() -> None:
    rng = np.random.default_rng(2)
    n = 300
    base = pd.DataFrame({"age": rng.integers(18, 90, n), "bought": rng.integers(0, 2, n)})
    ids = base.assign(customer=[f"C-{i:05d}" for i in rng.permutation(n)])
    assert _suggested(ids)[0] == "bought"
    counter = base.assign(row_no=np.arange(n))
    assert _suggested(counter)[0] == "bought"
    dated = base.assign(signed=pd.date_range("2020-01-01", periods=n, freq="D"))
    assert _suggested(dated)[0] == "bought"
    remarks = np.full(n, None, dtype=object)
    remarks[:20] = rng.choice(["urgent", "repeat order", "discount"], 20)
    noted = base.assign(remark=remarks)
    assert _suggested(noted)[0] == "bought"


def test_shared_names_are_the_forms_and_trials_vocabulary() -> None:
    assert ESTIMATORS[0] == "lgbm" and len(set(ESTIMATORS)) == len(ESTIMATORS)
    assert TRIAL_COLUMNS[:3] == ["trial", "estimator", "primary_metric"]


def test_feature_choice_rules() -> None:
    from lib.automl_rules import excluded_columns

    assert validate_request(req(features=["x", "cat"]), frame()) == []
    assert any("not in the dataset" in p for p in validate_request(req(features=["nope"]), frame()))
    assert any(
        "cannot also be a feature" in p for p in validate_request(req(features=["x", "y"]), frame())
    )
    assert any("at least one feature" in p for p in validate_request(req(features=[]), frame()))
    assert excluded_columns(req(features=["x"]), ["x", "cat", "y", "amount"]) == ["cat", "amount"]
    assert excluded_columns(req(), ["x", "cat", "y"]) == []


def test_automatic_validation_follows_the_table_size() -> None:
    # As Azure AutoML decides: 10-fold CV under 1,000 rows, 3-fold under 20,000, then a holdout.
    assert resolve_validation("auto", 800, 5) == ("cv", 10)
    assert resolve_validation("auto", 5_000, 5) == ("cv", 3)
    assert resolve_validation("auto", AUTO_CV_ROWS, 5) == ("holdout", 5)
    # Never more folds than the rarest class has rows, never fewer than two.
    assert resolve_validation("auto", 800, 5, smallest_class=4) == ("cv", 4)
    assert resolve_validation("auto", 800, 5, smallest_class=1) == ("cv", 2)
    # An explicit choice is kept as given.
    assert resolve_validation("holdout", 500, 5) == ("holdout", 5)
    assert resolve_validation("cv", 50_000, 7) == ("cv", 7)


def test_automatic_validation_is_the_default_and_checked_like_cv() -> None:
    assert req().validation == "auto"
    data = frame()
    data.loc[:0, "y"] = "maybe"  # one row of a third class: no fold split can hold it
    problems = validate_request(req(), data)
    assert any("maybe" in p and "fewer than 2" in p for p in problems), problems
    assert any("one of auto" in p for p in validate_request(req(validation="kfold"), frame()))
