from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lib import guardrails as seam
from lib.local import guardrails as gr
from lib.local.automl_engine import AutoMLSpec
from lib.local.automl_engine.data import prepare


def _by_name(rails: list[gr.Guardrail]) -> dict[str, gr.Guardrail]:
    return {r.name: r for r in rails}


@pytest.fixture
def messy() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    age = rng.integers(18, 90, n).astype(float)
    age[:30] = np.nan
    return pd.DataFrame(
        {
            "age": age,
            "country": rng.choice(["fr", "de", "it"], n),
            "always_one": 1,
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "city": [f"city{i % 250}" for i in range(n)],
            "y": np.where(np.arange(n) < 30, "yes", "no"),  # 5% positive
        }
    )


def test_flags_imbalance_missing_constant_and_cardinality(messy: pd.DataFrame) -> None:
    rails = _by_name(gr.check_data(messy, "y", "classification"))

    assert rails["Class balancing detection"].status == gr.ALERTED
    assert "yes: 5.0%" in rails["Class balancing detection"].details
    # weighted average precision is mostly the largest class's: not the metric to suggest
    assert (
        "Prefer AUC_weighted over accuracy (always answering the largest class scores 95.0%)"
        in (rails["Class balancing detection"].action)
    )

    missing = rails["Missing feature values imputation"]
    assert missing.status == gr.DONE
    assert missing.columns == ["age"]
    assert "5.0%" in missing.details

    constant = rails["Constant feature detection"]
    assert constant.status == gr.DONE and constant.columns == ["always_one"]

    cardinality = rails["High cardinality feature detection"]
    assert cardinality.status == gr.DONE
    assert set(cardinality.columns) == {"customer_id", "city"}

    assert rails["Missing target values"].status == gr.PASSED
    assert all(r.status in (gr.PASSED, gr.DONE, gr.ALERTED) for r in rails.values())


def test_constant_columns_and_duplicate_rows_are_counted_exactly() -> None:
    n = 200
    frame = pd.DataFrame(
        {
            "one_and_gaps": [1.0 if i % 3 else np.nan for i in range(n)],
            "all_missing": [np.nan] * n,
            "same_text": ["a"] * n,
            "two_values": ["a"] * (n - 1) + ["b"],
            "mixed": [1] * (n - 1) + ["1"],  # 1 and "1" differ
            "x": np.arange(n) % 50,
            "y": ["p", "q"] * (n // 2),
        }
    )
    assert gr.constant_columns(frame, "y") == ["one_and_gaps", "all_missing", "same_text"]
    # the count is pandas' own comparison of every cell (a missing value equals a missing one)
    expected = int(frame.duplicated().sum())
    assert 0 < expected < n - 50
    rails = _by_name(gr.check_data(frame, "y", "classification"))
    assert rails["Duplicate rows"].details.startswith(f"{expected} of {n} rows")


def test_dropped_columns_are_constant_and_id_like_only(messy: pd.DataFrame) -> None:
    assert gr.columns_to_drop(messy, "y") == ["always_one", "customer_id"]
    # city has many values but repeats: it is kept (rare values grouped), not dropped
    assert gr.high_cardinality_columns(messy, "y") == ["city"]


def test_clean_balanced_frame_passes_everything() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {"x": rng.normal(size=400), "c": rng.choice(list("abc"), 400), "y": ["a", "b"] * 200}
    )
    rails = gr.check_data(df, "y", "classification")
    assert [r.status for r in rails] == [gr.PASSED] * len(rails)


def test_missing_target_and_regression_has_no_class_check() -> None:
    df = pd.DataFrame({"x": np.arange(100.0), "y": [np.nan] * 10 + list(range(90))})
    rails = _by_name(gr.check_data(df, "y", "regression"))
    assert rails["Missing target values"].status == gr.DONE
    assert "10 of 100" in rails["Missing target values"].details
    assert "Class balancing detection" not in rails


def test_unknown_target_is_an_error() -> None:
    with pytest.raises(ValueError, match="target"):
        gr.check_data(pd.DataFrame({"x": [1, 2]}), "y", "classification")


def test_guardrail_is_plain_data(messy: pd.DataFrame) -> None:
    d = gr.check_data(messy, "y", "classification")[0].to_dict()
    assert set(d) == {"name", "status", "details", "action", "columns"}


def test_titanic_like_frame_leak_alerted_and_ids_dropped() -> None:
    from tests.test_guardrails import titanic_like

    frame = titanic_like()
    rails = _by_name(gr.check_data(frame, "survived", "classification"))
    leak = rails["Target leakage detection"]
    assert leak.status == gr.ALERTED and leak.columns == ["boat"]
    assert "boat predicts survived with holdout AUC 0.9" in leak.details
    # age's `?` tokens are missing values, not a category
    assert "age" in rails["Missing feature values imputation"].columns
    assert gr.columns_to_drop(frame, "survived") == ["name", "ticket"]
    # without a column choice the rail says they were dropped, as they are
    action = rails["High cardinality feature detection"].action
    assert "name, ticket were dropped" in action and "as chosen" not in action
    assert action.startswith("Id-like and free-text columns") and action.endswith(".")


