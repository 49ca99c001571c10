"""An AutoML scenario in the fake workspace: a small bank dataset, a request, recorded trials."""

from __future__ import annotations

import random
from dataclasses import replace

from lib.azure.automl import AzureAutoML
from lib.workspace import AutoMLRequest
from tests.support.azure_fakes import FakeMLClient
from tests.support.azure_fakes_mlflow import FakeMlflowClient, mlflow_run

T0 = 1_700_000_000_000


def bank_csv(rows: int = 120, sep: str = ";") -> bytes:
    rng = random.Random(7)
    lines = [sep.join(["age", "job", "balance", "y"])]
    for i in range(rows):
        job = rng.choice(["admin", "technician", "services"])
        lines.append(
            sep.join(
                [
                    str(20 + i % 50),
                    job,
                    f"{rng.uniform(-50, 900):.2f}",
                    "yes" if i % 4 == 0 else "no",
                ]
            )
        )
    return ("\n".join(lines) + "\n").encode()


def request(**changes) -> AutoMLRequest:
    base = AutoMLRequest(
        dataset="bank",
        dataset_version=1,
        target="y",
        task="classification",
        primary_metric="AUC_weighted",
        time_budget_s=1800,
        max_trials=20,
        estimators=["lgbm", "xgboost"],
        validation="holdout",
        holdout_fraction=0.2,
        ensemble=True,
        experiment_name="bank-automl",
        compute="cpu-cluster",
    )
    return replace(base, **changes)


def add_trials(mlflow: FakeMlflowClient, job: str, best_tag: bool = True) -> None:
    """A parent run with a setup run and five trials, as Azure AutoML records them."""
    tags = {"automl_best_child_run_id": f"{job}_3"} if best_tag else {}
    mlflow.add(mlflow_run(job, start=T0, status="RUNNING", tags=tags))
    mlflow.add(mlflow_run(f"{job}_setup", parent=job, start=T0, end=T0 + 30_000))
    trials = [
        ("LightGBM", "MaxAbsScaler", 0.91, 0.90, "FINISHED"),
        ("XGBoostClassifier", "SparseNormalizer", 0.93, 0.91, "FINISHED"),
        ("LightGBM", "StandardScalerWrapper", 0.94, 0.905, "FINISHED"),
        ("VotingEnsemble", "", 0.95, 0.92, "FINISHED"),
        ("XGBoostClassifier", "MaxAbsScaler", None, None, "RUNNING"),
    ]
    for i, (algo, pre, auc, acc, status) in enumerate(trials):
        start = T0 + 60_000 * (i + 1)
        metrics = {} if auc is None else {"AUC_weighted": auc, "accuracy": acc, "log_loss": 1 - auc}
        mlflow.add(
            mlflow_run(
                f"{job}_{i}",
                parent=job,
                status=status,
                start=start,
                end=None if status == "RUNNING" else start + 45_000,
                metrics=metrics,
                tags={"run_algorithm": algo, "run_preprocessor": pre, "iteration": str(i)},
            )
        )


def submit_with_trials(
    automl: AzureAutoML,
    client: FakeMLClient,
    mlflow: FakeMlflowClient,
    status: str = "Completed",
    best_tag: bool = True,
) -> str:
    """Submit `request()`, move the job to `status` and record its trials; the job's name."""
    job = automl.submit(request())
    client.jobs.set_status(job.id, status)
    add_trials(mlflow, job.id, best_tag=best_tag)
    return job.id
