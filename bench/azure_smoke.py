"""Live smoke test of the Azure backend: the whole loop against a real Azure ML workspace.

    .venv/bin/python bench/azure_smoke.py --compute cpu-cluster [--rows 2000]
        [--timeout-min 60] [--keep]

It runs what the dashboard's buttons run, through the same backend code (`open_workspace`):
upload a sample of Bank Marketing → AutoML job on the cluster (3 trials, the 15-minute minimum
budget) → leaderboard → register the best model → deploy it to a new endpoint → keys → score two
rows in the body the deployment accepts → read the requests back from Log Analytics (when
`log_analytics_workspace_id` is set; App Insights can take a few minutes). The endpoint is deleted
at the end unless `--keep`; the dataset, job and model stay (Azure keeps versions).

It costs money (a cluster node for the job, a Standard_DS3_v2 instance while the endpoint
lives), so it needs an explicit cluster. Without a configured workspace, a sign-in, a cluster or
the sample file it prints why and exits 0 without creating anything. Exit code 1 names the step
that failed.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from lib.appinsights import TelemetryQuery  # noqa: E402
from lib.backend import open_workspace  # noqa: E402
from lib.errors import WorkspaceError  # noqa: E402
from lib.scoring import request_for, score  # noqa: E402
from lib.settings import Settings, find_sample_data, load_settings  # noqa: E402
from lib.workspace import AutoMLRequest, Workspace  # noqa: E402

ARM_SCOPE = "https://management.azure.com/.default"


def skip(reason: str) -> int:
    print(f"azure smoke: skipped, {reason}")
    return 0


def step(name: str, action: Callable[[], Any]) -> Any:
    start = time.monotonic()
    print(f"- {name} ...", flush=True)
    value = action()
    print(f"  done in {time.monotonic() - start:.1f} s", flush=True)
    return value


def wait(what: str, ready: Callable[[], Any], timeout_s: float, every_s: float = 20) -> Any:
    """Poll `ready` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(every_s)
    raise TimeoutError(f"{what} not done after {timeout_s / 60:.0f} min")


def signed_in(settings: Settings) -> str | None:
    """Why a token cannot be had, or None when sign-in works."""
    from lib.azure.client import default_credential

    try:
        default_credential(settings.azure).get_token(ARM_SCOPE)
    except Exception as exc:  # azure.identity raises one error per credential tried
        return str(exc).splitlines()[0]
    return None


def sample_csv(path: Path, rows: int) -> bytes:
    frame = pd.read_csv(path, nrows=rows)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def run(ws: Workspace, args: argparse.Namespace, data: bytes) -> None:
    suffix = uuid.uuid4().hex[:6]
    dataset, model_name = f"smoke-bank-{suffix}", f"smoke-bank-{suffix}"
    dv = step("upload", lambda: ws.datasets.upload(dataset, data, "bank.csv", "opsdeck smoke"))
    request = AutoMLRequest(
        dataset=dv.name,
        dataset_version=dv.version,
        target="y",
        primary_metric="AUC_weighted",
        time_budget_s=15 * 60,
        max_trials=3,
        experiment_name="opsdeck-smoke",
        compute=args.compute,
    )
    problems = ws.automl.validate(request)
    if problems:
        raise WorkspaceError("; ".join(problems))
    job = step("AutoML submit", lambda: ws.automl.submit(request))
    print(f"  job {job.id} {job.progress.get('studio_url', '')}")
    done = step(
        "AutoML run",
        lambda: wait(
            "the AutoML job",
            lambda: (j := ws.automl.get(job.id)).is_terminal and j,
            args.timeout_min * 60,
        ),
    )
    if done.state != "Completed":
        raise WorkspaceError(f"job {job.id} ended {done.state}: {done.error or ''}")
    board = step("leaderboard", lambda: ws.automl.leaderboard(job.id))
    print(board.head(5)[["trial", "estimator", "AUC_weighted"]].to_string(index=False))
    model = step("register", lambda: ws.models.register(job.id, model_name, "opsdeck smoke"))
    endpoint = step("deploy", lambda: ws.deploy_model(model.name, model.version))
    try:
        live = step(
            "endpoint live",
            lambda: wait(
                "the deployment",
                lambda: (
                    (e := ws.endpoints.get(endpoint.name)).state in ("Succeeded", "Failed") and e
                ),
                args.timeout_min * 60,
            ),
        )
        if live.state != "Succeeded":
            raise WorkspaceError(f"deploy failed: {live.error}")
        key = step("keys", lambda: ws.endpoints.keys(live.name)[0])
        records = pd.read_csv(io.BytesIO(data)).drop(columns=["y"]).head(2).to_dict("records")
        shape, method = request_for(live.request_shape, live.probabilities)
        result = step("score", lambda: score(live.scoring_uri, key, records, shape, method))
        print(f"  {shape}/{method}: {result.predictions or result.probabilities}")
        if ws.settings.azure and ws.settings.azure.log_analytics_workspace_id:
            query = TelemetryQuery.last(timedelta(hours=1), endpoint=live.name)
            rows = step(
                "request logs",
                lambda: wait(
                    "requests in Log Analytics",
                    lambda: ws.telemetry.kpis(query).requests,
                    15 * 60,
                    every_s=30,
                ),
            )
            print(f"  {rows} request(s) logged for {live.name}")
        else:
            print("- request logs: skipped (no log_analytics_workspace_id configured)")
    finally:
        if not args.keep:
            step("delete endpoint", lambda: ws.endpoints.delete(endpoint.name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compute", default=os.environ.get("AZURE_SMOKE_COMPUTE", ""))
    parser.add_argument("--rows", type=int, default=2000, help="rows of the sample to upload")
    parser.add_argument("--timeout-min", type=float, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the endpoint afterwards")
    args = parser.parse_args(argv)
    settings = load_settings()
    if settings.azure is None:
        return skip(
            "no Azure ML workspace configured ([azure] in .streamlit/secrets.toml, AZURE_* "
            "variables or config.json)"
        )
    if (why := signed_in(settings)) is not None:
        return skip(f"cannot sign in to Azure ({why}); run `az login` first")
    if not args.compute:
        return skip("no compute cluster named (pass --compute NAME or set AZURE_SMOKE_COMPUTE)")
    sample = find_sample_data()
    if sample is None:
        return skip("bankmarketing_train.csv not found (set OPSDECK_SAMPLE_DATA)")
    ws = open_workspace(settings)
    if ws.kind != "azure":
        return skip(f"the backend is {ws.kind} ({ws.reason})")
    print(f"azure smoke: {ws.description}")
    try:
        run(ws, args, sample_csv(sample, args.rows))
    except (WorkspaceError, TimeoutError) as exc:
        print(f"azure smoke: FAILED: {exc}")
        return 1
    print("azure smoke: passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
