"""The compiled model: a ``TabularModel`` turned into plain arrays, scoring records with numpy alone.

``compile_model`` asks each member's family module for its arrays, probes which unusual
inputs the native member refuses, and merges every tree member into one ``Forest``.
``CompiledModel`` encodes records with the shared ``RecordEncoder``, descends the forest
once, applies each member's link and averages with the members' weights.
"""

from __future__ import annotations

import importlib
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lib.local.fastpath.encoder import CATEGORICAL, DATETIME, NUMERIC, RecordEncoder
from lib.local.fastpath.forest import Forest
from lib.local.fastpath.lightgbm import compile_lgbm, score_lgbm
from lib.local.fastpath.sklearn import compile_sklearn, score_linear, score_sk_trees
from lib.local.fastpath.trees import NotCompilable
from lib.local.fastpath.xgboost import compile_xgb, score_xgb

if TYPE_CHECKING:
    from lib.local.tabular_model import TabularModel

# Bounds the (rows x trees) node matrix of one descent step.
CHUNK_CELLS = 1 << 20
_F32_MAX = float(np.finfo(np.float32).max)

_SCORERS = {
    "lgbm": score_lgbm,
    "xgboost": score_xgb,
    "sk_trees": score_sk_trees,
    "linear": score_linear,
}


