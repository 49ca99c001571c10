"""A retrain pipeline as an Azure ML pipeline job, built with the `azure.ai.ml.dsl` decorator.

dataset (split step: train / holdout / all MLTables) -> automl (an AutoML node) -> register ->
gate -> deploy. The split, register, gate and deploy steps are command steps whose scripts live
in `steps/`; the dataset input is `azureml:<name>:<version>`, or `azureml:<name>@latest` so a
scheduled or published run reads the newest version when it starts.
"""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output, automl, command, dsl
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Environment, PipelineJob, UserIdentityConfiguration

from lib.azure.automl.submit import timeout_minutes
from lib.azure.automl.translate import azure_algorithms, azure_primary_metric
from lib.azure.pipelines.steps.split import DEFAULT_SHEET, DEFAULT_TOKENS
from lib.errors import WorkspaceError
from lib.metrics import CLASSIFICATION
from lib.pipeline_gate import DEFAULT_SEED
from lib.workspace import PipelineSpec

STEPS_DIR = Path(__file__).resolve().parent / "steps"
DEPLOY_INSTANCE_TYPE = "Standard_DS3_v2"
REPO_ROOT = Path(__file__).resolve().parents[3]
# The opsdeck modules the split step imports (the table reader and its limits), shipped in the
# steps' code snapshot so a pipeline reads a dataset's file exactly as its upload did.
SHIPPED = ("lib/__init__.py", "lib/settings.py", "lib/tabular")


def _snapshot_files() -> list[tuple[str, Path]]:
    files = [(p.name, p) for p in sorted(STEPS_DIR.iterdir()) if p.suffix in (".py", ".yaml")]
    for rel in SHIPPED:
        source = REPO_ROOT / rel
        found = sorted(source.glob("*.py")) if source.is_dir() else [source]
        files += [(f.relative_to(REPO_ROOT).as_posix(), f) for f in found]
    return files


def steps_code() -> Path:
    """The steps' code snapshot: their scripts plus `SHIPPED`, in a folder named by the hash of
    its contents (Azure reuses an unchanged snapshot; two processes building it agree)."""
    files = _snapshot_files()
    digest = hashlib.sha256()
    for rel, path in files:
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    folder = Path(tempfile.gettempdir()) / f"opsdeck-pipeline-steps-{digest.hexdigest()[:16]}"
    if folder.is_dir():
        return folder
    building = Path(tempfile.mkdtemp(prefix=f"{folder.name}-", dir=folder.parent))
    for rel, path in files:
        (building / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, building / rel)
    try:
        os.rename(building, folder)
    except OSError:  # built meanwhile by another process: same contents
        shutil.rmtree(building, ignore_errors=True)
    return folder


def steps_environment() -> Environment:
    return Environment(
        image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
        conda_file=str(STEPS_DIR / "conda.yaml"),
    )


def _step(name: str, script: str, args: str, inputs: dict, outputs: dict) -> Any:
    return command(
        name=f"opsdeck_{name}",
        display_name=name,
        code=str(steps_code()),
        command=f"python {script} {args}",
        inputs=inputs,
        outputs=outputs,
        environment=steps_environment(),
    )


def split_step() -> Any:
    return _step(
        "dataset",
        "split.py",
        "--data ${{inputs.data}} --missing_tokens ${{inputs.missing_tokens}} "
        "--sheet ${{inputs.sheet}} "
        "--target ${{inputs.target}} --task ${{inputs.task}} "
        "--holdout_fraction ${{inputs.holdout_fraction}} --seed ${{inputs.seed}} "
        "--train ${{outputs.train}} --valid ${{outputs.valid}} --all ${{outputs.all}}",
        {
            "data": Input(type=AssetTypes.URI_FILE),
            "missing_tokens": Input(type="string"),
            "sheet": Input(type="string"),
            "target": Input(type="string"),
            "task": Input(type="string"),
            "holdout_fraction": Input(type="number"),
            "seed": Input(type="integer"),
        },
        {name: Output(type=AssetTypes.MLTABLE) for name in ("train", "valid", "all")},
    )


def register_step() -> Any:
    return _step(
        "register",
        "register.py",
        "--model ${{inputs.model}} --model_name ${{inputs.model_name}} "
        "--registered ${{outputs.registered}}",
        {"model": Input(type=AssetTypes.MLFLOW_MODEL), "model_name": Input(type="string")},
        {"registered": Output(type=AssetTypes.URI_FOLDER)},
    )


def gate_step() -> Any:
    return _step(
        "gate",
        "gate.py",
        "--challenger ${{inputs.challenger}} --valid ${{inputs.valid}} "
        "--target ${{inputs.target}} --task ${{inputs.task}} --metric ${{inputs.metric}} "
        "--margin ${{inputs.margin}} --endpoint ${{inputs.endpoint}} "
        "--decision ${{outputs.decision}}",
        {
            "challenger": Input(type=AssetTypes.MLFLOW_MODEL),
            "valid": Input(type=AssetTypes.MLTABLE),
            "target": Input(type="string"),
            "task": Input(type="string"),
            "metric": Input(type="string"),
            "margin": Input(type="number"),
            "endpoint": Input(type="string"),
        },
        {"decision": Output(type=AssetTypes.URI_FOLDER)},
    )


