"""Benchmark engine: statistics on known samples, and the load generator against real servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lib.benchmark import (
    STATUS_CONNECTION_ERROR,
    STATUS_TIMEOUT,
    BenchmarkConfig,
    BenchmarkResult,
    Progress,
    build_requests,
    evaluate_slo,
    latency_histogram,
    per_second_series,
    percentiles,
    run_benchmark,
    summarize,
)

REPO = Path(__file__).resolve().parents[1]

# A raw ASGI app: cheap routes plus counters the tests read back over HTTP.
SERVER_SOURCE = r"""
import asyncio, json, sys, uvicorn
hits = {"n": 0}
bodies = {}
ports = set()

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    path = scope["path"]
    headers = dict(scope["headers"])
    status, out, chunks = 200, b"Hello world!", None
    if path == "/stats":
        out = json.dumps({"hits": hits["n"], "bodies": bodies, "ports": len(ports)}).encode()
    elif path == "/reset":
        hits["n"] = 0; bodies.clear(); ports.clear()
    else:
        hits["n"] += 1
        ports.add(scope["client"][1])
        if body:
            bodies[body.decode()] = bodies.get(body.decode(), 0) + 1
        if path == "/auth" and headers.get(b"authorization") != b"Bearer s3cret":
            status, out = 401, b'{"message":"missing or wrong key"}'
        elif path == "/fail":
            status, out = 500, b'{"message":"boom"}'
        elif path == "/slow":
            await asyncio.sleep(float(scope["query_string"] or b"1"))
        elif path == "/chunked":
            chunks = [b"Hello", b" ", b"chunked", b" world!"]
    if chunks is not None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for c in chunks:
            await send({"type": "http.response.body", "body": c, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            return json.loads(resp.read() or b"{}") if path == "/stats" else {}

    def reset(self) -> None:
        urllib.request.urlopen(self.url + "/reset", timeout=5).read()

    def stats(self) -> dict:
        return self.get("/stats")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def start_server(tmp: Path) -> Server:
    """A real uvicorn server on a free loopback port, in its own process."""
    script = tmp / "hello_server.py"
    script.write_text(SERVER_SOURCE)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Server(f"http://127.0.0.1:{port}", proc)
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("test server exited") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("test server did not start")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("srv"))
    yield srv
    srv.stop()


def cfg(url: str, **kw: object) -> BenchmarkConfig:
    # Threads keep the tests fast; the process mode has its own test.
    kw.setdefault("processes", False)
    kw.setdefault("method", "GET")
    return BenchmarkConfig(url=url, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- statistics


def test_percentiles_of_known_list() -> None:
    p = percentiles(list(range(1, 101)))
    assert p == {"p50_ms": 50.5, "p90_ms": 90.1, "p95_ms": 95.05, "p99_ms": 99.01}
    assert percentiles([]) == {"p50_ms": None, "p90_ms": None, "p95_ms": None, "p99_ms": None}


def test_summarize_counts_errors_and_excludes_failed_latencies() -> None:
    lat = [10.0, 20.0, 30.0, 40.0, 5000.0, 1.0, 50.0, 60.0]
    st = [200, 200, 200, 404, STATUS_TIMEOUT, STATUS_CONNECTION_ERROR, 500, 200]
    s = summarize(lat, st, started=100.0, ended=102.0)
    assert s["requests"] == 8
    assert s["errors"] == 4
    assert s["ok"] == 4
    assert s["error_rate"] == 0.5
    assert s["throughput_rps"] == 4.0
    assert s["error_kinds"] == {
        "timeout": 1,
        "connection": 1,
        "protocol": 0,
        "http_4xx": 1,
        "http_5xx": 1,
    }
    assert s["status_counts"] == {"200": 4, "404": 1, "500": 1, "timeout": 1, "connection_error": 1}
    # Timeout (5000) and connection error (1) carry no real latency.
    assert s["max_ms"] == 60.0 and s["min_ms"] == 10.0
    assert s["mean_ms"] == 35.0
    assert s["p50_ms"] == 35.0


def test_summarize_percentiles_are_from_raw_samples_not_averaged() -> None:
    rng = np.random.default_rng(1)
    lat = np.concatenate([rng.uniform(1, 2, 990), np.full(10, 100.0)])
    s = summarize(lat, np.full(1000, 200), 0, 1)
    assert s["p99_ms"] == pytest.approx(np.percentile(lat, 99), abs=1e-3)
    assert s["max_ms"] == 100.0


def test_summarize_empty_run() -> None:
    s = summarize([], [], 0, 0)
    assert s["requests"] == 0 and s["throughput_rps"] == 0.0 and s["p95_ms"] is None


def test_latency_histogram() -> None:
    h = latency_histogram([1, 2, 2, 3, 4], bins=3)
    assert [b["count"] for b in h] == [1, 2, 2]
    assert h[0]["lo_ms"] == 1 and h[-1]["hi_ms"] == 4
    assert latency_histogram([5, 5, 5]) == [{"lo_ms": 5.0, "hi_ms": 5.0, "count": 3}]
    assert latency_histogram([]) == []


def test_per_second_series_uses_partial_last_second() -> None:
    end_s = [0.1, 0.5, 0.9, 1.2, 2.1]
    lat = [10, 20, 30, 40, 50]
    st = [200, 200, 500, 200, STATUS_TIMEOUT]
    rows = per_second_series(end_s, lat, st, duration_s=2.5)
    assert [r["requests"] for r in rows] == [3, 1, 1]
    assert [r["rps"] for r in rows] == [3.0, 1.0, 2.0]  # last bin is half a second wide
    assert [r["errors"] for r in rows] == [1, 0, 1]
    assert rows[0]["p50_ms"] == 20.0
    assert rows[2]["p50_ms"] is None  # only a timeout in that second


def test_slo() -> None:
    s = {"p95_ms": 80.0, "error_rate": 0.02}
    assert evaluate_slo(s, None, None) is None
    assert evaluate_slo(s, 100, 0.05)["passed"] is True
    verdict = evaluate_slo(s, 50, 0.01)
    assert verdict["passed"] is False and len(verdict["reasons"]) == 2


def test_requests_are_prebuilt_and_key_never_serialised() -> None:
    config = BenchmarkConfig(url="http://h.example:8080/score?x=1", key="topsecret", method="POST")
    reqs = build_requests(config, [{"data": [{"a": 1}]}, "raw"])
    assert reqs[0].startswith(b"POST /score?x=1 HTTP/1.1\r\nHost: h.example:8080\r\n")
    assert b"Authorization: Bearer topsecret\r\n" in reqs[0]
    assert reqs[0].endswith(b'Content-Length: 18\r\n\r\n{"data":[{"a":1}]}')
    assert reqs[1].endswith(b"\r\n\r\nraw")
    dumped = json.dumps(config.to_dict())
    assert "topsecret" not in dumped and config.to_dict()["auth"] is True
    assert "topsecret" not in repr(config)
    with pytest.raises(ValueError):
        build_requests(BenchmarkConfig(url="ftp://x/"), None)


# --------------------------------------------------------------------------- generator


def test_counts_statuses_and_warmup_not_counted(server: Server) -> None:
    server.reset()
    seen: list[Progress] = []
    r = run_benchmark(
        cfg(server.url + "/", concurrency=4, requests=400, warmup=40), None, on_progress=seen.append
    )
    assert r.requests == 400 and r.ok == 400 and r.errors == 0
    assert r.status_counts == {"200": 400}
    assert server.stats()["hits"] == 440  # warm-up reached the server but is not in the result
    assert len(r.samples) == 400
    assert r.throughput_rps > 0 and 0 < r.p50_ms <= r.p95_ms <= r.p99_ms <= r.max_ms
    assert sum(b["count"] for b in r.histogram) == 400
    assert sum(row["requests"] for row in r.series) == 400
    assert seen and seen[-1].done == 400 and seen[-1].fraction == 1.0
    assert json.loads(json.dumps(r.to_dict()))["requests"] == 400
    assert BenchmarkResult.from_dict(r.to_dict()).p99_ms == r.p99_ms


def test_4xx_and_5xx_count_as_errors(server: Server) -> None:
    r401 = run_benchmark(cfg(server.url + "/auth", concurrency=2, requests=50), None)
    assert r401.error_kinds["http_4xx"] == 50 and r401.status_counts == {"401": 50}
    assert r401.error_rate == 1.0
    ok = run_benchmark(cfg(server.url + "/auth", key="s3cret", concurrency=2, requests=50), None)
    assert ok.status_counts == {"200": 50}
    r500 = run_benchmark(
        cfg(server.url + "/fail", concurrency=2, requests=30, slo_max_error_rate=0.1), None
    )
    assert r500.error_kinds["http_5xx"] == 30
    assert r500.slo is not None and r500.slo["passed"] is False


def test_bodies_cycled_and_posted(server: Server) -> None:
    server.reset()
    bodies = [{"data": [{"age": a}]} for a in (17, 40, 87)]
    run_benchmark(cfg(server.url + "/echo", method="POST", concurrency=3, requests=30), bodies)
    counts = server.stats()["bodies"]
    assert sorted(counts.values()) == [10, 10, 10]
    assert set(counts) == {json.dumps(b, separators=(",", ":")) for b in bodies}


def test_chunked_responses_are_parsed(server: Server) -> None:
    r = run_benchmark(cfg(server.url + "/chunked", concurrency=2, requests=40), None)
    assert r.status_counts == {"200": 40}


def test_keep_alive_pool_vs_new_connection_per_request(server: Server) -> None:
    server.reset()
    run_benchmark(cfg(server.url + "/", concurrency=2, requests=60), None)
    assert server.stats()["ports"] == 2
    server.reset()
    r = run_benchmark(cfg(server.url + "/", concurrency=2, requests=60, keep_alive=False), None)
    assert r.ok == 60 and not r.keep_alive
    assert server.stats()["ports"] == 60


def test_timeouts_are_counted_and_bounded(server: Server) -> None:
    t0 = time.monotonic()
    r = run_benchmark(cfg(server.url + "/slow?2", concurrency=2, requests=4, timeout_s=0.3), None)
    assert r.error_kinds["timeout"] == 4 and r.ok == 0
    assert r.p50_ms is None
    assert time.monotonic() - t0 < 3


def test_duration_mode(server: Server) -> None:
    r = run_benchmark(cfg(server.url + "/", concurrency=2, requests=None, duration_s=1.0), None)
    assert r.stopped == "duration"
    assert 0.9 <= r.duration_s < 1.5
    assert r.requests > 50
    assert len(r.series) == 1 or r.series[0]["requests"] > 0


def test_cancel_stops_a_run(server: Server) -> None:
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.done >= 50:
            cancel.set()

    t0 = time.monotonic()
    r = run_benchmark(
        cfg(server.url + "/", concurrency=2, requests=10_000_000), None, on_progress, cancel
    )
    assert r.stopped == "canceled"
    assert 50 <= r.requests < 10_000_000
    assert time.monotonic() - t0 < 10


def test_cancel_callable(server: Server) -> None:
    t_end = time.monotonic() + 0.5
    r = run_benchmark(
        cfg(server.url + "/", requests=None, duration_s=30),
        None,
        cancel=lambda: time.monotonic() > t_end,
    )
    assert r.stopped == "canceled" and r.duration_s < 5


def test_server_killed_mid_run_ends_with_connection_errors(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        killed = threading.Event()

        def on_progress(p: Progress) -> None:
            if p.done > 200 and not killed.is_set():
                srv.proc.send_signal(signal.SIGKILL)
                killed.set()

        t0 = time.monotonic()
        config = cfg(
            srv.url + "/", concurrency=4, requests=5_000_000, timeout_s=2, unreachable_s=1.0
        )
        r = run_benchmark(config, None, on_progress)
        elapsed = time.monotonic() - t0
    finally:
        srv.stop()
    assert killed.is_set()
    assert r.ok > 200
    assert r.error_kinds["connection"] > 0
    assert r.stopped == "unreachable"
    assert elapsed < 10


def test_unreachable_target_from_the_start() -> None:
    t0 = time.monotonic()
    r = run_benchmark(
        cfg(f"http://127.0.0.1:{free_port()}/", concurrency=2, requests=100_000, unreachable_s=0.5),
        None,
    )
    assert r.ok == 0 and r.error_kinds["connection"] == r.requests > 0
    assert time.monotonic() - t0 < 5


def test_worker_processes(server: Server) -> None:
    server.reset()
    r = run_benchmark(
        BenchmarkConfig(
            url=server.url + "/", method="GET", concurrency=4, requests=1000, warmup=20, workers=2
        ),
        None,
    )
    assert r.workers == 2 and r.requests == 1000 and r.status_counts == {"200": 1000}
    assert server.stats()["hits"] == 1020
    assert r.client_cpu_s is not None and r.client_cpu_s > 0
    starts = r.samples.start_ms
    assert starts.min() >= 0  # measured phase starts after both workers warmed up


def test_cli_prints_summary_without_the_key(server: Server, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"data": [{"age": 17}]}))
    out_json = tmp_path / "r.json"
    env = {**os.environ, "BENCH_KEY": "s3cret", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "lib.benchmark", "--url", server.url + "/auth", "--key-env", "BENCH_KEY",
         "--body-file", str(body), "-c", "2", "-n", "100", "--json", str(out_json), "--slo-p95", "1000"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Requests per second:" in proc.stdout and "Complete requests:      100" in proc.stdout
    assert "SLO: PASS" in proc.stdout
    assert "s3cret" not in proc.stdout + proc.stderr + out_json.read_text()
    assert json.loads(out_json.read_text())["status_counts"] == {"200": 100}
