"""Latency benchmark engine: a closed-loop HTTP load generator plus result statistics.

The generator runs one or more worker processes, each with a raw asyncio HTTP/1.1 client
(persistent connections by default, or one new connection per request like plain ``ab``).
Every request's latency (``time.monotonic_ns``) and status are recorded; statistics are
computed from the raw samples. Run it from the UI in a thread or subprocess
(``on_progress`` / ``cancel``), or from the shell: ``python -m lib.benchmark --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import queue
import random
import socket
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

# Status codes for requests that got no HTTP response (HTTP codes are > 0).
STATUS_UNKNOWN = 0  # sample imported without a status (ab's -g file)
STATUS_CONNECTION_ERROR = -1
STATUS_TIMEOUT = -2
STATUS_PROTOCOL_ERROR = -3

_STATUS_NAMES = {
    STATUS_UNKNOWN: "unknown",
    STATUS_CONNECTION_ERROR: "connection_error",
    STATUS_TIMEOUT: "timeout",
    STATUS_PROTOCOL_ERROR: "protocol_error",
}
PERCENTILES = (50, 90, 95, 99)
# After a connection error, pause before the next attempt so a dead target is not hammered.
_CONNECT_BACKOFF_S = 0.01
_PROGRESS_INTERVAL_S = 0.1
_MAX_HEAD_BYTES = 64 * 1024


@dataclass
class BenchmarkConfig:
    """What to load, how hard and for how long."""

    url: str
    key: str | None = field(default=None, repr=False)
    method: str = "POST"
    concurrency: int = 1
    requests: int | None = 1000
    duration_s: float | None = None
    warmup: int = 0
    timeout_s: float = 10.0
    body_order: str = "cycle"  # "cycle" or "random"
    seed: int = 0
    keep_alive: bool = True
    workers: int = 0  # client processes; 0 = auto
    processes: bool = True  # False: workers are threads of the calling process
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    unreachable_s: float = 3.0  # stop when only connection errors were seen for this long
    slo_p95_ms: float | None = None
    slo_max_error_rate: float | None = None
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; the key is never included, only whether one was set."""
        data = asdict(self)
        data.pop("key")
        data["auth"] = bool(self.key)
        data["headers"] = {
            k: ("***" if k.lower() == "authorization" else v) for k, v in self.headers.items()
        }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Samples:
    """Raw per-request samples, in completion order."""

    start_ms: np.ndarray  # request start, ms since the measured phase began
    latency_ms: np.ndarray
    status: np.ndarray  # HTTP status, or one of the STATUS_* codes

    def __len__(self) -> int:
        return len(self.latency_ms)

    @classmethod
    def empty(cls) -> Samples:
        return cls(np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int16))


@dataclass
class BenchmarkResult:
    """Summary of one run; ``samples`` (raw latencies) is kept out of the JSON form."""

    tool: str  # "opsdeck" or "ab"
    target: str
    started_at: str  # ISO 8601, UTC
    duration_s: float
    concurrency: int
    requests: int  # measured requests (warm-up excluded)
    keep_alive: bool
    throughput_rps: float
    mean_ms: float | None
    min_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    ok: int
    errors: int
    error_rate: float
    status_counts: dict[str, int] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    histogram: list[dict[str, float]] = field(default_factory=list)
    series: list[dict[str, float]] = field(default_factory=list)
    slo: dict[str, Any] | None = None
    stopped: str = "completed"  # completed | duration | canceled | unreachable
    warmup: int = 0
    workers: int = 1
    client_cpu_s: float | None = None
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    label: str = ""
    command: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    samples: Samples | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "samples"}
        return json.loads(json.dumps(data, default=_json_default))

    @classmethod
    def from_dict(cls, data: dict[str, Any], samples: Samples | None = None) -> BenchmarkResult:
        names = {f.name for f in fields(cls)} - {"samples"}
        return cls(**{k: v for k, v in data.items() if k in names}, samples=samples)

    @property
    def slo_passed(self) -> bool | None:
        return None if self.slo is None else bool(self.slo["passed"])


@dataclass
class Progress:
    """Live progress of a run, passed to ``on_progress`` about ten times a second."""

    done: int
    total: int | None  # None in duration mode
    elapsed_s: float
    duration_s: float | None
    rps: float  # over the last interval
    errors: int

    @property
    def fraction(self) -> float:
        if self.total:
            return min(1.0, self.done / self.total)
        if self.duration_s:
            return min(1.0, self.elapsed_s / self.duration_s)
        return 0.0


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------- statistics


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def status_name(status: int) -> str:
    """'200', 'timeout', 'connection_error', ..."""
    return str(int(status)) if status > 0 else _STATUS_NAMES.get(int(status), str(int(status)))


