"""The Pipelines page's plain-data helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lib.pipeline_rules import ParameterError
from lib.pipeline_view import (
    duration_text,
    gate_text,
    next_scheduled,
    parse_overrides,
    runs_frame,
)
from lib.workspace import PipelineRun, Schedule

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_durations() -> None:
    assert [duration_text(s) for s in (None, 0.4, 42, 185, 3720)] == [
        "",
        "0 s",
        "42 s",
        "3 min 05 s",
        "1 h 02 min",
    ]


def test_gate_text() -> None:
    assert gate_text(None) == ""
    assert gate_text({"decision": "deploy", "challenger": 0.9, "champion": None}) == (
        "deploy: new 0.9000 vs no live model"
    )


def test_runs_frame_has_one_row_per_run_and_fixed_columns() -> None:
    assert list(runs_frame([]).columns)[:3] == ["run", "state", "trigger"]
    run = PipelineRun(
        "r1",
        "retrain",
        "Completed",
        T0,
        pipeline_version=2,
        trigger="rest",
        started=T0,
        ended=T0 + timedelta(seconds=75),
        outputs={"dataset_version": 3, "model_name": "m", "model_version": 4},
    )
    row = runs_frame([run]).iloc[0]
    assert (row["version"], row["dataset"], row["model"], row["duration"]) == (
        "v2",
        "v3",
        "m v4",
        "1 min 15 s",
    )


def test_next_scheduled_ignores_disabled_and_data_triggers() -> None:
    def s(name: str, next_run: datetime | None, enabled: bool = True) -> Schedule:
        return Schedule(name, "p", "", enabled, next_run=next_run)

    soon, later = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    picked = next_scheduled(
        [s("a", later), s("b", soon, enabled=False), s("c", None), s("d", soon)]
    )
    assert picked.name == "d"
    assert next_scheduled([s("c", None)]) is None


def test_parse_overrides() -> None:
    assert parse_overrides("") == {}
    assert parse_overrides('{"time_budget_s": 30}') == {"time_budget_s": 30}
    with pytest.raises(ParameterError, match="JSON object"):
        parse_overrides("[1]")
    with pytest.raises(ParameterError, match="not valid JSON"):
        parse_overrides("{nope")
