"""What a load test is asked to do and what it reports: the config, raw samples, result, progress.

Status codes below zero mark requests that got no HTTP response; HTTP codes are > 0.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

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


def status_name(status: int) -> str:
    """'200', 'timeout', 'connection_error', ..."""
    return str(int(status)) if status > 0 else _STATUS_NAMES.get(int(status), str(int(status)))


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
