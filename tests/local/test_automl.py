import numpy as np
import pandas as pd
import pytest

from lib.workspace import AutoMLRequest, WorkspaceError


def frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.choice(["yes", "no"], size=n),
        }
    )


def req(**kw) -> AutoMLRequest:
    base = {"dataset": "d", "dataset_version": 1, "target": "y"}
    return AutoMLRequest(**{**base, **kw})


def test_service_refuses_bad_request_and_queues_nothing(local_workspace) -> None:
    csv = frame().to_csv(index=False).encode()
    local_workspace.datasets.upload("d", csv, "d.csv")
    with pytest.raises(WorkspaceError, match="not in the dataset"):
        local_workspace.automl.submit(req(target="missing"))
    assert local_workspace.automl.jobs() == []
    assert local_workspace.automl.validate(req(dataset="ghost")) == [
        "Dataset ghost v1 does not exist."
    ]


def test_a_table_with_nothing_left_to_learn_from_is_refused_at_submit(local_workspace) -> None:
    """Only an ID beside the target, or only empty columns: said before a job starts."""
    n = 200
    ids = pd.DataFrame({"customer": [f"C{i:05d}" for i in range(n)], "y": ["a", "b"] * (n // 2)})
    local_workspace.datasets.upload("ids", ids.to_csv(index=False).encode(), "ids.csv")
    with pytest.raises(WorkspaceError, match=r"customer \(ID-like or free text\)"):
        local_workspace.automl.submit(req(dataset="ids"))
    empty = pd.DataFrame({"blank": [""] * n, "same": [1] * n, "y": ["a", "b"] * (n // 2)})
    local_workspace.datasets.upload("empty", empty.to_csv(index=False).encode(), "e.csv")
    with pytest.raises(WorkspaceError, match=r"blank \(constant or empty\), same"):
        local_workspace.automl.submit(req(dataset="empty"))
    assert local_workspace.automl.jobs() == []
    # choosing the ID column on purpose is allowed
    assert local_workspace.automl.validate(req(dataset="ids", features=["customer"])) == []
