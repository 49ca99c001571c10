"""The pipeline agent as a real process on 127.0.0.1 under abuse and bad input.

Bodies (too deep, too large, streamed without end), parameters that would only fail later,
callers without a key probing names, floods of connections that never finish a request, and
what the dashboard shows when the agent dies right after it starts.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from lib.local.pipelines import agent_log
from lib.local.pipelines.agent_log import RepeatFilter
from lib.local.pipelines.service import LocalPipelines
from lib.local.scoring.connections import raise_fd_limit
from lib.settings import REPO_ROOT
from lib.workspace import PipelineSpec, Workspace
from tests.support.servers import ServerProcess
from tests.support.waiting import wait_for

TINY = b"x,y\n" + b"".join(f"{i},{'yes' if i % 3 else 'no'}\n".encode() for i in range(30))
HALF_REQUEST = b"GET /runs/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@dataclass
class Published:
    ws: Workspace
    url: str  # the pipeline's REST URL
    base: str  # the agent's URL
    key: str


def _workspace(home: Path) -> Workspace:
    from lib.backend import open_workspace

    ws = open_workspace()
    assert Path(ws.settings.home) == home
    ws.datasets.upload("tiny", TINY, "tiny.csv")
    ws.pipelines.save("retrain", PipelineSpec(dataset="tiny", target="y"))
    return ws


def _hermetic(mp: pytest.MonkeyPatch, home: Path) -> None:
    for key in list(os.environ):
        if key.startswith(("AZURE_", "OPSDECK_")):
            mp.delenv(key, raising=False)
    mp.setenv("OPSDECK_HOME", str(home))
    mp.setenv("OPSDECK_BACKEND", "local")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """One agent for the REST checks: none of them starts a run."""
    home = tmp_path_factory.mktemp("agent") / "home"
    with pytest.MonkeyPatch.context() as mp:
        _hermetic(mp, home)
        ws = _workspace(home)
        pipeline = ws.pipelines.publish("retrain")
        wait_for(lambda: ws.pipelines.agent().state == "Running", 60, 0.1, "agent running")
        base = pipeline.rest_endpoint.rsplit("/pipelines/", 1)[0]
        yield Published(ws, pipeline.rest_endpoint, base, ws.pipelines.keys("retrain")[0])
        ws.pipelines.agent_manager.stop()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data`, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(
                    f"no complete answer within {timeout:g} s (got {received[:200]!r})"
                ) from None
            if not chunk:
                return received
            received += chunk


def _head(published: Published, extra: str) -> bytes:
    path = published.url.split(published.base, 1)[1]
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {published.key}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_a_deeply_nested_body_is_a_400_not_a_500(published: Published) -> None:
    body = '{"ParameterAssignments":' + "[" * 1000 + "]" * 1000 + "}"
    r = requests.post(published.url, data=body, headers=_auth(published.key), timeout=10)
    assert r.status_code == 400, r.text
    assert "nested too deeply" in r.json()["message"]
    assert published.ws.pipelines.runs() == []


def test_a_large_body_is_refused_by_its_length_before_it_is_read(published: Published) -> None:
    # 400 MB announced, 1 KB sent: the answer comes without the rest ever being sent.
    head = _head(published, "Content-Length: 400000000\r\n")
    answer = _exchange(_port(published.base), head + b"{" + b" " * 1000)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"limit is 65536" in answer


def test_a_streamed_body_is_not_read_past_the_limit(published: Published) -> None:
    # Chunks of 16 KB, 80 KB in all, and never the final chunk: the agent must stop reading.
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    head = _head(published, "Transfer-Encoding: chunked\r\n")
    answer = _exchange(_port(published.base), head + chunk * 5)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than 65536 bytes" in answer


@pytest.mark.parametrize(
    ("assignments", "field", "words"),
    [
        ({"dataset": "nope"}, "dataset", "does not exist"),
        ({"dataset_version": 99}, "dataset_version", "tiny v99 does not exist"),
        ({"target": "nope"}, "target", "not a column of tiny"),
        ({"compute": "gpu-cluster"}, "compute", "'gpu-cluster' is not one of its targets"),
        ({"deploy_endpoint": "any-endpoint"}, "deploy_endpoint", "fixed by the published"),
        ({"gated": False}, "gated", "fixed by the published pipeline"),
        ({"gate_margin": -1}, "gate_margin", "fixed by the published pipeline"),
        ({"model_name": "other"}, "model_name", "fixed by the published pipeline"),
        ({"time_budget_s": None}, "time_budget_s", "whole number of seconds, not null"),
    ],
)
def test_a_parameter_that_cannot_run_is_a_400_naming_it(
    published: Published, assignments: dict, field: str, words: str
) -> None:
    r = requests.post(
        published.url,
        json={"ParameterAssignments": assignments},
        headers=_auth(published.key),
        timeout=10,
    )
    assert r.status_code == 400, r.text
    assert r.json()["field"] == f"ParameterAssignments.{field}"
    assert words in r.json()["message"]
    assert published.ws.pipelines.runs() == []


def test_without_a_valid_key_every_name_and_run_is_a_401(published: Published) -> None:
    for name in ("retrain", "nope", "no_such_pipeline", "Bad-Name"):
        url = f"{published.base}/pipelines/{name}"
        for headers in ({}, _auth("not-a-key")):
            r = requests.post(url, json={}, headers=headers, timeout=10)
            assert r.status_code == 401, (name, headers, r.text)
            assert name not in r.text
    for run_id in ("retrain-20260101-000000-abcdef", "nope"):
        r = requests.get(f"{published.base}/runs/{run_id}", timeout=10)
        assert r.status_code == 401, r.text
    # Keys are per pipeline: another pipeline's key is no key for this name.
    r = requests.post(
        f"{published.base}/pipelines/nope", json={}, headers=_auth(published.key), timeout=10
    )
    assert r.status_code == 401
    # A key holder is told that a run does not exist.
    r = requests.get(f"{published.base}/runs/nope", headers=_auth(published.key), timeout=10)
    assert r.status_code == 404


def _home_with_a_run(mp: pytest.MonkeyPatch, home: Path) -> tuple[str, str]:
    """A published pipeline and one run of it, without an agent: (key, run id)."""
    _hermetic(mp, home)
    ws = _workspace(home)
    store = ws.pipelines.store
    store.publish("retrain", 1)
    pipeline = store.get("retrain")
    run_id = store.create_run(pipeline, pipeline.spec, {}, "manual", "retrain")
    return store.keys("retrain")[0], run_id


def _agent_argv(*extra: str) -> list[str]:
    return [sys.executable, "-m", "lib.local.pipelines.agent", "--port", "{port}", *extra]


def _open(port: int, n: int, payload: bytes = b"") -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        if payload:
            s.sendall(payload)
        socks.append(s)
    return socks


def test_more_stalled_connections_than_descriptors_do_not_lock_out_a_keyed_client(
    tmp_path: Path,
) -> None:
    # The common default soft limit (1024 descriptors) and more half-sent requests than that.
    n = 1200
    assert raise_fd_limit(n + 512) >= n + 512, "this machine lets the test open too few sockets"
    with pytest.MonkeyPatch.context() as mp:
        key, run_id = _home_with_a_run(mp, tmp_path / "home")
        argv = ["prlimit", "--nofile=1024:8192", "--", *_agent_argv()]
        with ServerProcess(argv, tmp_path / "agent.log", timeout=60) as agent:
            flood = _open(agent.port, n, HALF_REQUEST)
            try:
                r = requests.get(f"{agent.url}/runs/{run_id}", headers=_auth(key), timeout=10)
            except requests.RequestException as exc:
                raise AssertionError(f"{exc!r}; agent log:\n{agent.log()[-2000:]}") from exc
            finally:
                for s in flood:
                    s.close()
            assert r.status_code == 200 and r.json()["Id"] == run_id
            log = agent.log()
            assert "Too many open files" not in log and "Traceback" not in log


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        # Whatever the server said last (a 408 to a stalled body) is read past, up to its close.
        return sock.recv(65536) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_stalled_requests_are_closed_and_the_cap_makes_room(tmp_path: Path) -> None:
    cap = 40
    with pytest.MonkeyPatch.context() as mp:
        key, run_id = _home_with_a_run(mp, tmp_path / "home")
        argv = _agent_argv("--receipt-timeout", "0.5", "--max-connections", str(cap))
        with ServerProcess(argv, tmp_path / "agent.log", timeout=60) as agent:
            silent, half = _open(agent.port, 1)[0], _open(agent.port, 1, HALF_REQUEST)[0]
            stalled_body = (
                f"POST /pipelines/retrain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                "Content-Length: 100\r\n\r\n{"
            ).encode()
            stalled = _open(agent.port, 1, stalled_body)[0]
            for s in (silent, half, stalled):
                s.settimeout(0.05)
                wait_for(lambda s=s: _closed_by_server(s), 10, what="stalled connection closed")
                s.close()

            process = psutil.Process(agent.proc.pid)

            def established() -> int:
                return sum(
                    1 for c in process.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED
                )

            flood = _open(agent.port, 200, HALF_REQUEST)
            try:
                wait_for(lambda: established() <= cap, 10, what="connections down to the cap")
                with requests.Session() as client:
                    for _ in range(10):
                        r = client.get(f"{agent.url}/runs/{run_id}", headers=_auth(key), timeout=5)
                        assert r.status_code == 200
            finally:
                for s in flood:
                    s.close()


def test_a_flood_of_bad_requests_costs_the_log_a_few_lines(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        _home_with_a_run(mp, tmp_path / "home")
        with ServerProcess(_agent_argv(), tmp_path / "agent.log", timeout=60) as agent:
            before = agent.log().count("Invalid HTTP request")
            for _ in range(200):
                answer = _exchange(agent.port, b"NOT HTTP AT ALL\r\n\r\n", timeout=5)
                assert answer.startswith(b"HTTP/1.1 400")
            logged = agent.log().count("Invalid HTTP request") - before
            assert 1 <= logged <= agent_log.REPEATS_PER_WINDOW, agent.log()[-2000:]


def test_repeats_are_counted_and_reported_with_the_next_line_let_through(monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(agent_log.time, "monotonic", lambda: clock[0])
    limit = RepeatFilter(per_window=2, window_s=60)

    def record(i: int) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.WARNING, "", 0, "bad %d", (i,), None)

    passed = [r.getMessage() for r in map(record, range(10)) if limit.filter(r)]
    assert passed == ["bad 0", "bad 1"]
    clock[0] += 61
    later = record(10)
    assert limit.filter(later)
    assert later.getMessage() == "bad 10 [8 more like this were not logged]"
    other = logging.LogRecord("opsdeck.agent", logging.INFO, "", 0, "other", None, None)
    assert limit.filter(other)


def test_the_agent_log_rotates_past_its_size(tmp_path: Path) -> None:
    log_path = tmp_path / "agent.log"
    script = (
        "import logging; from lib.local.pipelines.agent_log import setup_logging;"
        "h = setup_logging(20_000); log = logging.getLogger('t');"
        "[log.warning('line %05d ' % i + 'x' * 80) for i in range(3000)];"
        "print('rotations', h.rotations)"
    )
    with log_path.open("ab") as out:
        subprocess.run(
            [sys.executable, "-c", script], cwd=REPO_ROOT, stdout=out, stderr=out, check=True
        )
    assert log_path.stat().st_size < 20_000 + 300
    assert (tmp_path / "agent.log.1").stat().st_size > 20_000
    assert "line 02999" in log_path.read_text()


def test_an_agent_killed_right_after_start_shows_its_own_failure(
    hermetic_env: Path,
) -> None:
    ws = _workspace(hermetic_env)
    pipelines: LocalPipelines = ws.pipelines
    log = pipelines.agent_manager.log_path
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        "2026-01-01 00:00:00 ERROR an earlier agent\nTraceback (most recent call last):\n"
        "OSError: an unrelated failure of an earlier lifetime\n"
    )
    try:
        pipelines.publish("retrain")
        started = pipelines.agent_manager.ref()
        assert started is not None
        os.kill(started.pid, signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(started.pid) or _zombie(started.pid), 10)
        status = pipelines.agent()
        assert status.state == "Failed"
        assert "earlier" not in (status.error or "") and "Traceback" not in (status.error or "")
        assert status.error
    finally:
        pipelines.agent_manager.stop()


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_failure_text_is_the_current_agents_own_lines(hermetic_env: Path) -> None:
    ws = _workspace(hermetic_env)
    manager = ws.pipelines.agent_manager
    log = manager.log_path
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("old line 1\nold line 2\n")
    manager._mark_start()
    with log.open("a") as f:
        f.write("agent on 127.0.0.1:1 for home\nKeyError: 'x'\n")
    assert manager.lifetime_log() == "agent on 127.0.0.1:1 for home\nKeyError: 'x'"
    # Rotated during its lifetime: the live file holds only the current agent's lines.
    log.write_text("after rotation\n")
    assert manager.lifetime_log() == "after rotation"
    manager._mark_start()
    assert manager.lifetime_log() == ""
