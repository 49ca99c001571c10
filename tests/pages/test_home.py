from tests.pages.conftest import open_page


def test_home_shows_local_backend_and_zero_counts() -> None:
    at = open_page()
    assert at.title[0].value == "opsdeck"
    sidebar_text = " ".join(m.value for m in at.sidebar.markdown) + " ".join(
        c.value for c in at.sidebar.caption
    )
    assert "Local" in sidebar_text
    assert "OPSDECK_BACKEND=local" in sidebar_text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Datasets"] == "0"
    assert any("No datasets yet" in i.value for i in at.info)


def test_home_counts_datasets(local_workspace) -> None:
    local_workspace.datasets.upload("a", b"x,y\n1,2\n", "a.csv")
    local_workspace.datasets.upload("b", b"x,y\n1,2\n", "b.csv")
    at = open_page()
    assert {m.label: m.value for m in at.metric}["Datasets"] == "2"


def test_home_counts_automl_runs_by_name(local_workspace) -> None:
    """The tile says what it counts: AutoML runs, not every job the Compute page lists."""
    from tests.support.populate import benchmark_run, finished_automl_run

    finished_automl_run(local_workspace)
    local_workspace.extras["jobs"].submit("sleep", "nap", {"seconds": 0}, start=False)
    benchmark_run(local_workspace)
    at = open_page()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["AutoML runs"] == "1" and "Jobs" not in metrics
    assert any(":green[:material/check_circle:] Completed" in m.value for m in at.markdown)
