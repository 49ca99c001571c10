"""The `pipeline` job kind: one pipeline run, its steps in order, inside a job process.

dataset (resolve pinned or latest) -> automl (submits the same `automl` job the AutoML page
shows, and waits for it) -> register -> gate (champion/challenger) -> deploy. Each step records
its state, start/end, outputs and a log. A failed step ends the run Failed with its reason; a
cancel (SIGTERM or the job's cancel flag) cancels the running step's job and ends it Canceled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lib.audit import AuditLog
from lib.errors import WorkspaceError
from lib.local.jobs import JobContext, handler, log
from lib.local.pipelines.store import PipelineStore, now_iso
from lib.names import model_name_for
from lib.workspace import PIPELINE_STEPS, PipelineSpec, Workspace

if TYPE_CHECKING:
    import pandas as pd

POLL_S = 1.0
DEPLOY_TIMEOUT_S = 300.0


class StepFailed(Exception):
    """A step could not do its work; the message is the run's failure reason."""


class StepSkipped(Exception):
    """A step has nothing to do (e.g. no deploy target, or the gate kept the live model)."""

    def __init__(self, reason: str, outputs: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.outputs = outputs or {}


class RunExecution:
    """Runs the steps of one pipeline run against the local workspace's services."""

    def __init__(
        self,
        ws: Workspace,
        pipelines: PipelineStore,
        run_id: str,
        cancel_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        self.ws = ws
        self.pipelines = pipelines
        self.run_id = run_id
        self.cancel_requested = cancel_requested
        self.spec: PipelineSpec = pipelines.run_spec(run_id)
        self.outputs: dict[str, Any] = {}
        self.current: str | None = None
        self.child_job: str | None = None

    # --- logging -------------------------------------------------------------------------

    def log(self, message: str) -> None:
        """A line in the current step's log and in the job log."""
        line = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {message}"
        if self.current:
            path = self.pipelines.step_log_path(self.run_id, self.current)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        log(f"[{self.current or 'run'}] {message}")

    # --- the run ---------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        """Run every step; raises StepFailed or KeyboardInterrupt after recording the end."""
        self.pipelines.update_run(self.run_id, state="Running", started=now_iso())
        try:
            for step in PIPELINE_STEPS:
                self._run_step(step, getattr(self, f"step_{step}"))
        except StepFailed as exc:
            reason = f"Step {self.current} failed: {exc}"
            self.log(str(exc))
            self.pipelines.close_steps(self.run_id, "Failed", str(exc))
            self.pipelines.finish_run(self.run_id, "Failed", reason)
            raise
        except KeyboardInterrupt:
            self.log("canceled")
            self._cancel_child()
            self.pipelines.close_steps(self.run_id, "Canceled", "Canceled by the user")
            self.pipelines.finish_run(self.run_id, "Canceled", "Canceled by the user")
            raise
        self.current = None
        self.pipelines.finish_run(self.run_id, "Completed")
        return self.outputs

    def _run_step(self, name: str, body: Callable[[], dict[str, Any]]) -> None:
        self.current = name
        self.pipelines.update_step(self.run_id, name, state="Running", started=now_iso())
        self.log("started")
        try:
            outputs = body()
        except StepSkipped as exc:
            self.outputs.update(exc.outputs)
            self.pipelines.update_step(
                self.run_id,
                name,
                outputs={**exc.outputs, "skipped": str(exc)},
                state="Skipped",
                ended=now_iso(),
            )
            self.log(f"skipped: {exc}")
            return
        except WorkspaceError as exc:
            raise StepFailed(str(exc)) from exc
        self.outputs.update(outputs)
        self.pipelines.update_step(
            self.run_id, name, outputs=outputs, state="Completed", ended=now_iso()
        )
        self.log("completed")

    def _check_cancel(self) -> None:
        if self.cancel_requested():
            raise KeyboardInterrupt

    def _cancel_child(self) -> None:
        if self.child_job and self.ws.automl is not None:
            try:
                self.ws.automl.cancel(self.child_job)
            except WorkspaceError:
                pass

    # --- steps -----------------------------------------------------------------------------

    def step_dataset(self) -> dict[str, Any]:
        spec = self.spec
        if spec.dataset_version is None:
            version = self.ws.datasets.get(spec.dataset).version
            self.log(f"latest version of {spec.dataset} is v{version}")
        else:
            version = self.ws.datasets.get(spec.dataset, spec.dataset_version).version
            self.log(f"pinned version {spec.dataset} v{version}")
        dv = self.ws.datasets.get(spec.dataset, version)
        return {"dataset": spec.dataset, "dataset_version": version, "rows": dv.rows}

    def step_automl(self) -> dict[str, Any]:
        automl = self.ws.automl
        if automl is None:
            raise StepFailed("this workspace has no AutoML service")
        request = self.spec.automl_request(self.outputs["dataset_version"])
        problems = automl.validate(request)
        if problems:
            raise StepFailed(" ".join(problems))
        job = automl.submit(request)
        self.child_job = job.id
        self.pipelines.update_step(
            self.run_id, "automl", job_id=job.id, outputs={"automl_job": job.id}
        )
        self.log(f"submitted AutoML job {job.id} ({request.time_budget_s} s budget)")
        state = None
        while True:
            self._check_cancel()
            job = automl.get(job.id)
            if job.state != state:
                state = job.state
                self.log(f"AutoML job {job.id} is {state}")
                if state in ("Queued", "Running"):
                    self.pipelines.update_step(self.run_id, "automl", state=state)
            if job.is_terminal:
                break
            time.sleep(POLL_S)
        self.child_job = None
        if job.state == "Canceled":
            raise KeyboardInterrupt
        if job.state != "Completed":
            raise StepFailed(f"AutoML job {job.id} {job.state.lower()}: {job.error}")
        result = automl.result(job.id) if hasattr(automl, "result") else {}
        metric = request.primary_metric
        score = (result.get("best_metrics") or {}).get(metric)
        self.log(f"best model {result.get('best_estimator')}: {metric} = {score}")
        return {
            "automl_job": job.id,
            "best_estimator": result.get("best_estimator"),
            "metric": metric,
            "score": score,
        }

    def step_register(self) -> dict[str, Any]:
        if self.ws.models is None:
            raise StepFailed("this workspace has no model registry")
        spec = self.spec
        name = spec.model_name or model_name_for(spec.dataset, spec.target)
        run = self.pipelines.get_run(self.run_id)
        model = self.ws.models.register(
            self.outputs["automl_job"],
            name,
            f"Retrained by pipeline {run.pipeline} v{run.pipeline_version}, run {self.run_id}",
        )
        self.log(f"registered {model.name} v{model.version}")
        return {"model_name": model.name, "model_version": model.version}

    def _champion(self) -> tuple[str, int] | None:
        """The endpoint's live model, or None when the endpoint does not exist or failed."""
        assert self.ws.endpoints is not None
        try:
            endpoint = self.ws.endpoints.get(self.spec.deploy_endpoint)
        except WorkspaceError:
            return None
        if endpoint.state == "Failed":
            return None
        return endpoint.model_name, int(endpoint.model_version)

    def _champion_record(
        self, champion: tuple[str, int] | None, metric: str
    ) -> tuple[pd.DataFrame | None, float | None]:
        """The table the live model was trained on and its own run's validation score, as far
        as this workspace knows them (not for a model trained elsewhere)."""
        if champion is None or self.ws.models is None or self.ws.automl is None:
            return None, None
        try:
            model = self.ws.models.get(*champion)
            if not model.source_job:
                return None, None
            request = self.ws.automl.get(model.source_job).spec["request"]
            trained = self.ws.datasets.load(request["dataset"], int(request["dataset_version"]))
        except (WorkspaceError, KeyError, TypeError, ValueError) as exc:
            self.log(f"the live model's training data is unknown: {exc}")
            return None, None
        return trained, model.metrics.get(metric)

    def step_gate(self) -> dict[str, Any]:
        spec = self.spec
        if not spec.deploy_endpoint:
            raise StepSkipped("no deploy target: the model is registered only")
        if self.ws.endpoints is None:
            raise StepFailed("this workspace has no endpoints")
        if not spec.gated:
            self.log("gate off: the new model is deployed")
            return {"gate": {"decision": "deploy", "reason": "the gate is off"}}
        from lib.local.pipelines.gate import evaluate

        champion = self._champion()
        self.log(f"champion: {'none' if champion is None else f'{champion[0]} v{champion[1]}'}")
        automl = self.ws.automl
        assert automl is not None
        job = automl.get(self.outputs["automl_job"])
        frame = self.ws.datasets.load(spec.dataset, self.outputs["dataset_version"])
        request = job.spec["request"]
        trained, recorded = self._champion_record(champion, request["primary_metric"])
        decision = evaluate(
            home=self.ws.settings.home,
            frame=frame,
            request=request,
            result=automl.result(job.id),
            champion=champion,
            margin=spec.gate_margin,
            champion_rows=trained,
            champion_score=recorded,
        )
        self.log(f"decision: {decision.decision} - {decision.reason}")
        return {"gate": decision.to_dict()}

    def step_deploy(self) -> dict[str, Any]:
        spec = self.spec
        if not spec.deploy_endpoint:
            raise StepSkipped("no deploy target: the model is registered only")
        gate = self.outputs.get("gate") or {}
        if gate.get("decision") != "deploy":
            raise StepSkipped(f"the gate kept the live model ({gate.get('reason', '')})")
        name, version = self.outputs["model_name"], self.outputs["model_version"]
        try:
            outputs = self._deploy(name, version)
        except (StepFailed, WorkspaceError) as exc:
            self._audit_deploy(name, version, f"failed: {exc}"[:500])
            raise
        except KeyboardInterrupt:
            self._audit_deploy(name, version, "canceled while the endpoint was deploying")
            raise
        self._audit_deploy(name, version, "ok")
        return outputs

    def _deploy(self, name: str, version: int) -> dict[str, Any]:
        spec = self.spec
        self.ws.deploy_model(name, version, spec.deploy_endpoint)
        self.log(f"deploying {name} v{version} to {spec.deploy_endpoint}")
        assert self.ws.endpoints is not None
        deadline = time.monotonic() + DEPLOY_TIMEOUT_S
        while True:
            self._check_cancel()
            endpoint = self.ws.endpoints.get(spec.deploy_endpoint)
            if endpoint.state != "Creating" or time.monotonic() > deadline:
                break
            time.sleep(POLL_S / 4)
        if endpoint.state != "Succeeded":
            tail = self.ws.endpoints.logs(spec.deploy_endpoint, lines=15)
            raise StepFailed(
                f"endpoint {spec.deploy_endpoint} is {endpoint.state}: {endpoint.error or ''}\n{tail}"
            )
        self.log(f"{spec.deploy_endpoint} serves {name} v{version} at {endpoint.scoring_uri}")
        return {
            "endpoint": spec.deploy_endpoint,
            "scoring_uri": endpoint.scoring_uri,
            "deployed_version": version,
        }

    def _audit_deploy(self, name: str, version: int, outcome: str) -> None:
        """The deploy in the workspace's audit log, as the pipeline run that made it."""
        run = self.pipelines.get_run(self.run_id)
        try:
            AuditLog(self.ws.settings.home).record(
                "endpoint.deploy",
                self.spec.deploy_endpoint,
                f"{name} v{version} (pipeline {run.pipeline} v{run.pipeline_version}, "
                f"trigger {run.trigger})",
                outcome=outcome,
                actor=f"pipeline {run.pipeline} run {self.run_id}",
            )
        except OSError as exc:
            # The deploy has happened either way: say so where the run's reader looks.
            self.log(f"the deploy could not be written to the audit log: {exc}")


@handler("pipeline")
def run_pipeline_job(ctx: JobContext, spec: dict[str, Any], settings: Any) -> dict[str, Any]:
    from lib.local.workspace import open_local_workspace

    ws = open_local_workspace(settings)
    execution = RunExecution(
        ws, PipelineStore(ctx.store), spec["run_id"], cancel_requested=ctx.cancel_requested
    )
    try:
        return execution.execute()
    except StepFailed as exc:
        raise RuntimeError(f"step {execution.current} failed: {exc}") from None
