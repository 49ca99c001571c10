"""Azure AutoML: `automl.classification` / `automl.regression` jobs over an MLTable of a dataset.

AutoML tabular jobs only read MLTable inputs, while opsdeck datasets are `uri_file` CSV or Parquet
versions. Each dataset version `name` vN therefore gets a companion MLTable data asset
`name-mltable` vN: a one-file MLTable whose `paths` point at the uri_file's datastore URI, with the
delimiter and encoding the upload was parsed with. The same version number makes reuse a plain
`get`, and the companion adds no copy of the data.

Trials, the leaderboard and best-model details come from the workspace's MLflow tracking: the
AutoML job is the parent run and every trial a child run (`tags.mlflow.parentRunId`). The MLflow
client is injectable; the default one needs the `azureml-mlflow` plugin.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from azure.ai.ml import Input, automl
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import AmlCompute, Data
from azure.ai.ml.entities import Job as AzureJob
from azure.core.exceptions import ResourceNotFoundError

from lib.azure.client import MLClientSource, azure_call
from lib.azure.compute import MAX_JOBS, to_job
from lib.azure.datasets import AzureDatasets
from lib.local.automl import TRIAL_COLUMNS, validate_request
from lib.tabular import TableError, parse_table
from lib.workspace import LOWER_IS_BETTER, AutoMLRequest, Job, WorkspaceError

MlflowClientSource = Callable[[], Any]

REQUEST_TAG = "opsdeck.request"
MLTABLE_SUFFIX = "-mltable"
BEST_CHILD_TAG = "automl_best_child_run_id"
# Our metric names → the primary metric names Azure AutoML accepts.
PRIMARY_METRICS = {
    "classification": {
        "AUC_weighted": "AUC_weighted",
        "accuracy": "accuracy",
        "precision_score_weighted": "precision_score_weighted",
        "average_precision_score_weighted": "average_precision_score_weighted",
    },
    "regression": {
        "r2_score": "r2_score",
        "rmse": "normalized_root_mean_squared_error",
        "mae": "normalized_mean_absolute_error",
    },
}
# Our metric names → the metric Azure logs on each child run under another name.
LOGGED_AS = {"rmse": "root_mean_squared_error", "mae": "mean_absolute_error"}
# Our (FLAML) estimator names → Azure AutoML algorithm names.
ALGORITHMS = {
    "classification": {
        "lgbm": "LightGBM",
        "xgboost": "XGBoostClassifier",
        "rf": "RandomForest",
        "extra_tree": "ExtremeRandomTrees",
        "lrl1": "LogisticRegression",
    },
    "regression": {
        "lgbm": "LightGBM",
        "xgboost": "XGBoostRegressor",
        "rf": "RandomForest",
        "extra_tree": "ExtremeRandomTrees",
        # FLAML's lrl1 is L1-regularised linear; LassoLars is Azure's L1 linear regressor.
        "lrl1": "LassoLars",
    },
}
MLFLOW_STATES = {
    "SCHEDULED": "Queued",
    "RUNNING": "Running",
    "FINISHED": "Completed",
    "FAILED": "Failed",
    "KILLED": "Canceled",
}
# MLTable's names for the encodings lib.tabular detects.
MLTABLE_ENCODINGS = {"utf-8": "utf8", "latin-1": "latin1"}
MAX_CHILD_RUNS = 1000


def azure_primary_metric(task: str, metric: str) -> str:
    """The Azure name of one of our primary metrics (WorkspaceError if Azure has no such metric)."""
    try:
        return PRIMARY_METRICS[task][metric]
    except KeyError:
        allowed = ", ".join(PRIMARY_METRICS.get(task, {}))
        raise WorkspaceError(
            f"{metric} cannot be the primary metric of an Azure AutoML {task} job "
            f"(choose from {allowed})."
        ) from None


def azure_algorithms(task: str, estimators: list[str] | None) -> list[str] | None:
    """Azure algorithm names for our estimator names; None lets Azure try all of them."""
    if not estimators:
        return None
    table = ALGORITHMS.get(task, {})
    unknown = [e for e in estimators if e not in table]
    if unknown:
        raise WorkspaceError(
            f"Unknown algorithm(s) {', '.join(unknown)} (choose from {', '.join(table)})."
        )
    return list(dict.fromkeys(table[e] for e in estimators))


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


def _text(value: Any) -> str:
    return "" if value is None else str(getattr(value, "value", value))


def _request_from_entity(job: AzureJob) -> dict[str, Any]:
    """Best-effort request fields for an AutoML job submitted outside opsdeck."""
    request = asdict(AutoMLRequest(dataset="", dataset_version=0, target=""))
    task = _text(getattr(job, "task_type", "")).lower()
    request["task"] = task or request["task"]
    request["target"] = getattr(job, "target_column_name", "") or ""
    azure_metric = _text(getattr(job, "primary_metric", ""))
    reverse = {
        re.sub(r"[^a-z]", "", v.lower()): k for k, v in PRIMARY_METRICS.get(task, {}).items()
    }
    request["primary_metric"] = reverse.get(re.sub(r"[^a-z]", "", azure_metric.lower()), "")
    limits = getattr(job, "limits", None)
    if limits is not None and limits.timeout_minutes:
        request["time_budget_s"] = int(limits.timeout_minutes) * 60
    if limits is not None and limits.max_trials:
        request["max_trials"] = int(limits.max_trials)
    data = getattr(job, "training_data", None)
    path = str(getattr(data, "path", "") or "")
    match = re.match(r"^azureml:([^:/]+):(\d+)$", path)
    if match:
        name = match.group(1)
        request["dataset"] = name[: -len(MLTABLE_SUFFIX)] if name.endswith(MLTABLE_SUFFIX) else name
        request["dataset_version"] = int(match.group(2))
    else:
        request["dataset"] = path
    request["experiment_name"] = job.experiment_name or ""
    request["compute"] = _text(getattr(job, "compute", ""))
    return request


@contextmanager
def mlflow_call(action: str) -> Iterator[None]:
    """Run MLflow tracking calls, re-raising their errors as WorkspaceError."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except WorkspaceError:
        raise
    except MlflowException as exc:
        raise WorkspaceError(
            f"Could not {action} from the workspace's MLflow tracking: {exc.message}"
        ) from exc


