"""The batched writer: the scoring server hands rows over; a background thread stores them.

`record_request` / `record_trace` / `record_inputs` only append to in-memory queues (the request
path never touches SQLite). A daemon thread flushes every ~0.5 s (sooner when `batch_size` rows
wait) in one transaction: raw rows, their roll-ups at every grain, and the drift counts of the
sampled inputs. Between flushes it prunes rows past their retention, one small batch at a time.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from lib.local.telemetry.inputs import InputSamples, SamplingSettings
from lib.local.telemetry.retention import Pruner, Retention
from lib.local.telemetry.rollups import Rollup
from lib.local.telemetry.schema import SEVERITY, STORED_REQUEST_COLUMNS, connect, iso_utc
from lib.settings import load_settings

if TYPE_CHECKING:
    from lib.drift import Baseline

log = logging.getLogger("opsdeck.telemetry")

_INSERT_REQUEST = (
    f"INSERT INTO AppRequests ({', '.join(STORED_REQUEST_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(STORED_REQUEST_COLUMNS))})"
)
_INSERT_TRACE = (
    "INSERT INTO AppTraces (TimeGenerated, Message, SeverityLevel, Endpoint) VALUES (?, ?, ?, ?)"
)
# Rows waiting for a flush, per kind: past this (the store is locked or gone), new rows are
# dropped and counted, so the server's memory stays bounded.
MAX_QUEUED = 100_000
# Request paths and URLs are chosen by the caller (a 404 for a 16 KB path): stored cut.
MAX_NAME_CHARS = 256
MAX_URL_CHARS = 1024
MAX_MESSAGE_CHARS = 8192


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RequestRecord(NamedTuple):
    """One served request, as the scoring app hands it over (time is epoch seconds)."""

    time: float
    operation_id: str
    name: str
    url: str
    result_code: int
    duration_ms: float
    endpoint: str
    model_version: str
    rows: int | None
    deployment: str = ""


class TelemetryWriter:
    """Batched writer: `record_*` only append to a queue; a daemon thread writes to SQLite."""

    def __init__(
        self,
        db_path: Path | str,
        endpoint: str = "",
        flush_interval: float = 0.5,
        batch_size: int = 1000,
        retention: Retention | None = None,  # default: the settings' retention
        sampling: SamplingSettings | None = None,  # default: the settings' drift sampling
        clock: Callable[[], float] = time.time,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.db_path = Path(db_path)
        self.max_queued = max_queued
        self.dropped_requests = 0
        self.dropped_traces = 0
        self._reported_drops = (0, 0)
        self.endpoint = endpoint
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.clock = clock
        self._requests: deque[RequestRecord] = deque()
        self._traces: deque[tuple] = deque()
        if retention is None or sampling is None:
            # The server process reads the same settings as the dashboard that started it.
            monitoring = load_settings().monitoring
            retention = retention or Retention.from_settings(monitoring)
            sampling = sampling or SamplingSettings.from_settings(monitoring)
        self.inputs = InputSamples(sampling, clock=clock, rng=random.random)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conn = connect(self.db_path)
        self.pruner = Pruner(self._conn, retention, clock=clock)
        self._thread = threading.Thread(target=self._run, name="telemetry-writer", daemon=True)
        self._thread.start()

    def record_request(self, record: RequestRecord) -> None:
        queued = len(self._requests)
        if queued >= self.max_queued:
            self.dropped_requests += 1
            return
        self._requests.append(record)
        if queued + 1 >= self.batch_size:
            self._wake.set()

    def record_trace(self, message: str, severity: int = 1, endpoint: str | None = None) -> None:
        """Queue a console line (severity on the App Insights 0-4 scale)."""
        if len(self._traces) >= self.max_queued:
            self.dropped_traces += 1
            return
        self._traces.append(
            (
                iso_utc(datetime.fromtimestamp(self.clock(), UTC)),
                _clip(message, MAX_MESSAGE_CHARS),
                severity,
                endpoint or self.endpoint,
            )
        )

    def set_baseline(self, baseline: Baseline | None, deployment: str = "") -> None:
        """The training profile sampled inputs of `deployment` are counted against (None: none)."""
        self.inputs.set_baseline(baseline, deployment)

    def record_inputs(
        self,
        records: list[dict],
        outputs: list,
        deployment: str = "",
        classes: list | None = None,
        endpoint: str | None = None,
        at: float | None = None,
    ) -> None:
        """Offer scored records and their outputs for drift sampling (cheap; may keep none).

        `classes` means the outputs are probability rows in that class order; `at` is the time
        they were scored (default: now).
        """
        self.inputs.offer(records, outputs, deployment, classes, endpoint or self.endpoint, at)

    def flush(self) -> int:
        """Write everything queued so far in one transaction; return the number of rows written."""
        with self._lock:
            requests = [self._requests.popleft() for _ in range(len(self._requests))]
            traces = [self._traces.popleft() for _ in range(len(self._traces))]
            dropped = (self.dropped_requests, self.dropped_traces)
            if dropped != self._reported_drops:
                new = [d - r for d, r in zip(dropped, self._reported_drops, strict=True)]
                self._reported_drops = dropped
                traces.append(
                    (
                        iso_utc(datetime.fromtimestamp(self.clock(), UTC)),
                        f"telemetry queue full: {new[0]} requests and {new[1]} traces dropped "
                        f"({dropped[0]} and {dropped[1]} since start)",
                        2,
                        self.endpoint,
                    )
                )
            samples = self.inputs.drain()
            if not requests and not traces and not samples:
                return 0
            rollup = Rollup()
            rows = []
            add = rollup.add
            last_sec, prefix = -1, ""
            for r in requests:
                # Text time and roll-up bin from the same rounded (second, microsecond) pair.
                sec = int(r.time)
                us = round((r.time - sec) * 1_000_000)
                if us >= 1_000_000:
                    sec, us = sec + 1, us - 1_000_000
                if sec != last_sec:
                    last_sec = sec
                    prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
                code = r.result_code
                ok = code < 400
                text_code = str(code)
                ms = round(r.duration_ms, 3)
                endpoint = r.endpoint or ""
                deployment = r.deployment or ""
                rows.append(
                    (
                        f"{prefix}.{us:06d}+00:00",
                        r.operation_id,
                        _clip(r.name, MAX_NAME_CHARS),
                        _clip(r.url, MAX_URL_CHARS),
                        text_code,
                        ms,
                        int(ok),
                        r.endpoint,
                        deployment,
                        r.model_version,
                        r.rows,
                    )
                )
                add(sec, endpoint, deployment, text_code, not ok, ms)
            counted = self.inputs.count(samples) if samples else None
            with self._conn:
                if rows:
                    self._conn.executemany(_INSERT_REQUEST, rows)
                    rollup.write(self._conn)
                if traces:
                    self._conn.executemany(_INSERT_TRACE, traces)
                if counted is not None:
                    counted.write(self._conn)
            return len(requests) + len(traces)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except sqlite3.Error as exc:  # keep serving; rows stay queued for the next attempt
                log.warning("telemetry flush failed: %s", exc)
            try:
                # One small batch per turn: writers (this one and other servers') wait at most
                # one batch, and the queue keeps being flushed while a large backlog is pruned.
                with self._lock:
                    self.pruner.step()
            except sqlite3.Error as exc:
                log.warning("telemetry pruning failed: %s", exc)

    def close(self) -> None:
        """Stop the thread and flush what is left."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()
        self._conn.close()


class TraceHandler(logging.Handler):
    """A logging handler that turns console lines into trace rows."""

    def __init__(self, writer: TelemetryWriter, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            severity = SEVERITY.get(record.levelno, 1 if record.levelno < logging.WARNING else 3)
            self.writer.record_trace(self.format(record), severity)
        except Exception:
            self.handleError(record)
