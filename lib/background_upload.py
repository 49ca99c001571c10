"""Registering a big upload in a process of its own, so the Datasets page stays usable.

The page stages the bytes and what the form said in a folder under the home
(`uploads/<id>/`) and starts `python -m lib.background_upload <folder>`; the child opens the
workspace as the dashboard does, registers the file and writes `result.json`. Everything the page
shows is read from the folder, so a revisit, another session or a restarted dashboard sees the
same state. A child that ended without a result (killed, out of memory) is reported as stopped:
dataset services write a version all at once, so nothing half-registered is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from lib.files import atomic_write
from lib.settings import REPO_ROOT

STAGING = "uploads"
REQUEST, DATA, RESULT, LOG = "request.json", "data.bin", "result.json", "upload.log"
# Finished uploads are shown (and kept) this long unless dismissed.
KEEP_S = 24 * 3600
RUNNING, DONE, FAILED, STOPPED = "running", "done", "failed", "stopped"
IDENTITY_GRACE_S = 60.0


@dataclass(frozen=True)
class BackgroundUpload:
    """One upload registering (or registered) out of process, as its folder says."""

    id: str
    name: str
    file_name: str
    size_bytes: int
    started: float  # epoch seconds
    state: str  # running, done, failed or stopped
    finished: float | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def elapsed_s(self) -> float:
        """Seconds taken so far (running) or in all (finished)."""
        return max(0.0, (self.finished or time.time()) - self.started)


def _root(home: Path) -> Path:
    return Path(home) / STAGING


def start(
    home: Path,
    name: str,
    data: bytes,
    file_name: str,
    description: str = "",
    missing_tokens: Sequence[str] | None = None,
    sheet: str | None = None,
) -> BackgroundUpload:
    """Stage the file and start registering it; returns at once."""
    upload_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    folder = _root(home) / upload_id
    folder.mkdir(parents=True)
    try:
        return _stage_and_start(
            home, folder, name, data, file_name, description, missing_tokens, sheet
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-staged stays behind
        raise


def _stage_and_start(
    home: Path,
    folder: Path,
    name: str,
    data: bytes,
    file_name: str,
    description: str,
    missing_tokens: Sequence[str] | None,
    sheet: str | None,
) -> BackgroundUpload:
    atomic_write(folder / DATA, data)
    request = {
        "name": name,
        "file_name": file_name,
        "description": description,
        "missing_tokens": None if missing_tokens is None else list(missing_tokens),
        "sheet": sheet,
        "size_bytes": len(data),
        "started": time.time(),
    }
    atomic_write(folder / REQUEST, json.dumps(request).encode())
    env = dict(os.environ, OPSDECK_HOME=str(home), PYTHONUNBUFFERED="1")
    with (folder / LOG).open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "lib.background_upload", str(folder)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the dashboard, like every job
        )
    # Its identity, so a reused PID after a crash is never taken for it.
    created = psutil.Process(child.pid).create_time()
    request["process"] = {"pid": child.pid, "create_time": created}
    atomic_write(folder / REQUEST, json.dumps(request).encode())
    _children.append(child)
    upload = read(folder)
    assert upload is not None  # its request was just written
    return upload


# Popen objects of this process's children, polled so they are reaped, not left as zombies.
_children: list[subprocess.Popen] = []


def _reap() -> None:
    _children[:] = [c for c in _children if c.poll() is None]


def _alive(process: dict[str, Any] | None, started: float) -> bool:
    if not process:
        # Its identity is recorded right after the start; a dashboard that died in between
        # left a child nobody can name: after a minute it is taken as stopped.
        return time.time() - started < IDENTITY_GRACE_S
    try:
        proc = psutil.Process(int(process["pid"]))
        same = abs(proc.create_time() - float(process["create_time"])) < 1.0
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, KeyError, ValueError):
        return False


def read(folder: Path) -> BackgroundUpload | None:
    """The upload staged in `folder` as it stands now (None if the folder is not one)."""
    try:
        request = json.loads((folder / REQUEST).read_text())
    except (OSError, ValueError):
        return None
    result_path = folder / RESULT
    result: dict[str, Any] = {}
    finished = None
    if result_path.exists():
        try:
            result = json.loads(result_path.read_text())
            state = DONE if result.get("ok") else FAILED
            finished = float(result.get("finished", result_path.stat().st_mtime))
        except (OSError, ValueError):
            state = RUNNING  # being written
    elif _alive(request.get("process"), float(request.get("started", 0.0))):
        state = RUNNING
    else:
        # Read again: the child may have written its result between the two looks.
        if result_path.exists():
            return read(folder)
        state, finished = STOPPED, (folder / REQUEST).stat().st_mtime
    return BackgroundUpload(
        id=folder.name,
        name=str(request.get("name", "")),
        file_name=str(request.get("file_name", "")),
        size_bytes=int(request.get("size_bytes", 0)),
        started=float(request.get("started", 0.0)),
        state=state,
        finished=finished,
        result=result,
    )


def get(home: Path, upload_id: str) -> BackgroundUpload | None:
    """One upload by id (None when it is unknown or was dismissed)."""
    folder = _root(home) / upload_id
    return read(folder) if folder.is_dir() else None


def listing(home: Path) -> list[BackgroundUpload]:
    """Every upload still shown, newest first; finished ones older than a day are removed."""
    _reap()
    root = _root(home)
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(root.iterdir(), reverse=True):
        upload = read(folder) if folder.is_dir() else None
        if upload is None:
            continue
        if upload.state != RUNNING and time.time() - (upload.finished or 0) > KEEP_S:
            dismiss(home, upload.id)
            continue
        out.append(upload)
    return out


def dismiss(home: Path, upload_id: str) -> None:
    """Forget a finished upload (a running one is left alone)."""
    folder = _root(home) / upload_id
    upload = read(folder) if folder.is_dir() else None
    if upload is None or upload.state == RUNNING:
        return
    try:
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()
    except OSError:
        pass  # another dashboard dismissed it at the same moment


# --- the child -----------------------------------------------------------------------------


def _register(folder: Path) -> dict[str, Any]:
    from lib.backend import open_workspace
    from lib.settings import load_settings
    from lib.upload_form import layout_notes, recognised_summary, reread_suggestions
    from lib.workspace import WorkspaceError

    request = json.loads((folder / REQUEST).read_text())
    data = (folder / DATA).read_bytes()
    sheet = request.get("sheet")
    try:
        datasets = open_workspace(load_settings()).datasets
        dv = datasets.upload(
            request["name"],
            data,
            request["file_name"],
            request.get("description", ""),
            missing_tokens=request.get("missing_tokens"),
            sheet=sheet,
        )
    except WorkspaceError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - whatever it was, the page must say so
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    profile = datasets.profile(dv.name, dv.version).to_dict("records")
    return {
        "ok": True,
        "name": dv.name,
        "version": dv.version,
        "rows": dv.rows,
        "columns": dv.columns,
        "size_bytes": dv.size_bytes,
        "notes": layout_notes(request["file_name"], data, sheet, dv.column_names),
        "read_as_missing": recognised_summary(profile),
        "reread": reread_suggestions(datasets.load(dv.name, dv.version))[0],
    }


def main(argv: Sequence[str]) -> int:
    folder = Path(argv[0])
    result = _register(folder)
    result["finished"] = time.time()
    atomic_write(folder / RESULT, json.dumps(result).encode())
    (folder / DATA).unlink(missing_ok=True)
    # Let helper threads the workspace started (the tracking store) finish their writes.
    for thread in threading.enumerate():
        if thread is not threading.current_thread():
            thread.join(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
