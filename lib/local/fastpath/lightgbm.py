"""LightGBM boosters as flat trees: the dumped model compiled, leaves scored as LightGBM does.

Conventions reproduced: double comparisons ``x <= threshold``; missing types None/Zero/NaN
with ``default_left``; values within 1e-35 of zero read as zero; categorical bitsets (NaN,
negative and unknown codes go right); leaves summed in double in tree order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lib.local.fastpath.trees import (
    NAN_LEFT,
    NAN_RIGHT,
    NAN_ZERO,
    ZERO_LEFT,
    ZERO_RIGHT,
    NotCompilable,
    TreeBuilder,
    tree_sum,
)

# LightGBM's kZeroThreshold is the float literal 1e-35f, compared in double.
ZERO_THRESHOLD = float(np.float32(1e-35))

_IDENTITY = {
    "regression",
    "regression_l2",
    "regression_l1",
    "huber",
    "fair",
    "quantile",
    "mape",
}
_EXP = {"poisson", "gamma", "tweedie"}


def compile_lgbm(est: Any, n_features: int, task: str, n_classes: int) -> tuple[dict, dict]:
    """Meta and flat arrays of a LightGBM booster; ``NotCompilable`` for linear trees etc."""
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
    elif name in _IDENTITY and "sqrt" not in flags:
        link, scale = "identity", 1.0
    elif name in _EXP:
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
    builder = TreeBuilder(1)
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
                v = NAN_LEFT if left else NAN_RIGHT
            elif mt == "Zero":
                v = ZERO_LEFT if left else ZERO_RIGHT
            elif mt == "None":
                v = NAN_ZERO
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


def score_lgbm(meta: dict, arr: Mapping[str, np.ndarray], leaves: list[np.ndarray]) -> np.ndarray:
    """Probabilities or predictions from the leaves each row reached (one array per class)."""
    leaf = arr["leaf"][:, 0]
    # Sequential sum in tree order, as LightGBM accumulates.
    if meta["classes_out"] == 1:
        raw = tree_sum(leaf, leaves[0])
        if meta["average"]:
            raw /= meta["iterations"]
        if meta["link"] == "sigmoid":
            return 1.0 / (1.0 + np.exp(-meta["scale"] * raw))
        return np.exp(raw) if meta["link"] == "exp" else raw
    raw = np.stack([tree_sum(leaf, nodes) for nodes in leaves], axis=1)
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
