"""From an `AutoMLRequest` to a submitted Azure AutoML job: checks, the MLTable input, the job entity.

AutoML tabular jobs only read MLTable inputs, while opsdeck datasets are `uri_file` CSV or Parquet
versions. Each dataset version `name` vN therefore gets a companion MLTable data asset
`name-mltable` vN: a folder with the table as opsdeck read it, as Parquet, and the MLTable file
reading it. A copy rather than a pointer at the uploaded file, because MLTable's own CSV reader
knows none of what the upload recognised (missing-value tokens such as `?`, numbers written as
`$1,234` or `1,5`, day-first dates, names for blank header cells): Azure then trains on the
columns and types the Datasets page, the guardrails and the column choice showed. The same
version number makes reuse a plain `get`.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
from azure.ai.ml import Input, automl
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import AmlCompute, Data
from azure.ai.ml.entities import Job as AzureJob
from azure.core.exceptions import ResourceNotFoundError

from lib.automl_rules import excluded_columns
from lib.azure.automl.translate import PRIMARY_METRICS, azure_algorithms, azure_primary_metric
from lib.azure.client import MLClientSource, azure_call
from lib.errors import WorkspaceError
from lib.metrics import CLASSIFICATION
from lib.tabular import write_parquet
from lib.workspace import AutoMLRequest, DatasetVersion

REQUEST_TAG = "opsdeck.request"
MLTABLE_SUFFIX = "-mltable"
# The typed copy of the table inside the MLTable folder.
MLTABLE_DATA_FILE = "data.parquet"


def timeout_minutes(time_budget_s: int) -> int:
    """Azure's experiment timeout covering the whole budget (whole minutes, at least 15)."""
    # Azure refuses experiment timeouts under 15 minutes.
    return max(15, math.ceil(time_budget_s / 60))


def mltable_yaml(file_name: str = MLTABLE_DATA_FILE) -> str:
    """The MLTable file that reads the Parquet file beside it."""
    return (
        f"paths:\n  - file: ./{file_name}\n"
        "transformations:\n  - read_parquet:\n      include_path_column: false\n"
    )


def azure_problems(
    ml_client: MLClientSource, request: AutoMLRequest
) -> tuple[list[str], AmlCompute | None]:
    """What Azure would refuse in a request, and the cluster the job would run on."""
    problems: list[str] = []
    if request.task in PRIMARY_METRICS:
        for check in (
            lambda: azure_primary_metric(request.task, request.primary_metric),
            lambda: azure_algorithms(request.task, request.estimators),
        ):
            try:
                check()
            except WorkspaceError as exc:
                problems.append(str(exc))
    compute = (request.compute or "").strip()
    if not compute or compute == "local":
        problems.append("Choose a compute cluster of the workspace to run the job on.")
        return problems, None
    try:
        with azure_call(
            f"get compute {compute}",
            not_found=f"Compute cluster {compute} does not exist in the workspace.",
        ):
            target = ml_client().compute.get(compute)
    except WorkspaceError as exc:
        problems.append(str(exc))
        return problems, None
    if not isinstance(target, AmlCompute):
        problems.append(f"Compute {compute} is not a cluster; AutoML runs on clusters.")
        return problems, None
    return problems, target


def ensure_mltable(ml_client: MLClientSource, dv: DatasetVersion, table: pa.Table) -> Data:
    """The `<dataset>-mltable` asset of a dataset version (``table``: as opsdeck read it),
    registered on first use."""
    name, version = f"{dv.name}{MLTABLE_SUFFIX}", str(dv.version)
    ml = ml_client()
    with azure_call(f"get data asset {name} v{version}"):
        try:
            return ml.data.get(name=name, version=version)
        except ResourceNotFoundError:
            pass
    with tempfile.TemporaryDirectory(prefix="opsdeck-mltable-") as tmp:
        folder = Path(tmp, name)
        folder.mkdir()
        write_parquet(table, folder / MLTABLE_DATA_FILE)
        (folder / "MLTable").write_text(mltable_yaml())
        asset = Data(
            name=name,
            version=version,
            type=AssetTypes.MLTABLE,
            path=str(folder),
            description=(
                f"Dataset {dv.name} v{dv.version} as opsdeck read it, as an MLTable (for AutoML)."
            ),
            tags={"opsdeck.dataset": dv.name, "opsdeck.dataset_version": version},
        )
        with azure_call(f"register data asset {name} v{version}"):
            return ml.data.create_or_update(asset)


def mltable_input(table: Data) -> Input:
    """The job input reading a registered MLTable asset."""
    return Input(type=AssetTypes.MLTABLE, path=f"azureml:{table.name}:{table.version}")


def build_job(
    request: AutoMLRequest,
    training_data: Input,
    max_concurrent_trials: int | None = None,
    columns: list[str] | None = None,
) -> AzureJob:
    """The SDK's AutoML job entity for a request (one trial per cluster node at a time).

    ``columns``: the dataset's columns; those the request leaves out are featurized as Ignore.
    """
    factory = automl.classification if request.task == CLASSIFICATION else automl.regression
    # "auto": no validation settings, so Azure chooses by size (the rule "auto" copies).
    validation: dict[str, Any] = {}
    if request.validation == "cv":
        validation = {"n_cross_validations": int(request.n_folds)}
    elif request.validation == "holdout":
        validation = {"validation_data_size": float(request.holdout_fraction)}
    job = factory(
        compute=request.compute,
        experiment_name=request.experiment_name,
        training_data=training_data,
        target_column_name=request.target,
        primary_metric=azure_primary_metric(request.task, request.primary_metric),
        display_name=(
            f"{request.experiment_name}: {request.dataset} v{request.dataset_version} "
            f"→ {request.target}"
        ),
        tags={REQUEST_TAG: json.dumps(asdict(request))},
        **validation,
    )
    minutes = timeout_minutes(request.time_budget_s)
    job.set_limits(
        timeout_minutes=minutes,
        trial_timeout_minutes=minutes,
        max_trials=request.max_trials,
        max_concurrent_trials=max(1, int(max_concurrent_trials or 1)),
        enable_early_termination=True,
    )
    job.set_training(
        enable_stack_ensemble=request.ensemble,
        enable_vote_ensemble=request.ensemble,
        allowed_training_algorithms=azure_algorithms(request.task, request.estimators),
    )
    ignored = excluded_columns(request, list(columns or []))
    if ignored:
        job.set_featurization(mode="auto", column_name_and_types=dict.fromkeys(ignored, "Ignore"))
    return job
