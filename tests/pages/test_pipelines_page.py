"""The Pipelines page via AppTest on a temp workspace: define, run, publish, schedule, read a run."""

from __future__ import annotations

import pytest

from lib.local.pipelines.store import now_iso
from lib.workspace import PipelineSpec
from tests.pages.conftest import button, open_page
from tests.support.waiting import wait_for

TINY = b"x,y\n" + b"".join(f"{i},{'yes' if i % 3 else 'no'}\n".encode() for i in range(30))


@pytest.fixture
def ws(local_workspace):  # noqa: ANN001, ANN201
    yield local_workspace
    local_workspace.pipelines.agent_manager.stop()
    for run in local_workspace.pipelines.runs():
        if not run.is_terminal:
            local_workspace.pipelines.cancel_run(run.id)


def test_without_datasets_points_to_upload(ws) -> None:
    at = open_page("pipelines.py")
    assert any("Upload a dataset first" in i.value for i in at.info)


def test_define_a_pipeline_from_the_form(ws) -> None:
    ws.datasets.upload("tiny", TINY, "tiny.csv")
    at = open_page("pipelines.py")
    assert at.selectbox(key="pipelines_form_(new pipeline)_target_tiny").value == "y"
    at.text_input(key="pipelines_form_(new pipeline)_name").set_value("Bad Name")
    button(at, "Save pipeline").click().run()
    assert any("lower-case" in e.value for e in at.error)
    assert ws.pipelines.list() == []

    at.text_input(key="pipelines_form_(new pipeline)_name").set_value("retrain")
    at.number_input(key="pipelines_form_(new pipeline)_budget").set_value(30)
    at.radio(key="pipelines_form_(new pipeline)_deploy").set_value("Deploy to an endpoint").run()
    at.text_input(key="pipelines_form_(new pipeline)_endpoint").set_value("tiny-ep")
    at.number_input(key="pipelines_form_(new pipeline)_margin").set_value(0.01)
    button(at, "Save pipeline").click().run()
    assert not at.exception, at.exception
    saved = ws.pipelines.get("retrain")
    assert saved.version == 1
    assert (saved.spec.dataset, saved.spec.target, saved.spec.dataset_version) == (
        "tiny",
        "y",
        None,
    )
    assert saved.spec.time_budget_s == 30
    assert (saved.spec.deploy_endpoint, saved.spec.gated, saved.spec.gate_margin) == (
        "tiny-ep",
        True,
        0.01,
    )
    assert any("retrain v1" in m.value and "tiny-ep" in m.value for m in at.markdown)
    assert any(m.value == "Saved **retrain v1**." for m in at.success)
    # A second pipeline, saved while the first is picked: the page says so and shows it.
    at.selectbox(key="pipelines_edit").set_value("(new pipeline)").run()
    at.text_input(key="pipelines_form_(new pipeline)_name").set_value("nightly")
    button(at, "Save pipeline").click().run()
    assert not at.exception, at.exception
    assert any(m.value == "Saved **nightly v1**." for m in at.success)
    assert at.selectbox(key="pipelines_pick").value == "nightly"


def test_run_now_shows_the_run_and_its_failed_step(ws) -> None:
    ws.datasets.upload("tiny", TINY, "tiny.csv")
    ws.pipelines.save("retrain", PipelineSpec(dataset="tiny", target="y"))
    at = open_page("pipelines.py")
    at.number_input(key="pipelines_run_budget_retrain").set_value(20)
    button(at, "Run now").click().run()
    assert not at.exception, at.exception
    run = ws.pipelines.runs("retrain")[0]
    assert run.trigger == "manual" and run.parameters == {"time_budget_s": 20}
    table = at.dataframe[0].value
    assert run.id in set(table["run"])
    wait_for(lambda: ws.pipelines.get_run(run.id).is_terminal, 90)
    at.run()
    assert any("at least 50 are needed" in e.value for e in at.error)
    steps = " ".join(m.value for m in at.markdown)
    for step in ("dataset", "automl", "register", "gate", "deploy"):
        assert f"**{step}**" in steps
    assert "Failed" in " ".join(c.value for c in at.caption)


