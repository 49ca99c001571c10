"""XGBoost gbtree boosters as flat trees, scored in float32 as XGBoost does.

Conventions reproduced: features and thresholds in float32, ``x < threshold`` goes left,
leaves summed in float32 starting from the base margin, float32 sigmoid/softmax with the C
library's ``expf``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lib.local.fastpath.trees import (
    NAN_LEFT,
    NAN_RIGHT,
    NotCompilable,
    TreeBuilder,
    sequential_sum,
)

_IDENTITY = {
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:absoluteerror",
    "reg:pseudohubererror",
}
_SIGMOID = {"binary:logistic", "reg:logistic"}


def _parse_float32(text: Any) -> np.float32:
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


def expf(x: np.ndarray) -> np.ndarray:
    """float32 exp from the C library XGBoost itself calls."""
    # NB: libm's expf is not always correctly rounded (about 1 input in 500 differs by one
    # float32 ulp, ~6e-8, from exp-in-double-then-round), so the same function is called.
    x = np.asarray(x, dtype=np.float32)
    fn = _libm_expf()
    if fn is None:
        return np.exp(x.astype(np.float64)).astype(np.float32)
    out = np.array([fn(v) for v in x.ravel().tolist()], dtype=np.float32)
    return out.reshape(x.shape)


def compile_xgb(est: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    """Meta and flat arrays of an XGBoost gbtree booster (numeric splits, scalar leaves)."""
    model = json.loads(est.save_raw("json"))["learner"]
    booster = model["gradient_booster"]
    if booster.get("name") != "gbtree":
        raise NotCompilable(f"XGBoost booster {booster.get('name')!r}")
    objective = model["objective"]["name"]
    params = model["learner_model_param"]
    base = _parse_float32(params["base_score"])
    n_class = int(params.get("num_class", "0") or 0)
    if int(params.get("num_target", "1") or 1) != 1:
        raise NotCompilable("XGBoost multi-target model")
    if objective in _SIGMOID:
        link = "sigmoid"
        one = np.float32(1.0)
        base = np.float32(-np.log(np.float64(one / base - one)))
    elif objective == "multi:softprob":
        link = "softmax"
    elif objective in _IDENTITY:
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
    builder = TreeBuilder(1)
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
            variant = NAN_LEFT if int(dleft[n]) else NAN_RIGHT
            thr = float(np.float32(cond[n]))
            if variant == NAN_LEFT and thr == -math.inf:  # the -inf sentinel would go right
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


def score_xgb(meta: dict, arr: Mapping[str, np.ndarray], leaves: list[np.ndarray]) -> np.ndarray:
    """Probabilities or predictions in float32 arithmetic, returned as float64."""
    k = meta["classes_out"]
    base = np.float32(meta["base_margin"])
    leaf32 = arr["leaf"][:, 0].astype(np.float32)
    cols = []
    for nodes in leaves:
        vals = np.empty((nodes.shape[0] + 1, nodes.shape[1]), dtype=np.float32)
        vals[0] = base
        vals[1:] = leaf32[nodes]
        # float32 accumulation in tree order, starting from the base margin.
        cols.append(sequential_sum(vals))
    margin = cols[0][:, None] if k == 1 else np.stack(cols, axis=1)
    one = np.float32(1.0)
    if meta["link"] == "sigmoid":
        denom = expf(np.minimum(-margin, np.float32(88.7))) + one
        out = one / denom
    elif meta["link"] == "softmax":
        e = expf(margin - margin.max(axis=1, keepdims=True))
        wsum = np.zeros(e.shape[0], dtype=np.float64)
        for g in range(k):  # double accumulator over float terms
            wsum += e[:, g]
        out = e / wsum.astype(np.float32)[:, None]
    else:
        out = margin
    out = out.astype(np.float64)
    return out[:, 0] if k == 1 else out