def percentiles(
    latencies_ms: Sequence[float] | np.ndarray, qs: Sequence[float] = PERCENTILES
) -> dict[str, float | None]:
    """Percentiles of raw samples (linear interpolation), as {'p50_ms': ..., ...}."""
    arr = np.asarray(latencies_ms, dtype=float)
    if arr.size == 0:
        return {f"p{q:g}_ms": None for q in qs}
    values = np.percentile(arr, list(qs))
    return {f"p{q:g}_ms": _num(v) for q, v in zip(qs, values, strict=True)}


def error_kinds(statuses: Sequence[int] | np.ndarray) -> dict[str, int]:
    """Counts of failed requests by kind."""
    st = np.asarray(statuses, dtype=np.int64)
    return {
        "timeout": int(np.count_nonzero(st == STATUS_TIMEOUT)),
        "connection": int(np.count_nonzero(st == STATUS_CONNECTION_ERROR)),
        "protocol": int(np.count_nonzero(st == STATUS_PROTOCOL_ERROR)),
        "http_4xx": int(np.count_nonzero((st >= 400) & (st < 500))),
        "http_5xx": int(np.count_nonzero(st >= 500)),
    }


def summarize(
    latencies_ms: Sequence[float] | np.ndarray,
    statuses: Sequence[int] | np.ndarray,
    started: float,
    ended: float,
) -> dict[str, Any]:
    """Throughput, latency statistics and error counts of one run.

    ``started``/``ended`` are in seconds on any common clock. Latency statistics cover
    requests that got an HTTP response (any status); timeouts and connection errors have
    no meaningful latency and are only counted. Throughput counts every finished request.
    """
    lat = np.asarray(latencies_ms, dtype=float)
    st = np.asarray(statuses, dtype=np.int64)
    if lat.shape != st.shape:
        raise ValueError("latencies and statuses differ in length")
    answered = lat[(st > 0) | (st == STATUS_UNKNOWN)]
    elapsed = max(0.0, ended - started)
    kinds = error_kinds(st)
    errors = sum(kinds.values())
    codes, counts = np.unique(st, return_counts=True)
    summary: dict[str, Any] = {
        "requests": int(st.size),
        "ok": int(st.size - errors),
        "errors": int(errors),
        "error_rate": round(errors / st.size, 6) if st.size else 0.0,
        "duration_s": round(elapsed, 6),
        "throughput_rps": round(st.size / elapsed, 3) if elapsed > 0 else 0.0,
        "mean_ms": _num(answered.mean()) if answered.size else None,
        "min_ms": _num(answered.min()) if answered.size else None,
        **percentiles(answered),
        "max_ms": _num(answered.max()) if answered.size else None,
        "status_counts": {status_name(c): int(n) for c, n in zip(codes, counts, strict=True)},
        "error_kinds": kinds,
    }
    return summary


def latency_histogram(
    latencies_ms: Sequence[float] | np.ndarray, bins: int = 30
) -> list[dict[str, float]]:
    """Equal-width histogram from the fastest to the slowest sample."""
    arr = np.asarray(latencies_ms, dtype=float)
    if arr.size == 0:
        return []
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return [{"lo_ms": lo, "hi_ms": hi, "count": int(arr.size)}]
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    return [
        {"lo_ms": round(float(a), 4), "hi_ms": round(float(b), 4), "count": int(n)}
        for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)
    ]


