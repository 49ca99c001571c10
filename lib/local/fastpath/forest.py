"""The merged forest: every tree member of a model scored in one descent over shared inputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lib.local.fastpath.lightgbm import ZERO_THRESHOLD
from lib.local.fastpath.trees import NAN_LEFT, NAN_RIGHT, NAN_ZERO, ZERO_LEFT, ZERO_RIGHT

_BLOCK = 8  # internal nodes decided at once per tree: their bits pack into one byte
_LEAF_SLOT = -1
_GATHER_BITS = np.uint64(0x0102040810204080)
_TOP_BYTE = np.uint64(56)
_BIT_WEIGHTS = (1 << np.arange(_BLOCK, dtype=np.uint8))[None, :, None]


class Forest:
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
                    [self._source("f32", NAN_LEFT), self._source("f32", NAN_RIGHT)],
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
                    lgbm = np.where(np.abs(x) <= ZERO_THRESHOLD, 0.0, x)
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
            if variant == NAN_LEFT:
                out[miss] = -np.inf
            elif variant == NAN_ZERO:
                out[miss] = 0.0
            elif variant in (ZERO_LEFT, ZERO_RIGHT):
                out[miss | (v == 0.0)] = -np.inf if variant == ZERO_LEFT else np.nan
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
