"""ApacheBench (``ab``) as a second opinion: the equivalent command line, a runner, a parser.

``ab`` sends a single body file, speaks HTTP/1.0 and can only keep connections alive (``-k``)
when the server honours HTTP/1.0 keep-alive (uvicorn's h11 server does not: "Keep-Alive
requests: 0"). Its percentile table is in whole milliseconds; ``-e`` gives the same
percentiles with microseconds, which is what the result uses.

``ab`` reads request headers only from its command line (``-H``; there is no header file, no
environment variable, and ``-A``/``-C`` are argv too), so a bearer key given to it is visible to
every local user in the process list while it runs, unless ``/proc`` is mounted with
``hidepid``. That cannot be avoided without putting something between ``ab`` and the server,
which would change what it measures; ``ab_key_notice`` is what the operator is told before such
a run, and the run's log says it again. The opsdeck load generator never puts a key on a
command line.
"""

from __future__ import annotations

import logging
import math
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from lib.benchmark.client import encode_body
from lib.benchmark.config import STATUS_UNKNOWN, BenchmarkConfig, BenchmarkResult, Progress, Samples
from lib.benchmark.engine import is_cancelled
from lib.benchmark.stats import build_result, per_second_series

_MASK = "***"
log = logging.getLogger("opsdeck.benchmark")

AB_KEY_NOTICE = (
    "ab takes request headers only on its command line: while it runs, this key is visible to "
    "every local user in the process list (ps, /proc/PID/cmdline). The opsdeck load generator "
    "keeps the key off every command line; if other people use this machine, prefer it, or "
    "regenerate the key after the ab run."
)


class AbError(RuntimeError):
    """ab stopped without printing its summary (e.g. a timeout: apr_pollset_poll)."""


def ab_available() -> str | None:
    """Path of the ab binary, or None."""
    return shutil.which("ab")


