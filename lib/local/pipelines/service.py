"""`LocalPipelines`: the PipelineService of the local workspace.

Runs are `pipeline` jobs in the local job runner. Published pipelines and schedules are served
by one agent process (`lib.local.pipelines.agent`), started when something needs it and
restarted by the next look if it died.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import requests

from lib.errors import WorkspaceError
from lib.files import tail_file
from lib.local import supervisor
from lib.local.datasets import LocalDatasets
from lib.local.jobs import JobManager
from lib.local.pipelines.store import PipelineStore, now_iso
from lib.local.store import Store
from lib.names import validate_pipeline_name
from lib.pipeline_rules import ParameterError, apply_parameters, check_schedule, check_spec
from lib.pipeline_schedules import next_fire
from lib.workspace import (
    PIPELINE_STEPS,
    Pipeline,
    PipelineAgent,
    PipelineRun,
    PipelineSpec,
    Schedule,
)

# How often the agent looks for new dataset versions (data triggers).
TRIGGER_POLL_S = float(os.environ.get("OPSDECK_TRIGGER_POLL_S", "10"))
AGENT_START_GRACE_S = 30.0
# An agent that died sooner than this after starting is not restarted by the next look.
RESTART_BACKOFF_S = 10.0
# A run whose job was never created (the creator died in between) is failed after this long.
ORPHAN_RUN_S = 60.0
# Appended to the agent's log before each start: what follows the last one is the current
# agent's output, so an earlier lifetime's traceback is never shown as today's failure.
START_MARK = "---- pipeline agent starting "
# The only compute target of the local workspace (its worker slots).
LOCAL_COMPUTE = "local"


class AgentManager:
    """Starts, watches and stops the one agent process of a workspace home."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.log_path = store.artifacts("pipelines") / "agent.log"

    def _row(self) -> Any:
        return self.store.connect().execute("SELECT * FROM pipeline_agent WHERE id=1").fetchone()

    def ref(self) -> supervisor.ProcessRef | None:
        row = self._row()
        return supervisor.ProcessRef.of(row["pid"], row["pid_started"]) if row else None

    def url(self) -> str:
        row = self._row()
        return f"http://127.0.0.1:{row['port']}" if row else ""

    def lifetime_log(self, lines: int = 8) -> str:
        """The last lines the current (or last started) agent wrote to its log."""
        text = tail_file(self.log_path, lines=1_000_000)
        mark = text.rfind(START_MARK)
        if mark >= 0:
            text = text[mark:].partition("\n")[2]
        return "\n".join(text.splitlines()[-lines:])

    def _mark_start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as f:
            f.write(f"{START_MARK}{now_iso()} ----\n".encode())

    def healthy(self, timeout: float = 0.5) -> bool:
        url = self.url()
        if not url:
            return False
        try:
            return requests.get(f"{url}/", timeout=timeout).status_code == 200
        except requests.RequestException:
            return False

    def status(self, needed: bool) -> PipelineAgent:
        row = self._row()
        ref = self.ref()
        if supervisor.is_alive(ref):
            started = datetime.fromisoformat(row["started"]) if row["started"] else None
            if self.healthy():
                state = "Running"
            elif started and (datetime.now(UTC) - started).total_seconds() < AGENT_START_GRACE_S:
                state = "Starting"
            else:
                state = "Unhealthy"
            return PipelineAgent(state, self.url(), ref.pid if ref else None, started, row["error"])
        if not needed:
            return PipelineAgent("NotNeeded", self.url())
        error = (row["error"] if row else None) or self.lifetime_log() or None
        return PipelineAgent("Stopped", self.url(), error=error)

    def ensure(self) -> PipelineAgent:
        """Start the agent unless a live one is recorded (one agent even with racing callers)."""
        if supervisor.is_alive(self.ref()):
            return self.status(needed=True)
        row = self._row()
        if row is not None and row["started"]:
            age = (datetime.now(UTC) - datetime.fromisoformat(row["started"])).total_seconds()
            if age < RESTART_BACKOFF_S:
                # It died right after starting: show why instead of restarting it in a loop.
                log = self.lifetime_log() or (
                    f"It exited {age:.0f} s after it started and wrote nothing to {self.log_path}."
                )
                return PipelineAgent("Failed", self.url(), error=row["error"] or log)
        held: supervisor.ProcessRef | None = None
        with self.store.transaction() as tx:
            row = tx.execute("SELECT * FROM pipeline_agent WHERE id=1").fetchone()
            current = supervisor.ProcessRef.of(row["pid"], row["pid_started"]) if row else None
            if not supervisor.is_alive(current):
                # Keep the port, and with it every published URL, across restarts.
                port = row["port"] if row else supervisor.free_port()
                env = dict(os.environ, OPSDECK_HOME=str(self.store.home), PYTHONUNBUFFERED="1")
                self._mark_start()
                held = supervisor.spawn(
                    [sys.executable, "-m", "lib.local.pipelines.agent", "--port", str(port)],
                    self.log_path,
                    env=env,
                    hold=True,
                )
                tx.execute(
                    """INSERT INTO pipeline_agent(id, port, pid, pid_started, started, restarts)
                       VALUES (1, ?, ?, ?, ?, 0) ON CONFLICT(id) DO UPDATE SET
                       pid=excluded.pid, pid_started=excluded.pid_started,
                       started=excluded.started, error=NULL, restarts=restarts + 1""",
                    (port, held.pid, held.create_time, now_iso()),
                )
        if held is not None:
            supervisor.release(held)
        return self.status(needed=True)

    def stop(self) -> bool:
        return supervisor.stop(self.ref(), grace_s=10.0)


