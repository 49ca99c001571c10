"""The deploy gate: champion (the endpoint's live model) against challenger (the new model).

The challenger's number is the new AutoML run's own validation score, measured by models fitted
without the validation rows (the registered model is refitted on every row, so scoring it there
would flatter it). The champion must be judged out of sample too: scored on the validation rows
it was trained on, a boosted model looks far better than it is (0.963 against its own 0.947) and
a retrain on the same data would never deploy. So the champion is scored on the validation rows
its own training data did not hold (a new dataset version's new rows); when fewer than
``MIN_UNSEEN_ROWS`` are left (a retrain on the same rows), its own run's validation score stands
for it. Only a champion whose training data the workspace does not know is scored on every
validation row, which can only favour keeping it, and the step says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.errors import WorkspaceError
from lib.pipeline_gate import DEFAULT_SEED, decide, validation_rows

# Validation rows the champion never saw, at least, to score it on them.
MIN_UNSEEN_ROWS = 200


class GateError(WorkspaceError):
    """The gate could not compare the two models (the reason is shown on the step)."""


@dataclass(frozen=True)
class GateDecision:
    decision: str  # "deploy" or "keep"
    reason: str
    metric: str
    challenger: float | None
    champion: float | None
    margin: float
    champion_model: str = ""  # "name vN" of the live model, "" when there is none
    rows: int = 0
    rows_kind: str = ""  # "holdout 20%" or "5-fold out-of-fold"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_signed(loaded: Any, X: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns as ISO text where the signature types them as strings, as clients send."""
    schema = loaded.metadata.get_input_schema()
    text = {
        s.name
        for s in getattr(schema, "inputs", None) or []
        if getattr(s.type, "name", "") == "string"
    }
    dates = [c for c in X.columns if c in text and pd.api.types.is_datetime64_any_dtype(X[c])]
    if not dates:
        return X
    iso = {c: [None if pd.isna(v) else v.isoformat() for v in X[c]] for c in dates}
    return X.assign(**{c: pd.Series(v, index=X.index, dtype=object) for c, v in iso.items()})


def score_model(
    model_uri: str, tracking_uri: str, X: pd.DataFrame, y: pd.Series, task: str, metric: str
) -> float:
    """One metric of a registered model on the given rows."""
    import mlflow.pyfunc

    from lib.local.automl_engine import compute_metrics

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        loaded = mlflow.pyfunc.load_model(model_uri, suppress_warnings=True)
    except Exception as exc:  # noqa: BLE001 - any load failure is a gate failure with its reason
        raise GateError(f"the live model {model_uri} could not be loaded: {exc}") from exc
    inner = loaded.unwrap_python_model()
    names = getattr(inner, "input_names", None) or getattr(inner, "feature_names", [])
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise GateError(f"the live model needs columns the new data lacks: {', '.join(missing)}")
    if task == "classification":
        if not hasattr(inner, "predict_proba_frame"):
            raise GateError(f"the live model {model_uri} gives no class probabilities")
        classes = list(inner.classes_)
        code = {c: i for i, c in enumerate(classes)}
        unknown = sorted({str(v) for v in y.tolist() if v not in code})
        if unknown:
            raise GateError(f"the live model does not know the class(es) {', '.join(unknown)}")
        y_codes = np.array([code[v] for v in y.tolist()], dtype=np.int64)
        scores = inner.predict_proba_frame(X)
        values = compute_metrics(task, y_codes, scores, getattr(inner, "threshold", None))
    else:
        prediction = np.asarray(loaded.predict(_as_signed(loaded, X)), dtype=np.float64)
        values = compute_metrics(task, y.to_numpy(dtype=np.float64), prediction)
    value = values.get(metric)
    if value is None or not math.isfinite(value):
        raise GateError(f"{metric} of the live model is undefined on these rows")
    return float(value)


def run_params(home: Path, parent_run_id: str) -> dict[str, str]:
    """The parameters the AutoML run logged (seed, validation, holdout fraction, rows)."""
    from lib.local import tracking

    if not parent_run_id:
        return {}
    return dict(tracking.client(home).get_run(parent_run_id).data.params)


