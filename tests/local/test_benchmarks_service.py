"""Benchmarks as jobs: a real job process loads a real loopback server; results reach history."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.workspace import BenchmarkRequest
from tests.benchmark.hello_server import start_server
from tests.pages.conftest import open_page
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("hello"))
    yield srv
    srv.stop()


def wait_done(bench, job_id: str, timeout: float = 60):
    return wait_for(
        lambda: (job := bench.get(job_id)).is_terminal and job,
        timeout,
        interval=0.2,
        what="benchmark job finished",
    )


@pytest.mark.slow
def test_benchmark_job_runs_out_of_process_and_lands_in_history(local_workspace, hello) -> None:
    ws = local_workspace
    ws.datasets.upload("rows", b"a,b\n1,x\n2,y\n3,z\n", "rows.csv")
    request = BenchmarkRequest(
        url=f"{hello.url}/auth",
        concurrency=4,
        requests=400,
        warmup=10,
        dataset="rows",
        label="hello",
    )
    job = ws.benchmarks.start(request, key="s3cret")
    assert job.state in ("Running", "Queued")
    done = wait_done(ws.benchmarks, job.id)
    assert done.state == "Completed", ws.benchmarks.log_tail(job.id)
    # The key was used (no 401s) and did not outlive the run on disk or in the log.
    assert not (Path(ws.settings.home) / "jobs" / job.id / "key").exists()
    assert "s3cret" not in ws.benchmarks.log_tail(job.id)
    history = ws.benchmarks.list()
    assert len(history) == 1
    row = history.iloc[0]
    assert row["requests"] == 400 and row["errors"] == 0 and row["label"] == "hello"
    result, samples = ws.benchmarks.result(row["id"])
    assert result.status_counts == {"200": 400}
    assert len(samples) == 400 and result.p50_ms <= result.p99_ms

    at = open_page("benchmarks.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Errors"].startswith("0 ")
    assert float(metrics["Throughput (req/s)"].replace(",", "")) > 0
    # The charts are in tabs; only the open tab's are sent.
    assert len(at.get("plotly_chart")) == 2
    for tab, charts in (("Over time", 2), ("Status codes", 1), ("Latency", 2)):
        at.session_state["bench_charts"] = tab
        at.run()
        assert not at.exception and len(at.get("plotly_chart")) == charts


@pytest.mark.slow
def test_wrong_key_is_counted_as_errors_and_cancel_works(local_workspace, hello) -> None:
    ws = local_workspace
    job = ws.benchmarks.start(BenchmarkRequest(url=f"{hello.url}/auth", requests=200), key="wrong")
    done = wait_done(ws.benchmarks, job.id)
    result, _ = ws.benchmarks.result(ws.benchmarks.run_id(job.id))
    assert done.state == "Completed" and result.status_counts == {"401": 200}
    long = ws.benchmarks.start(
        BenchmarkRequest(url=f"{hello.url}/", duration_s=60, requests=None), key=None
    )
    # Cancel once the load is really running, not before the workers have started.
    wait_for(lambda: ws.benchmarks.get(long.id).progress.get("done", 0) > 0, 30, what="load runs")
    assert ws.benchmarks.cancel(long.id).state == "Canceled"
