"""The README's tour: every page of a populated local workspace, saved as a screenshot.

The workspace is populated through its services (one small dataset, one short AutoML run,
register and deploy, a few scored requests, a short benchmark, a retrain pipeline), then a fresh
dashboard is opened on it and each page is saved to `docs/screenshots/<page>.png` at 1,400 px
wide, so the README's pictures always show the UI as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.conftest import start_dashboard
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# (URL path, title shown by the page, screenshot name) in the navigation's order.
PAGES = [
    ("", "opsdeck", "home"),
    ("datasets", "Datasets", "datasets"),
    ("compute", "Compute", "compute"),
    ("automl", "AutoML", "automl"),
    ("models", "Models", "models"),
    ("endpoints", "Endpoints", "endpoints"),
    ("score", "Score", "score"),
    ("logs", "Logs", "logs"),
    ("monitoring", "Monitoring", "monitoring"),
    ("benchmarks", "Benchmarks", "benchmarks"),
    ("pipelines", "Pipelines", "pipelines"),
]


def open_tour_workspace(home: Path):  # noqa: ANN201
    """The local workspace at `home`, as the dashboard started on it will see it."""
    from lib.backend import open_workspace
    from lib.settings import load_settings

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "OPSDECK_"))}
    return open_workspace(
        load_settings({**env, "OPSDECK_HOME": str(home), "OPSDECK_BACKEND": "local"})
    )


def populate(home: Path, bank_csv: Path) -> None:
    """Dataset → AutoML → register and deploy → scored requests → benchmark → pipeline."""
    from lib.workspace import AutoMLRequest, BenchmarkRequest, PipelineSpec

    ws = open_tour_workspace(home)
    frame = pd.read_csv(bank_csv).sample(3000, random_state=7)
    ws.datasets.upload("bank", frame.to_csv(index=False).encode(), "bank.csv")
    job = ws.automl.submit(
        AutoMLRequest(dataset="bank", dataset_version=1, target="y", time_budget_s=10)
    )
    done = wait_for(lambda: (j := ws.automl.get(job.id)).is_terminal and j, 240, what="AutoML")
    assert done.state == "Completed", ws.automl.log_tail(job.id)

    _, endpoint = ws.register_and_deploy(job.id, "bank-y", "Bank Marketing: will they subscribe?")
    ep = wait_for(
        lambda: (e := ws.endpoints.get(endpoint.name)).state != "Creating" and e, 120, what="deploy"
    )
    assert ep.state == "Succeeded", ws.endpoints.logs(ep.name)
    key = ws.endpoints.keys(ep.name)[0]
    features = frame.drop(columns="y")
    for start in range(0, 40, 4):
        records = features.iloc[start : start + 4].to_dict("records")
        resp = requests.post(
            ep.scoring_uri,
            json={"data": records},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
    # One refused request, so the Logs page shows a failure too.
    assert requests.post(ep.scoring_uri, json={"data": []}, timeout=30).status_code == 401

    bench = ws.benchmarks.start(
        BenchmarkRequest(
            url=ep.scoring_uri,
            endpoint=ep.name,
            concurrency=4,
            requests=400,
            warmup=10,
            dataset="bank",
            columns=list(features.columns),
            label="tour",
        ),
        key=key,
    )
    finished = wait_for(
        lambda: (j := ws.benchmarks.get(bench.id)).is_terminal and j, 120, what="benchmark"
    )
    assert finished.state == "Completed", ws.benchmarks.log_tail(bench.id)

    ws.pipelines.save(
        "retrain_bank",
        PipelineSpec(dataset="bank", target="y", time_budget_s=60, deploy_endpoint=ep.name),
        "Weekly retrain of the Bank Marketing model, deployed when it beats the live one",
    )


def test_tour_screenshots_of_every_page(new_page, tmp_path, bank_csv) -> None:
    """Each page renders its title and no exception; its screenshot lands in docs/screenshots."""
    home = tmp_path / "tour-home"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page
    server = None
    try:
        populate(home, bank_csv)
        server, _ = start_dashboard(home)
        for path, title, name in PAGES:
            page.goto(f"{server.url}/{path}")
            expect(page.get_by_role("heading", name=title, exact=True).first).to_be_visible()
            page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
            expect(page.get_by_test_id("stSkeleton")).to_have_count(0)
            expect(page.get_by_test_id("stException")).to_have_count(0)
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    finally:
        if server is not None:
            server.stop(grace_s=20)
        # Endpoint servers outlive the dashboard by design: stop the ones this test made.
        ws = open_tour_workspace(home)
        for ep in ws.endpoints.list():
            ws.endpoints.delete(ep.name)
    for _, _, name in PAGES:
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000, name