def per_second_series(
    end_s: Sequence[float] | np.ndarray,
    latencies_ms: Sequence[float] | np.ndarray,
    statuses: Sequence[int] | np.ndarray,
    duration_s: float | None = None,
) -> list[dict[str, float]]:
    """Throughput and latency percentiles per second of the run, by completion time.

    ``end_s`` is each request's completion time in seconds since the run started. The last
    bin is usually partial: its rate is divided by its real width so the chart does not dip.
    """
    end = np.asarray(end_s, dtype=float)
    lat = np.asarray(latencies_ms, dtype=float)
    st = np.asarray(statuses, dtype=np.int64)
    if end.size == 0:
        return []
    total = float(duration_s) if duration_s else float(end.max())
    n_bins = max(1, int(np.ceil(total)) if total > 0 else 1)
    idx = np.clip(np.floor(end).astype(np.int64), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = idx == b
        width = min(1.0, total - b) if total > b else 1.0
        width = width if width > 0 else 1.0
        sel_st = st[mask]
        answered = lat[mask & ((st > 0) | (st == STATUS_UNKNOWN))]
        pct = percentiles(answered, (50, 95, 99))
        n_err = int(np.count_nonzero((sel_st >= 400) | (sel_st < 0)))
        rows.append(
            {
                "second": b,
                "requests": int(mask.sum()),
                "rps": round(int(mask.sum()) / width, 3),
                "errors": n_err,
                **pct,
            }
        )
    return rows


def evaluate_slo(
    summary: dict[str, Any], p95_ms: float | None, max_error_rate: float | None
) -> dict[str, Any] | None:
    """Pass/fail against a p95 target and a maximum error rate; None when no SLO is set."""
    if p95_ms is None and max_error_rate is None:
        return None
    reasons = []
    if p95_ms is not None:
        p95 = summary.get("p95_ms")
        if p95 is None or p95 > p95_ms:
            reasons.append(f"p95 {p95} ms > {p95_ms} ms")
    if max_error_rate is not None and summary.get("error_rate", 0.0) > max_error_rate:
        reasons.append(f"error rate {summary['error_rate']:.4f} > {max_error_rate}")
    return {
        "p95_ms": p95_ms,
        "max_error_rate": max_error_rate,
        "passed": not reasons,
        "reasons": reasons,
    }


def build_result(
    config: BenchmarkConfig,
    samples: Samples,
    *,
    duration_s: float,
    started_at: datetime,
    tool: str = "opsdeck",
    stopped: str = "completed",
    workers: int = 1,
    client_cpu_s: float | None = None,
    command: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> BenchmarkResult:
    """Turn raw samples into a BenchmarkResult (``overrides`` replaces computed summary values)."""
    summary = summarize(samples.latency_ms, samples.status, 0.0, duration_s)
    summary.update(overrides or {})
    end_s = (samples.start_ms + samples.latency_ms) / 1000.0
    answered = samples.latency_ms[(samples.status > 0) | (samples.status == STATUS_UNKNOWN)]
    return BenchmarkResult(
        tool=tool,
        target=config.url,
        started_at=started_at.isoformat(timespec="seconds"),
        duration_s=summary["duration_s"],
        concurrency=config.concurrency,
        requests=summary["requests"],
        keep_alive=config.keep_alive,
        throughput_rps=summary["throughput_rps"],
        mean_ms=summary["mean_ms"],
        min_ms=summary["min_ms"],
        p50_ms=summary["p50_ms"],
        p90_ms=summary["p90_ms"],
        p95_ms=summary["p95_ms"],
        p99_ms=summary["p99_ms"],
        max_ms=summary["max_ms"],
        ok=summary["ok"],
        errors=summary["errors"],
        error_rate=summary["error_rate"],
        status_counts=summary["status_counts"],
        error_kinds=summary["error_kinds"],
        histogram=latency_histogram(answered),
        series=per_second_series(end_s, samples.latency_ms, samples.status, duration_s),
        slo=evaluate_slo(summary, config.slo_p95_ms, config.slo_max_error_rate),
        stopped=stopped,
        warmup=config.warmup,
        workers=workers,
        client_cpu_s=None if client_cpu_s is None else round(client_cpu_s, 4),
        label=config.label,
        command=command,
        config=config.to_dict(),
        samples=samples,
    )


# --------------------------------------------------------------------------- requests


def encode_body(body: Any) -> bytes:
    """A request body as bytes: bytes/str as given, anything else as compact JSON."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


def build_requests(config: BenchmarkConfig, bodies: Sequence[Any] | None) -> list[bytes]:
    """Serialise every request once, so the hot loop only writes bytes."""
    parts = urlsplit(config.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {config.url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if parts.scheme == "https" else 80
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    host_header = host if (parts.port or default_port) == default_port else f"{host}:{parts.port}"
    method = config.method.upper()
    headers = {"Host": host_header, "User-Agent": "opsdeck-bench", "Accept": "*/*"}
    if config.key:
        headers["Authorization"] = f"Bearer {config.key}"
    headers.update(config.headers)
    if not config.keep_alive:
        headers["Connection"] = "close"
    encoded = [encode_body(b) for b in bodies] if bodies else [b""]
    out = []
    for payload in encoded:
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if payload or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Type: {config.content_type}")
            lines.append(f"Content-Length: {len(payload)}")
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
    return out


# --------------------------------------------------------------------------- client


class _RequestFailed(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status_name(status))
        self.status = status


class _HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection: write a request, parse exactly one response."""

    def __init__(self, head_only: bool) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False
        self.must_close = False
        self.t_done = 0
        self.head_only = head_only
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.need = -1  # body bytes still expected; -1 = headers not parsed yet
        self.chunked = False
        self.until_close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None:
            try:
                self._parse()
            except (ValueError, IndexError):
                self._fail(STATUS_PROTOCOL_ERROR)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self.until_close and self.need == 0:
                self._complete()
            else:
                self.waiter = None
                waiter.set_exception(_RequestFailed(STATUS_CONNECTION_ERROR))

    def send(self, request: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[int]:
        self._reset()
        self.waiter = fut = loop.create_future()
        self.transport.write(request)  # type: ignore[union-attr]
        if self.buf:
            self._parse()
        return fut

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, status: int) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(_RequestFailed(status))
        self.abort()

    def _complete(self) -> None:
        self.t_done = time.monotonic_ns()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self.status)

    def _parse(self) -> None:
        buf = self.buf
        while self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD_BYTES:
                    raise ValueError("response head too large")
                return
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            if not head.startswith(b"http/1."):
                raise ValueError("not an HTTP/1.x response")
            status = int(head[9:12])
            if 100 <= status < 200:
                continue  # interim response; the final one follows
            self.status = status
            http10 = head.startswith(b"http/1.0")
            self.must_close = b"\nconnection: close" in head or (
                http10 and b"\nconnection: keep-alive" not in head
            )
            te = head.find(b"\ntransfer-encoding:")
            cl = head.find(b"\ncontent-length:")
            if self.head_only or status in (204, 304):
                self.need = 0
            elif te >= 0 and b"chunked" in head[te : head.find(b"\n", te + 1) % (len(head) + 1)]:
                self.chunked = True
                self.need = 0
            elif cl >= 0:
                stop = head.find(b"\r", cl + 16)
                self.need = int(head[cl + 16 : stop if stop >= 0 else len(head)])
            else:
                self.until_close = True
                self.must_close = True
                self.need = 0
                buf.clear()
                return
        if self.until_close:
            buf.clear()
            return
        if self.chunked:
            self._parse_chunks()
            return
        if len(buf) >= self.need:
            del buf[: self.need]
            self._complete()

    def _parse_chunks(self) -> None:
        buf = self.buf
        while True:
            if self.need > 0:  # inside a chunk: data + CRLF
                if len(buf) < self.need + 2:
                    return
                del buf[: self.need + 2]
                self.need = 0
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buf[:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                if buf.startswith(b"0\r\n\r\n", 0) or buf[line_end : line_end + 4] == b"\r\n\r\n":
                    del buf[: line_end + 4]
                    self._complete()
                    return
                trailer_end = buf.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return
                del buf[: trailer_end + 4]
                self._complete()
                return
            del buf[: line_end + 2]
            self.need = size


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

    async def _connect(self, timeout: float) -> _HttpConnection:
        loop = asyncio.get_running_loop()
        if self.addr is None:
            raise _RequestFailed(STATUS_CONNECTION_ERROR)
        host, port = self.addr[0], self.addr[1]
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _HttpConnection(self.spec.head_only),
                    host,
                    port,
                    ssl=self.ssl_ctx,
                    server_hostname=self.spec.server_hostname if self.ssl_ctx else None,
                ),
                timeout,
            )
        except TimeoutError as exc:
            raise _RequestFailed(STATUS_TIMEOUT) from exc
        except (OSError, ssl.SSLError) as exc:
            raise _RequestFailed(STATUS_CONNECTION_ERROR) from exc
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
        conn: _HttpConnection | None = None
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
            except _RequestFailed as exc:
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