def test_gate_decision_shows_both_numbers(ws) -> None:
    ws.datasets.upload("tiny", TINY, "tiny.csv")
    ws.pipelines.save(
        "retrain", PipelineSpec(dataset="tiny", target="y", deploy_endpoint="tiny-ep")
    )
    store = ws.pipelines.store
    pipeline = store.get("retrain")
    run_id = store.create_run(pipeline, pipeline.spec, {}, "schedule:nightly", "retrain")
    gate = {
        "decision": "keep",
        "reason": "new 0.9012 vs live 0.9301 (AUC_weighted, gain -0.0289) does not beat the "
        "margin 0: the live model stays",
        "metric": "AUC_weighted",
        "challenger": 0.9012,
        "champion": 0.9301,
        "margin": 0.0,
        "champion_model": "tiny-y v1",
        "rows": 6590,
        "rows_kind": "holdout 20%",
    }
    for step, outputs in (
        ("dataset", {"dataset": "tiny", "dataset_version": 1, "rows": 30}),
        ("automl", {"automl_job": "automl-x", "metric": "AUC_weighted", "score": 0.9012}),
        ("register", {"model_name": "tiny-y", "model_version": 2}),
        ("gate", {"gate": gate}),
    ):
        store.update_step(
            run_id, step, outputs=outputs, state="Completed", started=now_iso(), ended=now_iso()
        )
    store.update_step(
        run_id, "deploy", outputs={"skipped": "the gate kept the live model"}, state="Skipped"
    )
    store.update_run(run_id, state="Completed", started=now_iso(), ended=now_iso())
    at = open_page("pipelines.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["New model · AUC_weighted"] == "0.9012"
    assert metrics["Live model · tiny-y v1"] == "0.9301"
    assert any("Gate: **keep**" in i.value for i in at.info)
    table = at.dataframe[0].value
    assert table.loc[0, "trigger"] == "schedule:nightly"
    assert table.loc[0, "gate"] == "keep: new 0.9012 vs live 0.9301"
    assert table.loc[0, "model"] == "tiny-y v2"
    labels = [b.label for b in at.button]
    assert "AutoML job" in labels and "Model tiny-y v2" in labels
    button(at, "AutoML job").click().run()
    assert at.session_state["automl_job"] == "automl-x"


@pytest.mark.slow
def test_publish_shows_url_masked_key_and_snippets(ws) -> None:
    ws.datasets.upload("tiny", TINY, "tiny.csv")
    ws.pipelines.save("retrain", PipelineSpec(dataset="tiny", target="y"))
    at = open_page("pipelines.py")
    button(at, "Publish").click().run()
    assert not at.exception, at.exception
    pipeline = ws.pipelines.get("retrain")
    primary, _ = ws.pipelines.keys("retrain")
    codes = [c.value for c in at.code]
    assert pipeline.rest_endpoint in codes
    assert not any(primary in c for c in codes)  # masked until revealed
    assert at.text_input(key="pipelines_primary_retrain").value.endswith(primary[-4:])
    at.toggle(key="pipelines_reveal_retrain").set_value(True).run()
    codes = [c.value for c in at.code]
    assert primary in codes
    curl = next(c for c in codes if c.startswith("curl"))
    assert pipeline.rest_endpoint in curl and f"Bearer {primary}" in curl


@pytest.mark.slow
def test_schedule_form_and_home_shows_the_next_run(ws) -> None:
    ws.datasets.upload("tiny", TINY, "tiny.csv")
    ws.pipelines.save("retrain", PipelineSpec(dataset="tiny", target="y"))
    at = open_page("pipelines.py")
    at.number_input(key="pipelines_sched_interval").set_value(6)
    at.selectbox(key="pipelines_sched_unit").set_value("hour")
    at.text_input(key="pipelines_sched_params").set_value('{"time_budget_s": "x"}')
    button(at, "Save schedule").click().run()
    assert any("time_budget_s" in e.value for e in at.error)
    at.text_input(key="pipelines_sched_params").set_value('{"time_budget_s": 20}')
    button(at, "Save schedule").click().run()
    assert not at.exception, at.exception
    saved = ws.pipelines.schedules("retrain")
    assert [(s.name, s.trigger, s.parameters) for s in saved] == [
        ("retrain-recurrence", "every 6 hours (UTC)", {"time_budget_s": 20})
    ]
    assert saved[0].next_run is not None
    home = open_page()
    links = [link.label for link in home.get("page_link")]
    assert any("retrain-recurrence" in label and "every 6 hours" in label for label in links)


def test_deleting_a_dataset_names_the_pipelines_that_train_on_it(ws) -> None:
    """It was deleted without a word while a published, scheduled pipeline trained on it."""
    ws.datasets.upload("tiny", TINY, "tiny.csv")
    ws.datasets.upload("other", TINY, "other.csv")
    ws.pipelines.save("retrain", PipelineSpec(dataset="tiny", target="y"))
    ws.pipelines.save("elsewhere", PipelineSpec(dataset="other", target="y"))
    ws.pipelines.publish("retrain")
    at = open_page("datasets.py")
    at.selectbox(key="datasets_pick").set_value("tiny").run()
    assert not at.exception, at.exception
    said = [w.value for w in at.warning if "Pipelines train on" in w.value]
    assert said == [
        "Pipelines train on **tiny**: **retrain** (published over REST). Deleted, their runs "
        "fail until a dataset of this name is uploaded again."
    ]
