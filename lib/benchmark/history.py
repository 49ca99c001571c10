"""Benchmark history on disk: one folder per run (under the workspace home, or any folder).

Layout: ``root/<id>/config.json`` (no key), ``summary.json`` (BenchmarkResult without samples)
and ``samples.parquet`` (start_ms, latency_ms, status per request). Every file is written to
a temp file and renamed into place, so a reader never sees half a run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.benchmark.config import BenchmarkConfig, BenchmarkResult, Samples
from lib.files import atomic_write

LIST_COLUMNS = [
    "id",
    "started",
    "target",
    "concurrency",
    "requests",
    "req_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "errors",
    "slo_passed",
    "tool",
    "label",
]


class BenchmarkHistory:
    """Saved benchmark runs, newest first."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, run_id: str) -> Path:
        path = (self.root / run_id).resolve()
        if path.parent != self.root.resolve() or not run_id or run_id.startswith("."):
            raise ValueError(f"invalid run id: {run_id!r}")
        return path

    def save(
        self,
        result: BenchmarkResult,
        samples: Samples | None = None,
        config: BenchmarkConfig | None = None,
    ) -> str:
        """Store a run; returns its id (sortable by time)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        run_id = f"{stamp}-{result.tool}-{uuid.uuid4().hex[:8]}"
        final = self._dir(run_id)
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".staging-"))
        try:
            cfg = config.to_dict() if config is not None else result.config
            (staging / "config.json").write_text(json.dumps(cfg, indent=2))
            (staging / "summary.json").write_text(json.dumps(result.to_dict(), indent=2))
            samples = samples if samples is not None else result.samples
            if samples is not None:
                frame = pd.DataFrame(
                    {
                        "start_ms": np.asarray(samples.start_ms, dtype=float),
                        "latency_ms": np.asarray(samples.latency_ms, dtype=float),
                        "status": np.asarray(samples.status, dtype=np.int16),
                    }
                )
                frame.to_parquet(staging / "samples.parquet", index=False)
            # The whole folder appears at once: rename is atomic within one filesystem.
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return run_id

    def ids(self) -> list[str]:
        return sorted(
            (p.name for p in self.root.iterdir() if p.is_dir() and (p / "summary.json").exists()),
            reverse=True,
        )

    def summary(self, run_id: str) -> dict[str, Any]:
        return json.loads((self._dir(run_id) / "summary.json").read_text())

    def list(self) -> pd.DataFrame:
        """One row per run, newest first."""
        rows = []
        for run_id in self.ids():
            try:
                s = self.summary(run_id)
            except (OSError, json.JSONDecodeError):
                continue
            slo = s.get("slo")
            rows.append(
                {
                    "id": run_id,
                    "started": pd.Timestamp(s["started_at"]),
                    "target": s["target"],
                    "concurrency": s["concurrency"],
                    "requests": s["requests"],
                    "req_s": s["throughput_rps"],
                    "p50_ms": s["p50_ms"],
                    "p95_ms": s["p95_ms"],
                    "p99_ms": s["p99_ms"],
                    "errors": s["errors"],
                    "slo_passed": None if slo is None else bool(slo["passed"]),
                    "tool": s["tool"],
                    "label": s.get("label", ""),
                }
            )
        return pd.DataFrame(rows, columns=LIST_COLUMNS)

    def get(self, run_id: str) -> tuple[BenchmarkResult, Samples | None]:
        """The stored result and its raw samples (None when none were saved)."""
        folder = self._dir(run_id)
        if not (folder / "summary.json").exists():
            raise KeyError(run_id)
        samples = None
        if (folder / "samples.parquet").exists():
            frame = pd.read_parquet(folder / "samples.parquet")
            samples = Samples(
                frame["start_ms"].to_numpy(),
                frame["latency_ms"].to_numpy(),
                frame["status"].to_numpy(dtype=np.int16),
            )
        return BenchmarkResult.from_dict(self.summary(run_id), samples), samples

    def config(self, run_id: str) -> BenchmarkConfig:
        return BenchmarkConfig.from_dict(
            json.loads((self._dir(run_id) / "config.json").read_text())
        )

    def delete(self, run_id: str) -> None:
        folder = self._dir(run_id)
        if not folder.exists():
            raise KeyError(run_id)
        # Rename first so a concurrent list() never sees a half-deleted run.
        trash = self.root / f".deleted-{run_id}-{uuid.uuid4().hex[:6]}"
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def export_csv(self, path: Path, run_id: str | None = None) -> Path:
        """The run list (or one run's raw samples) as CSV."""
        if run_id is None:
            data = self.list().to_csv(index=False).encode()
        else:
            _, samples = self.get(run_id)
            frame = pd.DataFrame(
                {}
                if samples is None
                else {
                    "start_ms": samples.start_ms,
                    "latency_ms": samples.latency_ms,
                    "status": samples.status,
                }
            )
            data = frame.to_csv(index=False).encode()
        atomic_write(Path(path), data)
        return Path(path)

    def export_json(self, path: Path, run_ids: list[str] | None = None) -> Path:
        """Summaries of the given runs (default: all) as one JSON list."""
        ids = run_ids if run_ids is not None else self.ids()
        payload = [{"id": i, **self.summary(i)} for i in ids]
        atomic_write(Path(path), json.dumps(payload, indent=2).encode())
        return Path(path)