def default_mlflow_client(ml_client: MLClientSource) -> Any:
    """An MlflowClient on the workspace's tracking URI (needs the azureml-mlflow plugin)."""
    try:
        import azureml.mlflow  # noqa: F401 - registers the azureml:// tracking scheme
    except ImportError:
        raise WorkspaceError(
            "Reading AutoML trials needs the azureml-mlflow package (pip install azureml-mlflow), "
            "which lets MLflow talk to the workspace's tracking server."
        ) from None
    from mlflow.tracking import MlflowClient

    ml = ml_client()
    with azure_call("read the workspace's MLflow tracking URI"):
        uri = ml.workspaces.get(ml.workspace_name).mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _seconds(start_ms: int | None, end_ms: int | None) -> float | None:
    if not start_ms:
        return None
    end = end_ms or int(datetime.now(UTC).timestamp() * 1000)
    return max(0.0, (end - start_ms) / 1000.0)


def _first(*candidates: Any) -> str:
    return next((str(c) for c in candidates if c not in (None, "")), "")


def run_algorithm(run: Any) -> str:
    """The algorithm of an AutoML child run, from the fields Azure records (else 'unknown')."""
    tags, params = run.data.tags, run.data.params
    return _first(
        tags.get("run_algorithm"),
        params.get("run_algorithm"),
        params.get("algorithm_name"),
        tags.get("algorithm_name"),
        "unknown",
    )


