from tests.pages.conftest import button, open_page


def test_compute_page_shows_local_slots(local_workspace) -> None:
    at = open_page("compute.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Busy slots"] == "0"
    assert int(metrics["Idle slots"]) == local_workspace.settings.worker_slots
    assert metrics["Queued jobs"] == "0"
    assert metrics["CPU"].endswith("%")


def test_compute_page_lists_jobs(local_workspace) -> None:
    jobs = local_workspace.extras["jobs"]
    job = jobs.submit("sleep", "nap", {"seconds": 30})
    try:
        at = open_page("compute.py")
        table = at.dataframe[0].value
        assert job.id in set(table["job"])
        assert int({m.label: m.value for m in at.metric}["Busy slots"]) == 1
    finally:
        jobs.cancel(job.id)


def test_automl_page_without_datasets_points_to_upload(local_workspace) -> None:
    at = open_page("automl.py")
    assert any("Upload a dataset first" in i.value for i in at.info)


def test_automl_form_suggests_target_and_blocks_bad_request(local_workspace) -> None:
    csv = b"age,job,y\n" + b"".join(
        f"{20 + i % 50},j{i % 3},{'yes' if i % 4 else 'no'}\n".encode() for i in range(30)
    )
    local_workspace.datasets.upload("small", csv, "small.csv")
    at = open_page("automl.py")
    assert at.selectbox(key="automl_target_small_1").value == "y"
    assert at.selectbox(key="automl_task_small_1_y").value == "classification"
    button(at, "Submit AutoML run").click().run()
    assert any("at least 50 are needed" in e.value for e in at.error)
    assert local_workspace.automl.jobs() == []


def test_the_task_follows_the_chosen_target(local_workspace) -> None:
    csv = b"age,income,y\n" + b"".join(
        f"{20 + i % 50},{1000 + 37 * i},{'yes' if i % 4 else 'no'}\n".encode() for i in range(120)
    )
    local_workspace.datasets.upload("mixed", csv, "mixed.csv")
    at = open_page("automl.py")
    assert at.selectbox(key="automl_task_mixed_1_y").value == "classification"
    at.selectbox(key="automl_target_mixed_1").set_value("income").run()
    assert at.selectbox(key="automl_task_mixed_1_income").value == "regression"
    assert not any("regression target" in w.value for w in at.warning)
    button(at, "Submit AutoML run").click().run()
    assert not at.exception and not at.error
    (job,) = local_workspace.automl.jobs()
    request = job.spec["request"]
    assert request["task"] == "regression" and request["target"] == "income", request
    # the run's budget is said: a value typed out of range is not taken and the box keeps its last
    said = " ".join(m.value for m in at.success)
    assert f"{job.id}" in said and "regression of **income**, a 60 s time budget." in said


def test_the_form_says_how_class_labels_written_several_ways_are_learned(local_workspace) -> None:
    answers = ["Yes", "No", " yes", "NO ", "Yes", "No"]
    csv = b"age,Churn\n" + b"".join(
        f"{20 + i % 50},{answers[i % 6]}\n".encode() for i in range(120)
    )
    local_workspace.datasets.upload("hand", csv, "hand.csv")
    at = open_page("automl.py")
    assert at.selectbox(key="automl_target_hand_1").value == "Churn"
    (said,) = [i.value for i in at.info if "several ways" in i.value]
    assert "'yes' (20) as 'Yes'" in said and "'NO' (20) as 'No'" in said
    at.selectbox(key="automl_target_hand_1").set_value("age").run()
    assert not any("several ways" in i.value for i in at.info)


