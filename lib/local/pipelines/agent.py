"""The pipeline agent: `python -m lib.local.pipelines.agent --port N`, one per workspace home.

It serves published pipelines over REST on 127.0.0.1 (the classic Azure body
`{"ExperimentName": ..., "ParameterAssignments": {...}}`, Bearer key, 202 with the run `Id`),
fires time schedules with APScheduler (jobs persisted in `pipelines/schedules.db`: a restarted
agent keeps them, and a fire missed while it was down runs once), and polls dataset versions
for data triggers. Runs themselves are jobs of the job runner, so they outlive the agent.

It is served like an endpoint: the endpoint servers' connection guard (a deadline to receive
each request, a cap on open connections within the descriptor limit) and a bounded log.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from lib.errors import WorkspaceError
from lib.local import supervisor
from lib.local.pipelines.service import TRIGGER_POLL_S, LocalPipelines
from lib.local.pipelines.store import now_iso
from lib.local.scoring.connections import (
    add_guard_arguments,
    connection_cap,
    guarded_protocol,
    raise_fd_limit,
)
from lib.local.scoring.payloads import InputError, parse_json
from lib.local.scoring.server_log import DEFAULT_MAX_BYTES as LOG_MAX_BYTES
from lib.local.store import Store
from lib.names import validate_pipeline_name
from lib.pipeline_rules import ParameterError, check_rest_parameters, trigger_label
from lib.pipeline_schedules import build_trigger
from lib.workspace import PipelineRun

MAX_BODY_BYTES = 64 * 1024
BACKLOG = 2048
BODY_FIELDS = ("ExperimentName", "ParameterAssignments")
SYNC_S = 1.0
RECONCILE_S = 5.0
# How the persistent job store names the function a schedule calls.
FIRE_SCHEDULE = "lib.local.pipelines.agent:fire_schedule"
_log = logging.getLogger("opsdeck.agent")
_agent: Agent | None = None


UNAUTHORIZED = "A valid key is required: Authorization: Bearer <key>."


def error(status: int, message: str, field: str | None = None, close: bool = False) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if field:
        body["field"] = field
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if close:
        # The rest of the body is never read: the connection cannot carry another request.
        headers["Connection"] = "close"
    return JSONResponse(body, status_code=status, headers=headers)


class BodyRefused(Exception):
    """The request body was not read whole: too large, or the client went away."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused by its Content-Length first, and never read past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyRefused(error(400, "Content-Length is not a number.", close=True))
        if int(declared) > limit:
            raise BodyRefused(
                error(413, f"The body is {declared} bytes; the limit is {limit}.", close=True)
            )
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyRefused(error(413, f"The body is larger than {limit} bytes.", close=True))
            chunks.append(chunk)
    except ClientDisconnect:
        raise BodyRefused(error(400, "The client went away before sending its body.")) from None
    return b"".join(chunks)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def run_document(run: PipelineRun, base_url: str) -> dict[str, Any]:
    """A run as the REST API returns it."""
    return {
        "Id": run.id,
        "PipelineName": run.pipeline,
        "PipelineVersion": run.pipeline_version,
        "Status": run.state,
        "Trigger": run.trigger,
        "ExperimentName": run.experiment,
        "ParameterAssignments": run.parameters,
        "CreatedTime": _iso(run.created),
        "StartTime": _iso(run.started),
        "EndTime": _iso(run.ended),
        "Error": run.error,
        "StatusUrl": f"{base_url}/runs/{run.id}",
        "Outputs": run.outputs,
        "Steps": [
            {
                "Name": s.name,
                "Status": s.state,
                "StartTime": _iso(s.started),
                "EndTime": _iso(s.ended),
                "DurationSeconds": s.duration_s,
                "Outputs": s.outputs,
                "Error": s.error,
            }
            for s in run.steps
        ],
    }


def key_matches(given: str, keys: tuple[str, str]) -> bool:
    """Constant-time comparison against both keys (both are always compared)."""
    given_bytes = given.encode()
    results = [hmac.compare_digest(given_bytes, k.encode()) for k in keys if k]
    return any(results)


