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


def _descend(
    arr: Mapping[str, np.ndarray], xt: np.ndarray, depth: int, inclusive: bool
) -> np.ndarray:
    """Leaf node ids (rows x trees); every row walks every tree at once, one level per step."""
    n, ncols = xt.shape
    roots = arr["roots"]
    col, thr, base = arr["col"], arr["thr"], arr["base"]
    go_left = np.less_equal if inclusive else np.less
    n_trees, n_nodes = roots.size, col.size
    # Rough element-operation counts (one numpy call ~ 800 elements of work): deciding every
    # node up front wins for few rows or shallow-but-bushy forests, level steps otherwise.
    per_level = 6 * depth * (n * n_trees + 800)
    up_front = 4 * (n * n_nodes + 800) + depth * (n * n_trees + 800)
    if up_front < per_level:
        step = base + go_left(xt[:, col], thr)  # rows x nodes: the next node from every node
        if n == 1:
            nodes, row_step = roots, step[0]
            for _ in range(depth):
                nodes = row_step[nodes]
            return nodes[None, :]
        flat_step = step.ravel()
        offset = (np.arange(n, dtype=np.int64) * n_nodes)[:, None]
        nodes = roots[None, :] + offset
        for _ in range(depth):
            nodes = flat_step[nodes] + offset
        return nodes - offset
    flat = xt.ravel()
    nodes = np.broadcast_to(roots, (n, n_trees)).copy()
    offset = (np.arange(n, dtype=np.int64) * ncols)[:, None] if n > 1 else 0
    for _ in range(depth):
        nodes = base[nodes] + go_left(flat[col[nodes] + offset], thr[nodes])
    return nodes


def _chunks(n: int, n_trees: int) -> list[slice]:
    step = max(1, _CHUNK_CELLS // max(1, n_trees))
    return [slice(i, min(n, i + step)) for i in range(0, n, step)] or [slice(0, 0)]


def _nan_variants(x: np.ndarray, kinds: Sequence[int]) -> list[np.ndarray]:
    nan = np.isnan(x)
    out = []
    for k in kinds:
        if k == _NAN_LEFT:
            out.append(np.where(nan, -np.inf, x))
        elif k == _NAN_RIGHT:
            out.append(x)
        elif k == _NAN_ZERO:
            out.append(np.where(nan, 0.0, x))
        else:
            zero = nan | (x == 0.0)
            out.append(np.where(zero, -np.inf if k == _ZERO_LEFT else np.nan, x))
    return out


# ---------------------------------------------------------------------------------------
# members: compile (needs the native libraries) and score (numpy only)
# ---------------------------------------------------------------------------------------
def _xgb_float(text: Any) -> np.float32:
    s = str(text).strip().strip("[]").split(",")[0]
    return np.float32(float(s))


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


def _lgbm_input(arr: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    # LightGBM's dense-row reader drops |x| <= kZeroThreshold, so those read back as 0.0.
    x = np.where(np.abs(x) <= _LGBM_ZERO, 0.0, x)
    parts = _nan_variants(x, arr["variants"].tolist())
    if "cat_table" in arr:
        table = arr["cat_table"]
        top = table.shape[1] - 1
        raw = x[:, arr["cat_feature"]]
        # C's (int) cast truncates; NaN and values beyond int range become INT_MIN (go right).
        ok = ~np.isnan(raw) & (raw > -1.0) & (raw < 2147483648.0)
        code = np.where(ok, np.trunc(np.where(ok, raw, 0.0)), top)
        code = np.minimum(code, top).astype(np.int64)
        parts.append(table[np.arange(table.shape[0]), code])
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def _score_lgbm(meta: dict, arr: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    k = meta["classes_out"]
    groups = arr["groups"]
    raw = np.zeros((x.shape[0], k))
    xt = _lgbm_input(arr, x)
    for rows in _chunks(x.shape[0], groups.size):
        nodes = _descend(arr, xt[rows], meta["depth"], inclusive=True)
        vals = arr["leaf"][nodes, 0]
        for g in range(k):
            sel = vals[:, groups == g]
            # Sequential sum in tree order, as LightGBM accumulates.
            raw[rows, g] = np.cumsum(sel, axis=1)[:, -1] if sel.shape[1] else 0.0
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
    return out[:, 0] if k == 1 else out


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


def _f32_input(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32).astype(np.float64)
    return np.concatenate(_nan_variants(x32, (_NAN_LEFT, _NAN_RIGHT)), axis=1)


def _score_xgb(meta: dict, arr: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    k = meta["classes_out"]
    groups = arr["groups"]
    margin = np.zeros((x.shape[0], k), dtype=np.float32)
    base = np.float32(meta["base_margin"])
    xt = _f32_input(x)
    leaf32 = arr["leaf"][:, 0].astype(np.float32)
    for rows in _chunks(x.shape[0], groups.size):
        nodes = _descend(arr, xt[rows], meta["depth"], inclusive=False)
        vals = leaf32[nodes]
        for g in range(k):
            sel = vals[:, groups == g]
            start = np.full((sel.shape[0], 1), base, dtype=np.float32)
            # float32 accumulation in tree order, starting from the base margin.
            margin[rows, g] = np.cumsum(np.concatenate([start, sel], axis=1), axis=1)[:, -1]
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


def _score_sk_trees(meta: dict, arr: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    width = meta["classes_out"]
    out = np.zeros((x.shape[0], width))
    xt = _f32_input(x)
    for rows in _chunks(x.shape[0], arr["roots"].size):
        nodes = _descend(arr, xt[rows], meta["depth"], inclusive=True)
        vals = arr["leaf"][nodes]  # rows x trees x width
        # Sequential sum in tree order from zero, as the forest accumulates its trees.
        out[rows] = np.cumsum(vals, axis=1)[:, -1, :]
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

    @property
    def feature_names(self) -> list[str]:
        return list(self.encoder.columns)

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.encoder.encode(records)

    def _check_inputs(self, x: np.ndarray) -> None:
        if not self.members or x.size == 0:
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
        out = None
        for w, meta, arr in zip(self._weights, self.members, self._member_arrays, strict=True):
            s = _SCORERS[meta["kind"]](meta, arr, x)
            if self.task == "classification" and s.ndim == 1:
                s = np.column_stack([1.0 - s, s])
            out = s * w if out is None else out + s * w
        return out

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
