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