def _iteration(run: Any, parent: str) -> int | None:
    raw = run.data.tags.get("iteration", run.data.params.get("iteration"))
    if raw is not None and str(raw).isdigit():
        return int(raw)
    # Child runs are named <parent>_<iteration>; <parent>_setup and the like are not trials.
    suffix = run.info.run_id[len(parent) + 1 :] if run.info.run_id.startswith(parent) else ""
    return int(suffix) if suffix.isdigit() else None


def with_metric_aliases(metrics: dict[str, float]) -> dict[str, float]:
    """Child-run metrics plus our names for those Azure logs differently (rmse, mae)."""
    out = {k: float(v) for k, v in metrics.items()}
    for ours, logged in LOGGED_AS.items():
        if logged in out and ours not in out:
            out[ours] = out[logged]
    return out


def _confusion(artifact: dict[str, Any]) -> dict[str, Any]:
    data = artifact.get("data", artifact)
    labels, matrix = data.get("class_labels"), data.get("matrix")
    if not labels or not matrix:
        return {}
    return {"labels": [str(label) for label in labels], "matrix": matrix}


def _curves(artifact: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """ROC and PR points from Azure's `accuracy_table` ([tp, fp, tn, fn] per class and threshold)."""
    data = artifact.get("data", artifact)
    labels = data.get("class_labels") or []
    thresholds = data.get("probability_thresholds") or []
    tables = data.get("probability_tables") or []
    roc: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    for label, table in zip(labels, tables, strict=False):
        for threshold, counts in zip(thresholds, table, strict=False):
            tp, fp, tn, fn = (float(c) for c in counts[:4])
            tpr = tp / (tp + fn) if tp + fn else 0.0
            fpr = fp / (fp + tn) if fp + tn else 0.0
            point = {"class": str(label), "threshold": float(threshold)}
            roc.append({**point, "fpr": fpr, "tpr": tpr})
            if tp + fp:
                pr.append({**point, "recall": tpr, "precision": tp / (tp + fp)})
    return roc, pr


class AzureAutoML:
    """AutoMLService over `ml_client.jobs` (AutoML jobs) and the workspace's MLflow tracking."""

    def __init__(
        self,
        ml_client: MLClientSource,
        datasets: AzureDatasets,
        mlflow_client: MlflowClientSource | None = None,
    ) -> None:
        self.ml_client = ml_client
        self.datasets = datasets
        self._mlflow_source = mlflow_client or (lambda: default_mlflow_client(ml_client))
        self._mlflow: Any = None
        self._lock = threading.Lock()

    def mlflow(self) -> Any:
        """The MLflow client, built on first use."""
        if self._mlflow is None:
            with self._lock:
                if self._mlflow is None:
                    self._mlflow = self._mlflow_source()
        return self._mlflow

    # --- submission -----------------------------------------------------------------------

    def _read(self, request: AutoMLRequest) -> tuple[Any, Any]:
        """The dataset version and its parsed table."""
        dv = self.datasets.get(request.dataset, request.dataset_version)
        file_name, data = self.datasets.download(request.dataset, request.dataset_version)
        try:
            return dv, parse_table(file_name, data)
        except TableError as exc:
            raise WorkspaceError(f"Dataset {dv.name} v{dv.version} cannot be read: {exc}") from exc

    def _azure_problems(self, request: AutoMLRequest) -> tuple[list[str], AmlCompute | None]:
        """What Azure would refuse, and the cluster the job would run on."""
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
                target = self.ml_client().compute.get(compute)
        except WorkspaceError as exc:
            problems.append(str(exc))
            return problems, None
        if not isinstance(target, AmlCompute):
            problems.append(f"Compute {compute} is not a cluster; AutoML runs on clusters.")
            return problems, None
        return problems, target

    def validate(self, request: AutoMLRequest) -> list[str]:
        """Problems with the data (as the local backend finds them) and with the Azure settings."""
        try:
            _, parsed = self._read(request)
        except WorkspaceError as exc:
            return [str(exc)]
        return validate_request(request, parsed.frame) + self._azure_problems(request)[0]

    def ensure_mltable(
        self, dv: Any, file_format: str, delimiter: str | None, encoding: str | None
    ) -> Data:
        """The `<dataset>-mltable` asset of a dataset version, registered on first use."""
        name, version = f"{dv.name}{MLTABLE_SUFFIX}", str(dv.version)
        ml = self.ml_client()
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

    def build_job(
        self, request: AutoMLRequest, training_data: Input, max_concurrent_trials: int | None = None
    ) -> AzureJob:
        """The SDK's AutoML job entity for a request (one trial per cluster node at a time)."""
        factory = automl.classification if request.task == "classification" else automl.regression
        validation: dict[str, Any] = (
            {"n_cross_validations": int(request.n_folds)}
            if request.validation == "cv"
            else {"validation_data_size": float(request.holdout_fraction)}
        )
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
        return job

    def submit(self, request: AutoMLRequest) -> Job:
        """Validate, register (or reuse) the MLTable, and submit the AutoML job."""
        dv, parsed = self._read(request)
        azure_problems, cluster = self._azure_problems(request)
        problems = validate_request(request, parsed.frame) + azure_problems
        if problems or cluster is None:
            raise WorkspaceError(" ".join(problems))
        table = self.ensure_mltable(dv, parsed.file_format, parsed.delimiter, parsed.encoding)
        training = Input(type=AssetTypes.MLTABLE, path=f"azureml:{table.name}:{table.version}")
        job = self.build_job(request, training, max_concurrent_trials=cluster.max_instances)
        with azure_call(f"submit the AutoML job on {request.compute}"):
            created = self.ml_client().jobs.create_or_update(job)
        return self._to_job(created)

    # --- jobs -----------------------------------------------------------------------------

    def _to_job(self, entity: AzureJob, progress: dict[str, Any] | None = None) -> Job:
        job = to_job(entity)
        request = request_from_tags(dict(entity.tags or {})) or _request_from_entity(entity)
        merged = {**job.progress, "phase": job.spec.get("azure_status", ""), **(progress or {})}
        error = None
        if job.state == "Failed":
            where = f" See {url} for the reason." if (url := job.progress.get("studio_url")) else ""
            error = f"Azure ML reports job {job.id} as failed.{where}"
        return replace(
            job, kind="automl", spec={**job.spec, "request": request}, progress=merged, error=error
        )

    def _entity(self, job_id: str) -> AzureJob:
        with azure_call(f"get job {job_id}", not_found=f"Job {job_id} does not exist."):
            entity = self.ml_client().jobs.get(job_id)
        if _text(entity.type) != "automl":
            raise WorkspaceError(f"Job {job_id} is not an AutoML job.")
        return entity

    def jobs(self) -> list[Job]:
        """The workspace's AutoML jobs, newest first."""
        with azure_call("list jobs"):
            entities = list(itertools.islice(self.ml_client().jobs.list(), MAX_JOBS))
        found = [self._to_job(e) for e in entities if _text(e.type) == "automl"]
        return sorted(found, key=lambda j: j.created, reverse=True)

    def get(self, job_id: str) -> Job:
        """One job, with trial progress from MLflow when it can be read."""
        entity = self._entity(job_id)
        job = self._to_job(entity)
        if job.state == "Queued":
            return job  # no parent run in MLflow before the job starts
        try:
            progress = self._progress(job)
        except WorkspaceError as exc:
            progress = {"note": str(exc)}
        return self._to_job(entity, progress)

    def cancel(self, job_id: str) -> Job:
        """Ask Azure to cancel; the job shows Running until the service has stopped it."""
        job = self.get(job_id)
        if job.is_terminal:
            return job
        with azure_call(f"cancel job {job_id}", not_found=f"Job {job_id} does not exist."):
            # Not waited on: Azure acknowledges at once, the cancellation itself takes minutes.
            self.ml_client().jobs.begin_cancel(job_id)
        return self._to_job(self._entity(job_id))

    def log_tail(self, job_id: str, lines: int = 60) -> str:
        """Status, Studio link and the latest trials (Azure keeps the driver log in Studio)."""
        job = self.get(job_id)
        out = [
            f"{job.id}: {job.state} (Azure status {job.spec.get('azure_status', '?')})",
            f"compute: {job.compute}",
        ]
        if url := job.progress.get("studio_url"):
            out.append(f"Studio: {url}")
        if job.error:
            out.append(job.error)
        if note := job.progress.get("note"):
            out.append(str(note))
        else:
            metric = job.spec["request"].get("primary_metric", "")
            trials = self._frame(job_id, metric)
            for row in trials.tail(max(0, lines - len(out))).itertuples():
                score = "" if pd.isna(row.primary_metric) else f" {metric}={row.primary_metric:.4f}"
                out.append(f"trial {row.trial} {row.estimator}: {row.status}{score}")
        return "\n".join(out[-lines:])

    # --- trials ---------------------------------------------------------------------------

    def _children(self, parent_id: str, experiment_id: str) -> list[Any]:
        client = self.mlflow()
        with mlflow_call(f"list the trials of {parent_id}"):
            runs = list(
                client.search_runs(
                    experiment_ids=[experiment_id],
                    filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
                    max_results=MAX_CHILD_RUNS,
                )
            )
        nested = [r for r in runs if r.info.run_id == f"{parent_id}_HD"]
        for sweep in nested:
            # Some AutoML versions run the trials under a HyperDrive child of the parent.
            runs.extend(self._children(sweep.info.run_id, experiment_id))
        return runs

    def _parent_and_trials(self, job_id: str) -> tuple[Any, list[tuple[int, Any]]]:
        if "'" in job_id:
            raise WorkspaceError(f"{job_id!r} is not a job name.")
        client = self.mlflow()
        with mlflow_call(f"read run {job_id}"):
            parent = client.get_run(job_id)
        trials = []
        for run in self._children(job_id, parent.info.experiment_id):
            iteration = _iteration(run, run.data.tags.get("mlflow.parentRunId", job_id))
            if iteration is not None:
                trials.append((iteration, run))
        trials.sort(key=lambda t: (t[0], t[1].info.start_time or 0))
        return parent, trials

    def _metric(self, job_id: str) -> tuple[str, str]:
        """Our primary metric name and the job's task."""
        request = self.get_request(job_id)
        return request.get("primary_metric") or "", request.get("task") or "classification"

    def get_request(self, job_id: str) -> dict[str, Any]:
        """The request fields of a job (stored by opsdeck, else read from the job)."""
        entity = self._entity(job_id)
        return request_from_tags(dict(entity.tags or {})) or _request_from_entity(entity)

    def _frame(self, job_id: str, metric: str) -> pd.DataFrame:
        parent, trials = self._parent_and_trials(job_id)
        higher = metric not in LOWER_IS_BETTER
        rows = []
        best: float | None = None
        parent_start = parent.info.start_time
        for iteration, run in trials:
            metrics = with_metric_aliases(run.data.metrics)
            score = metrics.get(metric)
            if score is not None and (best is None or (score > best if higher else score < best)):
                best = score
            config = dict(run.data.params)
            if pre := _first(run.data.tags.get("run_preprocessor"), config.get("run_preprocessor")):
                config.setdefault("run_preprocessor", pre)
            rows.append(
                {
                    "trial": iteration,
                    "estimator": run_algorithm(run),
                    "primary_metric": score,
                    "best_so_far": best,
                    "duration_s": _seconds(run.info.start_time, run.info.end_time),
                    "wall_time_s": _seconds(parent_start, run.info.end_time),
                    "status": MLFLOW_STATES.get(run.info.status, run.info.status),
                    "config": config,
                    "run_id": run.info.run_id,
                    **metrics,
                }
            )
        if not rows:
            return pd.DataFrame(columns=TRIAL_COLUMNS)
        return pd.DataFrame(rows)

    def trials(self, job_id: str) -> pd.DataFrame:
        """One row per child run (trial order), with every metric Azure logged on it."""
        metric, _ = self._metric(job_id)
        return self._frame(job_id, metric)

    def _progress(self, job: Job) -> dict[str, Any]:
        metric = job.spec["request"].get("primary_metric", "")
        frame = self._frame(job.id, metric)
        if frame.empty:
            return {"trials": 0}
        running = frame[frame["status"] == "Running"]
        current = running["estimator"].iloc[-1] if not running.empty else None
        best = frame["best_so_far"].dropna()
        return {
            "trials": int(len(frame)),
            "best_score": float(best.iloc[-1]) if not best.empty else None,
            "current_estimator": current or frame["estimator"].iloc[-1],
        }

    def leaderboard(self, job_id: str, per_estimator: bool = False) -> pd.DataFrame:
        """Trials sorted best first; with `per_estimator`, each algorithm's best trial."""
        metric, _ = self._metric(job_id)
        frame = self._frame(job_id, metric)
        if frame.empty:
            return frame
        frame = frame.drop(columns=["primary_metric", "best_so_far"]).assign(
            **{metric: frame["primary_metric"]}
        )
        ascending = metric in LOWER_IS_BETTER
        frame = frame.sort_values(metric, ascending=ascending, na_position="last", kind="stable")
        if per_estimator:
            frame = frame.dropna(subset=[metric]).drop_duplicates("estimator", keep="first")
        return frame.reset_index(drop=True)

    def best_trial(self, job_id: str) -> dict[str, Any]:
        """The best child run: run_id, estimator and metrics (Azure's pick when it names one)."""
        metric, _ = self._metric(job_id)
        parent, trials = self._parent_and_trials(job_id)
        chosen = None
        if named := parent.data.tags.get(BEST_CHILD_TAG):
            chosen = next((r for _, r in trials if r.info.run_id == named), None)
            if chosen is None:
                with mlflow_call(f"read run {named}"):
                    chosen = self.mlflow().get_run(named)
        if chosen is None:
            scored = [r for _, r in trials if metric in with_metric_aliases(r.data.metrics)]
            if not scored:
                raise WorkspaceError(f"Job {job_id} has no scored trial yet.")
            lower = metric in LOWER_IS_BETTER
            chosen = (min if lower else max)(
                scored, key=lambda r: with_metric_aliases(r.data.metrics)[metric]
            )
        return {
            "run_id": chosen.info.run_id,
            "estimator": run_algorithm(chosen),
            "metrics": with_metric_aliases(chosen.data.metrics),
        }

    def _artifact(self, run_id: str, name: str) -> dict[str, Any] | None:
        """A JSON artifact of a run, or None when Azure did not log it."""
        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory(prefix="opsdeck-artifact-") as tmp:
            try:
                local = self.mlflow().download_artifacts(run_id, name, tmp)
                path = Path(local)
                if path.is_dir():
                    path = next((p for p in sorted(path.rglob("*")) if p.is_file()), path)
                return json.loads(path.read_text())
            except (MlflowException, OSError, ValueError):
                return None

    def details(self, job_id: str) -> dict[str, Any]:
        """The best trial's metrics, plus ROC/PR and confusion matrix when Azure logged them."""
        best = self.best_trial(job_id)
        details: dict[str, Any] = {
            "best_estimator": best["estimator"],
            "run_id": best["run_id"],
            "metrics": best["metrics"],
            "roc": [],
            "pr": [],
            "confusion": {},
            "calibration": [],
            "feature_importance": [],
        }
        if (confusion := self._artifact(best["run_id"], "confusion_matrix")) is not None:
            details["confusion"] = _confusion(confusion)
        if (table := self._artifact(best["run_id"], "accuracy_table")) is not None:
            details["roc"], details["pr"] = _curves(table)
        return details

    def guardrails(self, job_id: str) -> list[dict[str, Any]]:
        """Always empty: Azure shows data guardrails in Studio but records them nowhere readable.

        The featurization summary lives in a job artifact whose layout is undocumented and has
        changed between AutoML releases, so nothing is shown rather than something misread.
        """
        return []
