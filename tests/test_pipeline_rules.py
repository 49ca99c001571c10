"""Pipeline run parameters, spec checks and schedule checks shared by both backends."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lib.pipeline_rules import (
    PARAMETERS,
    REST_FIXED,
    ParameterError,
    apply_parameters,
    check_rest_parameters,
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
        (
            {"time_budget_s": "60"},
            "time_budget_s",
            'must be a whole number of seconds, not the text "60"',
        ),
        ({"time_budget_s": 60.5}, "time_budget_s", "whole number of seconds, not the number 60.5"),
        ({"time_budget_s": True}, "time_budget_s", "whole number of seconds, not true"),
        ({"time_budget_s": None}, "time_budget_s", "must be a whole number of seconds, not null."),
        ({"n_folds": None}, "n_folds", "must be a whole number, not null"),
        ({"dataset_version": "latest"}, "dataset_version", "or null for the latest, not the text"),
        ({"gate_margin": "0.1"}, "gate_margin", 'a number between -1 and 1, not the text "0.1"'),
        ({"gate_margin": math.nan}, "gate_margin", "must be a number between -1 and 1, not NaN."),
        ({"holdout_fraction": math.inf}, "holdout_fraction", "not infinity"),
        ({"gated": 1}, "gated", "must be true or false, not the number 1"),
        ({"dataset": None}, "dataset", "must be a dataset name (a string), not null"),
        ({"estimators": "lgbm"}, "estimators", "algorithm names (strings), or null for all of"),
        ({"estimators": [1]}, "estimators", "not a list holding a number."),
        ({"estimators": [["lgbm"]]}, "estimators", "a flat list of algorithm names"),
        ({"estimators": [["lgbm"]]}, "estimators", "not a list holding a list."),
        ({"estimators": {"a": 1}}, "estimators", "not an object."),
    ],
)
def test_bad_overrides_name_the_field(assignments: dict, field: str, words: str) -> None:
    with pytest.raises(ParameterError) as caught:
        apply_parameters(SPEC, assignments)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_type_errors_never_name_a_python_type() -> None:
    for value in (None, math.nan, [["x"]], {"a": 1}, "text", 1.5, True):
        for name in PARAMETERS:
            try:
                apply_parameters(SPEC, {name: value})
            except ParameterError as exc:
                message = str(exc)
                for python in ("NoneType", "float", "list", "dict", "str", "bool", " int"):
                    assert f"not {python.strip()}" not in message, message


def test_rest_callers_cannot_set_the_deploy_target_or_the_gate() -> None:
    assert set(REST_FIXED) == {"model_name", "deploy_endpoint", "gated", "gate_margin"}
    for name, value in (
        ("deploy_endpoint", "other-ep"),
        ("gated", False),
        ("gate_margin", -1.0),
        ("model_name", "other"),
    ):
        with pytest.raises(ParameterError) as caught:
            check_rest_parameters({"time_budget_s": 30, name: value})
        assert caught.value.field == name and "fixed by the published pipeline" in str(caught.value)
    check_rest_parameters({"time_budget_s": 30, "dataset_version": 2, "estimators": ["lgbm"]})


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


def test_the_pipelines_a_dataset_delete_would_break_are_named() -> None:
    from datetime import UTC, datetime

    from lib.pipeline_rules import dataset_users
    from lib.workspace import Pipeline, PipelineSpec, Schedule

    now = datetime(2026, 1, 1, tzinfo=UTC)
    pipelines = [
        Pipeline("retrain", 2, PipelineSpec(dataset="bank", target="y"), now, published_version=1),
        Pipeline("manual", 1, PipelineSpec(dataset="bank", target="y"), now),
        Pipeline("other", 1, PipelineSpec(dataset="loans", target="y"), now),
    ]
    schedules = [
        Schedule("weekly", "retrain", "every week on Sunday at 03:00", True),
        Schedule("paused", "retrain", "every day", False),
    ]
    assert dataset_users("bank", pipelines, schedules) == [
        "**retrain** (published over REST, every week on Sunday at 03:00)",
        "**manual**",
    ]
    assert dataset_users("iris", pipelines, schedules) == []
