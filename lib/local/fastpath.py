"""Numpy-only scoring of a ``TabularModel``: compile once, score anywhere without the ML stack.

``compile_model`` turns the encoder and every member into plain arrays (flat tree nodes, leaf
values, linear coefficients, link functions); ``save``/``load`` move them through
``fastpath.json`` + ``arrays.npz``; ``CompiledModel`` scores records with numpy alone.
Each library's numeric conventions are reproduced so results match the native predictors:

* LightGBM: double comparisons ``x <= threshold``, missing types None/Zero/NaN with
  ``default_left``, values within 1e-35 of zero read as zero, categorical bitsets (NaN,
  negative and unknown codes go right), leaves summed in double in tree order.
* XGBoost: features and thresholds in float32, ``x < threshold`` goes left, leaves summed in
  float32 starting from the base margin, float32 sigmoid/softmax.
* sklearn trees: float32 features against float64 thresholds, ``missing_go_to_left``,
  per-tree class fractions summed in tree order and divided by the number of trees.

Loading and scoring import nothing beyond numpy and the standard library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from lib.local.tabular_model import TabularModel

FORMAT = "opsdeck-fastpath"
FORMAT_VERSION = 1
META_FILE = "fastpath.json"
ARRAYS_FILE = "arrays.npz"
NUMERIC = "numeric"
CATEGORICAL = "categorical"
PROB_TOLERANCE = 1e-9

# LightGBM's kZeroThreshold is the float literal 1e-35f, compared in double.
_LGBM_ZERO = float(np.float32(1e-35))
_F32_MAX = float(np.finfo(np.float32).max)
# Bounds the (rows x trees) node matrix of one descent step.
_CHUNK_CELLS = 1 << 20

# Input variants a tree node can read. NaN stays NaN (fails every comparison: goes right) or
# becomes -inf (passes: goes left), so one "x <= threshold" (or "<") test covers every rule.
_NAN_LEFT, _NAN_RIGHT, _NAN_ZERO, _ZERO_LEFT, _ZERO_RIGHT = range(5)

_LGBM_IDENTITY = {
    "regression",
    "regression_l2",
    "regression_l1",
    "huber",
    "fair",
    "quantile",
    "mape",
}
_LGBM_EXP = {"poisson", "gamma", "tweedie"}
_XGB_IDENTITY = {
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:absoluteerror",
    "reg:pseudohubererror",
}
_XGB_SIGMOID = {"binary:logistic", "reg:logistic"}


class NotCompilable(ValueError):
    """The model (or one of its members) cannot be reproduced exactly with numpy."""


# ---------------------------------------------------------------------------------------
# encoder: the same rules as ``tabular_model.Encoder.encode_records``, without pandas
# ---------------------------------------------------------------------------------------
def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    # pandas.NA / pandas.NaT, recognised without importing pandas.
    t = type(value)
    return t.__module__.startswith("pandas") and t.__name__ in ("NAType", "NaTType")


def _to_float(value: Any) -> float:
    if _is_missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class RecordEncoder:
    """Raw record values to the float64 matrix the members were trained on."""

    def __init__(self, feature_spec: list[dict[str, Any]]):
        self.feature_spec = feature_spec
        self.columns = [f["name"] for f in feature_spec]
        self._lookups: list[dict[Any, float] | None] = []
        for f in feature_spec:
            if f["kind"] == CATEGORICAL:
                table: dict[Any, float] = {}
                for code, cat in enumerate(f["categories"]):
                    table.setdefault(str(cat), float(code))
                    table[cat] = float(code)
                self._lookups.append(table)
            else:
                self._lookups.append(None)

    def encode(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        rows = []
        for rec in records:
            row = []
            for name, lookup in zip(self.columns, self._lookups, strict=True):
                v = rec.get(name)
                if lookup is None:
                    row.append(_to_float(v))
                elif _is_missing(v):
                    row.append(math.nan)
                else:
                    try:
                        code = lookup.get(v)
                    except TypeError:  # unhashable value
                        code = None
                    if code is None:
                        code = lookup.get(str(v), math.nan)
                    row.append(code)
            rows.append(row)
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(self.columns))


# ---------------------------------------------------------------------------------------
# flat tree arrays
# ---------------------------------------------------------------------------------------
class _TreeBuilder:
    """Collects trees into flat arrays with sibling nodes adjacent (left child = right + 1).

    ``base[n] + (x goes left)`` is the next node. A leaf is its own base and has a NaN
    threshold, which no comparison passes, so extra descent steps keep a row in place.
    """

    def __init__(self, width: int):
        self.width = width
        self.col: list[int] = []
        self.thr: list[float] = []
        self.base: list[int] = []
        self.leaf: list[Any] = []
        self.roots: list[int] = []
        self.groups: list[int] = []
        self.depth = 0

    def _new(self) -> int:
        self.col.append(0)
        self.thr.append(math.nan)
        self.base.append(len(self.base))
        self.leaf.append([0.0] * self.width)
        return len(self.col) - 1

    def add(self, root: Any, children: Any, split: Any, leaf_value: Any, group: int = 0) -> None:
        """Add one tree given accessors over its own node ids.

        ``children(n)`` is ``None`` for a leaf or ``(left, right)``; ``split(n)`` gives
        ``(column, threshold)``; ``leaf_value(n)`` a value or a row of ``width`` values.
        """
        top = self._new()
        self.roots.append(top)
        self.groups.append(group)
        stack = [(root, top, 0)]
        while stack:
            node, slot, depth = stack.pop()
            kids = children(node)
            if kids is None:
                value = leaf_value(node)
                self.leaf[slot] = list(np.atleast_1d(value)) if self.width > 1 else [value]
                self.depth = max(self.depth, depth)
                continue
            col, thr = split(node)
            rgt = self._new()
            lft = self._new()
            self.col[slot] = col
            self.thr[slot] = thr
            self.base[slot] = rgt
            stack.append((kids[0], lft, depth + 1))
            stack.append((kids[1], rgt, depth + 1))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        order = np.argsort(np.asarray(self.groups, dtype=np.int64), kind="stable")
        return {
            f"{prefix}col": np.asarray(self.col, dtype=np.int64),
            f"{prefix}thr": np.asarray(self.thr, dtype=np.float64),
            f"{prefix}base": np.asarray(self.base, dtype=np.int64),
            f"{prefix}leaf": np.asarray(self.leaf, dtype=np.float64).reshape(-1, self.width),
            f"{prefix}roots": np.asarray(self.roots, dtype=np.int64)[order],
            f"{prefix}groups": np.asarray(self.groups, dtype=np.int64)[order],
        }


# ---------------------------------------------------------------------------------------
# members: compile (needs the native libraries) and score (numpy only)
# ---------------------------------------------------------------------------------------
def _xgb_float(text: Any) -> np.float32:
    s = str(text).strip().strip("[]").split(",")[0]
    return np.float32(float(s))


def _tree_sum(values: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Sequential sum down the trees axis (trees x rows) from zero, in tree order."""
    if nodes.shape[0] == 0:
        return np.zeros(nodes.shape[1], dtype=values.dtype)
    return _sequential_sum(values[nodes])


