"""Flat tree arrays shared by every tree family: the builder, the summation order, the input variants.

A compiled tree is four arrays over its nodes (input column, threshold, base, leaf value) with
sibling nodes adjacent, so ``base[n] + (x goes left)`` is the next node and a descent is a
gather per level. Each family module (``lightgbm``, ``xgboost``, ``sklearn``) fills a
``TreeBuilder`` from its native model and scores leaves with ``tree_sum``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class NotCompilable(ValueError):
    """The model (or one of its members) cannot be reproduced exactly with numpy."""


# Input variants a tree node can read. NaN stays NaN (fails every comparison: goes right) or
# becomes -inf (passes: goes left), so one "x <= threshold" (or "<") test covers every rule.
NAN_LEFT, NAN_RIGHT, NAN_ZERO, ZERO_LEFT, ZERO_RIGHT = range(5)


class TreeBuilder:
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


def tree_sum(values: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Sequential sum down the trees axis (trees x rows) from zero, in tree order."""
    if nodes.shape[0] == 0:
        return np.zeros(nodes.shape[1], dtype=values.dtype)
    return sequential_sum(values[nodes])


def sequential_sum(vals: np.ndarray) -> np.ndarray:
    """Column sums of ``vals`` added strictly top to bottom, in its own dtype."""
    if vals.shape[1] > 1:
        # Along the slow axis numpy adds whole rows one after another (pairwise summation is
        # only used along the fast axis), which is a sequential sum per column and much
        # faster than ``cumsum``.
        return np.add.reduce(vals, axis=0)
    return np.cumsum(vals, axis=0)[-1]
