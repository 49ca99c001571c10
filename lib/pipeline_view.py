"""What the Pipelines page shows, as plain data: run tables, step rows, schedule rows, overrides."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from lib.pipeline_rules import ParameterError
from lib.workspace import PipelineRun, PipelineStep, Schedule

STATE_ICONS = {
    "NotStarted": ":material/radio_button_unchecked:",
    "Queued": ":material/schedule:",
    "Running": ":material/progress_activity:",
    "Completed": ":material/check_circle:",
    "Failed": ":material/error:",
    "Skipped": ":material/skip_next:",
    "Canceled": ":material/cancel:",
}
COMMON_TIME_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)


def duration_text(seconds: float | None) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min' or '' when unknown."""
    if seconds is None:
        return ""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def run_duration_s(run: PipelineRun, now: datetime | None = None) -> float | None:
    if run.started is None:
        return None
    return ((run.ended or now or datetime.now(UTC)) - run.started).total_seconds()


def gate_text(gate: dict[str, Any] | None) -> str:
    """'deploy: 0.9312 vs live 0.9301' style summary of a gate decision."""
    if not gate:
        return ""
    challenger, champion = gate.get("challenger"), gate.get("champion")
    if challenger is None and champion is None:
        return gate.get("decision", "")
    live = "no live model" if champion is None else f"live {champion:.4f}"
    new = "?" if challenger is None else f"{challenger:.4f}"
    return f"{gate.get('decision', '')}: new {new} vs {live}"


def runs_frame(runs: list[PipelineRun]) -> pd.DataFrame:
    """One row per run, newest first, for the runs table."""
    rows = []
    for run in runs:
        out = run.outputs
        model = f"{out['model_name']} v{out['model_version']}" if out.get("model_version") else ""
        rows.append(
            {
                "run": run.id,
                "state": run.state,
                "trigger": run.trigger,
                "version": f"v{run.pipeline_version}",
                "dataset": f"v{out['dataset_version']}" if out.get("dataset_version") else "",
                "model": model,
                "gate": gate_text(out.get("gate")),
                "created": run.created,
                "duration": duration_text(run_duration_s(run)),
            }
        )
    columns = [
        "run",
        "state",
        "trigger",
        "version",
        "dataset",
        "model",
        "gate",
        "created",
        "duration",
    ]
    return pd.DataFrame(rows, columns=columns)


def step_summary(step: PipelineStep) -> str:
    """The most useful output of a step in a few words."""
    out = step.outputs
    if step.error:
        return step.error.splitlines()[0]
    if "skipped" in out:
        return str(out["skipped"])
    if step.name == "dataset" and "dataset_version" in out:
        return f"{out.get('dataset')} v{out['dataset_version']} ({out.get('rows', '?')} rows)"
    if step.name == "automl" and out.get("automl_job"):
        score = out.get("score")
        best = f" · {out.get('metric')} {score:.4f}" if isinstance(score, int | float) else ""
        return f"{out['automl_job']}{best}"
    if step.name == "register" and out.get("model_version"):
        return f"{out['model_name']} v{out['model_version']}"
    if step.name == "gate" and out.get("gate"):
        return gate_text(out["gate"])
    if step.name == "deploy" and out.get("endpoint"):
        return f"{out['endpoint']} serves v{out.get('deployed_version')}"
    return ""


def schedules_frame(schedules: list[Schedule]) -> pd.DataFrame:
    columns = ["schedule", "when", "enabled", "next run", "last fired", "last run", "problem"]
    rows = [
        {
            "schedule": s.name,
            "when": s.trigger,
            "enabled": s.enabled,
            "next run": s.next_run,
            "last fired": s.last_fired,
            "last run": s.last_run_id,
            "problem": s.last_error,
        }
        for s in schedules
    ]
    return pd.DataFrame(rows, columns=columns)


def next_scheduled(schedules: list[Schedule]) -> Schedule | None:
    """The enabled time schedule that fires first."""
    timed = [s for s in schedules if s.enabled and s.next_run is not None]
    return min(timed, key=lambda s: s.next_run) if timed else None


def parse_overrides(text: str) -> dict[str, Any]:
    """The 'more parameters' box: a JSON object, or ParameterError naming it."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ParameterError("ParameterAssignments", f"not valid JSON ({exc}).") from exc
    if not isinstance(value, dict):
        raise ParameterError("ParameterAssignments", "must be a JSON object of name: value.")
    return value
