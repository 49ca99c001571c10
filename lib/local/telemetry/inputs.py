"""Drift sampling: scored inputs and outputs counted into the cells of the model's training profile.

On the request path `InputSamples.offer` only decides whether to keep a request (on/off, a
sampling rate, a cap of rows per minute) and queues references to its records and outputs. The
writer's thread counts them into the baseline's cells (`lib.drift.Baseline.count`) and adds the
counts to `DriftRollup` at every drift grain; the baseline itself is stored once by its id.
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lib.local.telemetry.schema import DRIFT_GRAINS
from lib.settings import MonitoringSettings

if TYPE_CHECKING:
    from lib.drift import Baseline

COUNTS_DTYPE = np.dtype("<i8")
_UPSERT = """
INSERT INTO DriftRollup (Grain, BinStart, Endpoint, Deployment, Baseline, Rows, Counts)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (Grain, BinStart, Endpoint, Deployment, Baseline) DO UPDATE SET
    Rows = Rows + excluded.Rows,
    Counts = counts_add(Counts, excluded.Counts)
"""


@dataclass(frozen=True)
class SamplingSettings:
    """Which scored rows are recorded for drift: on/off, share of requests, rows per minute."""

    enabled: bool = True
    rate: float = 1.0
    cap_per_minute: int = 10_000

    @classmethod
    def from_settings(cls, settings: MonitoringSettings) -> SamplingSettings:
        return cls(
            enabled=settings.drift_sampling,
            rate=settings.drift_rate,
            cap_per_minute=settings.drift_cap_per_minute,
        )


def counts_add(a: bytes | None, b: bytes | None) -> bytes | None:
    """SQLite function: the element-wise sum of two stored count vectors."""
    if a is None or b is None:
        return a if b is None else b
    x, y = np.frombuffer(a, COUNTS_DTYPE), np.frombuffer(b, COUNTS_DTYPE)
    if len(x) != len(y):  # cannot happen for one baseline id; keep what is stored
        return a
    return (x + y).tobytes()


def _predicted(outputs: list, classes: list | None) -> list | None:
    """Predicted labels: the outputs themselves, or the most probable class of probability rows."""
    if not classes:
        return outputs
    labels = []
    for row in outputs:
        if not isinstance(row, list | tuple) or len(row) != len(classes):
            return None
        labels.append(classes[max(range(len(row)), key=row.__getitem__)])
    return labels


class DriftCounts:
    """Counts of one flush per (5-minute bin, endpoint, deployment, baseline)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str, str, str], tuple[int, np.ndarray]] = {}
        self.baselines: dict[str, Baseline] = {}

    def add(
        self,
        t: float,
        endpoint: str,
        deployment: str,
        baseline: Baseline,
        records: list,
        predictions: list | None,
    ) -> None:
        base = DRIFT_GRAINS[0]
        key = (int(t) // base * base, endpoint, deployment, baseline.id)
        counts = baseline.count(records, predictions)
        n, total = self.rows.get(key, (0, None))
        self.rows[key] = (n + len(records), counts if total is None else total + counts)
        self.baselines[baseline.id] = baseline

    def write(self, conn: sqlite3.Connection) -> None:
        """Add these counts to every drift grain (inside the caller's transaction)."""
        conn.executemany(
            "INSERT OR IGNORE INTO DriftBaselines (Id, Body) VALUES (?, ?)",
            [(bid, b.to_json()) for bid, b in self.baselines.items()],
        )
        params = []
        for grain in DRIFT_GRAINS:
            folded: dict[tuple, tuple[int, np.ndarray]] = {}
            for (t, e, d, bid), (n, counts) in self.rows.items():
                key = (t // grain * grain, e, d, bid)
                m, total = folded.get(key, (0, None))
                folded[key] = (m + n, counts if total is None else total + counts)
            params.extend(
                (grain, *key, n, counts.astype(COUNTS_DTYPE).tobytes())
                for key, (n, counts) in folded.items()
            )
        conn.executemany(_UPSERT, params)


class InputSamples:
    """The queue of sampled scored rows, and the sampling decision made on the request path."""

    def __init__(
        self,
        settings: SamplingSettings,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] | None = None,
    ) -> None:
        import random

        self.settings = settings
        self.clock = clock
        self.rng = rng or random.random
        self._baselines: dict[str, Baseline] = {}
        self._queue: deque[tuple] = deque()
        self._minute = -1
        self._taken = 0
        self.dropped = 0  # rows offered past the per-minute cap

    def set_baseline(self, baseline: Baseline | None, deployment: str = "") -> None:
        if baseline is None:
            self._baselines.pop(deployment, None)
        else:
            self._baselines[deployment] = baseline

    @property
    def active(self) -> bool:
        return self.settings.enabled and bool(self._baselines)

    def offer(
        self,
        records: list[dict],
        outputs: list,
        deployment: str = "",
        classes: list | None = None,
        endpoint: str = "",
        at: float | None = None,
    ) -> None:
        """Keep (a reference to) the request's rows if sampling allows; never copies them."""
        if not self.settings.enabled or not self._baselines:
            return
        now = self.clock() if at is None else at
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._taken = minute, 0
        room = self.settings.cap_per_minute - self._taken
        if room <= 0:
            self.dropped += len(records)
            return
        if self.settings.rate < 1.0 and self.rng() >= self.settings.rate:
            return
        if len(records) > room:
            self.dropped += len(records) - room
            records, outputs = records[:room], outputs[:room]
        self._taken += len(records)
        self._queue.append((now, endpoint, deployment, records, outputs, classes))

    def drain(self) -> list[tuple]:
        return [self._queue.popleft() for _ in range(len(self._queue))]

    def count(self, samples: list[tuple[Any, ...]]) -> DriftCounts | None:
        """Count drained samples into their deployment's baseline (off the request path)."""
        counts = DriftCounts()
        for t, endpoint, deployment, records, outputs, classes in samples:
            baseline = self._baselines.get(deployment) or self._baselines.get("")
            if baseline is None:
                continue
            counts.add(
                t, endpoint, deployment, baseline, records, _predicted(list(outputs), classes)
            )
        return counts if counts.rows else None