def deploy_step() -> Any:
    return _step(
        "deploy",
        "deploy.py",
        "--decision ${{inputs.decision}} --registered ${{inputs.registered}} "
        "--endpoint ${{inputs.endpoint}} --instance_type ${{inputs.instance_type}} "
        "--deployed ${{outputs.deployed}}",
        {
            "decision": Input(type=AssetTypes.URI_FOLDER),
            "registered": Input(type=AssetTypes.URI_FOLDER),
            "endpoint": Input(type="string"),
            "instance_type": Input(type="string"),
        },
        {"deployed": Output(type=AssetTypes.URI_FOLDER)},
    )


def dataset_input(dataset: str, version: int | None) -> Input:
    """The dataset version a run reads; `@latest` is resolved by Azure when the run starts."""
    path = f"azureml:{dataset}@latest" if version is None else f"azureml:{dataset}:{int(version)}"
    return Input(type=AssetTypes.URI_FILE, path=path)


def azure_spec_problems(spec: PipelineSpec) -> list[str]:
    """What Azure cannot run in a spec that is otherwise valid."""
    problems = []
    for check in (
        lambda: azure_primary_metric(spec.task, spec.primary_metric),
        lambda: azure_algorithms(spec.task, spec.estimators),
    ):
        try:
            check()
        except WorkspaceError as exc:
            problems.append(str(exc))
    if not spec.compute or spec.compute == "local":
        problems.append("Choose a compute cluster of the workspace to run the pipeline on.")
    if spec.deploy_endpoint and spec.gated and spec.validation != "holdout":
        problems.append(
            "A gated deploy needs holdout validation: the gate scores both models on the "
            "holdout rows."
        )
    return problems


def pipeline_job(
    name: str,
    spec: PipelineSpec,
    data: Input,
    missing_tokens: str = DEFAULT_TOKENS,
    model_name: str = "",
    sheet: str = DEFAULT_SHEET,
) -> PipelineJob:
    """The pipeline job for a spec (its steps are named as opsdeck's steps)."""
    problems = azure_spec_problems(spec)
    if problems:
        raise WorkspaceError(" ".join(problems))
    factory = automl.classification if spec.task == CLASSIFICATION else automl.regression
    split, register = split_step(), register_step()
    gate, deploy = gate_step(), deploy_step()

    @dsl.pipeline(name=name, description=f"opsdeck retrain pipeline {name}")
    def retrain(dataset: Input, model_name: str, gate_margin: float):  # noqa: ANN202
        parts = split(
            data=dataset,
            missing_tokens=missing_tokens,
            sheet=sheet,
            target=spec.target,
            task=spec.task,
            holdout_fraction=spec.holdout_fraction,
            seed=DEFAULT_SEED,
        )
        parts.display_name = "dataset"
        if spec.validation == "holdout":
            data_args: dict[str, Any] = {
                "training_data": parts.outputs.train,
                "validation_data": parts.outputs.valid,
            }
        elif spec.validation == "cv":
            data_args = {"training_data": parts.outputs.all, "n_cross_validations": spec.n_folds}
        else:  # "auto": Azure chooses by size
            data_args = {"training_data": parts.outputs.all}
        search = factory(
            target_column_name=spec.target,
            primary_metric=azure_primary_metric(spec.task, spec.primary_metric),
            outputs={"best_model": Output(type=AssetTypes.MLFLOW_MODEL)},
            **data_args,
        )
        search.display_name = "automl"
        minutes = timeout_minutes(spec.time_budget_s)
        search.set_limits(
            timeout_minutes=minutes,
            trial_timeout_minutes=minutes,
            max_trials=spec.max_trials,
            enable_early_termination=True,
        )
        search.set_training(
            enable_stack_ensemble=spec.ensemble,
            enable_vote_ensemble=spec.ensemble,
            allowed_training_algorithms=azure_algorithms(spec.task, spec.estimators),
        )
        registered = register(model=search.outputs.best_model, model_name=model_name)
        registered.display_name = "register"
        outputs: dict[str, Any] = {"registered": registered.outputs.registered}
        if spec.deploy_endpoint:
            judged = gate(
                challenger=search.outputs.best_model,
                valid=parts.outputs.valid,
                target=spec.target,
                task=spec.task,
                metric=spec.primary_metric,
                # An ungated deploy is a gate nothing can fail.
                margin=gate_margin if spec.gated else -1e9,
                endpoint=spec.deploy_endpoint,
            )
            judged.display_name = "gate"
            rolled = deploy(
                decision=judged.outputs.decision,
                registered=registered.outputs.registered,
                endpoint=spec.deploy_endpoint,
                instance_type=DEPLOY_INSTANCE_TYPE,
            )
            rolled.display_name = "deploy"
            outputs["decision"] = judged.outputs.decision
        return outputs

    job = retrain(
        dataset=data,
        model_name=model_name or spec.model_name,
        gate_margin=float(spec.gate_margin),
    )
    job.settings.default_compute = spec.compute
    job.experiment_name = spec.experiment_name
    # Register and deploy act as the user who submitted the run.
    job.identity = UserIdentityConfiguration()
    return job