def create_app(pipelines: LocalPipelines, base_url: str) -> FastAPI:
    """The REST API over a pipeline service (testable in-process)."""
    app = FastAPI(title="opsdeck pipeline agent", docs_url=None, redoc_url=None, openapi_url=None)

    def authorized(request: Request, pipeline: str) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        try:
            keys = pipelines.store.keys(validate_pipeline_name(pipeline))
        except (WorkspaceError, OSError, ValueError, KeyError):
            return False
        return key_matches(token.strip(), keys)

    @app.get("/")
    def health() -> dict[str, str]:
        return {"status": "Healthy"}

    @app.post("/pipelines/{name}")
    async def submit(name: str, request: Request) -> JSONResponse:
        # The key first, whatever the name: without one, nobody learns which pipelines exist.
        if not authorized(request, name):
            return error(401, UNAUTHORIZED)
        publication = pipelines.store.publication(name)
        if publication is None:
            return error(404, f"No published pipeline is named {name}.")
        try:
            raw = await read_body(request)
        except BodyRefused as refused:
            return refused.response
        try:
            body = parse_json(raw) if raw.strip() else {}
        except InputError as exc:
            return error(400, f"{exc}.")
        if not isinstance(body, dict):
            return error(400, "The body must be a JSON object.")
        for key in body:
            if key not in BODY_FIELDS:
                return error(
                    400, f"Unknown field {key!r} (expected {', '.join(BODY_FIELDS)}).", key
                )
        experiment = body.get("ExperimentName") or ""
        if not isinstance(experiment, str):
            return error(400, "ExperimentName must be a string.", "ExperimentName")
        parameters = body.get("ParameterAssignments") or {}
        if not isinstance(parameters, dict):
            return error(
                400,
                "ParameterAssignments must be an object of name: value.",
                "ParameterAssignments",
            )
        try:
            check_rest_parameters(parameters)
            run = pipelines.run(
                name, parameters, trigger="rest", experiment=experiment, version=publication[0]
            )
        except ParameterError as exc:
            field = exc.field if exc.field in BODY_FIELDS else f"ParameterAssignments.{exc.field}"
            if exc.field == "experiment_name" and experiment:
                field = "ExperimentName"
            return error(400, str(exc), field)
        except WorkspaceError as exc:
            return error(409, str(exc))
        document = run_document(run, base_url)
        return JSONResponse(document, status_code=202, headers={"Location": document["StatusUrl"]})

    @app.get("/runs/{run_id}")
    def get_run(run_id: str, request: Request) -> JSONResponse:
        try:
            run = pipelines.store.get_run(run_id)
        except WorkspaceError:
            # Only a caller holding some pipeline's key learns that a run id does not exist.
            if not any(authorized(request, p.name) for p in pipelines.store.list()):
                return error(401, UNAUTHORIZED)
            return error(404, f"No pipeline run {run_id}.")
        if not authorized(request, run.pipeline):
            return error(401, UNAUTHORIZED)
        return JSONResponse(run_document(pipelines.get_run(run_id), base_url))

    return app


# --- schedules and triggers ------------------------------------------------------------------


def fire_schedule(name: str, fingerprint: str = "") -> None:
    """APScheduler's job function (referenced by name in the persistent job store)."""
    if _agent is not None:
        _agent.fire(name)


