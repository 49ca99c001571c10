"""Benchmark history: save/list/get/delete/export round-trips on a temp folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.benchmark import (
    LIST_COLUMNS,
    STATUS_TIMEOUT,
    BenchmarkConfig,
    BenchmarkHistory,
    Samples,
    build_result,
)


def make_result(label: str, p: float, tool: str = "opsdeck"):
    config = BenchmarkConfig(url="http://127.0.0.1:9/score", key="s3cret", concurrency=4, requests=5,
                             slo_p95_ms=p, label=label)  # fmt: skip
    samples = Samples(
        np.array([0.0, 1.0, 2.0, 3.0, 4.0]),
        np.array([10.0, 20.0, 30.0, 40.0, 2000.0]),
        np.array([200, 200, 200, 500, STATUS_TIMEOUT], dtype=np.int16),
    )
    result = build_result(config, samples, duration_s=0.5, started_at=datetime.now(UTC), tool=tool)
    return config, result


def test_round_trip(tmp_path: Path) -> None:
    history = BenchmarkHistory(tmp_path / "bench")
    config, result = make_result("baseline", p=100.0)
    run_id = history.save(result, result.samples, config)
    assert sorted(p.name for p in (tmp_path / "bench" / run_id).iterdir()) == [
        "config.json", "samples.parquet", "summary.json",
    ]  # fmt: skip
    assert "s3cret" not in (tmp_path / "bench" / run_id / "config.json").read_text()
    got, samples = history.get(run_id)
    assert got.to_dict() == result.to_dict()
    np.testing.assert_array_equal(samples.latency_ms, result.samples.latency_ms)
    np.testing.assert_array_equal(samples.status, result.samples.status)
    assert history.config(run_id).concurrency == 4 and history.config(run_id).key is None


def test_list_export_delete(tmp_path: Path) -> None:
    history = BenchmarkHistory(tmp_path)
    assert list(history.list().columns) == LIST_COLUMNS and history.list().empty
    _, a = make_result("a", p=100.0)
    _, b = make_result("b", p=5.0, tool="ab")
    id_a = history.save(a)
    id_b = history.save(b)
    frame = history.list()
    assert len(frame) == 2
    row_b = frame.set_index("id").loc[id_b]
    assert row_b["tool"] == "ab" and row_b["label"] == "b" and not row_b["slo_passed"]
    assert frame.set_index("id").loc[id_a, "slo_passed"]
    assert (
        frame.set_index("id").loc[id_a, "errors"] == 2
        and frame.set_index("id").loc[id_a, "p50_ms"] == 25.0
    )
    assert pd.api.types.is_datetime64_any_dtype(frame["started"])

    csv = pd.read_csv(history.export_csv(tmp_path / "runs.csv"))
    assert set(csv["id"]) == {id_a, id_b}
    raw = pd.read_csv(history.export_csv(tmp_path / "raw.csv", id_a))
    assert list(raw["latency_ms"]) == [10.0, 20.0, 30.0, 40.0, 2000.0]
    exported = json.loads(history.export_json(tmp_path / "runs.json").read_text())
    assert {e["id"] for e in exported} == {id_a, id_b}

    history.delete(id_a)
    assert list(history.list()["id"]) == [id_b]
    with pytest.raises(KeyError):
        history.get(id_a)
    with pytest.raises(ValueError):
        history.get("../etc")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers
