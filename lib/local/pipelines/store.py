"""Pipeline metadata in the workspace SQLite: definitions, publications, runs, steps, schedules.

Definitions are versioned and immutable: saving a changed spec adds a version, and each run
keeps the version and the effective spec (after its parameter overrides) it ran with. REST keys
live beside the metadata in mode-600 files, never in the database or a log.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lib.errors import WorkspaceError
from lib.files import atomic_write
from lib.local.store import Store
from lib.workspace import (
    PIPELINE_STEPS,
    Pipeline,
    PipelineRun,
    PipelineSpec,
    PipelineStep,
    Schedule,
)

_SPEC_FIELDS = {f.name for f in fields(PipelineSpec)}
_SCHEDULE_CONFIG = (
    "trigger",
    "cron",
    "frequency",
    "interval",
    "at_time",
    "time_zone",
    "start",
    "end",
    "dataset",
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def spec_to_json(spec: PipelineSpec) -> str:
    return json.dumps(asdict(spec), sort_keys=True)


def spec_from_json(text: str) -> PipelineSpec:
    data = json.loads(text)
    return PipelineSpec(**{k: v for k, v in data.items() if k in _SPEC_FIELDS})


class PipelineStore:
    """Reads and writes the pipeline tables; every write is one `BEGIN IMMEDIATE` transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.artifacts("pipelines")

    # --- definitions -----------------------------------------------------------------------

    def save(self, name: str, spec: PipelineSpec, description: str = "") -> int:
        """Add a version when the spec or description changed; returns the (new) latest version."""
        text = spec_to_json(spec)
        with self.store.transaction() as tx:
            row = tx.execute(
                "SELECT version, spec, description FROM pipelines WHERE name=? "
                "ORDER BY version DESC LIMIT 1",
                (name,),
            ).fetchone()
            if row is not None and row["spec"] == text and row["description"] == description:
                return int(row["version"])
            version = 1 if row is None else int(row["version"]) + 1
            tx.execute(
                "INSERT INTO pipelines(name, version, spec, description, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, version, text, description, now_iso()),
            )
        return version

    def _to_pipeline(self, row: Any, latest: int) -> Pipeline:
        publication = self.publication(row["name"])
        return Pipeline(
            name=row["name"],
            version=int(row["version"]),
            spec=spec_from_json(row["spec"]),
            created=datetime.fromisoformat(row["created"]),
            description=row["description"],
            latest_version=latest,
            published_version=publication[0] if publication else None,
        )

    def get(self, name: str, version: int | None = None) -> Pipeline:
        conn = self.store.connect()
        latest = conn.execute("SELECT MAX(version) FROM pipelines WHERE name=?", (name,)).fetchone()
        if latest[0] is None:
            raise WorkspaceError(f"Pipeline {name} does not exist.")
        row = conn.execute(
            "SELECT * FROM pipelines WHERE name=? AND version=?",
            (name, int(version) if version is not None else latest[0]),
        ).fetchone()
        if row is None:
            raise WorkspaceError(f"Pipeline {name} has no version {version}.")
        return self._to_pipeline(row, int(latest[0]))

    def versions(self, name: str) -> list[Pipeline]:
        rows = (
            self.store.connect()
            .execute("SELECT * FROM pipelines WHERE name=? ORDER BY version DESC", (name,))
            .fetchall()
        )
        return [self._to_pipeline(r, int(rows[0]["version"])) for r in rows]

    def list(self) -> list[Pipeline]:
        rows = (
            self.store.connect()
            .execute(
                """SELECT p.* FROM pipelines p JOIN (SELECT name, MAX(version) AS v
                   FROM pipelines GROUP BY name) m ON p.name = m.name AND p.version = m.v
                   ORDER BY p.name"""
            )
            .fetchall()
        )
        return [self._to_pipeline(r, int(r["version"])) for r in rows]

    def delete(self, name: str) -> None:
        """Remove the definition, its publication and schedules; past runs stay as history."""
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM pipelines WHERE name=?", (name,))
            tx.execute("DELETE FROM pipeline_publications WHERE pipeline=?", (name,))
            tx.execute("DELETE FROM pipeline_schedules WHERE pipeline=?", (name,))
        self.keys_file(name).unlink(missing_ok=True)

    # --- publication and keys --------------------------------------------------------------

    def keys_file(self, name: str) -> Path:
        return self.root / name / "keys.json"

    def publication(self, name: str) -> tuple[int, datetime] | None:
        """(published version, when) or None."""
        row = (
            self.store.connect()
            .execute(
                "SELECT version, published FROM pipeline_publications WHERE pipeline=?", (name,)
            )
            .fetchone()
        )
        return (int(row["version"]), datetime.fromisoformat(row["published"])) if row else None

    def publish(self, name: str, version: int) -> None:
        with self.store.transaction() as tx:
            tx.execute(
                """INSERT INTO pipeline_publications(pipeline, version, published) VALUES (?, ?, ?)
                   ON CONFLICT(pipeline) DO UPDATE SET version=excluded.version,
                   published=excluded.published""",
                (name, int(version), now_iso()),
            )
        if not self.keys_file(name).exists():
            self.write_keys(name)

    def unpublish(self, name: str) -> None:
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM pipeline_publications WHERE pipeline=?", (name,))

    def published_count(self) -> int:
        row = self.store.connect().execute("SELECT COUNT(*) FROM pipeline_publications").fetchone()
        return int(row[0])

    def write_keys(
        self, name: str, primary: str | None = None, secondary: str | None = None
    ) -> tuple[str, str]:
        """Write both keys (new random ones where not given); the file is mode 600."""
        primary = primary or secrets.token_urlsafe(32)
        secondary = secondary or secrets.token_urlsafe(32)
        payload = {"primary_key": primary, "secondary_key": secondary}
        # mkstemp creates the temp file with mode 600; the rename keeps it.
        atomic_write(self.keys_file(name), json.dumps(payload).encode())
        return primary, secondary

    def keys(self, name: str) -> tuple[str, str]:
        path = self.keys_file(name)
        if not path.exists():
            raise WorkspaceError(f"Pipeline {name} is not published.")
        data = json.loads(path.read_text())
        return data["primary_key"], data["secondary_key"]

    # --- runs ------------------------------------------------------------------------------

    def create_run(
        self,
        pipeline: Pipeline,
        spec: PipelineSpec,
        parameters: dict[str, Any],
        trigger: str,
        experiment: str,
    ) -> str:
        """Insert a run and its steps (all NotStarted); returns the run id."""
        run_id = f"{pipeline.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        created = now_iso()
        with self.store.transaction() as tx:
            tx.execute(
                """INSERT INTO pipeline_runs(id, pipeline, pipeline_version, state, trigger,
                   experiment, parameters, spec, created) VALUES (?, ?, ?, 'NotStarted', ?, ?, ?,
                   ?, ?)""",
                (
                    run_id,
                    pipeline.name,
                    pipeline.version,
                    trigger,
                    experiment,
                    json.dumps(parameters, default=str),
                    spec_to_json(spec),
                    created,
                ),
            )
            for position, step in enumerate(PIPELINE_STEPS):
                tx.execute(
                    "INSERT INTO pipeline_steps(run_id, position, name) VALUES (?, ?, ?)",
                    (run_id, position, step),
                )
        return run_id

    def run_spec(self, run_id: str) -> PipelineSpec:
        row = self._run_row(run_id)
        return spec_from_json(row["spec"])

    def _run_row(self, run_id: str) -> Any:
        row = (
            self.store.connect()
            .execute("SELECT * FROM pipeline_runs WHERE id=?", (run_id,))
            .fetchone()
        )
        if row is None:
            raise WorkspaceError(f"Pipeline run {run_id} does not exist.")
        return row

    def update_run(self, run_id: str, **values: Any) -> None:
        """Set columns of a run (state, job_id, error, started, ended)."""
        if not values:
            return
        columns = ", ".join(f"{k}=?" for k in values)
        with self.store.transaction() as tx:
            tx.execute(f"UPDATE pipeline_runs SET {columns} WHERE id=?", (*values.values(), run_id))

    def finish_run(self, run_id: str, state: str, error: str | None = None) -> bool:
        """End a run unless it already ended; True if this call ended it."""
        with self.store.transaction() as tx:
            cur = tx.execute(
                """UPDATE pipeline_runs SET state=?, error=COALESCE(?, error), ended=?
                   WHERE id=? AND state NOT IN ('Completed', 'Failed', 'Canceled')""",
                (state, error, now_iso(), run_id),
            )
            return cur.rowcount > 0

    def update_step(
        self, run_id: str, step: str, outputs: dict[str, Any] | None = None, **values: Any
    ) -> None:
        """Set columns of a step; `outputs` are merged into what it already recorded."""
        with self.store.transaction() as tx:
            if outputs:
                row = tx.execute(
                    "SELECT outputs FROM pipeline_steps WHERE run_id=? AND name=?", (run_id, step)
                ).fetchone()
                merged = {**json.loads(row["outputs"] if row else "{}"), **outputs}
                values["outputs"] = json.dumps(merged, default=str)
            if values:
                columns = ", ".join(f"{k}=?" for k in values)
                tx.execute(
                    f"UPDATE pipeline_steps SET {columns} WHERE run_id=? AND name=?",
                    (*values.values(), run_id, step),
                )

    def close_steps(self, run_id: str, running_state: str, reason: str | None) -> None:
        """When a run ends early: its running step takes `running_state`, the rest are Skipped."""
        now = now_iso()
        with self.store.transaction() as tx:
            tx.execute(
                """UPDATE pipeline_steps SET state=?, ended=COALESCE(ended, ?),
                   error=COALESCE(error, ?) WHERE run_id=? AND state IN ('Running', 'Queued')""",
                (running_state, now, reason, run_id),
            )
            tx.execute(
                """UPDATE pipeline_steps SET state='Skipped' WHERE run_id=?
                   AND state='NotStarted'""",
                (run_id,),
            )

    def _steps(self, run_id: str) -> list[PipelineStep]:
        rows = (
            self.store.connect()
            .execute("SELECT * FROM pipeline_steps WHERE run_id=? ORDER BY position", (run_id,))
            .fetchall()
        )
        return [
            PipelineStep(
                name=r["name"],
                state=r["state"],
                started=_time(r["started"]),
                ended=_time(r["ended"]),
                outputs=json.loads(r["outputs"] or "{}"),
                error=r["error"],
                job_id=r["job_id"],
            )
            for r in rows
        ]

    def _to_run(self, row: Any) -> PipelineRun:
        steps = self._steps(row["id"])
        outputs: dict[str, Any] = {}
        for step in steps:
            outputs.update(step.outputs)
        return PipelineRun(
            id=row["id"],
            pipeline=row["pipeline"],
            state=row["state"],
            created=datetime.fromisoformat(row["created"]),
            steps=steps,
            pipeline_version=int(row["pipeline_version"]),
            trigger=row["trigger"],
            experiment=row["experiment"],
            parameters=json.loads(row["parameters"] or "{}"),
            started=_time(row["started"]),
            ended=_time(row["ended"]),
            error=row["error"],
            outputs=outputs,
        )

    def get_run(self, run_id: str) -> PipelineRun:
        return self._to_run(self._run_row(run_id))

    def run_job(self, run_id: str) -> str | None:
        return self._run_row(run_id)["job_id"]

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[PipelineRun]:
        sql = "SELECT * FROM pipeline_runs" + (" WHERE pipeline=?" if pipeline else "")
        sql += " ORDER BY created DESC LIMIT ?"
        args = (pipeline, limit) if pipeline else (limit,)
        return [self._to_run(r) for r in self.store.connect().execute(sql, args).fetchall()]

    def active_runs(self) -> list[tuple[str, str | None]]:
        """(run id, job id) of every run that has not ended."""
        rows = (
            self.store.connect()
            .execute(
                """SELECT id, job_id FROM pipeline_runs
                   WHERE state NOT IN ('Completed', 'Failed', 'Canceled')"""
            )
            .fetchall()
        )
        return [(r["id"], r["job_id"]) for r in rows]

    def last_dataset_version(self, pipeline: str, dataset: str) -> int | None:
        """The dataset version the newest run of `pipeline` that resolved one used."""
        rows = (
            self.store.connect()
            .execute(
                """SELECT s.outputs FROM pipeline_steps s JOIN pipeline_runs r ON r.id = s.run_id
                   WHERE r.pipeline=? AND s.name='dataset' AND s.state='Completed'
                   ORDER BY r.created DESC LIMIT 20""",
                (pipeline,),
            )
            .fetchall()
        )
        for row in rows:
            out = json.loads(row["outputs"] or "{}")
            if out.get("dataset") == dataset and out.get("dataset_version"):
                return int(out["dataset_version"])
        return None

    def step_log_path(self, run_id: str, step: str) -> Path:
        return self.root / "runs" / run_id / f"{step}.log"

    # --- schedules -------------------------------------------------------------------------

    def put_schedule(self, schedule: Schedule, last_version: int | None = None) -> None:
        """Create or replace a schedule; a replaced one keeps its fire history."""
        config = {k: getattr(schedule, k) for k in _SCHEDULE_CONFIG}
        for key in ("start", "end"):
            config[key] = config[key].isoformat() if config[key] else None
        now = now_iso()
        with self.store.transaction() as tx:
            tx.execute(
                """INSERT INTO pipeline_schedules(name, pipeline, kind, config, enabled,
                   parameters, next_run, last_version, created, updated)
                   VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET pipeline=excluded.pipeline,
                   kind=excluded.kind, config=excluded.config, enabled=excluded.enabled,
                   parameters=excluded.parameters, next_run=NULL,
                   last_version=COALESCE(pipeline_schedules.last_version, excluded.last_version),
                   updated=excluded.updated""",
                (
                    schedule.name,
                    schedule.pipeline,
                    schedule.kind,
                    json.dumps(config),
                    int(schedule.enabled),
                    json.dumps(schedule.parameters),
                    last_version,
                    now,
                    now,
                ),
            )

    def _to_schedule(self, row: Any) -> Schedule:
        config = json.loads(row["config"])
        for key in ("start", "end"):
            config[key] = _time(config.get(key))
        return Schedule(
            name=row["name"],
            pipeline=row["pipeline"],
            enabled=bool(row["enabled"]),
            next_run=_time(row["next_run"]),
            kind=row["kind"],
            parameters=json.loads(row["parameters"] or "{}"),
            last_fired=_time(row["last_fired"]),
            last_run_id=row["last_run_id"] or "",
            last_error=row["last_error"] or "",
            created=_time(row["created"]),
            **{k: v for k, v in config.items() if k in _SCHEDULE_CONFIG},
        )

    def schedules(self, pipeline: str | None = None) -> list[Schedule]:
        sql = "SELECT * FROM pipeline_schedules" + (" WHERE pipeline=?" if pipeline else "")
        rows = self.store.connect().execute(sql + " ORDER BY name", (pipeline,) if pipeline else ())
        return [self._to_schedule(r) for r in rows.fetchall()]

    def get_schedule(self, name: str) -> Schedule:
        row = (
            self.store.connect()
            .execute("SELECT * FROM pipeline_schedules WHERE name=?", (name,))
            .fetchone()
        )
        if row is None:
            raise WorkspaceError(f"Schedule {name} does not exist.")
        return self._to_schedule(row)

    def schedule_fingerprints(self) -> dict[str, tuple[str, datetime]]:
        """name -> (what defines its trigger, when that last changed), for the agent's sync."""
        rows = self.store.connect().execute(
            "SELECT name, kind, config, created, updated FROM pipeline_schedules"
        )
        return {
            r["name"]: (
                f"{r['kind']}|{r['config']}|{r['created']}",
                datetime.fromisoformat(r["updated"]),
            )
            for r in rows.fetchall()
        }

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self.store.transaction() as tx:
            cur = tx.execute(
                "UPDATE pipeline_schedules SET enabled=?, next_run=NULL, updated=? WHERE name=?",
                (int(enabled), now_iso(), name),
            )
            if cur.rowcount == 0:
                raise WorkspaceError(f"Schedule {name} does not exist.")

    def delete_schedule(self, name: str) -> None:
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM pipeline_schedules WHERE name=?", (name,))

    def set_next_run(self, name: str, when: datetime | None) -> None:
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE pipeline_schedules SET next_run=? WHERE name=?",
                (when.astimezone(UTC).isoformat() if when else None, name),
            )

    def mark_fired(self, name: str, run_id: str | None, error: str | None = None) -> None:
        """Record a fire: the run it started, or why it could not start one."""
        with self.store.transaction() as tx:
            tx.execute(
                """UPDATE pipeline_schedules SET last_fired=?, last_run_id=COALESCE(?, last_run_id),
                   last_error=? WHERE name=?""",
                (now_iso(), run_id, error, name),
            )

    def claim_version(self, name: str, seen: int | None, newest: int) -> bool:
        """Move a data trigger from `seen` to `newest`; False if another poller already did."""
        with self.store.transaction() as tx:
            cur = tx.execute(
                "UPDATE pipeline_schedules SET last_version=? WHERE name=? AND last_version IS ?",
                (newest, name, seen),
            )
            return cur.rowcount == 1

    def last_version(self, name: str) -> int | None:
        row = (
            self.store.connect()
            .execute("SELECT last_version FROM pipeline_schedules WHERE name=?", (name,))
            .fetchone()
        )
        return None if row is None or row[0] is None else int(row[0])
