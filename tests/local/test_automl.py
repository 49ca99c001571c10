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
