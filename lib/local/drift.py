"""Local model monitoring: each endpoint's sampled inputs and predictions against its training profile.

The scoring server counts sampled rows into the cells of a `lib.drift.Baseline` (the training
profile of the model's dataset version, built once per model version by `ensure_baseline`) and
the telemetry writer sums them per 5-minute, hour and day bin in `DriftRollup`. Reports read
those sums (never raw inputs): a window costs a few rows per bin whatever the traffic.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.appinsights import TelemetryQuery
from lib.drift import (
    NO_DATA,
    PREDICTION,
    Baseline,
    DriftReport,
    build_baseline,
    compare_all,
)
from lib.files import atomic_write
from lib.local.telemetry.inputs import COUNTS_DTYPE
from lib.local.telemetry.queries import TelemetryReader
from lib.local.telemetry.rollups import US, cover
from lib.local.telemetry.schema import DRIFT_GRAINS

log = logging.getLogger("opsdeck.drift")

BASELINES_DIR = ("monitoring", "baselines")
SHARE_COLUMNS = ["Endpoint", "Deployment", "Prediction", "Rows", "Share"]
OVER_TIME_COLUMNS = ["TimeGenerated", "Prediction", "Rows", "Share"]
STATE_WINDOW = timedelta(hours=24)


# ----------------------------------------------------------------------------- baselines


def baseline_path(home: Path, model_name: str, model_version: int) -> Path:
    return Path(home).joinpath(*BASELINES_DIR, f"{model_name}-v{int(model_version)}.json")


def _training_source(store: Any, model_name: str, model_version: int) -> dict[str, Any] | None:
    """Dataset, version, target, task and features of the job that produced a model version."""
    folder = Path(store.home) / "models" / model_name / f"v{int(model_version)}"
    info_path = folder / "info.json"
    if not info_path.exists():
        return None
    info = json.loads(info_path.read_text())
    row = (
        store.connect()
        .execute("SELECT spec FROM jobs WHERE id=?", (info.get("job_id"),))
        .fetchone()
    )
    if row is None:
        return None
    request = json.loads(row["spec"]).get("request") or {}
    if not request.get("dataset"):
        return None
    spec_path = folder / "feature_spec.json"
    features = (
        [f["name"] for f in json.loads(spec_path.read_text())] if spec_path.exists() else None
    )
    return {
        "dataset": request["dataset"],
        "version": int(request["dataset_version"]),
        "target": request.get("target"),
        "task": info.get("task") or request.get("task"),
        "features": features or None,
    }


def ensure_baseline(store: Any, model_name: str, model_version: int) -> Path | None:
    """The training profile of a model version, built from its dataset version once (None if
    the model's training data cannot be found: such endpoints simply record no drift)."""
    path = baseline_path(store.home, model_name, model_version)
    if path.exists():
        return path
    try:
        source = _training_source(store, model_name, model_version)
        if source is None:
            return None
        row = (
            store.connect()
            .execute(
                "SELECT path FROM dataset_versions WHERE name=? AND version=?",
                (source["dataset"], source["version"]),
            )
            .fetchone()
        )
        if row is None:
            return None
        from lib.local.datasets import DATA_FILE, missing_numbers_in

        # Stored relative to the home (an absolute path stays as it is).
        folder = Path(store.home) / row["path"]
        frame = pd.read_parquet(folder / DATA_FILE)
        baseline = build_baseline(
            frame,
            target=source["target"],
            features=source["features"],
            task=source["task"],
            source=f"{source['dataset']} v{source['version']}, target {source['target']}",
            missing_numbers=missing_numbers_in(folder),
        )
    except (OSError, ValueError, KeyError, sqlite3.Error) as exc:
        log.warning("no training profile for %s v%s: %s", model_name, model_version, exc)
        return None
    atomic_write(path, baseline.to_json().encode())
    return path


def load_baseline(path: Path | str) -> Baseline:
    return Baseline.from_json(Path(path).read_text())


# ----------------------------------------------------------------------------- reading


def _aligned(since: datetime, until: datetime) -> tuple[int, int]:
    # Samples have no raw rows to fill ragged edges: widen the window to whole 5-minute bins.
    base = DRIFT_GRAINS[0]
    start = int(since.timestamp()) // base * base
    end = -(-int(np.ceil(until.timestamp())) // base) * base
    return start, end


def _grains(bin_s: int | None) -> list[int]:
    if not bin_s:
        return list(DRIFT_GRAINS)
    return [g for g in DRIFT_GRAINS if g <= bin_s and bin_s % g == 0] or [DRIFT_GRAINS[0]]


class LocalMonitoring:
    """`MonitoringService` over the workspace's telemetry database."""

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        self._reader = TelemetryReader(db_path)
        self._baselines: dict[str, Baseline] = {}
        self._lock = threading.Lock()

    def _rows(
        self,
        since: datetime,
        until: datetime,
        endpoint: str | None,
        bin_s: int | None = None,
    ) -> list[tuple]:
        """(BinStart, Endpoint, Deployment, Baseline, Rows, Counts) of whole bins in the window."""
        if not self.db_path.exists():
            return []
        start, end = _aligned(since, until)
        pieces, _ = cover(start * US, end * US, _grains(bin_s))
        parts, params = [], []
        for grain, a, b in pieces:
            sql = (
                "SELECT BinStart, Endpoint, Deployment, Baseline, Rows, Counts FROM DriftRollup"
                " WHERE Grain = ? AND BinStart >= ? AND BinStart < ?"
            )
            params += [grain, a, b]
            if endpoint is not None:
                sql += " AND Endpoint = ?"
                params.append(endpoint)
            parts.append(sql)
        if not parts:
            return []
        with self._reader.connection() as conn:
            return conn.execute(" UNION ALL ".join(parts), params).fetchall()

    def baseline(self, baseline_id: str) -> Baseline | None:
        with self._lock:
            if baseline_id in self._baselines:
                return self._baselines[baseline_id]
        if not self.db_path.exists():
            return None
        with self._reader.connection() as conn:
            row = conn.execute(
                "SELECT Body FROM DriftBaselines WHERE Id = ?", (baseline_id,)
            ).fetchone()
        baseline = Baseline.from_json(row[0]) if row else None
        if baseline is not None:
            with self._lock:
                self._baselines[baseline_id] = baseline
        return baseline

    @staticmethod
    def _current(rows: list[tuple]) -> str:
        """The baseline of the newest samples (the model served now), most rows on a tie."""
        newest: dict[str, tuple[int, int]] = {}
        for t, _, _, bid, n, _ in rows:
            last, total = newest.get(bid, (t, 0))
            newest[bid] = (max(last, t), total + n)
        return max(newest, key=lambda b: newest[b])

    def report(
        self,
        endpoint: str,
        since: datetime,
        until: datetime | None = None,
        bin_s: int = 3600,
        baseline: str | None = None,
    ) -> DriftReport:
        """``baseline``: the model to report (an id of ``DriftReport.served``); by default the
        one serving the newest samples."""
        until = until or datetime.now(UTC)
        rows = self._rows(since, until, endpoint, bin_s)
        if not rows:
            return DriftReport(
                endpoint,
                since,
                until,
                0,
                message=(
                    f"No sampled inputs for {endpoint} in this window. Endpoints deployed from a "
                    "registered AutoML model record a sample of what they score while sampling is "
                    "on (OPSDECK_DRIFT_SAMPLING); redeploy older endpoints to start."
                ),
            )
        bid = baseline if baseline in {r[3] for r in rows} else self._current(rows)
        served = self._served(rows, bid)
        baseline = self.baseline(bid)
        if baseline is None:
            return DriftReport(
                endpoint, since, until, 0, message="The training profile is missing."
            )
        mine = [r for r in rows if r[3] == bid]
        total = np.zeros(baseline.size, dtype=np.int64)
        by_bin: dict[int, np.ndarray] = {}
        for t, _, _, _, _, blob in mine:
            counts = np.frombuffer(blob, COUNTS_DTYPE)
            if len(counts) != baseline.size:
                continue
            total += counts
            key = t // bin_s * bin_s
            by_bin[key] = by_bin[key] + counts if key in by_bin else counts.copy()
        features, prediction = compare_all(baseline, total)
        return DriftReport(
            endpoint=endpoint,
            since=since,
            until=until,
            rows=int(sum(r[4] for r in mine)),
            baseline_source=baseline.source,
            features=features,
            prediction=prediction,
            predictions_over_time=self._over_time(baseline, by_bin),
            served=served,
        )

    def _served(self, rows: list[tuple], first: str) -> tuple[tuple[str, str, int], ...]:
        """Each model sampled in the window: its deployments, its training data, its rows."""
        deployments: dict[str, set[str]] = {}
        counts: dict[str, int] = {}
        for _, _, deployment, bid, n, _ in rows:
            deployments.setdefault(bid, set()).add(deployment or "default")
            counts[bid] = counts.get(bid, 0) + int(n)
        out = []
        for bid in sorted(counts, key=lambda b: (b != first, -counts[b])):
            found = self.baseline(bid)
            source = found.source if found is not None else "training profile missing"
            out.append((bid, f"{', '.join(sorted(deployments[bid]))} ({source})", counts[bid]))
        return tuple(out)

    @staticmethod
    def _over_time(baseline: Baseline, by_bin: dict[int, np.ndarray]) -> pd.DataFrame:
        if baseline.prediction is None or not by_bin:
            return pd.DataFrame(columns=OVER_TIME_COLUMNS)
        labels = baseline.prediction.labels()
        records = []
        for t in sorted(by_bin):
            cells = baseline.split(by_bin[t])[PREDICTION]
            n = int(cells.sum())
            for label, count in zip(labels, cells, strict=True):
                if count:
                    records.append((t, label, int(count), count / n))
        frame = pd.DataFrame(records, columns=OVER_TIME_COLUMNS)
        frame["TimeGenerated"] = pd.to_datetime(frame["TimeGenerated"], unit="s", utc=True)
        return frame

    def states(self, since: datetime | None = None) -> dict[str, str]:
        until = datetime.now(UTC)
        since = since or until - STATE_WINDOW
        rows = self._rows(since, until, None)
        endpoints = sorted({r[1] for r in rows})
        out = {}
        for endpoint in endpoints:
            report = self.report(endpoint, since, until, bin_s=86400)
            out[endpoint] = report.state if report.rows else NO_DATA
        return out

    def prediction_shares(self, query: TelemetryQuery) -> pd.DataFrame:
        until = query.until or datetime.now(UTC)
        since = query.since or until - STATE_WINDOW
        sums: dict[tuple[str, str, str], np.ndarray] = {}
        for _, endpoint, deployment, bid, _, blob in self._rows(since, until, query.endpoint):
            key = (endpoint, deployment, bid)
            counts = np.frombuffer(blob, COUNTS_DTYPE)
            sums[key] = sums[key] + counts if key in sums else counts.copy()
        # Per (endpoint, deployment, prediction): a deployment's rows may span baselines.
        rows: dict[tuple[str, str, str], int] = {}
        for (endpoint, deployment, bid), counts in sums.items():
            baseline = self.baseline(bid)
            if baseline is None or baseline.prediction is None or len(counts) != baseline.size:
                continue
            cells = baseline.split(counts)[PREDICTION]
            for label, count in zip(baseline.prediction.labels(), cells, strict=True):
                if count:
                    key = (endpoint, deployment, label)
                    rows[key] = rows.get(key, 0) + int(count)
        totals: dict[tuple[str, str], int] = {}
        for (endpoint, deployment, _), n in rows.items():
            totals[(endpoint, deployment)] = totals.get((endpoint, deployment), 0) + n
        ordered = sorted(rows)
        return pd.DataFrame(
            {
                "Endpoint": [k[0] for k in ordered],
                "Deployment": [k[1] for k in ordered],
                "Prediction": [k[2] for k in ordered],
                "Rows": np.array([rows[k] for k in ordered], dtype=np.int64),
                "Share": [rows[k] / totals[k[:2]] for k in ordered],
            },
            columns=SHARE_COLUMNS,
        )