def process_list_is_private(mounts: str | None = None) -> bool:
    """True when /proc is mounted with `hidepid`, so other users cannot read a process's argv."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return False
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "proc" and fields[1] == "/proc":
            options = dict(o.partition("=")[::2] for o in fields[3].split(","))
            return options.get("hidepid") in ("1", "2", "noaccess", "invisible")
    return False


def ab_key_notice(key: str | None, mounts: str | None = None) -> str | None:
    """What to tell the operator before ab runs with `key`; None when no key can leak."""
    if not key or process_list_is_private(mounts):
        return None
    return AB_KEY_NOTICE


def _ab_url(url: str) -> str:
    parts = urlsplit(url)
    # ab rejects a URL without a path ("invalid URL").
    return urlunsplit(parts._replace(path=parts.path or "/"))


def ab_command(
    config: BenchmarkConfig,
    body_path: str | Path | None,
    *,
    csv_path: str | Path | None = None,
    gnuplot_path: str | Path | None = None,
    ab_path: str = "ab",
    requests: int | None = None,
) -> list[str]:
    """The ab command line equivalent to ``config`` (contains the key: mask it for display).

    ``-l`` accepts responses of varying length (predictions differ in size) and ``-r`` keeps
    going on socket errors, so a dying target gives counted failures like our runner.
    """
    cmd = [ab_path]
    n = requests if requests is not None else config.requests
    if config.duration_s:
        cmd += ["-t", str(max(1, math.ceil(config.duration_s)))]
        if n is not None:
            cmd += ["-n", str(n)]
    else:
        cmd += ["-n", str(n)]
    cmd += [
        "-c",
        str(config.concurrency),
        "-s",
        str(max(1, math.ceil(config.timeout_s))),
        "-l",
        "-r",
    ]
    if config.keep_alive:
        cmd.append("-k")
    method = config.method.upper()
    if body_path is not None and method in ("POST", "PUT"):
        cmd += ["-u" if method == "PUT" else "-p", str(body_path), "-T", config.content_type]
    elif method not in ("GET", "POST", "PUT"):
        cmd += ["-m", method]
    if config.key:
        cmd += ["-H", f"Authorization: Bearer {config.key}"]
    for name, value in config.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    if csv_path is not None:
        cmd += ["-e", str(csv_path)]
    if gnuplot_path is not None:
        cmd += ["-g", str(gnuplot_path)]
    cmd.append(_ab_url(config.url))
    return cmd


def display_command(cmd: Sequence[str]) -> str:
    """Shell form of a command with bearer tokens masked."""
    shown = [
        re.sub(r"(?i)^(authorization:\s*bearer\s+).+$", rf"\g<1>{_MASK}", part) for part in cmd
    ]
    return shlex.join(shown)


_NUM = r"([0-9]+(?:\.[0-9]+)?)"
_FIELDS = {
    "server_software": (r"^Server Software:\s*(.*)$", str),
    "server_hostname": (r"^Server Hostname:\s*(.*)$", str),
    "server_port": (r"^Server Port:\s*(\d+)", int),
    "document_path": (r"^Document Path:\s*(.*)$", str),
    "document_length": (r"^Document Length:\s*(\d+) bytes", int),
    "concurrency": (r"^Concurrency Level:\s*(\d+)", int),
    "time_taken_s": (rf"^Time taken for tests:\s*{_NUM} seconds", float),
    "complete": (r"^Complete requests:\s*(\d+)", int),
    "failed": (r"^Failed requests:\s*(\d+)", int),
    "non_2xx": (r"^Non-2xx responses:\s*(\d+)", int),
    "keep_alive_requests": (r"^Keep-Alive requests:\s*(\d+)", int),
    "total_transferred": (r"^Total transferred:\s*(\d+) bytes", int),
    "body_sent": (r"^Total body sent:\s*(\d+)", int),
    "requests_per_second": (rf"^Requests per second:\s*{_NUM} \[#/sec\]", float),
    "time_per_request_ms": (rf"^Time per request:\s*{_NUM} \[ms\] \(mean\)$", float),
    "time_per_request_all_ms": (rf"^Time per request:\s*{_NUM} \[ms\] \(mean, across", float),
}


def parse_ab_output(text: str) -> dict[str, Any]:
    """Parse ab's stdout: counts, req/s, mean, connection-time table, percentile table (ms).

    Raises AbError when the summary is missing (ab aborted).
    """
    out: dict[str, Any] = {}
    for name, (pattern, cast) in _FIELDS.items():
        m = re.search(pattern, text, re.MULTILINE)
        if m:
            out[name] = cast(m.group(1).strip())
    if "requests_per_second" not in out or "complete" not in out:
        errors = [
            line.strip()
            for line in text.splitlines()
            if re.search(r"apr_\w+|\(\d{3,6}\)$|invalid|error", line, re.IGNORECASE)
        ]
        raise AbError(errors[-1] if errors else "no ab summary in the output")
    out.setdefault("failed", 0)
    out.setdefault("non_2xx", 0)
    out.setdefault("keep_alive_requests", 0)
    m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", text)
    keys = ("connect", "receive", "length", "exceptions")
    out["failed_breakdown"] = (
        dict(zip(keys, map(int, m.groups()), strict=True)) if m else dict.fromkeys(keys, 0)
    )
    table: dict[str, dict[str, float]] = {}
    for row in re.finditer(
        rf"^(Connect|Processing|Waiting|Total):\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s*$",
        text,
        re.MULTILINE,
    ):
        table[row.group(1).lower()] = dict(
            zip(("min", "mean", "sd", "median", "max"), map(float, row.groups()[1:]), strict=True)
        )
    out["connection_times_ms"] = table
    out["percentiles_ms"] = {
        int(p): float(v) for p, v in re.findall(r"^\s*(\d+)%\s+(\d+)", text, re.MULTILINE)
    }
    return out


def parse_ab_csv(text: str) -> dict[int, float]:
    """Parse ``ab -e`` output: {percent: ms} for 0..100."""
    out = {}
    for line in text.splitlines()[1:]:
        pct, _, ms = line.partition(",")
        if pct.strip().isdigit():
            out[int(pct)] = float(ms)
    return out


def parse_ab_gnuplot(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``ab -g`` output: (start epoch seconds, total ms) per request, by start time."""
    starts, totals = [], []
    for line in text.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 5 and cols[1].isdigit():
            starts.append(int(cols[1]))
            totals.append(float(cols[4]))
    s, t = np.asarray(starts, dtype=float), np.asarray(totals, dtype=float)
    order = np.argsort(s, kind="stable")
    return s[order], t[order]