class LocalPipelines:
    """PipelineService over the local store, job runner and agent."""

    def __init__(self, store: Store, jobs: JobManager, datasets: LocalDatasets) -> None:
        self.store = PipelineStore(store)
        self.jobs = jobs
        self.datasets = datasets
        self.agent_manager = AgentManager(store)

    # --- definitions -----------------------------------------------------------------------

    def _with_url(self, pipeline: Pipeline) -> Pipeline:
        if pipeline.published_version is None:
            return pipeline
        return replace(pipeline, rest_endpoint=self.rest_url(pipeline.name))

    def rest_url(self, name: str) -> str:
        base = self.agent_manager.url()
        return f"{base}/pipelines/{name}" if base else ""

    def check_data(self, spec: PipelineSpec) -> None:
        """What can be checked against the workspace now: dataset, version, target, compute.

        Reads the version's stored metadata (column names), never its rows.
        """
        if spec.compute != LOCAL_COMPUTE:
            raise ParameterError(
                "compute",
                f"this local workspace has one compute target, {LOCAL_COMPUTE!r}; "
                f"{spec.compute!r} is not one of its targets.",
            )
        try:
            version = self.datasets.get(spec.dataset)
        except WorkspaceError as exc:
            raise ParameterError("dataset", str(exc)) from exc
        if spec.dataset_version is not None and spec.dataset_version != version.version:
            try:
                version = self.datasets.get(spec.dataset, spec.dataset_version)
            except WorkspaceError as exc:
                raise ParameterError(
                    "dataset_version", f"{exc} The latest is v{version.version}."
                ) from exc
        if spec.target not in version.column_names:
            raise ParameterError(
                "target", f"{spec.target!r} is not a column of {spec.dataset} v{version.version}."
            )

    def save(self, name: str, spec: PipelineSpec, description: str = "") -> Pipeline:
        name = validate_pipeline_name(name)
        check_spec(spec)
        self.check_data(spec)
        version = self.store.save(name, spec, description.strip())
        return self.get(name, version)

    def list(self) -> list[Pipeline]:
        return [self._with_url(p) for p in self.store.list()]

    def get(self, name: str, version: int | None = None) -> Pipeline:
        return self._with_url(self.store.get(name, version))

    def versions(self, name: str) -> list[Pipeline]:
        return [self._with_url(p) for p in self.store.versions(name)]

    def delete(self, name: str) -> None:
        self.store.get(name)
        active = [r for r in self.runs(name) if not r.is_terminal]
        if active:
            raise WorkspaceError(f"Pipeline {name} has a run in progress ({active[0].id}).")
        self.store.delete(name)

    # --- runs ------------------------------------------------------------------------------

    def run(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        trigger: str = "manual",
        experiment: str = "",
        version: int | None = None,
    ) -> PipelineRun:
        """Start a run (latest version unless `version`); returns as soon as the job is queued."""
        pipeline = self.store.get(name, version)
        parameters = dict(parameters or {})
        spec = apply_parameters(pipeline.spec, parameters)
        if experiment and "experiment_name" not in parameters:
            spec = replace(spec, experiment_name=experiment)
        check_spec(spec)
        self.check_data(spec)
        run_id = self.store.create_run(
            pipeline, spec, parameters, trigger, experiment or spec.experiment_name
        )
        # Held until its id is recorded on the run, so the run always knows its job.
        job = self.jobs.submit(
            "pipeline", f"pipeline {name} ({trigger})", {"run_id": run_id}, start=False
        )
        self.store.update_run(run_id, job_id=job.id, state="Queued")
        self.jobs.release(job.id)
        return self.store.get_run(run_id)

    def reconcile_runs(self) -> None:
        """End runs whose job ended without ending them (killed, crashed, canceled while queued)."""
        active = self.store.active_runs()
        if not active:
            return
        self.jobs.tick()
        for run_id, job_id in active:
            if job_id is None:
                run = self.store.get_run(run_id)
                age = (datetime.now(UTC) - run.created).total_seconds()
                if age > ORPHAN_RUN_S:
                    self._end(run_id, "Failed", "The run was created but its job never started.")
                continue
            try:
                job = self.jobs.get(job_id)
            except WorkspaceError:
                self._end(run_id, "Failed", f"Its job {job_id} no longer exists.")
                continue
            if job.is_terminal:
                reason = job.error or f"The pipeline job ended {job.state}."
                self._end(run_id, "Failed" if job.state == "Completed" else job.state, reason)

    def _end(self, run_id: str, state: str, reason: str) -> None:
        step_state = "Canceled" if state == "Canceled" else "Failed"
        self.store.close_steps(run_id, step_state, reason)
        self.store.finish_run(run_id, state, reason)
        # An AutoML job left running by a dead run would only hold a worker slot.
        for step in self.store.get_run(run_id).steps:
            if step.job_id:
                job = self.jobs.get(step.job_id)
                if not job.is_terminal:
                    self.jobs.cancel(step.job_id, f"Canceled: its pipeline run ended ({reason})")

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[PipelineRun]:
        self.reconcile_runs()
        return self.store.runs(pipeline, limit)

    def get_run(self, run_id: str) -> PipelineRun:
        run = self.store.get_run(run_id)
        if not run.is_terminal:
            self.reconcile_runs()
            run = self.store.get_run(run_id)
        return run

    def cancel_run(self, run_id: str) -> PipelineRun:
        """Cancel a run: its running step's job and the run's own job."""
        run = self.store.get_run(run_id)
        if run.is_terminal:
            return run
        job_id = self.store.run_job(run_id)
        for step in run.steps:
            if step.job_id and step.state in ("Queued", "Running"):
                self.jobs.cancel(step.job_id)
        if job_id:
            self.jobs.cancel(job_id)
        self._end(run_id, "Canceled", "Canceled by the user")
        return self.store.get_run(run_id)

    def step_log(self, run_id: str, step: str, lines: int = 80) -> str:
        if step not in PIPELINE_STEPS:
            raise WorkspaceError(f"A pipeline run has no step {step!r}.")
        return tail_file(self.store.step_log_path(run_id, step), lines)

    # --- publishing ------------------------------------------------------------------------

    def publish(self, name: str) -> Pipeline:
        pipeline = self.store.get(name)
        self.store.publish(name, pipeline.version)
        self.agent_manager.ensure()
        return self.get(name)

    def unpublish(self, name: str) -> None:
        self.store.unpublish(name)

    def keys(self, name: str) -> tuple[str, str]:
        if self.store.publication(name) is None:
            raise WorkspaceError(f"Pipeline {name} is not published.")
        return self.store.keys(name)

    def regenerate_key(self, name: str, which: str = "primary") -> tuple[str, str]:
        """A new value for one key; the other keeps working (the agent reads keys per call)."""
        if which not in ("primary", "secondary"):
            raise WorkspaceError("Key must be 'primary' or 'secondary'.")
        primary, secondary = self.keys(name)
        if which == "primary":
            return self.store.write_keys(name, secondary=secondary)
        return self.store.write_keys(name, primary=primary)

    # --- schedules -------------------------------------------------------------------------

    def set_schedule(self, schedule: Schedule) -> Schedule:
        schedule = check_schedule(schedule)
        pipeline = self.store.get(schedule.pipeline)
        check_spec(apply_parameters(pipeline.spec, schedule.parameters))
        last_version = None
        if schedule.kind == "data":
            if schedule.dataset != pipeline.spec.dataset:
                raise ParameterError(
                    "dataset",
                    f"pipeline {pipeline.name} trains on {pipeline.spec.dataset}, "
                    f"not {schedule.dataset}.",
                )
            if "dataset_version" in schedule.parameters:
                raise ParameterError(
                    "dataset_version", "a data trigger runs on the new version; do not pin one."
                )
            # Versions that exist when the trigger is created are not new.
            last_version = self.datasets.get(schedule.dataset).version
        self.store.put_schedule(schedule, last_version=last_version)
        self.agent_manager.ensure()
        return self.get_schedule(schedule.name)

    def _with_next(self, schedule: Schedule) -> Schedule:
        if schedule.next_run is None and schedule.enabled and schedule.kind != "data":
            # The agent records the real next fire time; until it has, show the trigger's.
            return replace(schedule, next_run=next_fire(schedule))
        return schedule

    def get_schedule(self, name: str) -> Schedule:
        return self._with_next(self.store.get_schedule(name))

    def schedules(self, pipeline: str | None = None) -> list[Schedule]:
        return [self._with_next(s) for s in self.store.schedules(pipeline)]

    def enable_schedule(self, name: str, enabled: bool) -> Schedule:
        self.store.set_enabled(name, enabled)
        if enabled:
            self.agent_manager.ensure()
        return self.get_schedule(name)

    def delete_schedule(self, name: str) -> None:
        self.store.get_schedule(name)
        self.store.delete_schedule(name)

    # --- agent -----------------------------------------------------------------------------

    def agent_needed(self) -> bool:
        return self.store.published_count() > 0 or any(s.enabled for s in self.store.schedules())

    def agent(self) -> PipelineAgent:
        """The agent's state; a needed agent that is not running is (re)started."""
        if self.agent_needed():
            return self.agent_manager.ensure()
        return self.agent_manager.status(needed=False)