def test_rails_name_columns_as_the_file_spells_them() -> None:
    from tests.test_guardrails import titanic_like

    frame = titanic_like().rename(columns={"name": "Passenger Name", "ticket": "TicketNo"})
    rails = _by_name(gr.check_data(frame, "survived", "classification"))
    action = rails["High cardinality feature detection"].action
    # TicketNo is a ticket number in camel case: an identifier like `ticket`.
    assert "columns Passenger Name, TicketNo were dropped" in action


def test_chosen_columns_are_kept_and_the_rest_left_out() -> None:
    from tests.test_guardrails import titanic_like

    frame = titanic_like()
    chosen = ["pclass", "sex", "age", "name"]
    assert gr.columns_to_drop(frame, "survived", chosen) == ["boat", "ticket"]
    rails = _by_name(gr.check_data(frame, "survived", "classification", chosen))
    assert rails["Target leakage detection"].status == gr.PASSED
    assert "kept, as chosen" in rails["High cardinality feature detection"].action


def test_rownames_flagged_on_r_style_frame() -> None:
    from tests.test_guardrails import r_style

    frame = r_style()
    rails = _by_name(gr.check_data(frame, "price", "regression"))
    assert rails["Target leakage detection"].columns == ["rownames"]
    assert "R² 0.9" in rails["Target leakage detection"].details
    assert "rownames" in gr.columns_to_drop(frame, "price")


def test_model_leakage_reuses_the_scores_from_before_the_search() -> None:
    from tests.test_guardrails import titanic_like

    rails = gr.check_data(titanic_like(), "survived", "classification")
    before = _by_name(rails)["Target leakage detection"]
    assert "boat" in before.scores and "scores" not in before.to_dict()
    boat = before.scores["boat"]
    # A model barely better than boat alone: boat is flagged against it; id-like columns
    # the model did not train on are not.
    best = 0.5 + (boat - 0.5) / 0.99
    rail, record = gr.model_leakage(
        rails, {"AUC_weighted": best}, "classification", ["pclass", "sex", "age", "boat"]
    )
    assert rail.name == gr.MODEL_LEAKAGE_GUARDRAIL and rail.status == gr.ALERTED
    assert rail.columns == ["boat"] and "boat alone reaches 99.0 %" in rail.details
    assert record["flags"][0]["column"] == "boat" and record["metric"] == "AUC_weighted"
    assert set(record["one_feature_scores"]) == {"pclass", "sex", "age", "boat"}
    # A model well above boat alone: nothing flagged.
    rail, record = gr.model_leakage(rails, {"AUC_weighted": 0.999}, "classification", ["boat"])
    assert rail.status == gr.PASSED and record["flags"] == []
    assert gr.model_leakage([], {"AUC_weighted": 0.9}, "classification", ["boat"]) is None


def test_a_weak_model_beaten_by_one_column_is_said_so_not_called_leak_free() -> None:
    """Student grades at a short budget: the model reached R² 0.172, G2 alone 0.40 (not strong
    enough alone to be a leak); the row said 'No feature alone reaches 98 %', which was false."""
    rails = [gr.Guardrail(gr.LEAKAGE_GUARDRAIL, gr.PASSED, "", scores={"G2": 0.40, "age": 0.01})]
    rail, record = gr.model_leakage(rails, {"r2_score": 0.172}, "regression", ["G2", "age"])
    assert rail.status == gr.PASSED and record["flags"] == [] and rail.columns == []
    assert rail.details.startswith("G2 alone scores R² 0.400, above the model's 0.172")
    assert "the model is weak rather than G2 a leak" in rail.details
    assert "No feature alone" not in rail.details
    rail, _ = gr.model_leakage(rails, {"r2_score": 0.60}, "regression", ["G2", "age"])
    assert rail.details.startswith("No feature alone reaches 98% of the model's r2_score 0.600")


def test_a_model_no_better_than_chance_is_alerted_not_passed() -> None:
    """A diabetes replica's model reached AUC 0.493; the row said Passed, 'Not checked'."""
    rails = [gr.Guardrail(gr.LEAKAGE_GUARDRAIL, gr.PASSED, "", scores={"age": 0.51})]
    rail, _ = gr.model_leakage(rails, {"AUC_weighted": 0.493}, "classification", ["age"])
    assert rail.status == gr.ALERTED
    assert rail.details.startswith("The model does no better than chance (AUC 0.493, chance 0.5)")
    assert "do not deploy" in rail.action
    rail, _ = gr.model_leakage(rails, {"r2_score": -0.2}, "regression", ["age"])
    assert rail.status == gr.ALERTED and "(R² -0.200, chance 0)" in rail.details