def _is_cancelled(cancel: threading.Event | Callable[[], bool] | None) -> bool:
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
            if _is_cancelled(cancel):
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
            if _is_cancelled(cancel):
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
    if _is_cancelled(cancel):
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


# --------------------------------------------------------------------------- CLI


def load_bodies(path: Path) -> list[Any]:
    """Bodies from a file: .jsonl = one body per line; .json list = several bodies, else one."""
    text = Path(path).read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    return data if isinstance(data, list) else [data]


def format_summary(result: BenchmarkResult) -> str:
    """An ab-like text summary."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = [
        f"Target:                 {result.target}",
        f"Tool:                   {result.tool} ({result.workers} client worker(s) on {result.cores} cores"
        + (f", client CPU {result.client_cpu_s:.2f} s" if result.client_cpu_s is not None else "")
        + ")",
        f"Concurrency Level:      {result.concurrency}",
        f"Keep-alive:             {'yes' if result.keep_alive else 'no (new connection per request)'}",
        f"Time taken for tests:   {result.duration_s:.3f} seconds ({result.stopped})",
        f"Complete requests:      {result.requests} (+{result.warmup} warm-up)",
        f"Failed requests:        {result.errors} ({result.error_rate:.2%})",
        f"Requests per second:    {result.throughput_rps:.2f} [#/sec] (mean)",
        f"Latency mean:           {ms(result.mean_ms)} [ms]",
        "",
        "Percentage of the requests served within a certain time (ms)",
    ]
    for name in ("min", "p50", "p90", "p95", "p99", "max"):
        lines.append(f"  {name:>4}  {ms(getattr(result, f'{name}_ms'))}")
    lines.append("")
    lines.append(
        "Status codes: " + ", ".join(f"{k}={v}" for k, v in sorted(result.status_counts.items()))
    )
    kinds = {k: v for k, v in result.error_kinds.items() if v}
    if kinds:
        lines.append("Errors: " + ", ".join(f"{k}={v}" for k, v in kinds.items()))
    if result.slo is not None:
        verdict = "PASS" if result.slo["passed"] else "FAIL: " + "; ".join(result.slo["reasons"])
        lines.append(f"SLO: {verdict}")
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lib.benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--key-env", help="name of the environment variable holding the key")
    p.add_argument("--body-file", type=Path, help=".json (one body or a list) or .jsonl")
    p.add_argument("--method", default=None, help="default: POST with a body, GET without")
    p.add_argument("--concurrency", "-c", type=int, default=1)
    p.add_argument("--requests", "-n", type=int, default=None)
    p.add_argument("--duration", type=float, default=None, help="seconds (instead of --requests)")
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--order", choices=["cycle", "random"], default="cycle")
    p.add_argument("--no-keepalive", action="store_true", help="a new connection per request")
    p.add_argument("--workers", type=int, default=0, help="client processes (0 = auto)")
    p.add_argument("--slo-p95", type=float, default=None, help="target p95 in ms")
    p.add_argument("--slo-error-rate", type=float, default=None, help="maximum error rate (0-1)")
    p.add_argument("--label", default="")
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    p.add_argument("--history", type=Path, default=None, help="save the run in this history folder")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    key = None
    if args.key_env:
        key = os.environ.get(args.key_env)
        if not key:
            print(f"environment variable {args.key_env} is not set", file=sys.stderr)
            return 2
    bodies = load_bodies(args.body_file) if args.body_file else None
    requests = args.requests if args.requests is not None else (None if args.duration else 1000)
    config = BenchmarkConfig(
        url=args.url,
        key=key,
        method=args.method or ("POST" if bodies else "GET"),
        concurrency=args.concurrency,
        requests=requests,
        duration_s=args.duration,
        warmup=args.warmup,
        timeout_s=args.timeout,
        body_order=args.order,
        keep_alive=not args.no_keepalive,
        workers=args.workers,
        slo_p95_ms=args.slo_p95,
        slo_max_error_rate=args.slo_error_rate,
        label=args.label,
    )
    tty = sys.stderr.isatty()

    def show(p: Progress) -> None:
        if tty:
            print(
                f"\r{p.fraction:6.1%}  {p.done} done  {p.rps:8.1f} req/s  {p.errors} errors",
                end="",
                file=sys.stderr,
            )

    cancel = threading.Event()
    try:
        result = run_benchmark(config, bodies, on_progress=show, cancel=cancel)
    except KeyboardInterrupt:
        return 130
    if tty:
        print(file=sys.stderr)
    print(format_summary(result))
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2))
    if args.history:
        from lib.local.benchmark_history import BenchmarkHistory

        run_id = BenchmarkHistory(args.history).save(result, result.samples, config)
        print(f"Saved as {run_id}")
    if result.slo is not None and not result.slo["passed"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
