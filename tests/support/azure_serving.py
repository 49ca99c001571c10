"""What Azure's serving images accept and answer at `POST /score`, for contract tests.

Two scoring scripts sit behind Azure ML online endpoints (both run by the inference server,
`azureml-inference-server-http`, with `inference-schema` decorators on `run`):

- **MLflow no-code deployments** (no scoring script given; Azure injects its MLflow scoring
  script, azureml-examples / the AzureML MLflow inference images): `run(input_data, params=None)`.
  `input_data` is a pandas "split" frame (`columns`, `data`, optional `index`), or a list (read as
  an array) or a dict of arrays; `params` go to `pyfunc.predict(..., params=...)`, which ignores
  params the model signature does not declare. It calls `predict` only and answers a bare JSON
  list (records orient). There is no way to ask for probabilities.
- **AutoML's generated script** (`scoring_file_v_2_0_0.py`, downloaded with an AutoML model and
  deployed with it): `run(Inputs, GlobalParameters={"method": "predict"})`; `Inputs["data"]` is a
  list of records; `method` is `predict` or `predict_proba`, anything else raises. It answers
  `{"Results": [...]}` (class probabilities as rows, in the model's class order, no labels).

The model here is a fixed rule on the Bank Marketing columns, so answers are predictable.
Top-level keys `run` does not take are refused (the server cannot pass them to `run`).
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.azure_transport import Reply, Sent

CLASSES = ["no", "yes"]


class ScoringRefused(ValueError):
    """The request would fail in the scoring script (4xx/5xx on a real endpoint)."""


def _records_from_split(frame: Any) -> list[dict[str, Any]]:
    if not isinstance(frame, dict) or "columns" not in frame or "data" not in frame:
        raise ScoringRefused("input_data must be a pandas split frame: columns, index, data")
    columns = frame["columns"]
    rows = frame["data"]
    if "index" in frame and len(frame["index"]) != len(rows):
        raise ScoringRefused("index and data lengths differ")
    if any(len(row) != len(columns) for row in rows):
        raise ScoringRefused("each data row needs one value per column")
    return [dict(zip(columns, row, strict=True)) for row in rows]


def probability_yes(record: dict[str, Any], signal: str = "duration") -> float:
    """The rule model: the larger `signal` (call duration, balance), the likelier a yes."""
    value = float(record.get(signal) or 0)
    return round(min(0.99, max(0.01, value / 1000)), 4)


def _check_columns(records: list[dict[str, Any]], columns: list[str]) -> None:
    for record in records:
        missing = [c for c in columns if c not in record]
        if missing:
            raise ScoringRefused(f"missing input column(s): {missing}")


def mlflow_script(body: Any, columns: list[str], signal: str = "duration") -> list[str]:
    """Azure's MLflow scoring script: labels for a split frame (predict only)."""
    if not isinstance(body, dict) or "input_data" not in body:
        raise ScoringRefused("the body needs input_data")
    extra = set(body) - {"input_data", "params"}
    if extra:
        raise ScoringRefused(f"run() got unexpected argument(s) {sorted(extra)}")
    records = _records_from_split(body["input_data"])
    _check_columns(records, columns)
    # `params` reach pyfunc.predict, which ignores those the signature does not declare.
    return [CLASSES[probability_yes(r, signal) >= 0.5] for r in records]


def automl_v2_script(body: Any, columns: list[str], signal: str = "duration") -> dict[str, Any]:
    """AutoML's `scoring_file_v_2_0_0.py`: labels or class probabilities."""
    if not isinstance(body, dict) or "Inputs" not in body:
        raise ScoringRefused("the body needs Inputs")
    extra = set(body) - {"Inputs", "GlobalParameters"}
    if extra:
        raise ScoringRefused(f"run() got unexpected argument(s) {sorted(extra)}")
    records = (body["Inputs"] or {}).get("data")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ScoringRefused("Inputs.data must be a list of records")
    _check_columns(records, columns)
    method = (body.get("GlobalParameters") or {"method": "predict"}).get("method")
    yes = [probability_yes(r, signal) for r in records]
    if method == "predict_proba":
        return {"Results": [[round(1 - p, 4), p] for p in yes]}
    if method == "predict":
        return {"Results": [CLASSES[p >= 0.5] for p in yes]}
    raise ScoringRefused(f"Invalid predict method argument received: {method!r}")


class ScoringEndpoint:
    """`POST /score` of one endpoint: key check, then one of the two scripts."""

    def __init__(
        self, script: str, columns: list[str], keys: tuple[str, str], signal: str = "duration"
    ) -> None:
        self.script = script  # "mlflow" or "automl_v2"
        self.columns = columns
        self.keys = keys
        self.signal = signal
        self.bodies: list[Any] = []

    def __call__(self, sent: Sent) -> Reply:
        if sent.path != "/score" or sent.method != "POST":
            return Reply(404, {"message": f"{sent.method} {sent.path} not found"})
        auth = next((v for k, v in sent.headers.items() if k.lower() == "authorization"), "")
        if auth not in {f"Bearer {k}" for k in self.keys}:
            return Reply(401, {"message": "Unauthorized"})
        try:
            body = json.loads(sent.body)
        except ValueError:
            return Reply(400, {"message": "Request body is not valid JSON"})
        self.bodies.append(body)
        try:
            if self.script == "mlflow":
                return Reply(200, mlflow_script(body, self.columns, self.signal))
            return Reply(200, automl_v2_script(body, self.columns, self.signal))
        except ScoringRefused as exc:
            return Reply(400, {"message": str(exc)})
