"""The load generator: closed-loop clients in worker processes (or threads), one common start.

Each worker warms up, reports ready, waits for the shared start time, then drives its share of
the connections on one event loop and records every request's start, latency
(``time.monotonic_ns``) and status. ``run_benchmark`` merges the samples into a result.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import random
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from lib.benchmark.client import HttpConnection, RequestFailed, build_requests
from lib.benchmark.config import (
    STATUS_CONNECTION_ERROR,
    STATUS_TIMEOUT,
    BenchmarkConfig,
    BenchmarkResult,
    Progress,
    Samples,
)
from lib.benchmark.stats import build_result

# After a connection error, pause before the next attempt so a dead target is not hammered.
_CONNECT_BACKOFF_S = 0.01
_PROGRESS_INTERVAL_S = 0.1


@dataclass
class _WorkerSpec:
    index: int
    host: str
    port: int
    tls: bool
    server_hostname: str
    requests_bytes: list[bytes]
    head_only: bool
    connections: int
    requests: int | None
    duration_s: float | None
    warmup: int
    timeout_s: float
    keep_alive: bool
    body_order: str
    seed: int
    unreachable_s: float
    use_thread_time: bool


class _Worker:
    """Drives ``connections`` client loops on one event loop and records every request."""

    def __init__(self, spec: _WorkerSpec, progress: Any, stop: Any) -> None:
        self.spec = spec
        self.progress = progress  # shared array: [done, errors] per worker
        self.stop = stop
        self.starts: list[int] = []
        self.lats: list[int] = []
        self.stats: list[int] = []
        self.remaining = 0
        self.deadline = 0
        self.recording = False
        self.stopped = "completed"
        self.last_ok = time.monotonic_ns()
        self.errors = 0
        self.counter = spec.index * 7919  # spread cycled bodies across workers
        self.rng = random.Random(spec.seed * 1000 + spec.index)
        self.addr: tuple[Any, ...] | None = None
        self.ssl_ctx = ssl.create_default_context() if spec.tls else None

    def _next_request(self) -> bytes:
        reqs = self.spec.requests_bytes
        if self.spec.body_order == "random":
            return reqs[self.rng.randrange(len(reqs))]
        self.counter += 1
        return reqs[self.counter % len(reqs)]

    async def _resolve(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.spec.host, self.spec.port, type=socket.SOCK_STREAM)
            self.addr = infos[0][4]
        except OSError:
            self.addr = None

    async def _connect(self, timeout: float) -> HttpConnection:
        loop = asyncio.get_running_loop()
        if self.addr is None:
            raise RequestFailed(STATUS_CONNECTION_ERROR)
        host, port = self.addr[0], self.addr[1]
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: HttpConnection(self.spec.head_only),
                    host,
                    port,
                    ssl=self.ssl_ctx,
                    server_hostname=self.spec.server_hostname if self.ssl_ctx else None,
                ),
                timeout,
            )
        except TimeoutError as exc:
            raise RequestFailed(STATUS_TIMEOUT) from exc
        except (OSError, ssl.SSLError) as exc:
            raise RequestFailed(STATUS_CONNECTION_ERROR) from exc
        return conn

    def _take(self) -> bool:
        """Claim the next request slot; False when the phase is over."""
        if self.stopped != "completed":
            return False
        if self.deadline and time.monotonic_ns() >= self.deadline:
            self.stopped = "duration"
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
        return True

    async def _client(self) -> None:
        loop = asyncio.get_running_loop()
        spec = self.spec
        timeout_ns = int(spec.timeout_s * 1e9)
        conn: HttpConnection | None = None
        starts, lats, stats = self.starts, self.lats, self.stats
        while self._take():
            request = self._next_request()
            t0 = time.monotonic_ns()
            try:
                if conn is None or conn.closed:
                    conn = await self._connect(spec.timeout_s)
                fut = conn.send(request, loop)
                left = (t0 + timeout_ns - time.monotonic_ns()) / 1e9
                timer = loop.call_later(max(left, 0.0), conn._fail, STATUS_TIMEOUT)
                try:
                    status = await fut
                finally:
                    timer.cancel()
                t1 = conn.t_done
                if conn.must_close or not spec.keep_alive:
                    conn.transport.close()  # type: ignore[union-attr]
                    conn = None
                self.last_ok = t1
            except RequestFailed as exc:
                status, t1 = exc.status, time.monotonic_ns()
                if conn is not None:
                    conn.abort()
                    conn = None
                self.errors += 1
            if status >= 400:
                self.errors += 1
            if self.recording:
                starts.append(t0)
                lats.append(t1 - t0)
                stats.append(status)
            if status == STATUS_CONNECTION_ERROR:
                if (time.monotonic_ns() - self.last_ok) / 1e9 > spec.unreachable_s:
                    self.stopped = "unreachable"
                    break
                await asyncio.sleep(_CONNECT_BACKOFF_S)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def _phase(self, requests: int | None, deadline_ns: int) -> None:
        self.remaining = requests  # type: ignore[assignment]
        self.deadline = deadline_ns
        self.last_ok = time.monotonic_ns()
        tasks = [asyncio.ensure_future(self._client()) for _ in range(self.spec.connections)]
        watcher = asyncio.ensure_future(self._watch(tasks))
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            watcher.cancel()
            self._publish()

    def _publish(self) -> None:
        if self.recording and self.progress is not None:
            self.progress[2 * self.spec.index] = len(self.stats)
            self.progress[2 * self.spec.index + 1] = self.errors

    async def _watch(self, tasks: list[asyncio.Future[None]]) -> None:
        while True:
            await asyncio.sleep(_PROGRESS_INTERVAL_S / 2)
            self._publish()
            if self.stop.is_set():
                self.stopped = "canceled"
                for t in tasks:
                    t.cancel()
                return

    async def run(self, ready: Callable[[], None], go: Callable[[], int]) -> dict[str, Any]:
        """Warm up, report ready, wait for the common start, then measure."""
        await self._resolve()
        if self.spec.warmup:
            await self._phase(self.spec.warmup, 0)
        self.stopped = "completed"
        self.errors = 0
        ready()
        loop = asyncio.get_running_loop()
        t_go = await loop.run_in_executor(None, go)
        if t_go < 0:
            self.stopped = "canceled"
        else:
            clock = time.thread_time if self.spec.use_thread_time else time.process_time
            cpu0 = clock()
            self.recording = True
            deadline = t_go + int(self.spec.duration_s * 1e9) if self.spec.duration_s else 0
            await self._phase(self.spec.requests, deadline)
            self.cpu_s = clock() - cpu0
        return {
            "start_ns": np.asarray(self.starts, dtype=np.int64),
            "latency_ns": np.asarray(self.lats, dtype=np.int64),
            "status": np.asarray(self.stats, dtype=np.int16),
            "stopped": self.stopped,
            "cpu_s": getattr(self, "cpu_s", 0.0),
        }


def _worker_main(
    spec: _WorkerSpec, progress: Any, stop: Any, go_event: Any, go_time: Any, out: Any
) -> None:
    """Entry point of a worker process or thread; reports through ``out``."""
    try:
        worker = _Worker(spec, progress, stop)

        def wait_go() -> int:
            while not go_event.wait(0.05):
                if stop.is_set():
                    return -1
            return -1 if stop.is_set() and go_time.value == 0 else int(go_time.value)

        loop = asyncio.new_event_loop()
        try:
            payload = loop.run_until_complete(
                worker.run(lambda: out.put(("ready", spec.index, None)), wait_go)
            )
        finally:
            loop.close()
        out.put(("done", spec.index, payload))
    except BaseException:  # report, never hang the parent
        out.put(("error", spec.index, traceback.format_exc()))


def resolve_workers(config: BenchmarkConfig) -> int:
    """Client workers to use: config.workers, or one per two cores (the server needs the rest)."""
    if config.workers > 0:
        return max(1, min(config.workers, config.concurrency))
    cores = os.cpu_count() or 1
    return max(1, min(config.concurrency, cores // 2))


def _split(total: int, parts: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``parts`` (largest remainder)."""
    weight = sum(parts)
    raw = [total * p / weight for p in parts]
    out = [int(x) for x in raw]
    for i in sorted(range(len(parts)), key=lambda i: raw[i] - out[i], reverse=True)[
        : total - sum(out)
    ]:
        out[i] += 1
    return out