def test_the_run_checks_its_features_against_its_best_model(tmp_path) -> None:
    """The engine applies the rule to the scores taken before the search, and stores it."""
    from dataclasses import asdict

    from lib.local import tracking
    from lib.local.automl_engine import run_automl
    from tests.test_guardrails import titanic_like

    frame = titanic_like()
    checked = gr.check_data(frame, "survived", "classification")
    before = _by_name(checked)["Target leakage detection"].scores
    tracking.ensure_store(tmp_path)
    result = run_automl(
        frame,
        AutoMLSpec(
            target="survived", time_budget_s=10, max_trials=2, estimators=["lgbm"], ensemble=False
        ),
        tracking_uri=tracking.tracking_uri(tmp_path),
        artifact_dir=tmp_path / "artifacts",
        log=lambda _m: None,
        guardrails=checked,
    )
    record = result.details["leakage"]
    trained = [f["name"] for f in result.feature_spec]
    assert record["one_feature_scores"] == {c: before[c] for c in trained}
    assert record["model_score"] == result.best_metrics["AUC_weighted"]
    expected = seam.relative_leakage(before, record["model_score"], "classification")
    assert record["flags"] == [asdict(f) for f in expected if f.column in trained]
    rail = next(g for g in result.guardrails if g["name"] == gr.MODEL_LEAKAGE_GUARDRAIL)
    assert rail["columns"] == [f["column"] for f in record["flags"]]
    assert rail["status"] == (gr.ALERTED if record["flags"] else gr.PASSED)
    assert result.guardrails[-1]["name"] == "Time budget"


def test_class_labels_spelled_two_ways_are_learned_as_one() -> None:
    """Hand-entered answers: `Yes`, ` yes` and `YES ` were learned as three classes, the
    endpoint answering each; they are the spelling most rows use, and the guardrail says so."""
    y = ["Yes"] * 40 + [" yes"] * 5 + ["YES "] * 2 + ["No"] * 50 + ["NO"] * 5
    frame = pd.DataFrame({"x": [i % 7 for i in range(len(y))], "y": y})
    rail = _by_name(gr.check_data(frame, "y", "classification"))["Class label spelling"]
    assert rail.status == gr.DONE
    assert "' yes' (5), 'YES ' (2) as 'Yes'" in rail.details and "'NO' (5) as 'No'" in rail.details
    clean = frame.assign(y=frame["y"].str.strip().str.capitalize())
    assert "Class label spelling" not in _by_name(gr.check_data(clean, "y", "classification"))
    prepared = prepare(
        frame, AutoMLSpec(target="y", time_budget_s=10), "accuracy", log=lambda _: None
    )
    assert prepared.classes == ["No", "Yes"] and prepared.y.tolist() == [1] * 47 + [0] * 55
    # numbers are not respelled, nor a regression target
    assert seam.label_spellings(pd.Series([1, 1, 2])) == {}


def test_categories_written_two_ways_are_named() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "sex": ["Male"] * 50 + ["male"] * 4 + ["Female"] * 46,
            "city": rng.choice(["Lyon", "Nice"], 100),
            "code": [f"A{i}" for i in range(100)],  # distinct values: no spelling to compare
            "y": rng.integers(0, 2, 100),
        }
    )
    rail = _by_name(gr.check_data(frame, "y", "classification"))["Category spelling"]
    assert rail.status == gr.ALERTED and rail.columns == ["sex"]
    assert "sex: 'Male' (50) / 'male' (4)" in rail.details
    clean = frame.assign(sex=frame["sex"].str.capitalize())
    assert "Category spelling" not in _by_name(gr.check_data(clean, "y", "classification"))
    # a column left out of the run is not looked at
    chosen = gr.check_data(frame, "y", "classification", ["city", "code"])
    assert "Category spelling" not in _by_name(chosen)


def test_the_run_names_features_that_add_up_to_the_target() -> None:
    from tests.test_guardrails import bike_share

    rail = _by_name(gr.check_data(bike_share(), "cnt", "regression"))["Target leakage detection"]
    assert rail.status == gr.ALERTED
    assert set(rail.columns) == {"casual", "registered"}
    assert "equals cnt on 100% of rows" in rail.details


def test_zeros_that_mean_not_measured_are_named_before_the_search() -> None:
    rng = np.random.default_rng(5)
    n = 700
    frame = pd.DataFrame(
        {
            "Pregnancies": rng.poisson(3, n),
            "Insulin": np.where(np.arange(n) % 2 == 0, 0, rng.integers(15, 800, n)),
            "Glucose": rng.normal(120, 30, n).clip(44, 199).round(),
            "Outcome": rng.integers(0, 2, n),
        }
    )
    found = {g.name: g for g in gr.check_data(frame, "Outcome", "classification")}
    row = found["Values that may mean missing"]
    assert row.status == "Alerted" and row.columns == ["Insulin"]
    assert "Insulin = 0 in 350 rows (50.0%)" in row.details and "Insulin=0" in row.details
    clean = frame.assign(Insulin=rng.integers(15, 800, n))
    assert "Values that may mean missing" not in {
        g.name for g in gr.check_data(clean, "Outcome", "classification")
    }
