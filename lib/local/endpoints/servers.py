"""Endpoint server processes seen from the dashboard: their command line and control socket."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lib.local import tracking
from lib.local.scoring.control import ControlError, call
from lib.local.scoring.routing import RoutingTable
from lib.local.supervisor import ProcessRef

# Loading a model through MLflow alone can take 20+ s on a busy machine.
APPLY_TIMEOUT_S = 300.0
STATUS_TIMEOUT_S = 2.0
ROUTING_FILE = "routing.json"


def server_command(
    home: Path,
    folder: Path,
    name: str,
    port: int,
    telemetry_db: Path,
    stem: str,
    takeover: int | None = None,
) -> list[str]:
    """`python -m lib.local.scoring.serve ...` for the endpoint in `folder`."""
    cmd = [
        sys.executable,
        "-m",
        "lib.local.scoring.serve",
        "--routing",
        str(folder / ROUTING_FILE),
        "--tracking-uri",
        tracking.tracking_uri(home),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--keys-file",
        str(folder / "keys.json"),
        "--telemetry-db",
        str(telemetry_db),
        "--endpoint",
        name,
        "--control",
        stem,
    ]
    if takeover is not None:
        cmd += ["--takeover", str(takeover)]
    return cmd


def recorded(row: Any, prefix: str = "") -> ProcessRef | None:
    """The server identity an endpoint row records (`prefix`: "next_", "draining_")."""
    return ProcessRef.of(row[f"{prefix}pid"], row[f"{prefix}pid_started"])


def status(stem: str, ref: ProcessRef | None) -> dict[str, Any] | None:
    """The server's own report (routing table, serving or not), or None if it does not answer."""
    if ref is None:
        return None
    try:
        answer = call(stem, ref.pid, {"op": "status"}, timeout=STATUS_TIMEOUT_S)
    except (ControlError, ValueError):
        return None
    return answer if answer.get("ok") else None


def apply(stem: str, ref: ProcessRef, table: RoutingTable) -> dict[str, Any]:
    """Ask the server to load, verify and swap in `table`; {"ok": False, "error": ...} if not."""
    try:
        return call(stem, ref.pid, {"op": "apply", "table": table.to_dict()}, APPLY_TIMEOUT_S)
    except (ControlError, ValueError) as exc:
        return {"ok": False, "error": f"the endpoint's server did not answer ({exc})"}


def notes(answer: dict[str, Any]) -> dict[str, str]:
    """How each deployment is served, from a status or apply answer."""
    return {
        name: f"{d.get('path', '?')}: {d.get('check', '')}".rstrip(": ")
        for name, d in (answer.get("deployments") or {}).items()
    }