def _validate(config: BenchmarkConfig) -> None:
    if config.concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if config.requests is None and not config.duration_s:
        raise ValueError("give a request count or a duration")
    if config.requests is not None and config.requests < 1:
        raise ValueError("requests must be >= 1")
    if config.timeout_s <= 0:
        raise ValueError("timeout must be > 0")
    if config.body_order not in ("cycle", "random"):
        raise ValueError("body_order is 'cycle' or 'random'")


def is_cancelled(cancel: threading.Event | Callable[[], bool] | None) -> bool:
    """True when ``cancel`` (an Event, anything with ``is_set``, or a callable) says stop."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event) or hasattr(cancel, "is_set"):
        return bool(cancel.is_set())  # type: ignore[union-attr]
    return bool(cancel())


def run_benchmark(
    config: BenchmarkConfig,
    bodies: Sequence[Any] | None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> BenchmarkResult:
    """Run a load test and return its result (raw samples in ``result.samples``).

    ``bodies`` are JSON-able objects (or bytes/str), cycled or sampled per request; None or
    empty sends requests without a body. ``cancel`` is an Event or a callable polled ~10/s;
    a canceled run returns what it measured so far.
    """
    _validate(config)
    requests_bytes = build_requests(config, bodies)
    parts = urlsplit(config.url)
    tls = parts.scheme == "https"
    n_workers = resolve_workers(config)
    conns = _split(config.concurrency, [1] * n_workers)
    reqs = _split(config.requests, conns) if config.requests is not None else [None] * n_workers
    warm = _split(config.warmup, conns) if config.warmup else [0] * n_workers

    if config.processes:
        ctx = multiprocessing.get_context("spawn")
        progress = ctx.RawArray("q", 2 * n_workers)
        stop, go_event = ctx.Event(), ctx.Event()
        go_time = ctx.RawValue("q", 0)
        out: Any = ctx.Queue()
    else:
        progress = [0] * (2 * n_workers)
        stop, go_event = threading.Event(), threading.Event()
        go_time = type("_Box", (), {"value": 0})()
        out = queue.Queue()

    runners: list[Any] = []
    for i in range(n_workers):
        spec = _WorkerSpec(
            index=i,
            host=parts.hostname or "",
            port=parts.port or (443 if tls else 80),
            tls=tls,
            server_hostname=parts.hostname or "",
            requests_bytes=requests_bytes,
            head_only=config.method.upper() == "HEAD",
            connections=conns[i],
            requests=reqs[i],
            duration_s=config.duration_s,
            warmup=warm[i],
            timeout_s=config.timeout_s,
            keep_alive=config.keep_alive,
            body_order=config.body_order,
            seed=config.seed,
            unreachable_s=config.unreachable_s,
            use_thread_time=not config.processes,
        )
        args = (spec, progress, stop, go_event, go_time, out)
        if config.processes:
            runner = ctx.Process(target=_worker_main, args=args, daemon=True)
        else:
            runner = threading.Thread(target=_worker_main, args=args, daemon=True)
        runner.start()
        runners.append(runner)

    def alive() -> bool:
        return any(r.is_alive() for r in runners)

    payloads: dict[int, dict[str, Any]] = {}
    failures: list[str] = []

    def drain(timeout: float) -> tuple[str, int, Any] | None:
        try:
            msg = out.get(timeout=timeout)
        except queue.Empty:
            return None
        if msg[0] == "done":
            payloads[msg[1]] = msg[2]
        elif msg[0] == "error":
            failures.append(msg[2])
        return msg

    try:
        ready = 0
        while ready < n_workers and not failures:
            msg = drain(_PROGRESS_INTERVAL_S)
            if msg is not None and msg[0] == "ready":
                ready += 1
            if is_cancelled(cancel):
                stop.set()
                break
            if msg is None and not alive():
                failures.append("a benchmark worker exited before starting")
        started_at = datetime.now(UTC)
        t_go = time.monotonic_ns()
        if not stop.is_set() and not failures:
            go_time.value = t_go
        go_event.set()

        total = config.requests if not config.duration_s else None
        last_done, last_t = 0, t_go
        while len(payloads) + len(failures) < n_workers:
            drain(_PROGRESS_INTERVAL_S)
            if is_cancelled(cancel):
                stop.set()
            now = time.monotonic_ns()
            if on_progress is not None and now - last_t >= _PROGRESS_INTERVAL_S * 1e9 * 0.9:
                done = int(sum(progress[0::2]))
                errs = int(sum(progress[1::2]))
                rps = (done - last_done) / ((now - last_t) / 1e9)
                on_progress(Progress(done, total, (now - t_go) / 1e9, config.duration_s, rps, errs))
                last_done, last_t = done, now
            if not alive():
                while drain(0.2) is not None:
                    pass
                if len(payloads) + len(failures) < n_workers:
                    failures.append("a benchmark worker exited without a result")
    finally:
        # All workers have reported by now, unless something failed: then stop them.
        stop.set()
        go_event.set()
        for r in runners:
            r.join(timeout=5)
            if config.processes and r.is_alive():
                r.terminate()
    if failures:
        raise RuntimeError("benchmark worker failed:\n" + failures[0])

    start_ns = np.concatenate([payloads[i]["start_ns"] for i in range(n_workers)])
    latency_ns = np.concatenate([payloads[i]["latency_ns"] for i in range(n_workers)])
    status = np.concatenate([payloads[i]["status"] for i in range(n_workers)])
    order = np.argsort(start_ns + latency_ns, kind="stable")
    start_ms = (start_ns[order] - t_go) / 1e6
    latency_ms = latency_ns[order] / 1e6
    samples = Samples(start_ms, latency_ms, status[order])
    end_ms = float((start_ms + latency_ms).max()) if len(samples) else 0.0
    stops = {payloads[i]["stopped"] for i in range(n_workers)}
    stopped = next((s for s in ("canceled", "unreachable", "duration") if s in stops), "completed")
    if is_cancelled(cancel):
        stopped = "canceled"
    duration = config.duration_s if stopped == "duration" else end_ms / 1000.0
    if stopped == "duration":
        duration = max(duration, end_ms / 1000.0)
    result = build_result(
        config,
        samples,
        duration_s=duration,
        started_at=started_at,
        stopped=stopped,
        workers=n_workers,
        client_cpu_s=sum(payloads[i]["cpu_s"] for i in range(n_workers)),
    )
    if on_progress is not None:
        on_progress(
            Progress(
                len(samples),
                total,
                duration,
                config.duration_s,
                result.throughput_rps,
                result.errors,
            )
        )
    return result
