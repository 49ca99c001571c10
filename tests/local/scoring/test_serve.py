from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from lib.appinsights import TelemetryQuery
from lib.local.scoring import write_keys_file
from lib.local.telemetry import read_requests, read_traces
from tests.local.scoring_models import records
from tests.support.ports import free_port
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_serve_process_starts_answers_and_stops_cleanly(tmp_path, models):
    keys = tmp_path / "keys.json"
    primary, _ = write_keys_file(keys)
    db = tmp_path / "telemetry.db"
    port = free_port()
    cmd = [
        sys.executable, "-m", "lib.local.scoring.serve",
        "--model-uri", models.fast_uri, "--tracking-uri", models.tracking_uri,
        "--port", str(port), "--keys-file", str(keys), "--telemetry-db", str(db),
        "--endpoint", "proc-ep", "--model-version", "1", "--max-rows", "5",
    ]  # fmt: skip
    log = (tmp_path / "serve.log").open("w")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        body = {"data": records(models.frame, 2)}
        headers = {"Authorization": f"Bearer {primary}"}

        def first_answer() -> tuple[requests.Response] | None:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return (requests.post(url + "/score", json=body, headers=headers, timeout=1),)
            except requests.ConnectionError:
                return None

        # Loading through MLflow alone takes 20+ s when the machine is busy.
        (r,) = wait_for(first_answer, timeout=90, what="server came up")
        print(f"cold start to first scored 200: {time.perf_counter() - started:.2f} s")
        assert r.status_code == 200 and len(r.json()["result"]) == 2
        r = requests.post(url + "/score", json={"data": records(models.frame, 6)}, headers=headers)
        assert r.status_code == 413  # --max-rows is honoured
        assert requests.post(url + "/score", json=body).status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert primary not in output
    df = read_requests(db, TelemetryQuery("proc-ep"))
    assert list(df["ResultCode"]) == ["200", "413", "401"]  # flushed on SIGTERM
    traces = read_traces(db, TelemetryQuery("proc-ep"))
    messages = "\n".join(traces["Message"])
    assert "ready" in messages and "fast path agrees" in messages and "stopped" in messages
    assert primary not in messages


@pytest.mark.slow
def test_serve_fails_fast_on_a_bad_model_uri(tmp_path, models):
    keys = tmp_path / "keys.json"
    write_keys_file(keys)
    cmd = [
        sys.executable, "-m", "lib.local.scoring.serve", "--model-uri", "models:/no-such-model/1",
        "--tracking-uri", models.tracking_uri, "--port", str(free_port()), "--keys-file", str(keys),
        "--telemetry-db", str(tmp_path / "t.db"), "--endpoint", "bad",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "could not start endpoint bad" in proc.stderr
    assert "could not start" in "\n".join(read_traces(tmp_path / "t.db")["Message"])