def evaluate(
    *,
    home: Path,
    frame: pd.DataFrame,
    request: dict[str, Any],
    result: dict[str, Any],
    champion: tuple[str, int] | None,
    margin: float,
    champion_rows: pd.DataFrame | None = None,
    champion_score: float | None = None,
) -> GateDecision:
    """Compare the AutoML job's model (request + result) with the champion model version:
    `champion_rows` is the table it was trained on and `champion_score` its own run's
    validation score, when the workspace knows them."""
    from lib.local import tracking

    metric = request["primary_metric"]
    challenger = (result.get("best_metrics") or {}).get(metric)
    if champion is None:
        decision, reason = decide(metric, challenger, None, margin)
        return GateDecision(decision, reason, metric, challenger, None, float(margin))
    params = run_params(home, result.get("parent_run_id", ""))
    validation = params.get("validation", request.get("validation", "holdout"))
    fraction = float(params.get("holdout_fraction", request.get("holdout_fraction", 0.2)))
    X, y = validation_rows(
        frame,
        request["target"],
        request["task"],
        validation,
        fraction,
        int(params.get("seed", DEFAULT_SEED)),
    )
    rows_kind = f"holdout {fraction:.0%}" if validation == "holdout" else "every row, out of fold"
    if "rows" in params and validation == "holdout":
        # The split is only the run's own if it started from the same rows.
        expected = int(params["rows"])
        seen = int(frame[request["target"]].notna().sum())
        if expected != seen:
            raise GateError(
                f"the AutoML run trained on {expected} rows but the dataset has {seen}: "
                "its validation rows cannot be rebuilt"
            )
    name, version = champion
    rows = len(X)
    if champion_rows is None:
        rows_kind += ", which the live model may have been trained on"
    else:
        unseen = unseen_rows(X, y, champion_rows, request["target"])
        rows = int(unseen.sum())
        enough = rows >= MIN_UNSEEN_ROWS and (
            request["task"] != "classification" or y[unseen].nunique() > 1
        )
        if enough:
            X, y = X[unseen], y[unseen]
            rows_kind += f": the {rows} the live model was not trained on"
        elif champion_score is not None and math.isfinite(champion_score):
            decision, reason = decide(metric, challenger, champion_score, margin)
            return GateDecision(
                decision=decision,
                reason=reason + " (the live model's own validation score: it was trained on "
                f"{len(X) - rows} of the {len(X)} validation rows)",
                metric=metric,
                challenger=None if challenger is None else float(challenger),
                champion=float(champion_score),
                margin=float(margin),
                champion_model=f"{name} v{version}",
                rows=0,
                rows_kind="the live model's own validation rows",
            )
        else:
            rows = len(X)
            rows_kind += ", which the live model was trained on"
    champion_value = score_model(
        f"models:/{name}/{version}",
        tracking.tracking_uri(home),
        X,
        y,
        request["task"],
        metric,
    )
    decision, reason = decide(metric, challenger, champion_value, margin)
    return GateDecision(
        decision=decision,
        reason=reason,
        metric=metric,
        challenger=None if challenger is None else float(challenger),
        champion=champion_value,
        margin=float(margin),
        champion_model=f"{name} v{version}",
        rows=rows,
        rows_kind=rows_kind,
    )


def unseen_rows(X: pd.DataFrame, y: pd.Series, trained: pd.DataFrame, target: str) -> np.ndarray:
    """Which rows (features and target) are not rows of the `trained` table, compared as text
    on the columns both have (a new version may read a column with another type)."""
    columns = [c for c in X.columns if c in trained.columns]
    if not columns:
        return np.ones(len(X), dtype=bool)
    mine, theirs = _as_text(X[columns]), _as_text(trained[columns])
    if target in trained.columns:
        mine[target] = _as_text(y.to_frame(target))[target].to_numpy()
        theirs[target] = _as_text(trained[[target]])[target].to_numpy()
    seen = pd.util.hash_pandas_object(theirs, index=False).to_numpy()
    return ~np.isin(pd.util.hash_pandas_object(mine, index=False).to_numpy(), seen)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as text, numbers as floats first: 40 and 40.0 (a column a later version reads
    with a missing value) are the same row."""
    return pd.DataFrame(
        {
            c: (frame[c].astype("float64") if frame[c].dtype.kind in "iuf" else frame[c]).astype(
                str
            )
            for c in frame.columns
        },
        index=frame.index,
    )
