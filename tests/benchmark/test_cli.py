"""``python -m lib.benchmark`` end to end against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.benchmark import BenchmarkHistory
from lib.benchmark.__main__ import main
from tests.benchmark.hello_server import Server

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cli_prints_summary_without_the_key(server: Server, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"data": [{"age": 17}]}))
    out_json = tmp_path / "r.json"
    env = {**os.environ, "BENCH_KEY": "s3cret", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "lib.benchmark", "--url", server.url + "/auth", "--key-env", "BENCH_KEY",
         "--body-file", str(body), "-c", "2", "-n", "100", "--json", str(out_json), "--slo-p95", "1000",
         "--history", str(tmp_path / "history")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Requests per second:" in proc.stdout and "Complete requests:      100" in proc.stdout
    assert "SLO: PASS" in proc.stdout
    assert "s3cret" not in proc.stdout + proc.stderr + out_json.read_text()
    assert json.loads(out_json.read_text())["status_counts"] == {"200": 100}
    saved = proc.stdout.rsplit("Saved as ", 1)[1].strip()
    assert BenchmarkHistory(tmp_path / "history").ids() == [saved]


def test_missing_key_variable_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv("NO_SUCH_BENCH_KEY", raising=False)
    assert main(["--url", "http://127.0.0.1:9/", "--key-env", "NO_SUCH_BENCH_KEY"]) == 2
    assert "NO_SUCH_BENCH_KEY is not set" in capsys.readouterr().err
