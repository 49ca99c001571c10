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


def test_the_schema_table_is_text_arrow_takes() -> None:
    """Examples mixing numbers, text and dates made Arrow refuse the table (and log it)."""
    import pyarrow as pa

    from lib.model_signature import schema_table

    spec = [
        {"name": "age", "kind": "numeric", "dtype": "int64", "example": 30, "min": 18, "max": 90},
        {"name": "job", "kind": "categorical", "categories": [f"j{i}" for i in range(12)]},
        {"name": "sold", "kind": "datetime", "example": "2024-05-01", "format": "%d/%m/%Y"},
        {"name": "sum", "kind": "numeric", "example": 2.5, "decimal_comma": True},
        {"name": "inc", "kind": "numeric", "missing_words": ["Refused"], "missing_values": [-999]},
    ]
    table = schema_table(spec)
    pa.Table.from_pandas(table)  # one type per column
    rows = table.set_index("name")
    assert rows.loc["age", "example"] == "30" and rows.loc["age", "range"] == "18 … 90"
    assert rows.loc["job", "categories"] == "j0, j1, j2, j3, j4, j5, j6, j7 … (12)"
    assert rows.loc["sold", "reads"] == "dates also as %d/%m/%Y"
    assert rows.loc["sum", "reads"] == "decimal comma"
    assert rows.loc["inc", "reads"] == "missing: Refused; missing: -999"
    assert rows.loc["job", "example"] == ""
