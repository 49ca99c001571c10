"""From an `AutoMLRequest` to a submitted Azure AutoML job: checks, the MLTable input, the job entity.

AutoML tabular jobs only read MLTable inputs, while opsdeck datasets are `uri_file` CSV or Parquet
versions. Each dataset version `name` vN therefore gets a companion MLTable data asset
`name-mltable` vN: a one-file MLTable whose `paths` point at the uri_file's datastore URI, with the
delimiter and encoding the upload was parsed with. The same version number makes reuse a plain
`get`, and the companion adds no copy of the data.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

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
from lib.workspace import AutoMLRequest, DatasetVersion

REQUEST_TAG = "opsdeck.request"
MLTABLE_SUFFIX = "-mltable"
# MLTable's names for the encodings lib.tabular detects.
MLTABLE_ENCODINGS = {"utf-8": "utf8", "latin-1": "latin1"}


def timeout_minutes(time_budget_s: int) -> int:
    """Azure's experiment timeout covering the whole budget (whole minutes, at least 15)."""
    # Azure refuses experiment timeouts under 15 minutes.
    return max(15, math.ceil(time_budget_s / 60))


def mltable_yaml(uri: str, file_format: str, delimiter: str | None, encoding: str | None) -> str:
    """The MLTable file that reads one datastore file as a table."""
    if file_format == "parquet":
        transformation = "  - read_parquet:\n      include_path_column: false\n"
    else:
        transformation = (
            "  - read_delimited:\n"
            f"      delimiter: {json.dumps(delimiter or ',')}\n"
            f"      encoding: {MLTABLE_ENCODINGS.get(encoding or 'utf-8', 'utf8')}\n"
            "      header: all_files_same_headers\n"
        )
    return f"paths:\n  - file: {json.dumps(uri)}\ntransformations:\n{transformation}"


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


def ensure_mltable(
    ml_client: MLClientSource,
    dv: DatasetVersion,
    file_format: str,
    delimiter: str | None,
    encoding: str | None,
) -> Data:
    """The `<dataset>-mltable` asset of a dataset version, registered on first use."""
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
        (folder / "MLTable").write_text(mltable_yaml(dv.uri, file_format, delimiter, encoding))
        asset = Data(
            name=name,
            version=version,
            type=AssetTypes.MLTABLE,
            path=str(folder),
            description=f"MLTable over dataset {dv.name} v{dv.version} (for AutoML).",
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
