import json

import numpy as np
import pandas as pd
import yaml

from lib.model_signature import learn_feature_spec, merge_feature_spec, signature_columns


def mlmodel(inputs: list[dict]) -> str:
    """An MLmodel file as MLflow writes it: the schema is a JSON string inside the YAML."""
    return yaml.safe_dump({"flavors": {}, "signature": {"inputs": json.dumps(inputs)}})


def test_column_signature_in_order_with_types() -> None:
    text = mlmodel(
        [
            {"type": "long", "name": "age", "required": True},
            {"type": "string", "name": "job"},
            {"type": "array", "items": {"type": "double"}, "name": "history"},
        ]
    )
    assert signature_columns(text) == [("age", "long"), ("job", "string"), ("history", "array")]


def test_unnamed_tensors_missing_or_broken_signatures_give_nothing() -> None:
    assert signature_columns(mlmodel([{"type": "tensor", "tensor-spec": {"dtype": "f8"}}])) == []
    assert signature_columns("flavors: {}\n") == []
    assert signature_columns("signature:\n  inputs: '[{not json'\n") == []
    assert signature_columns("{unbalanced: [") == []
    named = [{"type": "tensor", "name": "x", "tensor-spec": {"dtype": "float64"}}]
    assert signature_columns(mlmodel(named)) == [("x", "float64")]


def test_feature_spec_learnt_from_training_data() -> None:
    frame = pd.DataFrame(
        {
            "age": [30, 40, None, 50],
            "job": ["admin", "tech", "tech", None],
            "flag": [True, False, True, True],
        }
    )
    age, job, flag = learn_feature_spec(frame)
    assert age == {
        "name": "age",
        "kind": "numeric",
        "dtype": "float64",
        "example": 30.0,
        "categories": None,
        "min": 30.0,
        "max": 50.0,
    }
    assert job["kind"] == "categorical" and job["categories"] == ["tech", "admin"]
    assert (job["min"], job["max"]) == (None, None)
    assert flag["kind"] == "numeric" and type(flag["example"]) is bool
    assert learn_feature_spec(frame, max_categories=1)[1]["categories"] == ["tech"]


def test_all_missing_column_has_no_example_or_range() -> None:
    [spec] = learn_feature_spec(pd.DataFrame({"x": [np.nan, np.nan]}))
    assert (spec["example"], spec["min"], spec["max"]) == (None, None, None)


def test_merge_keeps_signature_order_and_fills_unlearnt_columns() -> None:
    learnt = learn_feature_spec(pd.DataFrame({"job": ["a", "b"], "age": [1, 2]}))
    merged = merge_feature_spec([("age", "long"), ("job", "string"), ("city", "string")], learnt)
    assert [s["name"] for s in merged] == ["age", "job", "city"]
    assert merged[0] is learnt[1]
    assert merged[2] == {
        "name": "city",
        "kind": "categorical",
        "dtype": "string",
        "example": None,
        "categories": [],
        "min": None,
        "max": None,
    }
    assert merge_feature_spec([("n", "double")], [])[0]["kind"] == "numeric"
