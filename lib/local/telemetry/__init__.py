"""Telemetry store for local endpoints: App Insights-style request and trace tables, roll-ups
beside them for the Logs page, and drift counts of sampled inputs.

By phase: `writer` (the batched writer the scoring server hands rows to), `rollups` (per-bin
counts and latency histograms, and how a window is covered by them), `inputs` (drift sampling),
`retention` (pruning), `queries` (everything read back), `schema` (tables and migrations).
"""

from lib.local.telemetry.inputs import SamplingSettings
from lib.local.telemetry.queries import (
    TelemetryReader,
    build_query,
    read_requests,
    read_traces,
)
from lib.local.telemetry.retention import Retention, prune
from lib.local.telemetry.rollups import PERCENTILE_ERROR
from lib.local.telemetry.schema import SEVERITY, connect, iso_utc
from lib.local.telemetry.writer import RequestRecord, TelemetryWriter, TraceHandler

__all__ = [
    "PERCENTILE_ERROR",
    "SEVERITY",
    "RequestRecord",
    "Retention",
    "SamplingSettings",
    "TelemetryReader",
    "TelemetryWriter",
    "TraceHandler",
    "build_query",
    "connect",
    "iso_utc",
    "prune",
    "read_requests",
    "read_traces",
]
