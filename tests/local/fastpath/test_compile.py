"""Compiled models against the native members they reproduce: each family, ensembles,
numpy-only loading, chunked and single-row scoring, the merged forest's descent."""

from __future__ import annotations

import json
import subprocess
import sys
import timeit
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flaml.automl.model import (
    ExtraTreesEstimator,
    LGBMEstimator,
    LRL1Classifier,
    RandomForestEstimator,
    XGBoostLimitDepthEstimator,
    XGBoostSklearnEstimator,
)
from sklearn.neighbors import KNeighborsClassifier

from lib.local import fastpath
from lib.local.automl_engine import fit_member
from lib.local.fastpath import model as compiled_model
from lib.local.tabular_model import Encoder, Member, TabularModel

REPO = Path(__file__).resolve().parents[3]
BANK = Path("/work/shared/data/bankmarketing_train.csv")
HEAVY = ("pandas", "sklearn", "lightgbm", "xgboost", "mlflow", "scipy")

# FLAML learners and configs as the engine fits them (small, to keep the suite quick).
LEARNERS = {
    "lgbm": (
        LGBMEstimator,
        {"n_estimators": 80, "num_leaves": 15, "learning_rate": 0.1, "min_child_samples": 10},
    ),
    "xgboost": (XGBoostSklearnEstimator, {"n_estimators": 60, "max_leaves": 15}),
    "xgb_limitdepth": (XGBoostLimitDepthEstimator, {"n_estimators": 60, "max_depth": 5}),
    "rf": (RandomForestEstimator, {"n_estimators": 30, "max_features": 0.8, "max_leaves": 300}),
    "extra_tree": (
        ExtraTreesEstimator,
        {"n_estimators": 30, "max_features": 0.8, "max_leaves": 300},
    ),
    "lrl1": (LRL1Classifier, {"C": 1.0}),
}


def _synthetic(task: str, n: int = 2400, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "amount": rng.normal(0, 1, n),
            "count": rng.integers(-3, 10, n).astype(float),
            "shop": rng.choice(list("pqrstuvw"), n),
            "tier": rng.choice(["gold", "silver", "bronze"], n),
            "wait": rng.exponential(1, n),
        }
    )
    df.loc[rng.random(n) < 0.1, "amount"] = np.nan
    df.loc[rng.random(n) < 0.1, "shop"] = None
    df.loc[rng.random(n) < 0.08, "count"] = 0.0
    df.loc[rng.random(n) < 0.05, "wait"] = np.nan
    z = (
        df["amount"].fillna(0.4)
        + df["shop"].isin(["p", "q", "r"]) * 1.2
        - 0.1 * df["count"]
        + (df["tier"] == "gold") * 0.5
        + rng.normal(0, 0.5, n)
    )
    if task == "regression":
        return df, (z * 10).to_numpy()
    if task == "multiclass":
        return df, np.digitize(z, [-0.2, 0.7])
    return df, (z > 0.3).astype(int).to_numpy()


