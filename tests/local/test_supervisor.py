"""The process supervisor against real child processes: identity, process groups, grace, gating."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from lib.local import supervisor
from lib.local.supervisor import ProcessRef
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


SLEEPER = python(
    """
    import time
    print("ready", flush=True)
    time.sleep(120)
    """
)


def log_has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text()


@pytest.fixture
def started(tmp_path: Path):
    """Spawned refs, stopped after the test whatever happened."""
    refs: list[ProcessRef] = []
    yield refs
    for ref in refs:
        supervisor.stop(ref, grace_s=1)


def test_spawn_logs_and_stop(tmp_path: Path, started: list) -> None:
    log = tmp_path / "logs" / "child.log"
    ref = supervisor.spawn(SLEEPER, log)
    started.append(ref)
    assert supervisor.is_alive(ref)
    boot = psutil.boot_time()
    assert psutil.Process(ref.pid).create_time() - boot == pytest.approx(ref.create_time, abs=0.05)
    # Own session: not in our process group, so a Ctrl-C of the dashboard does not reach it.
    assert os.getpgid(ref.pid) == ref.pid != os.getpgid(0)
    wait_for(lambda: log_has(log, "ready"))
    assert supervisor.stop(ref, grace_s=5) is True
    assert not supervisor.is_alive(ref)
    assert supervisor.stop(ref) is False


def test_wrong_create_time_is_not_alive_and_not_killed(tmp_path: Path, started: list) -> None:
    ref = supervisor.spawn(SLEEPER, tmp_path / "victim.log")
    started.append(ref)
    impostor = ProcessRef(ref.pid, ref.create_time - 30)  # same PID, another process's start
    assert not supervisor.is_alive(impostor)
    assert supervisor.stop(impostor, grace_s=0.2) is False
    assert supervisor.is_alive(ref)
    assert psutil.Process(ref.pid).status() != psutil.STATUS_ZOMBIE


def test_missing_or_dead_identities(tmp_path: Path) -> None:
    assert ProcessRef.of(None, 1.0) is None
    assert ProcessRef.of(123, None) is None
    assert not supervisor.is_alive(None)
    assert supervisor.stop(None) is False
    ref = supervisor.spawn(python("pass"), tmp_path / "quick.log")
    wait_for(lambda: not supervisor.is_alive(ref))
    assert supervisor.stop(ref) is False


def test_identity_recorded_as_epoch_time_still_matches(tmp_path: Path, started: list) -> None:
    ref = supervisor.spawn(SLEEPER, tmp_path / "legacy.log")
    started.append(ref)
    epoch = psutil.Process(ref.pid).create_time()
    assert supervisor.is_alive(ProcessRef(ref.pid, epoch))
    assert not supervisor.is_alive(ProcessRef(ref.pid, epoch - 60))


def test_stop_kills_the_whole_process_group(tmp_path: Path, started: list) -> None:
    log = tmp_path / "parent.log"
    parent = python(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen({SLEEPER!r})
        print("grandchild", child.pid, flush=True)
        time.sleep(120)
        """
    )
    ref = supervisor.spawn(parent, log)
    started.append(ref)
    line = wait_for(lambda: [x for x in log.read_text().splitlines() if x.startswith("grandchild")])
    grandchild = psutil.Process(int(line[0].split()[1]))
    assert supervisor.stop(ref, grace_s=5)
    wait_for(lambda: not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE)


def test_group_members_outliving_their_leader_are_killed(tmp_path: Path, started: list) -> None:
    log = tmp_path / "leader.log"
    stubborn_child = python(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stubborn ready", flush=True)
        time.sleep(120)
        """
    )
    leader = python(
        f"""
        import signal, subprocess, sys, time
        child = subprocess.Popen({stubborn_child!r})
        print("stubborn", child.pid, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        time.sleep(120)
        """
    )
    ref = supervisor.spawn(leader, log)
    started.append(ref)
    wait_for(lambda: log_has(log, "stubborn ready"))
    pid = int(next(x for x in log.read_text().splitlines() if x.startswith("stubborn ")).split()[1])
    stubborn = psutil.Process(pid)
    assert supervisor.stop(ref, grace_s=5)
    wait_for(lambda: not stubborn.is_running() or stubborn.status() == psutil.STATUS_ZOMBIE)


def test_sigkill_after_grace(tmp_path: Path, started: list) -> None:
    log = tmp_path / "deaf.log"
    deaf = python(
        """
        import signal, time
        signal.signal(signal.SIGTERM, lambda *_: print("TERM ignored", flush=True))
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
        """
    )
    ref = supervisor.spawn(deaf, log)
    started.append(ref)
    wait_for(lambda: log_has(log, "ready"))
    assert supervisor.stop(ref, grace_s=0.5) is True
    assert not supervisor.is_alive(ref)
    assert "TERM ignored" in log.read_text()


def test_held_process_runs_only_after_release(tmp_path: Path, started: list) -> None:
    marker = tmp_path / "ran"
    program = python(f"open({str(marker)!r}, 'w').close(); print('ran', flush=True)")
    log = tmp_path / "held.log"
    ref = supervisor.spawn(program, log, hold=True)
    started.append(ref)
    assert supervisor.is_alive(ref)
    assert not marker.exists()
    assert supervisor.release(ref)
    wait_for(lambda: marker.exists())
    wait_for(lambda: not supervisor.is_alive(ref))
    assert supervisor.release(ref) is False


def test_held_process_exits_unrun_when_its_spawner_dies(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    program = python(f"open({str(marker)!r}, 'w').close()")
    spawner = python(
        f"""
        import os
        from lib.local import supervisor
        ref = supervisor.spawn({program!r}, {str(tmp_path / "held.log")!r}, hold=True)
        print(ref.pid, ref.create_time, flush=True)
        os._exit(9)  # dies like kill -9 between spawning and recording the identity
        """
    )
    out = subprocess.run(
        spawner, capture_output=True, text=True, check=False, cwd=supervisor.REPO_ROOT
    )
    pid, created = out.stdout.split()
    ref = ProcessRef(int(pid), float(created))
    wait_for(lambda: not supervisor.is_alive(ref))
    assert not marker.exists()


def test_free_port_is_bindable() -> None:
    port = supervisor.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