def _compile_member(member: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    est = member.estimator
    if member.kind == "lgbm":
        return compile_lgbm(est, n_features, task, n_classes)
    if member.kind == "xgboost":
        return compile_xgb(est, n_features, task, n_classes)
    if member.kind == "sklearn":
        return compile_sklearn(est, n_features, task, n_classes)
    raise NotCompilable(f"member kind {member.kind!r}")


def _input_rules(scores: Any, n_features: int) -> dict[str, bool]:
    """Which unusual inputs make the native member raise, found by asking it."""
    probes = {"nan": math.nan, "inf": math.inf, "f32_overflow": 1e300}
    rules = {}
    for name, value in probes.items():
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                scores(np.full((1, n_features), value))
            rules[name] = False
        except ValueError:
            rules[name] = True
    return rules


class CompiledModel:
    """Plain-array twin of a ``TabularModel``: records in, labels or probabilities out."""

    def __init__(
        self,
        *,
        task: str,
        feature_spec: list[dict[str, Any]],
        classes: list[Any],
        threshold: float | None,
        positive_label: Any,
        members: list[dict[str, Any]],
        arrays: Mapping[str, np.ndarray],
        ignored_inputs: Sequence[str] = (),
    ):
        self.task = task
        self.ignored_inputs = tuple(ignored_inputs)
        self.feature_spec = feature_spec
        self.classes_ = list(classes)
        self.threshold = threshold
        self.positive_label = positive_label
        self.members = members
        self.arrays = dict(arrays)
        self.encoder = RecordEncoder(feature_spec)
        self.member_arrays = [
            {
                key[len(f"m{i}.") :]: value
                for key, value in self.arrays.items()
                if key.startswith(f"m{i}.")
            }
            for i in range(len(members))
        ]
        total = sum(m["weight"] for m in members)
        self._weights = [m["weight"] / total for m in members]
        trees = [
            (i, meta, arr)
            for i, (meta, arr) in enumerate(zip(members, self.member_arrays, strict=True))
            if meta["kind"] != "linear"
        ]
        self.forest = Forest(self.encoder.width, trees) if trees else None
        self._checks = sorted(
            {name for m in members for name, raised in m["raises_on"].items() if raised}
        )

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded matrix's columns, as the trees index them."""
        return list(self.encoder.encoded_columns)

    @property
    def input_names(self) -> list[str]:
        """The record fields the model reads (one per input column)."""
        return list(self.encoder.columns)

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.encoder.encode(records)

    def _check_inputs(self, x: np.ndarray) -> None:
        if not self._checks or x.size == 0:
            return
        flags = {
            "nan": bool(np.isnan(x).any()),
            "inf": bool(np.isinf(x).any()),
            "f32_overflow": bool((np.abs(x[np.isfinite(x)]) > _F32_MAX).any()),
        }
        for m in self.members:
            for name, raised in m["raises_on"].items():
                if raised and flags[name]:
                    raise ValueError(f"member {m['name'] or m['kind']} rejects {name} inputs")

    def encoded_scores(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (classification) or predictions (regression) for an encoded matrix."""
        x = np.asarray(x, dtype=np.float64)
        self._check_inputs(x)
        if self.forest is None or x.shape[0] <= self.chunk_rows:
            return self._scores(x)
        step = self.chunk_rows
        return np.concatenate([self._scores(x[i : i + step]) for i in range(0, len(x), step)])

    @property
    def chunk_rows(self) -> int:
        """Rows scored per descent, so one step's (rows x trees) matrix stays under CHUNK_CELLS."""
        return max(1, CHUNK_CELLS // max(1, self.forest.n_trees if self.forest else 1))

    def _scores(self, x: np.ndarray) -> np.ndarray:
        leaves = self.forest.member_leaves(self.forest.leaves(x)) if self.forest else {}
        out = neg = None
        for i, (w, meta, arr) in enumerate(
            zip(self._weights, self.members, self.member_arrays, strict=True)
        ):
            s = _SCORERS[meta["kind"]](meta, arr, x if i not in leaves else leaves[i])
            if self.task == "classification" and s.ndim == 1:
                if out is None or out.ndim == 1:
                    # Both columns of binary members, summed apart and stacked once.
                    q = (1.0 - s) * w
                    neg = q if neg is None else neg + q
                else:
                    s = np.column_stack([1.0 - s, s])
            elif neg is not None:
                out, neg = np.column_stack([neg, out]), None
            out = s * w if out is None else out + s * w
        return out if neg is None else np.column_stack([neg, out])

    def _labels(self, proba: np.ndarray) -> list[Any]:
        if len(self.classes_) == 2 and self.threshold is not None:
            idx = (proba[:, 1] >= self.threshold).astype(int)
        else:
            idx = proba.argmax(axis=1)
        return [self.classes_[i] for i in idx]

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Labels (classification) or predictions (regression) for plain records."""
        scores = self.encoded_scores(self.encode_records(records))
        if self.task == "classification":
            return self._labels(scores)
        return scores.tolist()

    def predict_proba_records(self, records: Sequence[Mapping[str, Any]]) -> list[list[float]]:
        if self.task != "classification":
            raise ValueError("predict_proba is only defined for classification models")
        return self.encoded_scores(self.encode_records(records)).tolist()

    fast_predict = predict_records
    fast_predict_proba = predict_proba_records


def _json_exact(values: Any) -> bool:
    try:
        back = json.loads(json.dumps(values))
    except (TypeError, ValueError):
        return False

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return type(a) is type(b) and a == b

    return same(values, back)


def compile_model(model: TabularModel) -> CompiledModel:
    """Plain-array version of ``model``; raises ``NotCompilable`` naming what cannot be."""
    spec = [dict(f) for f in model.encoder.feature_spec]
    for f in spec:
        if f["kind"] not in (NUMERIC, CATEGORICAL, DATETIME):
            raise NotCompilable(f"feature {f['name']!r} of kind {f['kind']!r}")
        if f["kind"] == CATEGORICAL and not _json_exact(list(f["categories"])):
            raise NotCompilable(f"categories of feature {f['name']!r} do not survive JSON")
        if not _json_exact(f.get("example")):
            f["example"] = None if f.get("example") is None else str(f["example"])
    classes = list(model.classes_)
    if not _json_exact(classes) or not _json_exact([model.positive_label]):
        raise NotCompilable("class labels do not survive JSON")
    n_features = RecordEncoder(spec).width
    n_classes = len(classes)
    native = importlib.import_module(type(model).__module__)
    members: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for i, m in enumerate(model.members):
        meta, arr = _compile_member(m, n_features, model.task, n_classes)

        def native_scores(x: np.ndarray, m: Any = m) -> Any:
            return native.member_scores(m, x, model.task, n_classes)

        meta.update(
            name=m.name,
            member_kind=m.kind,
            weight=float(m.weight),
            raises_on=_input_rules(native_scores, n_features),
        )
        members.append(meta)
        arrays.update({f"m{i}.{k}": v for k, v in arr.items()})
    return CompiledModel(
        task=model.task,
        feature_spec=spec,
        classes=classes,
        threshold=None if model.threshold is None else float(model.threshold),
        positive_label=model.positive_label,
        members=members,
        arrays=arrays,
        ignored_inputs=getattr(model, "ignored_inputs", ()),
    )