def _sequential_sum(vals: np.ndarray) -> np.ndarray:
    """Column sums of ``vals`` added strictly top to bottom, in its own dtype."""
    if vals.shape[1] > 1:
        # Along the slow axis numpy adds whole rows one after another (pairwise summation is
        # only used along the fast axis), which is a sequential sum per column and much
        # faster than ``cumsum``.
        return np.add.reduce(vals, axis=0)
    return np.cumsum(vals, axis=0)[-1]


_LIBM_EXPF: list[Any] = []


def _libm_expf() -> Any:
    if not _LIBM_EXPF:
        fn = None
        for name in ("libm.so.6", None):
            try:
                fn = ctypes.CDLL(name or ctypes.util.find_library("m")).expf
                break
            except (OSError, AttributeError, TypeError):
                continue
        if fn is not None:
            fn.restype = ctypes.c_float
            fn.argtypes = [ctypes.c_float]
        _LIBM_EXPF.append(fn)
    return _LIBM_EXPF[0]


def _expf(x: np.ndarray) -> np.ndarray:
    """float32 exp from the C library XGBoost itself calls."""
    # NB: libm's expf is not always correctly rounded (about 1 input in 500 differs by one
    # float32 ulp, ~6e-8, from exp-in-double-then-round), so the same function is called.
    x = np.asarray(x, dtype=np.float32)
    fn = _libm_expf()
    if fn is None:
        return np.exp(x.astype(np.float64)).astype(np.float32)
    out = np.array([fn(v) for v in x.ravel().tolist()], dtype=np.float32)
    return out.reshape(x.shape)