def result_from_ab(
    config: BenchmarkConfig,
    parsed: dict[str, Any],
    csv: dict[int, float] | None = None,
    gnuplot: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    started_at: datetime | None = None,
    command: str | None = None,
) -> BenchmarkResult:
    """A BenchmarkResult from parsed ab outputs (summary numbers are ab's own)."""
    complete = parsed["complete"]
    failed = parsed["failed_breakdown"]
    errors = min(complete, parsed["failed"] + parsed["non_2xx"])
    if gnuplot is not None and len(gnuplot[0]):
        epoch, total_ms = gnuplot
        # -g has whole-second start times only: spread each second's requests evenly.
        start_ms = (epoch - epoch.min()) * 1000.0
        for sec in np.unique(start_ms):
            idx = np.flatnonzero(start_ms == sec)
            start_ms[idx] = sec + np.arange(idx.size) * (1000.0 / idx.size)
        samples = Samples(
            start_ms, total_ms, np.full(total_ms.size, STATUS_UNKNOWN, dtype=np.int16)
        )
    else:
        samples = Samples.empty()
    pct = csv or {}
    table = parsed.get("percentiles_ms", {})

    def at(p: int) -> float | None:
        if p in pct:
            return pct[p]
        return table.get(p)

    overrides = {
        "requests": complete,
        "ok": complete - errors,
        "errors": errors,
        "error_rate": round(errors / complete, 6) if complete else 0.0,
        "duration_s": parsed["time_taken_s"],
        "throughput_rps": parsed["requests_per_second"],
        "mean_ms": parsed.get("time_per_request_ms"),
        "min_ms": at(0)
        if 0 in pct
        else parsed.get("connection_times_ms", {}).get("total", {}).get("min"),
        "p50_ms": at(50),
        "p90_ms": at(90),
        "p95_ms": at(95),
        "p99_ms": at(99),
        "max_ms": at(100),
        "status_counts": {
            "2xx": complete - parsed["non_2xx"],
            "non_2xx": parsed["non_2xx"],
            "failed": parsed["failed"],
        },
        "error_kinds": {
            "timeout": 0,
            "connection": failed["connect"] + failed["receive"] + failed["exceptions"],
            "protocol": failed["length"],
            "http_4xx": 0,
            "http_5xx": 0,
            "http_non_2xx": parsed["non_2xx"],
        },
    }
    result = build_result(
        config,
        samples,
        duration_s=parsed["time_taken_s"],
        started_at=started_at or datetime.now(UTC),
        tool="ab",
        workers=1,
        command=command,
        overrides=overrides,
    )
    result.concurrency = parsed.get("concurrency", config.concurrency)
    if len(samples):
        # Bins follow ab's whole wall-clock seconds, so each bin is a full second wide.
        seconds = float(np.ceil(samples.start_ms.max() / 1000.0 + 1e-9))
        end_s = np.minimum((samples.start_ms + samples.latency_ms) / 1000.0, seconds - 1e-9)
        result.series = per_second_series(end_s, samples.latency_ms, samples.status, seconds)
    return result


def run_ab(
    config: BenchmarkConfig,
    bodies: Sequence[Any] | None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
    *,
    ab_path: str | None = None,
) -> BenchmarkResult:
    """Run ab with the settings of ``config`` (first body only) and return its result.

    Warm-up requests run as a separate ab call first. Cancel sends SIGINT: ab then prints
    the summary of what it did so far.
    """
    binary = ab_path or ab_available()
    if binary is None:
        raise FileNotFoundError("ab (apache2-utils) is not installed")
    notice = ab_key_notice(config.key)
    if notice:
        log.warning(notice)
    with tempfile.TemporaryDirectory(prefix="opsdeck-ab-") as tmp:
        work = Path(tmp)
        body_path = None
        if bodies:
            body_path = work / "body.json"
            body_path.write_bytes(encode_body(bodies[0]))
        if config.warmup:
            warm_config = replace(config, requests=config.warmup, duration_s=None)
            warm = ab_command(warm_config, body_path, ab_path=binary)
            subprocess.run(warm, capture_output=True, timeout=config.timeout_s * config.warmup + 60)
        csv_path, gp_path = work / "percentiles.csv", work / "requests.tsv"
        cmd = ab_command(config, body_path, csv_path=csv_path, gnuplot_path=gp_path, ab_path=binary)
        started_at = datetime.now(UTC)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        state = {"done": 0}

        def read_progress() -> None:
            assert proc.stderr is not None
            last_done, last_t = 0, t0
            for line in proc.stderr:
                m = re.match(r"Completed (\d+) requests", line)
                if m:
                    state["done"] = int(m.group(1))
                    now = time.monotonic()
                    if on_progress is not None:
                        rps = (state["done"] - last_done) / max(now - last_t, 1e-9)
                        on_progress(
                            Progress(
                                state["done"], config.requests, now - t0, config.duration_s, rps, 0
                            )
                        )
                    last_done, last_t = state["done"], now
                state.setdefault("stderr", "")
                state["stderr"] += line  # type: ignore[operator]

        reader = threading.Thread(target=read_progress, daemon=True)
        reader.start()
        canceled = False
        while proc.poll() is None:
            if is_cancelled(cancel):
                proc.send_signal(signal.SIGINT)
                canceled = True
                break
            time.sleep(0.05)
        stdout, _ = proc.communicate()
        reader.join(timeout=2)
        text = stdout + str(state.get("stderr", ""))
        parsed = parse_ab_output(text)
        csv = parse_ab_csv(csv_path.read_text()) if csv_path.exists() else None
        gnuplot = parse_ab_gnuplot(gp_path.read_text()) if gp_path.exists() else None
        result = result_from_ab(
            config, parsed, csv, gnuplot, started_at=started_at, command=display_command(cmd)
        )
        if canceled:
            result.stopped = "canceled"
        if on_progress is not None:
            on_progress(
                Progress(
                    result.requests,
                    config.requests,
                    result.duration_s,
                    config.duration_s,
                    result.throughput_rps,
                    result.errors,
                )
            )
        return result
