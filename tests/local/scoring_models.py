"""Small real models for the scoring server tests, registered in a temporary MLflow store."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

from tests.support.servers import LiveServer  # noqa: F401 - re-exported for the scoring tests

NUMERIC = ["age", "balance"]
CATEGORICAL = ["job", "contact"]
FEATURES = NUMERIC + CATEGORICAL
CATEGORIES = {
    "job": ["admin.", "blue-collar", "technician", "services"],
    "contact": ["cellular", "telephone"],
}


def make_frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A synthetic bank-marketing-like frame: ints, floats, strings, and a yes/no target."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n).astype("int64"),
            "balance": np.round(rng.normal(1000, 800, n), 2),
            "job": rng.choice(CATEGORIES["job"], n),
            "contact": rng.choice(CATEGORIES["contact"], n),
        }
    )
    score = (df["age"] > 50).astype(int) + (df["job"] == "technician") + (df["balance"] > 1500)
    y = pd.Series(np.where(score + rng.normal(0, 0.6, n) > 1.2, "yes", "no"), name="y")
    return df, y


class FastLightGBMModel(PythonModel):
    """LightGBM behind a pandas `predict` plus a pandas-free `fast_predict` path."""

    task = "classification"

    def __init__(self, booster_text: str, classes: list[str]) -> None:
        self.booster_text = booster_text
        self.classes_ = list(classes)
        self._booster: lgb.Booster | None = None
        self._codes = {c: {v: float(i) for i, v in enumerate(CATEGORIES[c])} for c in CATEGORICAL}
        self.feature_spec = [
            {
                "name": "age",
                "kind": "numeric",
                "dtype": "int64",
                "categories": None,
                "min": 18,
                "max": 89,
                "example": 41,
            },
            {
                "name": "balance",
                "kind": "numeric",
                "dtype": "float64",
                "categories": None,
                "min": -1500.0,
                "max": 4000.0,
                "example": 1234.5,
            },
            {
                "name": "job",
                "kind": "categorical",
                "dtype": "object",
                "categories": CATEGORIES["job"],
                "min": None,
                "max": None,
                "example": "technician",
            },
            {
                "name": "contact",
                "kind": "categorical",
                "dtype": "object",
                "categories": CATEGORIES["contact"],
                "min": None,
                "max": None,
                "example": "cellular",
            },
        ]

    @property
    def booster(self) -> lgb.Booster:
        if self._booster is None:
            self._booster = lgb.Booster(model_str=self.booster_text)
        return self._booster

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_booster"] = None
        return state

    def _encode_frame(self, df: pd.DataFrame) -> np.ndarray:
        cols = [df[c].astype("float64") for c in NUMERIC]
        cols += [df[c].map(self._codes[c]).astype("float64") for c in CATEGORICAL]
        return np.column_stack(cols)

    def _encode_records(self, records: list[dict]) -> np.ndarray:
        out = np.empty((len(records), len(FEATURES)), dtype=np.float64)
        for i, r in enumerate(records):
            for j, c in enumerate(NUMERIC):
                v = r.get(c)
                out[i, j] = math.nan if v is None else float(v)
            for k, c in enumerate(CATEGORICAL):
                out[i, len(NUMERIC) + k] = self._codes[c].get(r.get(c), math.nan)
        return out

    def _labels(self, p: np.ndarray) -> list[str]:
        return [self.classes_[1] if x > 0.5 else self.classes_[0] for x in p]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[str]:
        return self._labels(self.booster.predict(self._encode_frame(model_input)))

    def predict_proba(self, context, model_input: pd.DataFrame) -> np.ndarray:
        p = self.booster.predict(self._encode_frame(model_input))
        return np.column_stack([1 - p, p])

    def fast_predict(self, records: list[dict]) -> list[str]:
        return self._labels(self.booster.predict(self._encode_records(records)))

    def fast_predict_proba(self, records: list[dict]) -> list[list[float]]:
        p = self.booster.predict(self._encode_records(records))
        return [[1.0 - x, x] for x in p.tolist()]


class DisagreeingFastModel(FastLightGBMModel):
    """A fast path that is wrong: the server must notice and fall back to `predict`."""

    def fast_predict(self, records: list[dict]) -> list[str]:
        return [self.classes_[0] for _ in records]


@dataclass
class RegisteredModels:
    tracking_uri: str
    fast_uri: str
    broken_uri: str
    sklearn_uri: str
    frame: pd.DataFrame
    target: pd.Series


def train_booster(X: pd.DataFrame, y: pd.Series) -> str:
    enc = FastLightGBMModel("", ["no", "yes"])._encode_frame(X)
    ds = lgb.Dataset(enc, label=(y == "yes").astype(int).to_numpy(), categorical_feature=[2, 3])
    params = {"objective": "binary", "num_leaves": 8, "verbose": -1, "num_threads": 1, "seed": 1}
    return lgb.train(params, ds, num_boost_round=30).model_to_string()


# Explicit requirements: inferring them loads each model in a subprocess, tens of seconds.
REQUIREMENTS = ["lightgbm", "scikit-learn"]


def register_models(root: Path) -> RegisteredModels:
    """Log and register three models into a fresh SQLite-backed MLflow store under `root`."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    root.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{(root / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    exp = mlflow.create_experiment(
        "scoring-tests", artifact_location=(root / "artifacts").resolve().as_uri()
    )
    X, y = make_frame()
    booster_text = train_booster(X, y)
    example = X.head(3)
    with mlflow.start_run(experiment_id=exp):
        sig = infer_signature(X, y)
        mlflow.pyfunc.log_model(
            name="fast",
            python_model=FastLightGBMModel(booster_text, ["no", "yes"]),
            signature=sig,
            input_example=example,
            registered_model_name="fast-lgbm",
            pip_requirements=REQUIREMENTS,
        )
        mlflow.pyfunc.log_model(
            name="broken",
            python_model=DisagreeingFastModel(booster_text, ["no", "yes"]),
            signature=sig,
            input_example=example,
            registered_model_name="broken-fast",
            pip_requirements=REQUIREMENTS,
        )
        pipe = Pipeline(
            [
                (
                    "prep",
                    ColumnTransformer(
                        [
                            ("num", SimpleImputer(), NUMERIC),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                        ]
                    ),
                ),
                ("clf", LogisticRegression(max_iter=500)),
            ]
        ).fit(X, y)
        mlflow.sklearn.log_model(
            pipe,
            name="sk",
            signature=infer_signature(X, pipe.predict(X)),
            input_example=example,
            registered_model_name="plain-sklearn",
            pip_requirements=REQUIREMENTS,
            skops_trusted_types=["numpy.dtype"],
        )
    return RegisteredModels(
        tracking_uri=tracking_uri,
        fast_uri="models:/fast-lgbm/1",
        broken_uri="models:/broken-fast/1",
        sklearn_uri="models:/plain-sklearn/1",
        frame=X,
        target=y,
    )


# ----------------------------------------------------------------------------- shared fixtures

_CACHE: dict[str, object] = {}


def registered(root: Path) -> RegisteredModels:
    """Register the test models once per test session (several test modules share them)."""
    if "models" not in _CACHE:
        _CACHE["models"] = register_models(root / "scoring-models")
    return _CACHE["models"]  # type: ignore[return-value]


def loaded(root: Path, which: str):
    """The pyfunc model `which` ("fast", "broken" or "sklearn"), loaded once per session."""
    key = f"pyfunc-{which}"
    if key not in _CACHE:
        models = registered(root)
        mlflow.set_tracking_uri(models.tracking_uri)
        mlflow.set_registry_uri(models.tracking_uri)
        uri = {"fast": models.fast_uri, "broken": models.broken_uri, "sklearn": models.sklearn_uri}[
            which
        ]
        _CACHE[key] = mlflow.pyfunc.load_model(uri, suppress_warnings=True)
    return _CACHE[key]


def records(frame: pd.DataFrame, n: int | None = None) -> list[dict]:
    """Rows as JSON-ready dicts (python scalars)."""
    rows = frame.head(n) if n else frame
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in rows.to_dict("records")
    ]
