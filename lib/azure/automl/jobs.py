"""Azure AutoML job entities as domain `Job`s, with the request they were submitted with."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, fields, replace
from typing import Any

from azure.ai.ml.entities import Job as AzureJob

from lib.azure.automl.submit import MLTABLE_SUFFIX, REQUEST_TAG
from lib.azure.automl.translate import our_primary_metric
from lib.azure.compute import to_job
from lib.azure.values import wire_text
from lib.workspace import AutoMLRequest, Job

DATA_REF = re.compile(r"^azureml:([^:/]+):(\d+)$")


def request_from_tags(tags: dict[str, str]) -> dict[str, Any] | None:
    """The AutoMLRequest (as a dict) stored on a job submitted by opsdeck."""
    try:
        data = json.loads(tags.get(REQUEST_TAG, ""))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    known = {f.name for f in fields(AutoMLRequest)}
    return {k: v for k, v in data.items() if k in known}


def request_from_entity(job: AzureJob) -> dict[str, Any]:
    """Best-effort request fields for an AutoML job submitted outside opsdeck."""
    request = asdict(AutoMLRequest(dataset="", dataset_version=0, target=""))
    task = wire_text(getattr(job, "task_type", "")).lower()
    request["task"] = task or request["task"]
    request["target"] = getattr(job, "target_column_name", "") or ""
    request["primary_metric"] = our_primary_metric(
        task, wire_text(getattr(job, "primary_metric", ""))
    )
    limits = getattr(job, "limits", None)
    if limits is not None and limits.timeout_minutes:
        request["time_budget_s"] = int(limits.timeout_minutes) * 60
    if limits is not None and limits.max_trials:
        request["max_trials"] = int(limits.max_trials)
    data = getattr(job, "training_data", None)
    path = str(getattr(data, "path", "") or "")
    match = DATA_REF.match(path)
    if match:
        name = match.group(1)
        request["dataset"] = name.removesuffix(MLTABLE_SUFFIX)
        request["dataset_version"] = int(match.group(2))
    else:
        request["dataset"] = path
    request["experiment_name"] = job.experiment_name or ""
    request["compute"] = wire_text(getattr(job, "compute", ""))
    return request


def job_request(entity: AzureJob) -> dict[str, Any]:
    """The request fields of a job (stored by opsdeck, else read from the job)."""
    return request_from_tags(dict(entity.tags or {})) or request_from_entity(entity)


def is_automl(entity: AzureJob) -> bool:
    return wire_text(entity.type) == "automl"


def to_automl_job(entity: AzureJob, progress: dict[str, Any] | None = None) -> Job:
    """The domain Job of an AutoML job entity: its request in `spec`, trial progress merged in."""
    job = to_job(entity)
    merged = {**job.progress, "phase": job.spec.get("azure_status", ""), **(progress or {})}
    error = None
    if job.state == "Failed":
        where = f" See {url} for the reason." if (url := job.progress.get("studio_url")) else ""
        error = f"Azure ML reports job {job.id} as failed.{where}"
    return replace(
        job,
        kind="automl",
        spec={**job.spec, "request": job_request(entity)},
        progress=merged,
        error=error,
    )