def _odd_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Held-out rows plus missing, unseen, negative, zero and tiny values."""
    odd = df.head(40).copy()
    odd.loc[odd.index[:8], "shop"] = "never-seen"
    odd.loc[odd.index[8:16], "tier"] = None
    odd.loc[odd.index[16:24], "amount"] = np.nan
    odd.loc[odd.index[24:28], "amount"] = 0.0
    odd.loc[odd.index[28:32], "amount"] = 1e-40
    odd.loc[odd.index[32:36], "count"] = -7.0
    odd.loc[odd.index[36:40], ["amount", "count", "shop", "tier", "wait"]] = None
    return pd.concat([df, odd], ignore_index=True)


def _model(
    task: str,
    names: list[str],
    X_df: pd.DataFrame,
    y: np.ndarray,
    weights: list[float] | None = None,
    threshold: float | None = 0.5,
) -> TabularModel:
    enc = Encoder.from_frame(X_df)
    X = enc.encode_frame(X_df)
    flaml_task = "regression" if task == "regression" else "classification"
    members = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, name in enumerate(names):
            cls, cfg = LEARNERS[name]
            m = fit_member(cls, name, cfg, X, y, flaml_task, enc.categorical_indices, 1)
            m.weight = weights[i] if weights else 1.0
            members.append(m)
    classes = [] if task == "regression" else sorted(set(y.tolist()))
    return TabularModel(
        task=flaml_task,
        encoder=enc,
        members=members,
        classes=classes,
        threshold=threshold if len(classes) == 2 else None,
        positive_label=classes[1] if len(classes) == 2 else None,
    )


def _roundtrip(model: TabularModel, tmp_path: Path) -> fastpath.CompiledModel:
    fastpath.save(fastpath.compile_model(model), tmp_path / "fast")
    return fastpath.load(tmp_path / "fast")


def _assert_same(model: TabularModel, compiled: fastpath.CompiledModel, df: pd.DataFrame) -> None:
    records = json.loads(df.to_json(orient="records"))  # what a JSON client sends
    ref = model.predict(None, df)
    got = compiled.predict_records(records)
    if model.task == "classification":
        assert got == list(ref)
        proba = np.asarray(compiled.predict_proba_records(records))
        assert np.abs(proba - model.predict_proba_frame(df)).max() <= 1e-9
    else:
        assert np.abs(np.asarray(got) - ref).max() <= 1e-9 * max(1.0, np.abs(ref).max())
    report = fastpath.verify(model, compiled, df)
    assert report["ok"], report
    assert report["rows"] == len(df) and report["label_mismatches"] == 0


CASES = [
    ("binary", ["lgbm"]),
    ("binary", ["xgboost"]),
    ("binary", ["xgb_limitdepth"]),
    ("binary", ["rf"]),
    ("binary", ["extra_tree"]),
    ("binary", ["lgbm", "xgb_limitdepth", "rf", "extra_tree"]),
    ("multiclass", ["lgbm"]),
    ("multiclass", ["xgboost"]),
    ("multiclass", ["rf"]),
    ("multiclass", ["extra_tree"]),
    ("multiclass", ["lgbm", "xgboost", "extra_tree"]),
    ("regression", ["lgbm"]),
    ("regression", ["xgb_limitdepth"]),
    ("regression", ["rf"]),
    ("regression", ["extra_tree"]),
    ("regression", ["lgbm", "xgboost", "rf"]),
]


@pytest.mark.parametrize(("task", "names"), CASES, ids=[f"{t}-{'+'.join(n)}" for t, n in CASES])
def test_compiled_matches_native(task: str, names: list[str], tmp_path: Path) -> None:
    df, y = _synthetic(task)
    weights = [3.0, 1.0, 2.0, 1.0][: len(names)] if len(names) > 1 else None
    model = _model(task, names, df.iloc[:1800], y[:1800], weights=weights, threshold=0.4)
    compiled = _roundtrip(model, tmp_path)
    _assert_same(model, compiled, _odd_rows(df.iloc[1800:]))
    if "lgbm" in names:
        lgbm = compiled.members[names.index("lgbm")]
        arrays = compiled.member_arrays[names.index("lgbm")]
        assert lgbm["kind"] == "lgbm" and "cat_table" in arrays  # categorical splits exercised


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_logistic_regression_matches_and_rejects_missing_like_native(
    task: str, tmp_path: Path
) -> None:
    df, y = _synthetic(task)
    df = df.fillna({"amount": 0.0, "wait": 1.0, "shop": "p"})
    model = _model(task, ["lrl1"], df.iloc[:1800], y[:1800])
    compiled = _roundtrip(model, tmp_path)
    _assert_same(model, compiled, df.iloc[1800:])
    unseen = df.iloc[1800:1805].assign(shop="never-seen")  # encodes to NaN
    with pytest.raises(ValueError):
        model.predict(None, unseen)
    with pytest.raises(ValueError):
        compiled.predict_records(unseen.to_dict("records"))
    assert fastpath.verify(model, compiled, unseen)["ok"]  # both refuse the rows


def test_unsupported_members_raise_not_compilable() -> None:
    df, y = _synthetic("binary", n=400)
    enc = Encoder.from_frame(df)
    X = np.nan_to_num(enc.encode_frame(df))
    knn = KNeighborsClassifier().fit(X, y)
    model = TabularModel(
        task="classification",
        encoder=enc,
        members=[Member("sklearn", knn, name="knn")],
        classes=[0, 1],
        threshold=0.5,
    )
    with pytest.raises(fastpath.NotCompilable, match="KNeighborsClassifier"):
        fastpath.compile_model(model)

    import xgboost as xgb

    dart = xgb.XGBClassifier(n_estimators=5, booster="dart").fit(X, y).get_booster()
    model.members = [Member("xgboost", dart, name="dart")]
    with pytest.raises(fastpath.NotCompilable, match="dart"):
        fastpath.compile_model(model)


def test_save_replaces_directory_and_load_needs_only_numpy(tmp_path: Path) -> None:
    df, y = _synthetic("multiclass", n=1200)
    model = _model("multiclass", ["lgbm", "xgboost", "rf"], df.iloc[:1000], y[:1000])
    compiled = fastpath.compile_model(model)
    target = tmp_path / "fast"
    fastpath.save(compiled, target)
    fastpath.save(compiled, target)  # a second save replaces the first
    assert sorted(p.name for p in target.iterdir()) == ["arrays.npz", "fastpath.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["fast"]

    rows = _odd_rows(df.iloc[1000:]).head(60)
    records = json.loads(rows.to_json(orient="records"))
    code = f"""