def test_the_automl_form_is_as_it_was_left_after_a_look_at_another_page(local_workspace) -> None:
    csv = b"age,income,y\n" + b"".join(
        f"{20 + i % 50},{1000 + 37 * i},{'yes' if i % 4 else 'no'}\n".encode() for i in range(120)
    )
    local_workspace.datasets.upload("mixed", csv, "mixed.csv")
    local_workspace.datasets.upload("other", csv, "other.csv")
    at = open_page("automl.py")
    at.selectbox(key="automl_dataset").set_value("mixed").run()
    at.selectbox(key="automl_target_mixed_1").set_value("income").run()
    at.number_input(key="automl_budget").set_value(30).run()
    at.text_input(key="automl_experiment").set_value("my-exp").run()
    at.multiselect(key="automl_estimators").set_value(["lgbm", "rf"]).run()
    at.switch_page("pages/datasets.py").run()
    assert not at.exception, at.exception
    assert "automl_budget" not in at.session_state  # Streamlit dropped the widgets' state
    at.switch_page("pages/automl.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="automl_dataset").value == "mixed"
    assert at.selectbox(key="automl_target_mixed_1").value == "income"
    assert at.selectbox(key="automl_task_mixed_1_income").value == "regression"
    assert at.number_input(key="automl_budget").value == 30
    assert at.text_input(key="automl_experiment").value == "my-exp"
    assert at.multiselect(key="automl_estimators").value == ["lgbm", "rf"]
    assert not at.warning, [w.value for w in at.warning]


def test_models_page_empty(local_workspace) -> None:
    at = open_page("models.py")
    assert any("No registered models yet" in i.value for i in at.info)


def test_automl_cards_of_a_finished_run_match_its_leaderboard(local_workspace) -> None:
    """The final best is the leaderboard's (the ensemble here), trial numbers are integers."""
    from tests.support.populate import finished_automl_run

    job = finished_automl_run(local_workspace, trials=19, ensemble_score=0.951)
    at = open_page("automl.py")
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Trials"] == "19"
    assert metrics["Best AUC_weighted"] == "0.9510"
    assert metrics["Best algorithm"] == "ensemble"
    assert "Current algorithm" not in metrics
    assert any(
        f"**{job.id}** — :green[:material/check_circle:] Completed" in m.value for m in at.markdown
    )
    assert not at.get("status"), "no spinner-or-tick status box for a finished run"
    runs = at.dataframe(key="automl_runs").value
    assert runs["trials"].tolist() == [19] and runs["trials"].dtype.kind == "i"
    board = at.dataframe(key="automl_leaderboard")
    assert board.proto.columns and '"format":"%d"' in board.proto.columns.replace(" ", "")


def test_the_best_score_card_is_the_served_models(local_workspace) -> None:
    """A fit cut to the budget serves a weaker model than the search's best trial: the card
    showed the trial's 0.9847 above a best-model panel reading 0.9755."""
    import json

    from tests.support.populate import finished_automl_run

    job = finished_automl_run(local_workspace, trials=5, ensemble_score=None)
    details = {"best_estimator": "rf", "metrics": {"AUC_weighted": 0.8123, "accuracy": 0.7}}
    path = local_workspace.extras["jobs"].job_dir(job.id) / "details.json"
    path.write_text(json.dumps(details))
    at = open_page("automl.py")
    assert not at.exception, at.exception
    cards = {m.label: m.value for m in at.metric}
    # the served model's name and score, not the top leaderboard row's
    assert cards["Best AUC_weighted"] == "0.8123" and cards["Best algorithm"] == "rf"
    assert any("Served: **rf**, AUC_weighted 0.8123" in c.value for c in at.caption)


def test_curves_of_a_run_with_many_classes_say_which_are_drawn(local_workspace) -> None:
    import json

    from tests.support.populate import finished_automl_run

    job = finished_automl_run(local_workspace, trials=3)
    labels = [f"c{i}" for i in range(30)]
    roc = [
        {"class": c, "fpr": f, "tpr": f, "threshold": 1 - f} for c in labels[:10] for f in (0, 1)
    ]
    details = {"roc": roc, "confusion": {"labels": labels, "matrix": [[1] * 30] * 30}}
    path = local_workspace.extras["jobs"].job_dir(job.id) / "details.json"
    path.write_text(json.dumps(details))
    at = open_page("automl.py")
    assert not at.exception, at.exception
    assert "Curves of the 10 most frequent of the 30 classes." in [c.value for c in at.caption]


def test_another_version_of_the_dataset_keeps_the_column_choice(local_workspace) -> None:
    """Untick a column, pick v2 (same columns): the column came back ticked, unsaid."""
    csv = b"age,income,gender,y\n" + b"".join(
        f"{20 + i % 50},{1000 + 37 * i},{'fm'[i % 2]},{'yes' if i % 4 else 'no'}\n".encode()
        for i in range(120)
    )
    local_workspace.datasets.upload("people", csv, "people.csv")
    local_workspace.datasets.upload("people", csv + b"70,9000,f,yes\n", "people.csv")
    at = open_page("automl.py")
    assert at.selectbox(key="automl_version_people").value == 2
    at.multiselect(key="automl_features_people_2_y").set_value(["age", "income"]).run()
    at.selectbox(key="automl_version_people").set_value(1).run()
    assert not at.exception, at.exception
    assert at.multiselect(key="automl_features_people_1_y").value == ["age", "income"]
