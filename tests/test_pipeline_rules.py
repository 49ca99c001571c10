"""Pipeline run parameters, spec checks and schedule checks shared by both backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lib.pipeline_rules import (
    ParameterError,
    apply_parameters,
    check_schedule,
    check_spec,
    cron_fields,
    describe,
    spec_problems,
    trigger_label,
)
from lib.workspace import PipelineSpec, Schedule

SPEC = PipelineSpec(dataset="bank", target="y", deploy_endpoint="bank-ep")


def test_overrides_apply_with_their_types() -> None:
    spec = apply_parameters(
        SPEC,
        {
            "dataset_version": 3,
            "time_budget_s": 30,
            "primary_metric": "accuracy",
            "gate_margin": 0,  # an int is a number
            "estimators": ["lgbm"],
            "gated": False,
        },
    )
    assert (spec.dataset_version, spec.time_budget_s, spec.primary_metric) == (3, 30, "accuracy")
    assert spec.gate_margin == 0.0 and isinstance(spec.gate_margin, float)
    assert spec.estimators == ["lgbm"] and spec.gated is False
    assert apply_parameters(SPEC, {"dataset_version": None}).dataset_version is None
    assert apply_parameters(SPEC, None) is SPEC


@pytest.mark.parametrize(
    ("assignments", "field", "words"),
    [
        ({"time_budget": 30}, "time_budget", "unknown parameter"),
        ({"time_budget_s": "60"}, "time_budget_s", "must be an integer, not str"),
        ({"time_budget_s": 60.5}, "time_budget_s", "must be an integer, not float"),
        ({"time_budget_s": True}, "time_budget_s", "must be an integer, not bool"),
        ({"dataset_version": "latest"}, "dataset_version", "an integer or null"),
        ({"gate_margin": "0.1"}, "gate_margin", "must be a number"),
        ({"gated": 1}, "gated", "true or false"),
        ({"estimators": "lgbm"}, "estimators", "a list of strings"),
        ({"estimators": [1]}, "estimators", "a list of strings"),
    ],
)
def test_bad_overrides_name_the_field(assignments: dict, field: str, words: str) -> None:
    with pytest.raises(ParameterError) as caught:
        apply_parameters(SPEC, assignments)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_non_object_assignments_are_refused() -> None:
    with pytest.raises(ParameterError) as caught:
        apply_parameters(SPEC, ["time_budget_s", 30])  # type: ignore[arg-type]
    assert caught.value.field == "ParameterAssignments"


def test_spec_problems_name_each_field() -> None:
    bad = replace(
        SPEC,
        primary_metric="r2_score",
        time_budget_s=5,
        holdout_fraction=0.9,
        estimators=["lgbm", "catboost"],
        deploy_endpoint="1-bad",
        experiment_name="no spaces please",
        gate_margin=2.0,
        dataset_version=0,
    )
    fields = {p.field for p in spec_problems(bad)}
    assert fields == {
        "primary_metric",
        "time_budget_s",
        "holdout_fraction",
        "estimators",
        "deploy_endpoint",
        "experiment_name",
        "gate_margin",
        "dataset_version",
    }
    assert check_spec(SPEC) is SPEC
    with pytest.raises(ParameterError, match="primary_metric"):
        check_spec(replace(SPEC, primary_metric="rmse"))


def test_cron_days_follow_crontab_not_apscheduler_numbering() -> None:
    assert cron_fields("0 6 * * 1-5")["day_of_week"] == "mon,tue,wed,thu,fri"
    assert cron_fields("0 6 * * 0")["day_of_week"] == "sun"
    assert cron_fields("0 6 * * 7")["day_of_week"] == "sun"
    assert cron_fields("0 6 * * */2")["day_of_week"] == "sun,tue,thu,sat"
    assert cron_fields("*/5 * * * *") == {
        "minute": "*/5",
        "hour": "*",
        "day": "*",
        "month": "*",
        "day_of_week": "*",
    }


def schedule(**changes: object) -> Schedule:
    base = Schedule(name="nightly", pipeline="retrain", trigger="", enabled=True)
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "hourly"}, "kind"),
        ({"kind": "cron", "cron": "0 6 * *"}, "cron"),
        ({"kind": "cron", "cron": "61 * * * *"}, "cron"),
        ({"kind": "cron", "cron": "0 0 1 * 1"}, "cron"),
        ({"frequency": "fortnight"}, "frequency"),
        ({"interval": 0}, "interval"),
        ({"frequency": "minute", "at_time": "06:00"}, "at_time"),
        ({"frequency": "day", "at_time": "25:00"}, "at_time"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"start": datetime(2026, 1, 1)}, "start"),
        (
            {
                "start": datetime(2026, 1, 2, tzinfo=UTC),
                "end": datetime(2026, 1, 1, tzinfo=UTC),
            },
            "end",
        ),
        ({"name": "bad name"}, "name"),
        ({"kind": "data", "dataset": ""}, "dataset"),
    ],
)
def test_bad_schedules_name_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ParameterError) as caught:
        check_schedule(schedule(**changes))
    assert caught.value.field == field


def test_schedule_descriptions_and_trigger_labels() -> None:
    every = check_schedule(schedule(frequency="hour", interval=2, at_time="06:15"))
    assert every.trigger == "every 2 hours at :15 (UTC)"
    daily = check_schedule(schedule(frequency="day", at_time="06:00", time_zone="Europe/Paris"))
    assert describe(daily) == "every day at 06:00 (Europe/Paris)"
    cron = check_schedule(schedule(kind="cron", cron="0 6 * * 1-5"))
    assert cron.trigger == "cron 0 6 * * 1-5 (UTC)"
    data = check_schedule(schedule(kind="data", dataset="bank"))
    assert data.trigger == "when a new version of bank is registered"
    assert trigger_label(data) == "data:bank"
    assert trigger_label(every) == "schedule:nightly"
    end = datetime.now(UTC) + timedelta(days=1)
    assert check_schedule(schedule(start=end - timedelta(hours=1), end=end)).end == end