class Agent:
    """Schedules, data triggers and run reconciliation of one workspace home."""

    def __init__(self, store: Store, pipelines: LocalPipelines, poll_s: float) -> None:
        self.store = store
        self.pipelines = pipelines
        self.poll_s = poll_s
        self.stopped = threading.Event()
        db = store.artifacts("pipelines") / "schedules.db"
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{db}")},
            # A fire missed while the agent was down runs once, however late.
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone="UTC",
        )

    def fire(self, name: str) -> None:
        try:
            schedule = self.pipelines.store.get_schedule(name)
        except WorkspaceError:
            return
        if not schedule.enabled:
            return
        try:
            run = self.pipelines.run(
                schedule.pipeline, schedule.parameters, trigger=trigger_label(schedule)
            )
        except WorkspaceError as exc:
            _log.warning("schedule %s could not start a run: %s", name, exc)
            self.pipelines.store.mark_fired(name, None, str(exc))
            return
        _log.info("schedule %s started run %s", name, run.id)
        self.pipelines.store.mark_fired(name, run.id)

    def sync(self) -> None:
        """Make the scheduler's jobs match the schedules table; record next fire times."""
        store = self.pipelines.store
        wanted = {s.name: s for s in store.schedules() if s.kind != "data"}
        fingerprints = store.schedule_fingerprints()
        jobs = {job.id: job for job in self.scheduler.get_jobs(jobstore="default")}
        for name in jobs:
            if name not in wanted:
                self.scheduler.remove_job(name, jobstore="default")
        now = datetime.now(UTC)
        for name, schedule in wanted.items():
            fingerprint, changed = fingerprints[name]
            job = jobs.get(name)
            trigger = build_trigger(schedule)
            if trigger.get_next_fire_time(None, now) is None:
                # Past its end date: nothing left to fire.
                if job is not None:
                    self.scheduler.remove_job(name, jobstore="default")
                if schedule.next_run is not None:
                    store.set_next_run(name, None)
                continue
            # Slots are counted from when the schedule was saved, not from when this agent
            # saw it: a slot that passed before the agent picked it up is a missed fire.
            first = trigger.get_next_fire_time(None, changed)
            if job is None:
                job = self.scheduler.add_job(
                    FIRE_SCHEDULE,
                    trigger=trigger,
                    id=name,
                    args=[name],
                    kwargs={"fingerprint": fingerprint},
                    jobstore="default",
                    replace_existing=True,
                    next_run_time=first,
                )
            elif job.kwargs.get("fingerprint") != fingerprint:
                job = self.scheduler.modify_job(
                    name, trigger=trigger, kwargs={"fingerprint": fingerprint}, next_run_time=first
                )
            if schedule.enabled and job.next_run_time is None and job.trigger is not None:
                job = self.scheduler.resume_job(name) or job
            elif not schedule.enabled and job.next_run_time is not None:
                job = self.scheduler.pause_job(name)
            next_run = job.next_run_time if job is not None else None
            if next_run != schedule.next_run:
                store.set_next_run(name, next_run)

    def poll_data_triggers(self) -> None:
        """Fire each data trigger once for its newest unseen dataset version."""
        store = self.pipelines.store
        for schedule in store.schedules():
            if schedule.kind != "data" or not schedule.enabled:
                continue
            try:
                newest = self.pipelines.datasets.get(schedule.dataset).version
            except WorkspaceError:
                continue
            seen = store.last_version(schedule.name)
            if seen is not None and newest <= seen:
                continue
            # Claimed before the run starts: a version fires once even if two pollers race.
            if not store.claim_version(schedule.name, seen, newest):
                continue
            used = store.last_dataset_version(schedule.pipeline, schedule.dataset)
            if used == newest:
                _log.info("trigger %s: v%s was already used by the last run", schedule.name, newest)
                continue
            try:
                run = self.pipelines.run(
                    schedule.pipeline,
                    {**schedule.parameters, "dataset_version": newest},
                    trigger=trigger_label(schedule),
                )
            except WorkspaceError as exc:
                store.mark_fired(schedule.name, None, str(exc))
                continue
            _log.info("trigger %s started run %s on v%s", schedule.name, run.id, newest)
            store.mark_fired(schedule.name, run.id)

    def heartbeat(self) -> None:
        with self.store.transaction() as tx:
            tx.execute("UPDATE pipeline_agent SET heartbeat=? WHERE id=1", (now_iso(),))

    def loop(self) -> None:
        last_poll = last_reconcile = 0.0
        while not self.stopped.is_set():
            now = time.monotonic()
            for task, due in (
                (self.sync, True),
                (self.poll_data_triggers, now - last_poll >= self.poll_s),
                (self.pipelines.reconcile_runs, now - last_reconcile >= RECONCILE_S),
                (self.heartbeat, True),
            ):
                if not due:
                    continue
                try:
                    task()
                except Exception:  # noqa: BLE001 - one failed pass must not stop the agent
                    _log.exception("agent task %s failed", task.__name__)
            if now - last_poll >= self.poll_s:
                last_poll = now
            if now - last_reconcile >= RECONCILE_S:
                last_reconcile = now
            self.stopped.wait(SYNC_S)

    def start(self) -> None:
        self.scheduler.start(paused=True)
        self.sync()
        # Resumed after the first sync: due (missed) fires run now, once each.
        self.scheduler.resume()
        threading.Thread(target=self.loop, name="agent-loop", daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()
        self.scheduler.shutdown(wait=False)


def claim(store: Store, port: int) -> bool:
    """Record this process as the agent; False if another live agent is recorded."""
    me = supervisor.identify(os.getpid())
    assert me is not None
    with store.transaction() as tx:
        row = tx.execute("SELECT pid, pid_started FROM pipeline_agent WHERE id=1").fetchone()
        other = supervisor.ProcessRef.of(row["pid"], row["pid_started"]) if row else None
        if other is not None and other.pid != me.pid and supervisor.is_alive(other):
            return False
        tx.execute(
            """INSERT INTO pipeline_agent(id, port, pid, pid_started, started) VALUES (1, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET port=excluded.port, pid=excluded.pid,
               pid_started=excluded.pid_started, error=NULL,
               started=COALESCE(pipeline_agent.started, excluded.started)""",
            (port, me.pid, me.create_time, now_iso()),
        )
    return True


def main(argv: list[str] | None = None) -> int:
    global _agent
    import uvicorn

    from lib.local.pipelines.agent_log import setup_logging
    from lib.local.workspace import open_local_workspace
    from lib.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--poll-s", type=float, default=TRIGGER_POLL_S)
    add_guard_arguments(parser)
    parser.add_argument("--log-max-bytes", type=int, default=LOG_MAX_BYTES, help="0: no rotation")
    args = parser.parse_args(argv)
    setup_logging(args.log_max_bytes)
    fd_limit = raise_fd_limit()
    settings = load_settings()
    ws = open_local_workspace(settings)
    store: Store = ws.extras["store"]
    if not claim(store, args.port):
        _log.info("another agent is running for %s; exiting", settings.home)
        return 0
    pipelines = ws.pipelines
    assert isinstance(pipelines, LocalPipelines)
    _agent = Agent(store, pipelines, args.poll_s)
    _agent.start()
    _log.info("agent on 127.0.0.1:%s for %s", args.port, settings.home)
    app = create_app(pipelines, f"http://127.0.0.1:{args.port}")
    try:
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            log_config=None,
            access_log=False,
            backlog=BACKLOG,
            http=guarded_protocol(
                args.receipt_timeout, connection_cap(args.max_connections, fd_limit, BACKLOG)
            ),
        )
    finally:
        _agent.stop()
    return 0


if __name__ == "__main__":
    # NB: run `main` of the importable module, not of `__main__`: the job store refers to
    # `fire_schedule` by module path, and it must see the `_agent` that `main` sets.
    from lib.local.pipelines import agent as _module

    sys.exit(_module.main())
