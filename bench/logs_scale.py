"""The Logs page at scale: N request rows over 7 days, written through the real telemetry writer,
then the page's queries for "Last 7 days" and "Last hour" timed against the store.

    .venv/bin/python bench/logs_scale.py [--rows 1000000] [--days 7] [--db PATH] [--repeat 3]

Rows are generated in time order (as servers write them) for three endpoints, two deployments
of one of them, with a daily traffic cycle, log-normal latencies with a slow tail and ~3 %
failures; a trace every 500 requests; drift samples for one endpoint. Each range runs what the
page runs (KPIs, requests and latency per bin, result codes per bin, status codes, slowest,
failed, recent, traces, prediction shares); the time is the median over `--repeat` runs. Counts
are checked against a direct SQL count; the percentile error is the largest relative gap between
the page's p50/p95/p99 (window tiles and every bin of the 7-day chart) and the nearest-rank
percentiles of the raw rows. Last line:

    logs: 1000000 rows, 7 days X.XX s, 1 hour Y.YY s, percentile error Z.Z %
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lib.appinsights import TelemetryQuery  # noqa: E402
from lib.drift import build_baseline  # noqa: E402
from lib.local.drift import LocalMonitoring  # noqa: E402
from lib.local.telemetry import (  # noqa: E402
    RequestRecord,
    SamplingSettings,
    TelemetryWriter,
    connect,
)
from lib.local.telemetry_service import LocalTelemetry  # noqa: E402

ENDPOINTS = [
    ("bank-a", "blue", 0.56),
    ("bank-a", "green", 0.14),
    ("bank-b", "", 0.2),
    ("churn", "", 0.1),
]
CODES = [(200, 0.97), (400, 0.015), (401, 0.005), (404, 0.002), (500, 0.008)]
CHUNK = 20_000
# The page's bins: one point per hour over 7 days, one per minute over an hour.
RANGES = {"7 days": (timedelta(days=7), 3600), "1 hour": (timedelta(hours=1), 60)}


def generate(db: Path, rows: int, days: float, now: float, seed: int = 7) -> float:
    """Write `rows` requests over [now - days, now) through `TelemetryWriter`; seconds taken."""
    rng = np.random.default_rng(seed)
    span = days * 86400
    # A daily cycle: twice as busy at 14:00 UTC as at 02:00.
    candidates = now - span + rng.uniform(0, span, int(rows * 1.6))
    hour = (candidates % 86400) / 3600
    keep = rng.uniform(0, 1, len(candidates)) < (2 + np.cos((hour - 14) / 24 * 2 * math.pi)) / 3
    times = np.sort(candidates[keep][:rows])
    if len(times) < rows:  # top up uniformly (tiny shortfall)
        extra = now - span + rng.uniform(0, span, rows - len(times))
        times = np.sort(np.concatenate([times, extra]))
    which = rng.choice(len(ENDPOINTS), rows, p=[p for *_, p in ENDPOINTS])
    codes = rng.choice([c for c, _ in CODES], rows, p=[p for _, p in CODES])
    ms = rng.lognormal(math.log(4.0), 0.5, rows)
    slow = rng.uniform(0, 1, rows) < 0.01
    ms[slow] *= rng.uniform(5, 40, int(slow.sum()))
    ms[which == 1] *= 1.3  # green is a slower model
    training = pd.DataFrame(
        {
            "age": rng.integers(18, 90, 2000),
            "job": rng.choice(["a", "b", "c"], 2000),
            "y": rng.choice(["no", "yes"], 2000, p=[0.88, 0.12]),
        }
    )
    baseline = build_baseline(training, target="y", source="synthetic")
    writer = TelemetryWriter(
        db,
        flush_interval=3600,
        batch_size=10**12,
        sampling=SamplingSettings(cap_per_minute=10**9),
    )
    writer.set_baseline(baseline)
    started = time.perf_counter()
    try:
        for i in range(rows):
            endpoint, deployment, _ = ENDPOINTS[which[i]]
            t = float(times[i])
            writer.record_request(
                RequestRecord(
                    t,
                    f"op-{i}",
                    "POST /score",
                    "http://127.0.0.1/score",
                    int(codes[i]),
                    float(ms[i]),
                    endpoint,
                    "1" if deployment != "green" else "2",
                    1,
                    deployment,
                )
            )
            if i % 500 == 0:
                writer.record_trace(f"request op-{i} took {ms[i]:.1f} ms", 1, endpoint)
            if i % 50 == 0 and endpoint == "bank-a":
                record = {"age": int(30 + (i % 40)), "job": "abc"[i % 3]}
                prediction = ["yes" if i % 7 == 0 else "no"]
                writer.record_inputs([record], prediction, deployment, endpoint=endpoint, at=t)
            if i % CHUNK == CHUNK - 1:
                writer.flush()
    finally:
        writer.close()
    return time.perf_counter() - started


def page_queries(
    telemetry: LocalTelemetry,
    monitoring: LocalMonitoring,
    window: timedelta,
    bin_s: int,
    now: datetime,
) -> dict:
    """Everything the Logs page computes for one range."""
    query = TelemetryQuery.last(window, now=now)
    return {
        "kpis": telemetry.kpis(query),
        "summary": telemetry.summary(query, bin_s),
        "codes": telemetry.result_codes(query, bin_s),
        "status": telemetry.status_codes(query),
        "slowest": telemetry.slowest(query, 50),
        "failed": telemetry.failed(query, 50),
        "recent": telemetry.recent(query, 100),
        "traces": telemetry.recent_traces(query, "", 100),
        "predictions": monitoring.prediction_shares(query),
    }


def timed(telemetry, monitoring, window, bin_s, now, repeat: int) -> tuple[float, dict]:
    times, result = [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        result = page_queries(telemetry, monitoring, window, bin_s, now)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def nearest_rank(values: np.ndarray, q: float) -> float:
    ordered = np.sort(values)
    return float(ordered[max(1, math.ceil(q / 100 * len(ordered) - 1e-9)) - 1])


def check(db: Path, result: dict, window: timedelta, bin_s: int, now: datetime) -> float:
    """Counts equal to direct SQL; the largest relative percentile error against raw rows."""
    since = now - window
    conn = connect(db)
    raw = pd.read_sql_query(
        "SELECT TimeGenerated, Endpoint, Deployment, ResultCode, DurationMs, Success FROM AppRequests"
        " WHERE TimeGenerated >= ? AND TimeGenerated < ?",
        conn,
        params=[since.isoformat(timespec="microseconds"), now.isoformat(timespec="microseconds")],
    )
    direct = conn.execute(
        "SELECT COUNT(*), SUM(1 - Success) FROM AppRequests WHERE TimeGenerated >= ? AND TimeGenerated < ?",
        [since.isoformat(timespec="microseconds"), now.isoformat(timespec="microseconds")],
    ).fetchone()
    conn.close()
    kpis = result["kpis"]
    assert (kpis.requests, kpis.failed) == (direct[0], direct[1]), (kpis, direct)
    assert int(result["summary"]["Requests"].sum()) == direct[0]
    errors = []
    durations = raw["DurationMs"].to_numpy()
    for q in (50, 95, 99):
        exact = nearest_rank(durations, q)
        errors.append(abs(getattr(kpis, f"p{q}") - exact) / exact)
    raw["Bin"] = pd.to_datetime(raw["TimeGenerated"], format="ISO8601").dt.floor(f"{bin_s}s")
    groups = raw.groupby(["Bin", "Endpoint", "Deployment"])["DurationMs"]
    summary = result["summary"].set_index(["TimeGenerated", "Endpoint", "Deployment"])
    for key, values in groups:
        row = summary.loc[key]
        assert int(row["Requests"]) == len(values), key
        for q in (50, 95, 99):
            exact = nearest_rank(values.to_numpy(), q)
            errors.append(abs(row[f"p{q}"] - exact) / exact)
    return max(errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or keep) this store")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = None
    if args.db is None:
        folder = tempfile.TemporaryDirectory(prefix="opsdeck-logs-")
        db = Path(folder.name) / "telemetry.db"
    else:
        db = args.db
    # The store's "now": the end of generated traffic (a reused store keeps its own).
    stamp = db.with_suffix(".now")
    if db.exists() and stamp.exists():
        now = float(stamp.read_text())
        print(f"reusing {db} ({db.stat().st_size / 2**20:.0f} MB)")
    else:
        now = time.time()
        took = generate(db, args.rows, args.days, now)
        stamp.write_text(repr(now))
        size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20
        print(
            f"wrote {args.rows:,} rows in {took:.1f} s ({args.rows / took:,.0f} rows/s), {size:.0f} MB"
        )
    end = datetime.fromtimestamp(now, UTC)
    telemetry, monitoring = LocalTelemetry(db), LocalMonitoring(db)
    rows = connect(db).execute("SELECT COUNT(*) FROM AppRequests").fetchone()[0]
    results, seconds = {}, {}
    for name, (window, bin_s) in RANGES.items():
        seconds[name], results[name] = timed(telemetry, monitoring, window, bin_s, end, args.repeat)
        parts = []
        query = TelemetryQuery.last(window, now=end)
        for label, call in (
            ("kpis", lambda q=query: telemetry.kpis(q)),
            ("summary", lambda q=query, b=bin_s: telemetry.summary(q, b)),
            ("codes", lambda q=query, b=bin_s: telemetry.result_codes(q, b)),
            ("status", lambda q=query: telemetry.status_codes(q)),
            ("slowest", lambda q=query: telemetry.slowest(q, 50)),
            ("failed", lambda q=query: telemetry.failed(q, 50)),
            ("recent", lambda q=query: telemetry.recent(q, 100)),
            ("traces", lambda q=query: telemetry.recent_traces(q, "", 100)),
            ("predictions", lambda q=query: monitoring.prediction_shares(q)),
        ):
            started = time.perf_counter()
            call()
            parts.append(f"{label} {1000 * (time.perf_counter() - started):.0f}")
        print(
            f"{name}: {seconds[name]:.3f} s ({results[name]['kpis'].requests:,} requests; ms: {', '.join(parts)})"
        )
    for name, (window, bin_s) in RANGES.items():
        started = time.perf_counter()
        report = monitoring.report("bank-a", end - window, end, max(bin_s, 300))
        print(
            f"monitoring {name}: {1000 * (time.perf_counter() - started):.0f} ms"
            f" ({report.rows:,} sampled rows, state {report.state})"
        )
    error = max(check(db, results[n], RANGES[n][0], RANGES[n][1], end) for n in RANGES)
    if folder is not None:
        folder.cleanup()
    print(
        f"logs: {rows} rows, 7 days {seconds['7 days']:.2f} s, 1 hour {seconds['1 hour']:.2f} s,"
        f" percentile error {100 * error:.1f} %"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
