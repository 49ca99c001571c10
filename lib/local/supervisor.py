"""The one process supervisor: jobs, endpoint servers and the pipeline agent start and stop here.

A supervised process runs in its own session (so it outlives the dashboard and can be stopped
with its whole process group) and writes stdout and stderr to a log file. It is known by its
identity, `ProcessRef(pid, create_time)`, which is what callers record: a PID alone can be
reused by an unrelated process after a crash or a reboot, the pair cannot. Nothing is signalled
unless its identity still matches.

`spawn(..., hold=True)` starts the process gated: it waits until `release(ref)` before running
its program, and exits without running it if the spawning process dies first. Callers record
the identity between the two, so a crash can never leave a process nobody knows about.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from lib.settings import REPO_ROOT

# Identities are compared in seconds since boot (clock ticks), which clock changes never move.
_SAME_START_S = 0.005
# Identities recorded as wall-clock epoch times (before boot-relative ones) tolerate clock drift.
_EPOCH_THRESHOLD = 1e9
_SAME_START_EPOCH_S = 1.0
# A held child runs its program only after reading "go"; EOF (its spawner died) ends it.
_GATE = 'read -r line && [ "$line" = go ] && exec "$@" </dev/null; exit 75'
_POLL_S = 0.05
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

_children: dict[int, subprocess.Popen] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class ProcessRef:
    """A process's identity: its PID and when it started (seconds since boot)."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int | None, create_time: float | None) -> ProcessRef | None:
        """The identity recorded as two columns, or None when nothing was recorded."""
        if not pid or create_time is None:
            return None
        return cls(int(pid), float(create_time))


def _stat(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in seconds since boot) from /proc, or None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # Fields after the parenthesised command name (which may itself hold spaces or parentheses).
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19]) / _CLOCK_TICKS


def identify(pid: int) -> ProcessRef | None:
    """The identity of the live process `pid` (e.g. `os.getpid()`), or None if there is none."""
    stat = _stat(pid)
    return None if stat is None else ProcessRef(pid, stat[1])


def spawn(
    argv: list[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    hold: bool = False,
) -> ProcessRef:
    """Start `argv` in its own session, output appended to `log_path`; held until `release`."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = ["/bin/sh", "-c", _GATE, "opsdeck-held", *argv] if hold else list(argv)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(os.environ) if env is None else env,
            stdin=subprocess.PIPE if hold else subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with _lock:
        _children[proc.pid] = proc
    # NB: an unreaped child keeps its /proc entry, so its start time is readable even if it
    # has already exited.
    ref = identify(proc.pid)
    if ref is None:
        raise OSError(f"process {proc.pid} vanished before it could be identified")
    return ref


def release(ref: ProcessRef) -> bool:
    """Let a held process run its program; False if it is not a held child of this process."""
    with _lock:
        proc = _children.get(ref.pid)
    if proc is None or proc.stdin is None or proc.stdin.closed:
        return False
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    except (BrokenPipeError, ValueError):
        return False
    return True


def reap() -> None:
    """Collect the exit status of this process's finished children (no zombies left behind)."""
    with _lock:
        for pid, proc in list(_children.items()):
            if proc.poll() is not None:
                if proc.stdin is not None and not proc.stdin.closed:
                    try:
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass
                del _children[pid]


def _same_start(recorded: float, pid: int, since_boot: float) -> bool:
    if recorded > _EPOCH_THRESHOLD:
        try:
            return abs(psutil.Process(pid).create_time() - recorded) < _SAME_START_EPOCH_S
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
    return abs(since_boot - recorded) < _SAME_START_S


def is_alive(ref: ProcessRef | None) -> bool:
    """True if the process with this identity is running (not exited, not a zombie)."""
    if ref is None or ref.pid <= 0:
        return False
    reap()
    stat = _stat(ref.pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return _same_start(ref.create_time, ref.pid, stat[1])


def _signal_group(ref: ProcessRef, sig: int) -> bool:
    """Signal the process's group if it leads one, else the process; True if it leads one."""
    try:
        if os.getpgid(ref.pid) == ref.pid:
            os.killpg(ref.pid, sig)
            return True
        os.kill(ref.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    return False


def _wait_exit(ref: ProcessRef, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(ref):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def wait(ref: ProcessRef | None, timeout: float) -> bool:
    """Wait up to `timeout` s for the process to exit; True once it is gone."""
    return ref is None or _wait_exit(ref, timeout)


def stop(ref: ProcessRef | None, grace_s: float = 10.0) -> bool:
    """SIGTERM the process group, SIGKILL it after `grace_s`; True if the process was running."""
    if not is_alive(ref):
        return False
    assert ref is not None
    leader = _signal_group(ref, signal.SIGTERM)
    if not _wait_exit(ref, grace_s):
        _signal_group(ref, signal.SIGKILL)
        _wait_exit(ref, 5.0)
    elif leader:
        # Members of the group that outlived their leader. Linux does not hand out a group's id
        # as a new PID while any member lives, so this reaches only what we started.
        try:
            os.killpg(ref.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    reap()
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
