import numpy as np
import pandas as pd
import pytest

from lib.local.automl import validate_request
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


def test_service_refuses_bad_request_and_queues_nothing(local_workspace) -> None:
    csv = frame().to_csv(index=False).encode()
    local_workspace.datasets.upload("d", csv, "d.csv")
    from lib.workspace import WorkspaceError

    with pytest.raises(WorkspaceError, match="not in the dataset"):
        local_workspace.automl.submit(req(target="missing"))
    assert local_workspace.automl.jobs() == []
    assert local_workspace.automl.validate(req(dataset="ghost")) == [
        "Dataset ghost v1 does not exist."
    ]
