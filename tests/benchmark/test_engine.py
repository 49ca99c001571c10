"""The load generator against a real server: counts, errors, keep-alive, timeouts, cancel."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest

from lib.benchmark import BenchmarkConfig, BenchmarkResult, Progress, run_benchmark
from tests.benchmark.hello_server import Server, start_server
from tests.support.ports import free_port

# Every test here loads a real server process (and some spawn client worker processes).
pytestmark = pytest.mark.slow


def cfg(url: str, **kw: object) -> BenchmarkConfig:
    # Threads keep the tests fast; the process mode has its own test.
    kw.setdefault("processes", False)
    kw.setdefault("method", "GET")
    return BenchmarkConfig(url=url, **kw)  # type: ignore[arg-type]


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
    r = run_benchmark(cfg(server.url + "/slow?2", concurrency=2, requests=4, timeout_s=0.3), None)
    assert r.error_kinds["timeout"] == 4 and r.ok == 0
    assert r.p50_ms is None
    # Each request was given up before the server's 2 s answer.
    assert r.samples.latency_ms.max() < 2000


def test_duration_mode(server: Server) -> None:
    r = run_benchmark(cfg(server.url + "/", concurrency=2, requests=None, duration_s=1.0), None)
    assert r.stopped == "duration"
    assert r.duration_s >= 1.0
    assert r.requests > 50
    assert len(r.series) == 1 or r.series[0]["requests"] > 0


def test_cancel_stops_a_run(server: Server) -> None:
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.done >= 50:
            cancel.set()

    r = run_benchmark(
        cfg(server.url + "/", concurrency=2, requests=10_000_000), None, on_progress, cancel
    )
    assert r.stopped == "canceled"
    assert 50 <= r.requests < 10_000_000


def test_cancel_callable(server: Server) -> None:
    t_end = time.monotonic() + 0.5
    r = run_benchmark(
        cfg(server.url + "/", requests=None, duration_s=30),
        None,
        cancel=lambda: time.monotonic() > t_end,
    )
    assert r.stopped == "canceled" and r.duration_s < 30


def test_server_killed_mid_run_ends_with_connection_errors(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        killed = threading.Event()

        def on_progress(p: Progress) -> None:
            if p.done > 200 and not killed.is_set():
                srv.proc.send_signal(signal.SIGKILL)
                killed.set()

        config = cfg(
            srv.url + "/", concurrency=4, requests=5_000_000, timeout_s=2, unreachable_s=1.0
        )
        r = run_benchmark(config, None, on_progress)
    finally:
        srv.stop()
    assert killed.is_set()
    assert r.ok > 200
    assert r.error_kinds["connection"] > 0
    assert r.stopped == "unreachable" and r.requests < 5_000_000


def test_unreachable_target_from_the_start() -> None:
    r = run_benchmark(
        cfg(f"http://127.0.0.1:{free_port()}/", concurrency=2, requests=100_000, unreachable_s=0.5),
        None,
    )
    assert r.ok == 0 and r.error_kinds["connection"] == r.requests > 0
    assert r.stopped == "unreachable" and r.requests < 100_000


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
