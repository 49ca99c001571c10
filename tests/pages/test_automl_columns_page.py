"""The AutoML form's column choice: flagged columns start unticked, one click keeps them."""

from tests.pages.conftest import button, open_page
from tests.test_guardrails import titanic_like


def test_flagged_columns_start_unticked_and_can_be_kept(local_workspace) -> None:
    csv = titanic_like().to_csv(index=False).encode()
    local_workspace.datasets.upload("titanic", csv, "titanic.csv")
    at = open_page("automl.py")
    at.selectbox(key="automl_target_titanic_1").set_value("survived").run()
    assert not at.exception, at.exception

    features = at.multiselect(key="automl_features_titanic_1_survived")
    assert features.value == ["pclass", "sex", "age"]
    [flags] = [d.value for d in at.dataframe if "flag" in d.value.columns]
    assert dict(zip(flags["column"], flags["flag"], strict=True)) == {
        "name": "id-like",
        "ticket": "id-like",
        "boat": "leakage",
    }
    assert any("AUC 0.9" in why for why in flags["why"])

    button(at, "Keep the flagged columns").click().run()
    assert at.multiselect(key="automl_features_titanic_1_survived").value == [
        "pclass",
        "name",
        "sex",
        "age",
        "ticket",
        "boat",
    ]


def test_submitted_choice_is_stored_with_the_run(local_workspace) -> None:
    csv = titanic_like().to_csv(index=False).encode()
    local_workspace.datasets.upload("titanic", csv, "titanic.csv")
    at = open_page("automl.py")
    at.selectbox(key="automl_target_titanic_1").set_value("survived").run()
    button(at, "Submit AutoML run").click().run()
    assert not at.error, [e.value for e in at.error]
    [job] = local_workspace.automl.jobs()
    assert job.spec["request"]["features"] == ["pclass", "sex", "age"]
    local_workspace.automl.cancel(job.id)


def test_a_feature_that_almost_matches_the_model_is_named_beside_its_score(
    local_workspace,
) -> None:
    import json

    from lib.guardrails import relative_leakage
    from tests.support.populate import finished_automl_run

    job = finished_automl_run(local_workspace, ensemble_score=0.982)
    [flag] = relative_leakage({"boat": 0.977, "sex": 0.75}, 0.982, "classification")
    details = {
        "best_estimator": "lgbm",
        "metrics": {"AUC_weighted": 0.982},
        "leakage": {"metric": "AUC_weighted", "model_score": 0.982, "flags": [flag.__dict__]},
    }
    path = local_workspace.extras["jobs"].job_dir(job.id) / "details.json"
    path.write_text(json.dumps(details))
    at = open_page("automl.py")
    assert not at.exception, at.exception
    [note] = [w.value for w in at.warning if "target leakage" in w.value]
    assert "boat alone reaches 99.0 % of the model's AUC 0.982" in note and "sex" not in note

    path.write_text(json.dumps({**details, "leakage": {"flags": []}}))
    at = open_page("automl.py")
    assert not [w for w in at.warning if "target leakage" in w.value]


def test_a_wide_table_is_chosen_by_the_columns_left_out(local_workspace) -> None:
    """Thousands of ticked columns do not render: past FORM_PICK_MAX the form picks what is
    left out, starting with the flagged columns, and submits every other column."""
    import numpy as np
    import pandas as pd

    from lib.automl_rules import FORM_PICK_MAX

    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(120, FORM_PICK_MAX + 50)).round(3))
    wide.columns = [f"gene_{i}" for i in range(wide.shape[1])]
    wide.insert(0, "sample_id", [f"S-{i:04d}" for i in range(120)])
    signal = wide["gene_3"] + wide["gene_4"] + wide["gene_5"] + rng.normal(size=120)
    wide["subtype"] = np.where(signal > 0, "luminal", "basal")
    local_workspace.datasets.upload("genes", wide.to_csv(index=False).encode(), "genes.csv")
    at = open_page("automl.py")
    at.selectbox(key="automl_target_genes_1").set_value("subtype").run()
    assert not at.exception, at.exception
    left_out = at.multiselect(key="automl_features_genes_1_subtype")
    assert left_out.label == "Columns left out" and left_out.value == ["sample_id"]
    assert any(
        f"{FORM_PICK_MAX + 50:,} of the {FORM_PICK_MAX + 51:,}" in c.value for c in at.caption
    )
    left_out.set_value(["sample_id", "gene_0"]).run()
    button(at, "Submit AutoML run").click().run()
    assert not at.error, [e.value for e in at.error]
    [job] = local_workspace.automl.jobs()
    chosen = job.spec["request"]["features"]
    assert len(chosen) == FORM_PICK_MAX + 49 and "gene_0" not in chosen and "gene_1" in chosen
    local_workspace.automl.cancel(job.id)