import json, sys
sys.path.insert(0, {str(REPO)!r})
from lib.local import fastpath
m = fastpath.load({str(target)!r})
out = {{"labels": m.predict_records(json.loads(sys.stdin.read())), "proba": None}}
out["proba"] = m.predict_proba_records([{{"amount": 1.0, "shop": "p"}}])
out["heavy"] = sorted(n for n in {HEAVY!r} if n in sys.modules)
print(json.dumps(out))
"""
    res = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(records),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(res.stdout)
    assert out["heavy"] == []
    assert out["labels"] == list(model.predict(None, rows))
    ref = model.predict_proba_frame(pd.DataFrame([{"amount": 1.0, "shop": "p"}]))
    assert np.abs(np.asarray(out["proba"]) - ref).max() <= 1e-9


@pytest.mark.slow
@pytest.mark.skipif(not BANK.exists(), reason=f"{BANK} is not present on this machine")
def test_bank_marketing_ensemble_matches_and_is_fast(tmp_path: Path) -> None:
    data = pd.read_csv(BANK).sample(3000, random_state=0).reset_index(drop=True)
    y = (data.pop("y") == "yes").astype(int).to_numpy()
    train, test = data.iloc[:2400], data.iloc[2400:].copy()
    test.loc[test.index[:20], "job"] = "astronaut"
    test.loc[test.index[20:40], ["age", "euribor3m", "month"]] = None
    names = ["lgbm", "xgb_limitdepth", "xgboost", "rf", "extra_tree"]
    LEARNERS["lgbm"] = (LGBMEstimator, {**LEARNERS["lgbm"][1], "n_estimators": 200})
    try:
        model = _model("binary", names, train, y[:2400], weights=[4, 2, 1, 1, 1], threshold=0.45)
    finally:
        LEARNERS["lgbm"] = (LGBMEstimator, {**LEARNERS["lgbm"][1], "n_estimators": 80})
    compiled = _roundtrip(model, tmp_path)
    _assert_same(model, compiled, test)

    lr_model = _model("binary", ["lrl1"], train, y[:2400])
    _assert_same(lr_model, _roundtrip(lr_model, tmp_path / "lr"), data.iloc[2400:])

    record = [json.loads(test.iloc[[0]].to_json(orient="records"))[0]]
    assert compiled.predict_records(record) == model.fast_predict(record)
    n = 200
    t_native = min(timeit.repeat(lambda: model.fast_predict(record), number=n, repeat=5)) / n
    t_fast = min(timeit.repeat(lambda: compiled.predict_records(record), number=n, repeat=5)) / n
    trees = sum(int(compiled.member_arrays[i]["roots"].size) for i in range(len(names)))
    print(
        f"\nbank ensemble ({trees} trees, {len(names)} members): one row "
        f"compiled {t_fast * 1e3:.3f} ms, TabularModel.fast_predict {t_native * 1e3:.3f} ms"
    )
    assert t_fast < 5e-3  # loose: shared machines drift; the printed numbers are the record


@pytest.mark.parametrize("params", [{"zero_as_missing": True}, {"use_missing": False}])
def test_lightgbm_missing_value_modes(params: dict, tmp_path: Path) -> None:
    import lightgbm as lgb

    df, y = _synthetic("binary")
    enc = Encoder.from_frame(df.iloc[:1800])
    X = enc.encode_frame(df.iloc[:1800])
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 15, **params},
        lgb.Dataset(X, y[:1800], categorical_feature=enc.categorical_indices),
        num_boost_round=40,
    )
    model = TabularModel(
        task="classification",
        encoder=enc,
        members=[Member("lgbm", booster, name="lgbm")],
        classes=[0, 1],
        threshold=0.5,
    )
    seen = set()
    stack = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            seen.add(node["missing_type"])
            stack += [node["left_child"], node["right_child"]]
    assert ("Zero" if params.get("zero_as_missing") else "None") in seen
    _assert_same(model, _roundtrip(model, tmp_path), _odd_rows(df.iloc[1800:]))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_single_rows_chunks_and_batches_agree_exactly(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df, y = _synthetic(task)
    names = ["lgbm", "xgboost", "rf", "extra_tree"]
    model = _model(task, names, df.iloc[:1800], y[:1800], weights=[3.0, 1.0, 2.0, 1.0])
    compiled = _roundtrip(model, tmp_path)
    rows = _odd_rows(df.iloc[1800:])
    # Values sitting exactly on split thresholds: XGBoost's strict test against LightGBM's
    # and sklearn's inclusive ones, in float32 and double.
    forest = compiled.forest
    amount = forest.slot_thr[
        (forest.slot_col % len(compiled.feature_names)) == compiled.feature_names.index("amount")
    ]
    amount = amount[np.isfinite(amount)][:200]
    on_split = rows.iloc[: amount.size].copy()
    on_split["amount"] = amount
    on_split2 = on_split.copy()
    on_split2["amount"] = np.nextafter(amount, np.inf)
    _assert_same(model, compiled, rows)
    exact = pd.concat([on_split, on_split2], ignore_index=True)  # JSON would round them
    report = fastpath.verify(model, compiled, exact)
    assert report["ok"] and report["encoding_mismatches"] == 0, report
    assert report["max_abs_diff"] <= 1e-9

    x = np.concatenate(
        [
            compiled.encode_records(json.loads(rows.to_json(orient="records"))),
            compiled.encode_records(exact.to_dict("records")),
        ]
    )
    batch = compiled.encoded_scores(x)
    single = np.concatenate([compiled.encoded_scores(x[i : i + 1]) for i in range(len(x))])
    assert np.array_equal(batch, single)
    monkeypatch.setattr(compiled_model, "CHUNK_CELLS", 7 * forest.n_trees)  # 7-row chunks
    assert compiled.chunk_rows == 7
    assert np.array_equal(compiled.encoded_scores(x), batch)
    pair = compiled.encoded_scores(x[:2])  # the smallest batch takes the many-rows path
    assert np.array_equal(pair, batch[:2])


def test_forest_leaves_match_a_plain_walk_from_the_roots(tmp_path: Path) -> None:
    df, y = _synthetic("multiclass")
    model = _model("multiclass", ["lgbm", "xgboost", "rf"], df.iloc[:1800], y[:1800])
    forest = _roundtrip(model, tmp_path).forest
    records = json.loads(_odd_rows(df.iloc[1800:]).to_json(orient="records"))
    x = fastpath.RecordEncoder(forest_spec := model.encoder.feature_spec).encode(records)
    assert len(forest_spec) == forest.n_features
    decisions = forest.decisions(x)
    nodes = forest.leaves(x)
    assert nodes.shape == (forest.n_trees, len(x))
    for t in range(0, forest.n_trees, 5):
        for r in range(0, len(x), 9):
            n = int(forest.roots[t])
            while forest.slot[n] != forest.leaf_slot:
                n = int(forest.base[n] + decisions[forest.slot[n], r])
            assert n == nodes[t, r]
    one = np.concatenate([forest.leaves(x[r : r + 1]) for r in range(len(x))], axis=1)
    assert np.array_equal(one, nodes)
