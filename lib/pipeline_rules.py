"""Pipeline rules shared by both backends: run parameters, spec checks, schedule checks.

A run's `ParameterAssignments` (REST) and the page's overrides go through `apply_parameters`, so
an unknown name or a wrong type is refused the same way everywhere, naming the field. REST callers
may override the training parameters only: where and whether a published pipeline deploys is
fixed by its definition (`check_rest_parameters`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lib.automl_rules import ESTIMATORS, MIN_BUDGET_S, VALIDATIONS, experiment_problem
from lib.errors import WorkspaceError
from lib.metrics import TASKS, primary_metrics
from lib.names import (
    validate_dataset_name,
    validate_endpoint_name,
    validate_model_name,
    validate_schedule_name,
)
from lib.workspace import SCHEDULE_FREQUENCIES, Pipeline, PipelineSpec, Schedule

MAX_BUDGET_S = 24 * 3600
MAX_INTERVAL = 1000
SCHEDULE_KINDS = ("cron", "recurrence", "data")
# Azure ML experiment names: letters, digits, '_', '-' and '.', at most 255 characters.
AT_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ParameterError(WorkspaceError):
    """A bad run parameter or spec field; `field` names it (REST answers 400 with it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


@dataclass(frozen=True)
class Parameter:
    """One overridable pipeline parameter: its JSON type and what it means."""

    name: str
    kind: str  # "str", "int", "float", "bool", "int?" (int or null), "list[str]?"
    help: str
    wanted: str  # what a value must be, in words: "a whole number of seconds"
    # False: fixed by a published pipeline's definition, refused in a REST call's assignments.
    rest: bool = True


PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("dataset", "str", "Dataset name.", "a dataset name (a string)"),
        Parameter(
            "dataset_version",
            "int?",
            "Dataset version; null = the latest at run start.",
            "a version number (a whole number), or null for the latest",
        ),
        Parameter("target", "str", "Target (label) column.", "a column name (a string)"),
        Parameter("task", "str", "classification or regression.", "a string"),
        Parameter(
            "primary_metric",
            "str",
            "Metric the search optimises and the gate compares.",
            "a metric name (a string)",
        ),
        Parameter(
            "time_budget_s",
            "int",
            f"AutoML time budget in seconds (≥ {MIN_BUDGET_S}).",
            "a whole number of seconds",
        ),
        Parameter(
            "max_trials",
            "int?",
            "Maximum number of trials; null = no limit.",
            "a whole number, or null for no limit",
        ),
        Parameter(
            "estimators",
            "list[str]?",
            f"Algorithms among {', '.join(ESTIMATORS)}.",
            "a flat list of algorithm names (strings), or null for all of them",
        ),
        Parameter("validation", "str", "holdout or cv.", "a string"),
        Parameter(
            "holdout_fraction",
            "float",
            "Share of rows held out (0.05-0.5).",
            "a number between 0.05 and 0.5",
        ),
        Parameter("n_folds", "int", "Cross-validation folds (2-20).", "a whole number"),
        Parameter("ensemble", "bool", "Try an ensemble of the best models.", "true or false"),
        Parameter(
            "experiment_name",
            "str",
            "Experiment the AutoML job is recorded under.",
            "an experiment name (a string)",
        ),
        Parameter(
            "compute", "str", "Compute target (local, or an Azure cluster).", "a compute name"
        ),
        Parameter(
            "model_name",
            "str",
            "Registered model name; empty = <dataset>-<target>.",
            "a model name (a string)",
            rest=False,
        ),
        Parameter(
            "deploy_endpoint",
            "str",
            "Endpoint to deploy to; empty = register only.",
            "an endpoint name (a string)",
            rest=False,
        ),
        Parameter(
            "gated",
            "bool",
            "Deploy only if the new model beats the live one.",
            "true or false",
            rest=False,
        ),
        Parameter(
            "gate_margin",
            "float",
            "How much the new model must beat the live one by.",
            "a number between -1 and 1",
            rest=False,
        ),
    )
}
REST_FIXED = tuple(name for name, p in PARAMETERS.items() if not p.rest)
assert set(PARAMETERS) == {f.name for f in fields(PipelineSpec)}, "a spec field has no parameter"


