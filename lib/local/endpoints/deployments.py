"""An endpoint's deployments and their history, as the workspace database records them.

`endpoint_deployments` holds each deployment's model version and its live and mirrored traffic
(what the endpoint's server was last told to serve); `endpoint_history` one row per change,
with the split it left (or, when the server refused it, the split it asked for). The routing
table a server loads (`lib.local.scoring.routing`) is built from these rows.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lib.local.jobs import now_iso
from lib.local.scoring.routing import DeploymentSpec, RoutingTable
from lib.local.store import Store
from lib.traffic import live_deployment
from lib.workspace import Deployment, DeploymentEvent

log = logging.getLogger("opsdeck.endpoints")


@dataclass(frozen=True)
class Split:
    """Deployments (name -> model name, version) and their traffic, in creation order."""

    models: dict[str, tuple[str, int]]
    traffic: dict[str, int]
    mirror: dict[str, int]

    @property
    def live(self) -> str | None:
        return live_deployment(self.traffic, list(self.models))

    def to_json(self) -> str:
        return json.dumps(
            {
                "models": {k: list(v) for k, v in self.models.items()},
                "traffic": {k: v for k, v in self.traffic.items() if v},
                "mirror": {k: v for k, v in self.mirror.items() if v},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Split:
        data = json.loads(text or "{}")
        return cls(
            models={k: (str(v[0]), int(v[1])) for k, v in (data.get("models") or {}).items()},
            traffic={k: int(v) for k, v in (data.get("traffic") or {}).items()},
            mirror={k: int(v) for k, v in (data.get("mirror") or {}).items()},
        )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class DeploymentRecords:
    """Reads and writes the deployments and history of the workspace's endpoints."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def list(self, endpoint: str) -> list[Deployment]:
        rows = (
            self.store.connect()
            .execute(
                "SELECT * FROM endpoint_deployments WHERE endpoint=? ORDER BY position, created",
                (endpoint,),
            )
            .fetchall()
        )
        return [
            Deployment(
                endpoint=r["endpoint"],
                name=r["name"],
                model_name=r["model_name"],
                model_version=int(r["model_version"]),
                traffic=int(r["traffic"]),
                mirror=int(r["mirror"]),
                state=r["state"],
                created=_time(r["created"]),
                updated=_time(r["updated"]),
                note=r["note"],
            )
            for r in rows
        ]

    def split(self, endpoint: str) -> Split:
        deployments = self.list(endpoint)
        return Split(
            models={d.name: (d.model_name, d.model_version) for d in deployments},
            traffic={d.name: d.traffic for d in deployments},
            mirror={d.name: d.mirror for d in deployments},
        )

    def save(
        self, tx: sqlite3.Connection, endpoint: str, split: Split, notes: dict[str, str]
    ) -> None:
        """Make the endpoint's deployments `split` (inside the caller's transaction)."""
        now = now_iso()
        existing = {
            r["name"]: r
            for r in tx.execute(
                "SELECT name, model_name, model_version, position FROM endpoint_deployments "
                "WHERE endpoint=?",
                (endpoint,),
            )
        }
        for name in set(existing) - set(split.models):
            tx.execute(
                "DELETE FROM endpoint_deployments WHERE endpoint=? AND name=?", (endpoint, name)
            )
        position = max((r["position"] for r in existing.values()), default=0)
        for name, (model_name, model_version) in split.models.items():
            row = existing.get(name)
            same_model = row is not None and (row["model_name"], row["model_version"]) == (
                model_name,
                model_version,
            )
            if row is None or not same_model:
                position += 1
                tx.execute(
                    "DELETE FROM endpoint_deployments WHERE endpoint=? AND name=?",
                    (endpoint, name),
                )
                tx.execute(
                    """INSERT INTO endpoint_deployments(endpoint, name, model_name,
                       model_version, traffic, mirror, state, note, position, created, updated)
                       VALUES (?, ?, ?, ?, ?, ?, 'Succeeded', ?, ?, ?, ?)""",
                    (
                        endpoint,
                        name,
                        model_name,
                        int(model_version),
                        split.traffic.get(name, 0),
                        split.mirror.get(name, 0),
                        notes.get(name, ""),
                        position,
                        now,
                        now,
                    ),
                )
            else:
                tx.execute(
                    """UPDATE endpoint_deployments SET traffic=?, mirror=?, state='Succeeded',
                       note=CASE WHEN ? != '' THEN ? ELSE note END, updated=?
                       WHERE endpoint=? AND name=?""",
                    (
                        split.traffic.get(name, 0),
                        split.mirror.get(name, 0),
                        notes.get(name, ""),
                        notes.get(name, ""),
                        now,
                        endpoint,
                        name,
                    ),
                )

    def set_notes(self, endpoint: str, notes: dict[str, str]) -> None:
        with self.store.transaction() as tx:
            for name, note in notes.items():
                tx.execute(
                    "UPDATE endpoint_deployments SET note=? WHERE endpoint=? AND name=?",
                    (note, endpoint, name),
                )

    def record(
        self,
        tx: sqlite3.Connection,
        endpoint: str,
        who: str,
        action: str,
        detail: str,
        split: Split,
        outcome: str = "Succeeded",
    ) -> None:
        tx.execute(
            """INSERT INTO endpoint_history(endpoint, time, who, action, detail, split, outcome)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (endpoint, now_iso(), who, action, detail, split.to_json(), outcome),
        )

    def history(self, endpoint: str, limit: int = 50) -> list[DeploymentEvent]:
        rows = (
            self.store.connect()
            .execute(
                "SELECT * FROM endpoint_history WHERE endpoint=? ORDER BY id DESC LIMIT ?",
                (endpoint, int(limit)),
            )
            .fetchall()
        )
        events = []
        for r in rows:
            split = Split.from_json(r["split"])
            events.append(
                DeploymentEvent(
                    endpoint=r["endpoint"],
                    time=datetime.fromisoformat(r["time"]),
                    who=r["who"],
                    action=r["action"],
                    detail=r["detail"],
                    traffic=split.traffic,
                    mirror=split.mirror,
                    models=split.models,
                    outcome=r["outcome"],
                )
            )
        return events

    def forget(self, tx: sqlite3.Connection, endpoint: str) -> None:
        tx.execute("DELETE FROM endpoint_deployments WHERE endpoint=?", (endpoint,))
        tx.execute("DELETE FROM endpoint_history WHERE endpoint=?", (endpoint,))


def deployment_spec(
    home: Path, model_name: str, model_version: int, baseline: Any
) -> DeploymentSpec:
    """Where a server finds a model version: its compiled fast path when verified, else MLflow."""
    compiled = home / "models" / model_name / f"v{int(model_version)}" / "fastpath"
    return DeploymentSpec(
        model_name=model_name,
        model_version=int(model_version),
        model_uri=f"models:/{model_name}/{int(model_version)}",
        fastpath_dir=str(compiled) if (compiled / "verification.json").exists() else None,
        baseline=str(baseline) if baseline else None,
    )


def routing_table(store: Store, split: Split, generation: int) -> RoutingTable:
    """The table a server loads for `split` (deployments without traffic are listed, not loaded)."""
    specs = {}
    for name, (model_name, version) in split.models.items():
        serving = split.traffic.get(name, 0) > 0 or split.mirror.get(name, 0) > 0
        specs[name] = deployment_spec(
            store.home,
            model_name,
            version,
            _baseline(store, model_name, version) if serving else None,
        )
    return RoutingTable(
        deployments=specs,
        traffic={k: v for k, v in split.traffic.items() if v},
        mirror={k: v for k, v in split.mirror.items() if v},
        generation=generation,
    )


def _baseline(store: Store, model_name: str, version: int) -> Path | None:
    """The model's training profile for drift sampling, built once (None when unavailable)."""
    try:
        from lib.local.drift import ensure_baseline

        return ensure_baseline(store, model_name, version)
    except Exception as exc:  # drift sampling is optional; a deploy never fails for it
        log.warning("no drift baseline for %s v%s: %s", model_name, version, exc)
        return None