def _compile_lgbm(est: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    dump = est.dump_model()
    objective = str(dump.get("objective", "")).split()
    name = objective[0] if objective else ""
    opts = dict(t.split(":", 1) for t in objective[1:] if ":" in t)
    flags = {t for t in objective[1:] if ":" not in t}
    k = int(dump.get("num_tree_per_iteration", 1))
    if name == "binary":
        link, scale = "sigmoid", float(opts.get("sigmoid", 1.0))
    elif name in ("cross_entropy", "xentropy"):
        link, scale = "sigmoid", 1.0
    elif name == "multiclass":
        link, scale = "softmax", 1.0
    elif name == "multiclassova":
        link, scale = "sigmoid", float(opts.get("sigmoid", 1.0))
    elif name in _LGBM_IDENTITY and "sqrt" not in flags:
        link, scale = "identity", 1.0
    elif name in _LGBM_EXP:
        link, scale = "exp", 1.0
    else:
        raise NotCompilable(f"LightGBM objective {' '.join(objective)!r}")
    if task == "classification" and link not in ("sigmoid", "softmax"):
        raise NotCompilable(f"LightGBM objective {name!r} in a classification model")
    expected = 1 if task != "classification" or n_classes == 2 else n_classes
    if k != expected:
        raise NotCompilable(f"LightGBM model has {k} trees per iteration, expected {expected}")

    variants: dict[int, int] = {}  # variant -> position in the input layout
    cat_sets: dict[tuple[int, tuple[int, ...]], int] = {}

    def column(feature: int, variant: int) -> int:
        pos = variants.setdefault(variant, len(variants))
        return pos * n_features + feature

    trees = dump["tree_info"]
    builder = _TreeBuilder(1)
    for i, info in enumerate(trees):
        if info.get("is_linear"):
            raise NotCompilable("LightGBM linear trees")

        def children(node: dict) -> tuple | None:
            if "split_feature" not in node:
                if "leaf_coeff" in node:
                    raise NotCompilable("LightGBM linear trees")
                return None
            return node["left_child"], node["right_child"]

        def split(node: dict) -> tuple[int, float]:
            f = int(node["split_feature"])
            if f >= n_features:
                raise NotCompilable("LightGBM split on an unknown feature")
            if node["decision_type"] == "==":
                cats = tuple(sorted(int(c) for c in str(node["threshold"]).split("||") if c))
                # Negative ids mark categorical splits until the numeric layout is known.
                return -1 - cat_sets.setdefault((f, cats), len(cat_sets)), 0.5
            if node["decision_type"] != "<=":
                raise NotCompilable(f"LightGBM decision type {node['decision_type']!r}")
            mt = node.get("missing_type", "None")
            left = bool(node.get("default_left", False))
            if mt == "NaN":
                v = _NAN_LEFT if left else _NAN_RIGHT
            elif mt == "Zero":
                v = _ZERO_LEFT if left else _ZERO_RIGHT
            elif mt == "None":
                v = _NAN_ZERO
            else:
                raise NotCompilable(f"LightGBM missing type {mt!r}")
            return column(f, v), float(node["threshold"])

        builder.add(
            info["tree_structure"], children, split, lambda n: float(n["leaf_value"]), i % k
        )
    arrays = builder.arrays("")
    if cat_sets:
        col = arrays["col"]
        cat = col < 0
        col[cat] = len(variants) * n_features + (-1 - col[cat])
        keys = sorted(cat_sets, key=cat_sets.get)
        top = max((max(c) for _, c in keys if c), default=-1) + 1
        if top > 1 << 20:
            raise NotCompilable(f"LightGBM categorical codes up to {top - 1}")
        table = np.ones((len(keys), top + 1), dtype=np.float64)  # 1.0 > 0.5: go right
        for vid, (_, cats) in enumerate(keys):
            table[vid, list(cats)] = 0.0
        arrays["cat_table"] = table
        arrays["cat_feature"] = np.asarray([f for f, _ in keys], dtype=np.int64)
    arrays["variants"] = np.asarray(sorted(variants, key=variants.get), dtype=np.int64)
    meta = {
        "kind": "lgbm",
        "link": link,
        "scale": scale,
        "classes_out": k,
        "depth": builder.depth,
        "average": bool(dump.get("average_output", False)),
        "iterations": len(trees) // k,
    }
    return meta, arrays


def _score_lgbm(meta: dict, arr: Mapping[str, np.ndarray], leaves: list[np.ndarray]) -> np.ndarray:
    leaf = arr["leaf"][:, 0]
    # Sequential sum in tree order, as LightGBM accumulates.
    if meta["classes_out"] == 1:
        raw = _tree_sum(leaf, leaves[0])
        if meta["average"]:
            raw /= meta["iterations"]
        if meta["link"] == "sigmoid":
            return 1.0 / (1.0 + np.exp(-meta["scale"] * raw))
        return np.exp(raw) if meta["link"] == "exp" else raw
    raw = np.stack([_tree_sum(leaf, nodes) for nodes in leaves], axis=1)
    if meta["average"]:
        raw /= meta["iterations"]
    link = meta["link"]
    if link == "sigmoid":
        out = 1.0 / (1.0 + np.exp(-meta["scale"] * raw))
    elif link == "softmax":
        e = np.exp(raw - raw.max(axis=1, keepdims=True))
        out = e / np.cumsum(e, axis=1)[:, -1:]
    elif link == "exp":
        out = np.exp(raw)
    else:
        out = raw
    return out[:, 0] if meta["classes_out"] == 1 else out


def _compile_xgb(est: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    model = json.loads(est.save_raw("json"))["learner"]
    booster = model["gradient_booster"]
    if booster.get("name") != "gbtree":
        raise NotCompilable(f"XGBoost booster {booster.get('name')!r}")
    objective = model["objective"]["name"]
    params = model["learner_model_param"]
    base = _xgb_float(params["base_score"])
    n_class = int(params.get("num_class", "0") or 0)
    if int(params.get("num_target", "1") or 1) != 1:
        raise NotCompilable("XGBoost multi-target model")
    if objective in _XGB_SIGMOID:
        link = "sigmoid"
        one = np.float32(1.0)
        base = np.float32(-np.log(np.float64(one / base - one)))
    elif objective == "multi:softprob":
        link = "softmax"
    elif objective in _XGB_IDENTITY:
        link = "identity"
    else:
        raise NotCompilable(f"XGBoost objective {objective!r}")
    k = max(1, n_class)
    if task == "classification":
        if link == "identity" or (n_classes > 2) != (link == "softmax"):
            raise NotCompilable(f"XGBoost objective {objective!r} for {n_classes} classes")
        if link == "softmax" and k != n_classes:
            raise NotCompilable(f"XGBoost model has {k} classes, expected {n_classes}")
    trees = booster["model"]["trees"]
    info = booster["model"]["tree_info"]
    builder = _TreeBuilder(1)
    for i, tree in enumerate(trees):
        if int(tree["tree_param"].get("size_leaf_vector", "1") or 1) > 1:
            raise NotCompilable("XGBoost vector-leaf trees")
        if any(int(t) != 0 for t in tree.get("split_type", [])):
            raise NotCompilable("XGBoost categorical splits")
        lc, rc = tree["left_children"], tree["right_children"]
        idx, cond, dleft = tree["split_indices"], tree["split_conditions"], tree["default_left"]
        if any(int(idx[n]) >= n_features for n in range(len(lc)) if lc[n] != -1):
            raise NotCompilable("XGBoost split on an unknown feature")

        def split(n: int, idx=idx, cond=cond, dleft=dleft) -> tuple[int, float]:
            variant = _NAN_LEFT if int(dleft[n]) else _NAN_RIGHT
            thr = float(np.float32(cond[n]))
            if variant == _NAN_LEFT and thr == -math.inf:  # the -inf sentinel would go right
                raise NotCompilable("XGBoost split at -inf with missing values going left")
            return variant * n_features + int(idx[n]), thr

        builder.add(
            0,
            lambda n, lc=lc, rc=rc: None if lc[n] == -1 else (lc[n], rc[n]),
            split,
            lambda n, cond=cond: float(np.float32(cond[n])),
            int(info[i]),
        )
    meta = {
        "kind": "xgboost",
        "link": link,
        "base_margin": float(base),
        "classes_out": k,
        "depth": builder.depth,
    }
    return meta, builder.arrays("")


def _score_xgb(meta: dict, arr: Mapping[str, np.ndarray], leaves: list[np.ndarray]) -> np.ndarray:
    k = meta["classes_out"]
    base = np.float32(meta["base_margin"])
    leaf32 = arr["leaf"][:, 0].astype(np.float32)
    cols = []
    for nodes in leaves:
        vals = np.empty((nodes.shape[0] + 1, nodes.shape[1]), dtype=np.float32)
        vals[0] = base
        vals[1:] = leaf32[nodes]
        # float32 accumulation in tree order, starting from the base margin.
        cols.append(_sequential_sum(vals))
    margin = cols[0][:, None] if k == 1 else np.stack(cols, axis=1)
    one = np.float32(1.0)
    if meta["link"] == "sigmoid":
        denom = _expf(np.minimum(-margin, np.float32(88.7))) + one
        out = one / denom
    elif meta["link"] == "softmax":
        e = _expf(margin - margin.max(axis=1, keepdims=True))
        wsum = np.zeros(e.shape[0], dtype=np.float64)
        for g in range(k):  # double accumulator over float terms
            wsum += e[:, g]
        out = e / wsum.astype(np.float32)[:, None]
    else:
        out = margin
    out = out.astype(np.float64)
    return out[:, 0] if k == 1 else out


def _check_classes(est: Any, n_classes: int, what: str) -> None:
    classes = getattr(est, "classes_", None)
    if classes is None or list(np.asarray(classes).tolist()) != list(range(n_classes)):
        raise NotCompilable(f"{what} classes {classes!r} are not 0..{n_classes - 1}")


def _compile_sk_trees(est: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    trees = list(getattr(est, "estimators_", None) or [est])
    is_forest = hasattr(est, "estimators_")
    if getattr(est, "n_outputs_", 1) != 1:
        raise NotCompilable(f"{type(est).__name__} with several outputs")
    width = n_classes if task == "classification" else 1
    if task == "classification":
        _check_classes(est, n_classes, type(est).__name__)
    builder = _TreeBuilder(width)
    for t in trees:
        tree = t.tree_
        if tree.n_features != n_features:
            raise NotCompilable(f"{type(est).__name__} trained on {tree.n_features} features")
        lc, rc, feat, thr = tree.children_left, tree.children_right, tree.feature, tree.threshold
        miss = getattr(tree, "missing_go_to_left", np.zeros(lc.size, dtype=np.uint8))
        value = tree.value[:, 0, :width]

        def split(n: int, feat=feat, thr=thr, miss=miss) -> tuple[int, float]:
            variant = _NAN_LEFT if int(miss[n]) else _NAN_RIGHT
            return variant * n_features + int(feat[n]), float(thr[n])

        builder.add(
            0,
            lambda n, lc=lc, rc=rc: None if lc[n] == -1 else (int(lc[n]), int(rc[n])),
            split,
            lambda n, value=value: value[n] if width > 1 else float(value[n, 0]),
        )
    meta = {
        "kind": "sk_trees",
        "n_trees": len(trees),
        "forest": is_forest,
        "classes_out": width,
        "depth": builder.depth,
    }
    return meta, builder.arrays("")


def _score_sk_trees(
    meta: dict, arr: Mapping[str, np.ndarray], leaves: list[np.ndarray]
) -> np.ndarray:
    width = meta["classes_out"]
    leaf = arr["leaf"]
    # Sequential sum in tree order from zero, as the forest accumulates its trees.
    out = np.stack([_tree_sum(leaf[:, c], leaves[0]) for c in range(width)], axis=1)
    if meta["forest"]:
        out /= meta["n_trees"]
    return out if width > 1 else out[:, 0]


def _compile_linear(est: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    if task != "classification":
        raise NotCompilable(f"{type(est).__name__} for regression")
    _check_classes(est, n_classes, type(est).__name__)
    coef = np.ascontiguousarray(est.coef_, dtype=np.float64)
    if coef.shape[1] != n_features:
        raise NotCompilable(f"{type(est).__name__} trained on {coef.shape[1]} features")
    intercept = np.asarray(est.intercept_, dtype=np.float64).reshape(-1)
    meta = {"kind": "linear", "link": "sigmoid" if coef.shape[0] == 1 else "softmax"}
    return meta, {"coef": coef, "intercept": intercept}


def _score_linear(meta: dict, arr: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    scores = x @ arr["coef"].T + arr["intercept"]
    if meta["link"] == "sigmoid":
        p = 1.0 / (1.0 + np.exp(-scores[:, 0]))
        return np.stack([1 - p, p], axis=1)
    scores = scores - scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1).reshape(-1, 1)
    return scores


_SCORERS = {
    "lgbm": _score_lgbm,
    "xgboost": _score_xgb,
    "sk_trees": _score_sk_trees,
    "linear": _score_linear,
}
_SK_TREES = {
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "ExtraTreeClassifier",
    "ExtraTreeRegressor",
}


def _compile_member(member: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    est = member.estimator
    if member.kind == "lgbm":
        return _compile_lgbm(est, n_features, task, n_classes)
    if member.kind == "xgboost":
        return _compile_xgb(est, n_features, task, n_classes)
    if member.kind == "sklearn":
        cls = type(est)
        name = cls.__name__
        if not cls.__module__.startswith("sklearn."):
            raise NotCompilable(f"estimator {cls.__module__}.{name}")
        if name in _SK_TREES:
            return _compile_sk_trees(est, n_features, task, n_classes)
        if name == "LogisticRegression":
            return _compile_linear(est, n_features, task, n_classes)
        raise NotCompilable(f"sklearn estimator {name}")
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


# ---------------------------------------------------------------------------------------
# the merged forest: every tree member scored in one descent
# ---------------------------------------------------------------------------------------
_BLOCK = 8  # internal nodes decided at once per tree: their bits pack into one byte
_LEAF_SLOT = -1
_GATHER_BITS = np.uint64(0x0102040810204080)
_TOP_BYTE = np.uint64(56)
_BIT_WEIGHTS = (1 << np.arange(_BLOCK, dtype=np.uint8))[None, :, None]


class _Forest:
    """All tree members merged into one forest over shared input columns.

    Every split becomes a *slot* ``(input column, threshold)`` tested as ``value <= threshold``
    (XGBoost's ``x < t`` is ``x <= the double just below t``: inputs are float32 values), so a
    row's decisions are one comparison per distinct slot. Each tree's first ``_BLOCK``
    internal nodes (breadth first) are resolved together: their decision bits index a
    256-entry exit table. Deeper nodes are walked level by level with trees sorted by the
    depth left below their exits, so each step only touches the trees still descending.
    """

    def __init__(
        self,
        n_features: int,
        parts: list[tuple[int, dict[str, Any], Mapping[str, np.ndarray]]],
    ):
        f = n_features
        self.n_features = f
        self.sources: list[tuple[str, int]] = []  # ("lgbm" | "f32", variant) per column block
        num_col: list[np.ndarray] = []
        num_thr: list[np.ndarray] = []
        cat_keys: dict[tuple[int, tuple[int, ...]], int] = {}
        node_keys: list[np.ndarray] = []  # per node: numeric slot key, -2 - cat key, or -1
        bases: list[np.ndarray] = []
        roots: list[np.ndarray] = []
        trees: list[tuple[int, int, list[np.ndarray]]] = []
        n_nodes = n_slots = n_trees = 0
        for m, meta, arr in parts:
            col, thr, base = arr["col"], arr["thr"], arr["base"]
            internal = ~np.isnan(thr)
            gcol = np.full(col.size, -1, dtype=np.int64)
            gthr = thr.copy()
            if meta["kind"] == "lgbm":
                variants = arr["variants"].tolist()
                numeric = internal & (col < len(variants) * f)
                srcs = np.asarray(
                    [self._source("lgbm", v) for v in variants] or [0], dtype=np.int64
                )
                c = col[numeric]
                gcol[numeric] = srcs[c // f] * f + c % f
                cat = internal & ~numeric
                if cat.any():
                    table = arr["cat_table"]
                    ids = []
                    for j in range(table.shape[0]):
                        cats = tuple(np.flatnonzero(table[j, :-1] == 0.0).tolist())
                        key = (int(arr["cat_feature"][j]), cats)
                        ids.append(cat_keys.setdefault(key, len(cat_keys)))
                    cat_ids = np.asarray(ids, dtype=np.int64)
            else:
                numeric = internal
                srcs = np.asarray(
                    [self._source("f32", _NAN_LEFT), self._source("f32", _NAN_RIGHT)],
                    dtype=np.int64,
                )
                c = col[numeric]
                gcol[numeric] = srcs[c // f] * f + c % f
                cat = np.zeros(col.size, dtype=bool)
                if meta["kind"] == "xgboost":
                    t = gthr[numeric]
                    # A strict test at -inf never passes: the leaf slot is never true either.
                    gthr[numeric] = np.where(t == -np.inf, np.nan, np.nextafter(t, -np.inf))
            key = np.full(col.size, _LEAF_SLOT, dtype=np.int64)
            live = numeric & ~np.isnan(gthr)
            key[live] = n_slots + np.arange(int(live.sum()))
            n_slots += int(live.sum())
            num_col.append(gcol[live])
            num_thr.append(gthr[live])
            if cat.any():
                key[cat] = -2 - cat_ids[col[cat] - len(arr["variants"]) * f]
            node_keys.append(key)
            bases.append(base + n_nodes)
            roots.append(arr["roots"] + n_nodes)
            k = 1 if meta["kind"] == "sk_trees" else meta["classes_out"]
            grp = arr["groups"]
            trees.append((m, n_nodes, [np.flatnonzero(grp == g) + n_trees for g in range(k)]))
            n_nodes += col.size
            n_trees += grp.size

        # Distinct numeric slots, sorted by column then threshold.
        all_col = np.concatenate(num_col) if num_col else np.zeros(0, dtype=np.int64)
        all_thr = np.concatenate(num_thr) if num_thr else np.zeros(0)
        order = np.lexsort((all_thr, all_col))
        sc, st = all_col[order], all_thr[order]
        new = np.ones(sc.size, dtype=bool)
        new[1:] = (sc[1:] != sc[:-1]) | (st[1:] != st[:-1])
        uid = np.empty(sc.size, dtype=np.int64)
        uid[order] = np.cumsum(new) - 1
        self.slot_col, self.slot_thr = sc[new], st[new]
        n_num = int(self.slot_col.size)
        # Categorical slots follow; the last slot is constant False (leaves stay put).
        keys = sorted(cat_keys, key=cat_keys.get)
        self.n_cat = len(keys)
        self.leaf_slot = n_num + self.n_cat
        self.n_slots = self.leaf_slot + 1
        key = np.concatenate(node_keys) if node_keys else np.zeros(0, dtype=np.int64)
        slot = np.full(key.size, self.leaf_slot, dtype=np.int64)
        slot[key >= 0] = uid[key[key >= 0]]
        slot[key <= -2] = n_num + (-2 - key[key <= -2])
        self.slot = slot
        self.base = np.concatenate(bases) if bases else np.zeros(0, dtype=np.int64)
        self.n_nodes = n_nodes
        self.n_sources = len(self.sources)
        if keys:
            self.cat_features = sorted({feat for feat, _ in keys})
            top = max((max(c) for _, c in keys if c), default=-1) + 1
            self.cat_top = top
            table = np.zeros((len(keys), top + 1), dtype=bool)
            for j, (_, cats) in enumerate(keys):
                table[j, list(cats)] = True
            self.cat_table = table.ravel()
            pos = {feat: i for i, feat in enumerate(self.cat_features)}
            self.cat_of_slot = np.asarray([pos[feat] for feat, _ in keys], dtype=np.int64)
            self.cat_offset = np.arange(len(keys), dtype=np.int64) * (top + 1)

        all_roots = np.concatenate(roots) if roots else np.zeros(0, dtype=np.int64)
        self._build_blocks(all_roots)
        # Per member: its node offset and, per output group, its trees' positions in order.
        self.members = {m: (off, [self.position[g] for g in grps]) for m, off, grps in trees}

    def _source(self, kind: str, variant: int) -> int:
        if (kind, variant) not in self.sources:
            self.sources.append((kind, variant))
        return self.sources.index((kind, variant))

    def _build_blocks(self, roots: np.ndarray) -> None:
        base, slot = self.base, self.slot
        internal = slot != self.leaf_slot
        n_trees = roots.size
        block = np.full((n_trees, _BLOCK), self.leaf_slot, dtype=np.int64)
        pos = np.full(self.n_nodes, -1, dtype=np.int64)
        for t, root in enumerate(roots.tolist()):
            queue, j = [root], 0
            while queue and j < _BLOCK:
                n = queue.pop(0)
                if not internal[n]:
                    continue
                block[t, j], pos[n] = slot[n], j
                j += 1
                queue += [int(base[n]) + 1, int(base[n])]
        # Exit node of every tree for every byte of block decisions (bit j: node j goes left).
        codes = np.arange(256, dtype=np.int64)
        exits = np.repeat(roots[:, None], 256, axis=1)
        for _ in range(_BLOCK):
            p = pos[exits]
            inside = p >= 0
            bit = (codes[None, :] >> np.where(inside, p, 0)) & 1
            exits = np.where(inside, base[exits] + bit, exits)
        # Height of every node: how many more steps a walk from it can take.
        height = np.zeros(self.n_nodes, dtype=np.int64)
        idx = np.flatnonzero(internal)
        for _ in range(self.n_nodes):
            new = 1 + np.maximum(height[base[idx]], height[base[idx] + 1])
            if np.array_equal(new, height[idx]):
                break
            height[idx] = new
        left = height[exits].max(axis=1) if n_trees else np.zeros(0, dtype=np.int64)
        order = np.argsort(-left, kind="stable")
        self.order = order
        self.roots = roots[order]
        self.position = np.empty(n_trees, dtype=np.int64)
        self.position[order] = np.arange(n_trees)
        self.block_slots = block[order].ravel()
        self.exits = (exits[order] + 0).ravel()
        self.exit_offset = np.arange(n_trees, dtype=np.int64)[:, None] * 256
        steps = left[order]
        self.active = [int((steps > d).sum()) for d in range(int(steps.max(initial=0)))]
        self.n_trees = n_trees

    def decisions(self, x: np.ndarray) -> np.ndarray:
        """Slots x rows, True where the row goes left."""
        n = x.shape[0]
        f = self.n_features
        cols = np.empty((n, self.n_sources * f))
        lgbm = f32 = nan = nan32 = None
        for s, (kind, variant) in enumerate(self.sources):
            if kind == "lgbm":
                if lgbm is None:
                    # LightGBM's dense-row reader drops |x| <= kZeroThreshold: they read as 0.
                    lgbm = np.where(np.abs(x) <= _LGBM_ZERO, 0.0, x)
                    nan = np.isnan(lgbm)
                v, miss = lgbm, nan
            else:
                if f32 is None:
                    with np.errstate(over="ignore"):
                        f32 = x.astype(np.float32).astype(np.float64)
                    nan32 = np.isnan(f32)
                v, miss = f32, nan32
            out = cols[:, s * f : (s + 1) * f]
            out[:] = v
            if variant == _NAN_LEFT:
                out[miss] = -np.inf
            elif variant == _NAN_ZERO:
                out[miss] = 0.0
            elif variant in (_ZERO_LEFT, _ZERO_RIGHT):
                out[miss | (v == 0.0)] = -np.inf if variant == _ZERO_LEFT else np.nan
        d = np.empty((self.n_slots, n), dtype=bool)
        n_num = self.slot_col.size
        np.less_equal(cols.T[self.slot_col], self.slot_thr[:, None], out=d[:n_num])
        if self.n_cat:
            raw = x[:, self.cat_features]
            # C's (int) cast truncates; NaN and values beyond int range become INT_MIN (right).
            ok = (raw > -1.0) & (raw < 2147483648.0)
            code = np.where(ok, np.trunc(np.where(ok, raw, 0.0)), self.cat_top)
            code = np.minimum(code, self.cat_top).astype(np.int64)
            d[n_num : self.leaf_slot] = self.cat_table[
                self.cat_offset[:, None] + code.T[self.cat_of_slot]
            ]
        d[self.leaf_slot] = False
        return d

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Leaf node of every tree (in ``order``) for every row: trees x rows."""
        n = x.shape[0]
        d = self.decisions(x)
        if n == 1:
            # Eight 0/1 bytes read as one little-endian word; the multiply gathers byte j's
            # bit into bit j of the top byte (no carries: every partial product is distinct).
            word = d[self.block_slots, 0].view(np.uint64)
            code = ((word * _GATHER_BITS) >> _TOP_BYTE).astype(np.intp)[:, None]
        else:
            bits = d[self.block_slots].view(np.uint8).reshape(self.n_trees, _BLOCK, n)
            code = np.add.reduce(bits * _BIT_WEIGHTS, axis=1, dtype=np.uint8)
        nodes = self.exits[self.exit_offset + code]
        base = self.base
        if n == 1:
            flat, slot = d[:, 0], self.slot
            col = nodes[:, 0]
            for a in self.active:
                cur = col[:a]
                col[:a] = base[cur] + flat[slot[cur]]
            return nodes
        flat = d.ravel()
        slot = self.slot * n
        rows = np.arange(n, dtype=np.int64)
        for a in self.active:
            cur = nodes[:a]
            step = slot[cur]
            step += rows
            nxt = base[cur]
            nxt += flat[step]
            nodes[:a] = nxt
        return nodes

    def member_leaves(self, nodes: np.ndarray) -> dict[int, list[np.ndarray]]:
        """Per member and output group: its own leaf node ids, trees (in order) x rows."""
        return {m: [nodes[p] - off for p in pos] for m, (off, pos) in self.members.items()}


# ---------------------------------------------------------------------------------------
# the compiled model
# ---------------------------------------------------------------------------------------
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
    ):
        self.task = task
        self.feature_spec = feature_spec
        self.classes_ = list(classes)
        self.threshold = threshold
        self.positive_label = positive_label
        self.members = members
        self.arrays = dict(arrays)
        self.encoder = RecordEncoder(feature_spec)
        self._member_arrays = [
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
            for i, (meta, arr) in enumerate(zip(members, self._member_arrays, strict=True))
            if meta["kind"] != "linear"
        ]
        self._forest = _Forest(len(feature_spec), trees) if trees else None
        self._checks = sorted(
            {name for m in members for name, raised in m["raises_on"].items() if raised}
        )

    @property
    def feature_names(self) -> list[str]:
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
        if self._forest is None or x.shape[0] <= self._chunk_rows:
            return self._scores(x)
        step = self._chunk_rows
        return np.concatenate([self._scores(x[i : i + step]) for i in range(0, len(x), step)])

    @property
    def _chunk_rows(self) -> int:
        return max(1, _CHUNK_CELLS // max(1, self._forest.n_trees if self._forest else 1))

    def _scores(self, x: np.ndarray) -> np.ndarray:
        leaves = self._forest.member_leaves(self._forest.leaves(x)) if self._forest else {}
        out = neg = None
        for i, (w, meta, arr) in enumerate(
            zip(self._weights, self.members, self._member_arrays, strict=True)
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
        if f["kind"] not in (NUMERIC, CATEGORICAL):
            raise NotCompilable(f"feature {f['name']!r} of kind {f['kind']!r}")
        if f["kind"] == CATEGORICAL and not _json_exact(list(f["categories"])):
            raise NotCompilable(f"categories of feature {f['name']!r} do not survive JSON")
        if not _json_exact(f.get("example")):
            f["example"] = None if f.get("example") is None else str(f["example"])
    classes = list(model.classes_)
    if not _json_exact(classes) or not _json_exact([model.positive_label]):
        raise NotCompilable("class labels do not survive JSON")
    n_features = len(spec)
    n_classes = len(classes)
    native = importlib.import_module(type(model).__module__)
    members: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for i, m in enumerate(model.members):
        meta, arr = _compile_member(m, n_features, model.task, n_classes)

        def native_scores(x: np.ndarray, m: Any = m) -> Any:
            return native._member_scores(m, x, model.task, n_classes)

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
    )


# ---------------------------------------------------------------------------------------
# persistence
# ---------------------------------------------------------------------------------------
def save(compiled: CompiledModel, directory: str | os.PathLike[str]) -> Path:
    """Write ``fastpath.json`` + ``arrays.npz`` into ``directory``, replacing it atomically."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "task": compiled.task,
        "classes": compiled.classes_,
        "threshold": compiled.threshold,
        "positive_label": compiled.positive_label,
        "feature_spec": compiled.feature_spec,
        "members": compiled.members,
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        with open(tmp / ARRAYS_FILE, "wb") as fh:
            np.savez(fh, **compiled.arrays)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load(directory: str | os.PathLike[str]) -> CompiledModel:
    """Read a compiled model; imports nothing beyond numpy and the standard library."""
    path = Path(directory)
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path / META_FILE} is not a {FORMAT} v{FORMAT_VERSION} file")
    with np.load(path / ARRAYS_FILE, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return CompiledModel(
        task=meta["task"],
        feature_spec=meta["feature_spec"],
        classes=meta["classes"],
        threshold=meta["threshold"],
        positive_label=meta["positive_label"],
        members=meta["members"],
        arrays=arrays,
    )


# ---------------------------------------------------------------------------------------
# verification against the native model
# ---------------------------------------------------------------------------------------
def verify(model: TabularModel, compiled: CompiledModel, frame: pd.DataFrame) -> dict[str, Any]:
    """Score ``frame`` both ways; ``ok`` only if labels match and scores agree within 1e-9."""
    report: dict[str, Any] = {
        "rows": int(len(frame)),
        "max_abs_diff": 0.0,
        "label_mismatches": 0,
        "encoding_mismatches": 0,
        "ok": False,
        "error": None,
    }
    records = frame.to_dict("records")
    ref_x = model.encoder.encode_frame(frame)
    got_x = compiled.encode_records(records)
    same = (ref_x == got_x) | (np.isnan(ref_x) & np.isnan(got_x))
    report["encoding_mismatches"] = int((~same.all(axis=1)).sum())
    try:
        ref_labels = list(model.predict(None, frame))
        ref = (
            model.predict_proba_frame(frame)
            if model.task == "classification"
            else np.asarray(ref_labels, dtype=np.float64)
        )
    except ValueError as exc:
        ref_error = exc
    else:
        ref_error = None
    try:
        got_labels = compiled.predict_records(records)
        got = (
            np.asarray(compiled.predict_proba_records(records), dtype=np.float64)
            if compiled.task == "classification"
            else np.asarray(got_labels, dtype=np.float64)
        )
    except ValueError as exc:
        got_error = exc
    else:
        got_error = None
    if ref_error is not None or got_error is not None:
        report["error"] = f"native: {ref_error!r}; compiled: {got_error!r}"
        report["ok"] = ref_error is not None and got_error is not None
        return report
    got = got.reshape(ref.shape)
    diff = np.abs(got - ref)
    if compiled.task != "classification":
        diff = diff / np.maximum(1.0, np.abs(ref))  # relative beyond magnitude 1
    report["max_abs_diff"] = float(diff.max()) if diff.size else 0.0
    report["label_mismatches"] = (
        sum(a != b for a, b in zip(ref_labels, got_labels, strict=True))
        if compiled.task == "classification"
        else 0
    )
    report["ok"] = bool(
        report["label_mismatches"] == 0
        and report["max_abs_diff"] <= PROB_TOLERANCE
        and np.array_equal(np.isnan(ref), np.isnan(got))
    )
    return report