def value_in_words(value: Any) -> str:
    """What a client sent, in words: 'null', 'the text "60"', 'a list holding a list'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("infinity" if value > 0 else "minus infinity")
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {json.dumps(text)}"
    if isinstance(value, list):
        inner = sorted({_kind_of(v) for v in value if not isinstance(v, str)})
        return f"a list holding {' and '.join(inner)}" if inner else "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _type_ok(kind: str, value: Any) -> bool:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return is_int
    if kind == "int?":
        return value is None or is_int
    if kind == "float":
        return (is_int or isinstance(value, float)) and math.isfinite(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list[str]?":
        return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    raise AssertionError(kind)


def apply_parameters(spec: PipelineSpec, assignments: dict[str, Any] | None) -> PipelineSpec:
    """The spec with the overrides applied; `ParameterError` naming the first bad one."""
    if not assignments:
        return spec
    if not isinstance(assignments, dict):
        raise ParameterError("ParameterAssignments", "must be a JSON object of name: value.")
    changes: dict[str, Any] = {}
    for name, value in assignments.items():
        parameter = PARAMETERS.get(name)
        if parameter is None:
            raise ParameterError(
                name, f"unknown parameter (known: {', '.join(sorted(PARAMETERS))})."
            )
        if not _type_ok(parameter.kind, value):
            raise ParameterError(name, f"must be {parameter.wanted}, not {value_in_words(value)}.")
        changes[name] = float(value) if parameter.kind == "float" else value
    return replace(spec, **changes)


def check_rest_parameters(assignments: dict[str, Any]) -> None:
    """Refuse, naming it, an assignment a REST caller may not make (deploy target and gate)."""
    for name in assignments:
        if name in REST_FIXED:
            raise ParameterError(
                name,
                "is fixed by the published pipeline's definition and cannot be set over REST "
                f"(fixed: {', '.join(REST_FIXED)}); publish a new version to change it.",
            )


def spec_problems(spec: PipelineSpec) -> list[ParameterError]:
    """Everything wrong with a spec that can be seen without reading the data."""
    problems: list[ParameterError] = []

    def check(field: str, ok: bool, message: str) -> None:
        if not ok:
            problems.append(ParameterError(field, message))

    def name_ok(field: str, value: str, validate: Any) -> None:
        try:
            validate(value)
        except WorkspaceError as exc:
            problems.append(ParameterError(field, str(exc)))

    name_ok("dataset", spec.dataset, validate_dataset_name)
    check("target", bool(spec.target.strip()), "choose the target column.")
    check(
        "dataset_version",
        spec.dataset_version is None or spec.dataset_version >= 1,
        "must be 1 or more (or null for the latest).",
    )
    if spec.task not in TASKS:
        check("task", False, f"must be one of {', '.join(TASKS)}.")
    else:
        allowed = primary_metrics(spec.task)
        check(
            "primary_metric",
            spec.primary_metric in allowed,
            f"{spec.primary_metric!r} is not a {spec.task} metric (choose from "
            f"{', '.join(allowed)}).",
        )
    check(
        "time_budget_s",
        MIN_BUDGET_S <= spec.time_budget_s <= MAX_BUDGET_S,
        f"must be between {MIN_BUDGET_S} and {MAX_BUDGET_S} seconds.",
    )
    check("max_trials", spec.max_trials is None or spec.max_trials >= 1, "must be 1 or more.")
    if spec.estimators is not None:
        unknown = [e for e in spec.estimators if e not in ESTIMATORS]
        check("estimators", bool(spec.estimators), "choose at least one algorithm.")
        check("estimators", not unknown, f"unknown {unknown} (choose from {ESTIMATORS}).")
    check("validation", spec.validation in VALIDATIONS, f"must be one of {', '.join(VALIDATIONS)}.")
    check("holdout_fraction", 0.05 <= spec.holdout_fraction <= 0.5, "must be between 0.05 and 0.5.")
    check("n_folds", 2 <= spec.n_folds <= 20, "must be between 2 and 20.")
    wrong_name = experiment_problem(spec.experiment_name)
    check("experiment_name", wrong_name is None, wrong_name or "")
    if spec.model_name:
        name_ok("model_name", spec.model_name, validate_model_name)
    if spec.deploy_endpoint:
        name_ok("deploy_endpoint", spec.deploy_endpoint, validate_endpoint_name)
    check("gate_margin", -1.0 <= spec.gate_margin <= 1.0, "must be between -1 and 1.")
    return problems


def check_spec(spec: PipelineSpec) -> PipelineSpec:
    """The spec if it has no problems, else `ParameterError` for the first one."""
    problems = spec_problems(spec)
    if problems:
        raise problems[0]
    return spec


def trigger_label(schedule: Schedule) -> str:
    """How runs started by this schedule are marked: schedule:<name> or data:<dataset>."""
    return f"data:{schedule.dataset}" if schedule.kind == "data" else f"schedule:{schedule.name}"


def describe(schedule: Schedule) -> str:
    """A one-line description, e.g. 'every 2 hours at :15 (Europe/Paris)'."""
    if schedule.kind == "data":
        return f"when a new version of {schedule.dataset} is registered"
    zone = f" ({schedule.time_zone})"
    if schedule.kind == "cron":
        return f"cron {schedule.cron}{zone}"
    unit = (
        schedule.frequency
        if schedule.interval == 1
        else f"{schedule.interval} {schedule.frequency}s"
    )
    text = f"every {unit}"
    if schedule.at_time and schedule.frequency == "hour":
        text += f" at :{schedule.at_time.split(':')[1]}"
    elif schedule.at_time and schedule.frequency in ("day", "week"):
        text += f" at {schedule.at_time}"
    return text + zone


def check_schedule(schedule: Schedule) -> Schedule:
    """The schedule with its description filled in, or `ParameterError` naming the bad field."""
    try:
        validate_schedule_name(schedule.name)
    except WorkspaceError as exc:
        raise ParameterError("name", str(exc)) from exc
    if schedule.kind not in SCHEDULE_KINDS:
        raise ParameterError("kind", f"must be one of {', '.join(SCHEDULE_KINDS)}.")
    if schedule.kind == "data":
        try:
            validate_dataset_name(schedule.dataset)
        except WorkspaceError as exc:
            raise ParameterError("dataset", str(exc)) from exc
        return replace(schedule, trigger=describe(schedule))
    try:
        ZoneInfo(schedule.time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ParameterError("time_zone", f"unknown time zone {schedule.time_zone!r}.") from exc
    if schedule.kind == "cron":
        cron_problem = _cron_problem(schedule.cron, schedule.time_zone)
        if cron_problem:
            raise ParameterError("cron", cron_problem)
    else:
        if schedule.frequency not in SCHEDULE_FREQUENCIES:
            raise ParameterError("frequency", f"must be one of {', '.join(SCHEDULE_FREQUENCIES)}.")
        if not 1 <= schedule.interval <= MAX_INTERVAL:
            raise ParameterError("interval", f"must be between 1 and {MAX_INTERVAL}.")
        if schedule.at_time and not AT_TIME.match(schedule.at_time):
            raise ParameterError("at_time", "must be HH:MM (24-hour clock).")
        if schedule.at_time and schedule.frequency == "minute":
            raise ParameterError("at_time", "does not apply to a schedule in minutes.")
    for field_name in ("start", "end"):
        value: datetime | None = getattr(schedule, field_name)
        if value is not None and value.tzinfo is None:
            raise ParameterError(field_name, "must carry a time zone.")
    if schedule.start and schedule.end and schedule.end <= schedule.start:
        raise ParameterError("end", "must be after the start.")
    return replace(schedule, trigger=describe(schedule))


DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_days(field: str) -> str:
    """A standard cron day-of-week field (0 or 7 = Sunday) as APScheduler day names.

    NB: APScheduler 3 numbers days from Monday = 0, so "1-5" would silently mean Tuesday to
    Saturday; Azure and every crontab mean Monday to Friday.
    """
    if field == "*":
        return "*"
    days: list[int] = []
    for part in field.lower().split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in {part!r}")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            first_text, last_text = base.split("-", 1)
            first, last = _day_number(first_text), _day_number(last_text)
        else:
            first = last = _day_number(base)
            if step_text:
                last = 6
        if last < first:
            raise ValueError(f"range {part!r} runs backwards")
        days.extend(d % 7 for d in range(first, last + 1, step))
    return ",".join(DAY_NAMES[d] for d in sorted(set(days)))


def _day_number(text: str) -> int:
    if text in DAY_NAMES:
        return DAY_NAMES.index(text)
    if not text.isdigit() or int(text) > 7:
        raise ValueError(f"{text!r} is not a day of the week (0-7 or sun-sat)")
    return int(text)


def cron_fields(expression: str) -> dict[str, str]:
    """The five fields of a standard cron expression, as APScheduler's CronTrigger arguments."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError("needs five fields: minute hour day-of-month month day-of-week")
    minute, hour, day, month, day_of_week = parts
    if day != "*" and day_of_week != "*":
        # crontab fires when either field matches, APScheduler only when both do.
        raise ValueError(
            "restrict the day of the month or the day of the week, not both (use two schedules)"
        )
    return {
        "minute": minute,
        "hour": hour,
        "day": day,
        "month": month,
        "day_of_week": _cron_days(day_of_week),
    }


def _cron_problem(expression: str, time_zone: str) -> str | None:
    """Why a five-field cron expression is invalid (values checked by APScheduler's parser)."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger(timezone=time_zone, **cron_fields(expression))
    except ValueError as exc:
        return f"invalid expression: {exc}."
    return None


def dataset_users(dataset: str, pipelines: list[Pipeline], schedules: list[Schedule]) -> list[str]:
    """The pipelines that train on `dataset`, each with what starts it unattended (published,
    its enabled schedules and triggers): what a delete of the dataset would make fail."""
    users = []
    for pipeline in pipelines:
        if pipeline.spec.dataset != dataset:
            continue
        starts = [s.trigger for s in schedules if s.pipeline == pipeline.name and s.enabled]
        if pipeline.published_version is not None:
            starts.insert(0, "published over REST")
        users.append(f"**{pipeline.name}**" + (f" ({', '.join(starts)})" if starts else ""))
    return users
