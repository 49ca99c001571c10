"""Local jobs against real runner processes: queueing, failure, cancel, and crashes at each step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from lib.local import jobs, supervisor
from lib.local.jobs import JobManager, job_process
from lib.local.store import Store
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def manager(hermetic_env: Path) -> JobManager:
    return JobManager(Store(hermetic_env), slots=1)


def state(manager: JobManager, job_id: str) -> str:
    manager.tick()
    return manager.get(job_id).state


def row(manager: JobManager, job_id: str):  # noqa: ANN201
    return manager.store.connect().execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()


def runners_of(job_id: str) -> list[psutil.Process]:
    """Live processes running this job (whoever started them)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if job_id in cmd and "lib.local.runner" in cmd and proc.info["status"] != "zombie":
            found.append(proc)
    return found


def runs_in_log(manager: JobManager, job_id: str) -> int:
    return manager.log_tail(job_id, lines=500).count(f"job {job_id} (sleep) started")


def test_job_runs_out_of_process_and_completes(manager: JobManager) -> None:
    job = manager.submit("sleep", "short", {"seconds": 0.3})
    assert job.state == "Running"
    recorded = job_process(row(manager, job.id))
    assert recorded is not None and recorded.pid != os.getpid()
    wait_for(lambda: state(manager, job.id) == "Completed")
    done = manager.get(job.id)
    assert done.started and done.ended and done.ended >= done.started
    assert manager.result(job.id) == {"slept": 0.3}
    assert done.progress["done"] == done.progress["total"]
    assert "completed" in manager.log_tail(job.id)


def test_extra_jobs_wait_queued_for_a_slot(manager: JobManager) -> None:
    first = manager.submit("sleep", "first", {"seconds": 1.0})
    second = manager.submit("sleep", "second", {"seconds": 0.1})
    assert first.state == "Running"
    assert second.state == "Queued"
    # The finishing runner starts the queued job itself, without the dashboard looking.
    wait_for(lambda: manager.get(second.id).state == "Completed", timeout=30)
    assert manager.get(first.id).state == "Completed"
    assert manager.get(second.id).started >= manager.get(first.id).ended


def test_failure_is_reported_with_reason(manager: JobManager) -> None:
    job = manager.submit("sleep", "bad", {"seconds": 0.1, "fail": "disk on fire"})
    wait_for(lambda: state(manager, job.id) == "Failed")
    assert "disk on fire" in manager.get(job.id).error
    assert "RuntimeError" in manager.log_tail(job.id)


def test_cancel_running_and_queued(manager: JobManager) -> None:
    running = manager.submit("sleep", "long", {"seconds": 60})
    queued = manager.submit("sleep", "waiting", {"seconds": 60})
    assert manager.cancel(queued.id).state == "Canceled"
    wait_for(lambda: manager.get(running.id).progress.get("done"))
    ref = job_process(row(manager, running.id))
    canceled = manager.cancel(running.id)
    assert canceled.state == "Canceled"
    assert canceled.error == "Canceled by the user"
    assert not supervisor.is_alive(ref)


def test_a_running_job_ends_with_the_reason_it_was_canceled_for(manager: JobManager) -> None:
    """The job process writes its end first (it notices the request, or the SIGTERM): the reason
    given with the request is the one it ends with, not a user's cancel."""
    job = manager.submit("sleep", "step", {"seconds": 60})
    wait_for(lambda: manager.get(job.id).progress.get("done"))
    ended = manager.cancel(job.id, "Canceled: its pipeline run ended (disk full)")
    assert ended.state == "Canceled"
    assert ended.error == "Canceled: its pipeline run ended (disk full)"
    assert "canceled" in manager.log_tail(job.id)


def test_kill_9_marks_job_failed_not_running(manager: JobManager) -> None:
    job = manager.submit("sleep", "victim", {"seconds": 60})
    wait_for(lambda: manager.get(job.id).progress.get("done"))
    os.kill(row(manager, job.id)["pid"], signal.SIGKILL)
    wait_for(lambda: state(manager, job.id) == "Failed")
    assert "ended without reporting" in manager.get(job.id).error


def test_orphan_after_dashboard_restart(hermetic_env: Path) -> None:
    """A Running row whose PID no longer exists (e.g. after a reboot) is failed on first look."""
    store = Store(hermetic_env)
    manager = JobManager(store, slots=2)
    job = manager.submit("sleep", "x", {"seconds": 0.1})
    wait_for(lambda: state(manager, job.id) == "Completed")
    store.connect().execute(
        "UPDATE jobs SET state='Running', pid=999999999, pid_started=NULL, ended=NULL WHERE id=?",
        (job.id,),
    )
    fresh = JobManager(Store(hermetic_env), slots=2)
    fresh.tick()
    assert fresh.get(job.id).state == "Failed"


def test_late_heartbeat_of_a_live_job_does_not_fail_it(manager: JobManager) -> None:
    """A laptop that slept: the heartbeat is old but the process runs on and its result counts."""
    job = manager.submit("sleep", "sleeper", {"seconds": 1.5})
    wait_for(lambda: manager.get(job.id).progress.get("done"))
    long_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="milliseconds")
    manager.store.connect().execute("UPDATE jobs SET heartbeat=? WHERE id=?", (long_ago, job.id))
    assert state(manager, job.id) == "Running"
    wait_for(lambda: state(manager, job.id) == "Completed")
    assert manager.result(job.id) == {"slept": 1.5}


def test_cancel_does_not_kill_a_process_that_reused_the_pid(manager: JobManager) -> None:
    victim = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        job = manager.submit("sleep", "ghost", {"seconds": 60}, start=False)
        real = supervisor.identify(victim.pid)
        assert real is not None
        # The job's recorded process died long ago and an unrelated one now has its PID.
        manager.store.connect().execute(
            """UPDATE jobs SET state='Running', pid=?, pid_started=?, started=?, heartbeat=?
               WHERE id=?""",
            (victim.pid, real.create_time - 50, jobs.now_iso(), jobs.now_iso(), job.id),
        )
        assert manager.cancel(job.id).state == "Canceled"
        assert victim.poll() is None
        assert supervisor.is_alive(real)
    finally:
        victim.kill()
        victim.wait()


CRASHING_STARTER = textwrap.dedent(
    """
    import os, sys
    from lib.local import jobs, supervisor
    from lib.local.store import Store

    point = sys.argv[2]
    spawn, release = jobs.JobManager._spawn, supervisor.release

    def spawn_and_die(self, job_id):
        if point == "before-spawn":
            os._exit(9)
        ref = spawn(self, job_id)
        if point == "after-spawn":
            os._exit(9)
        return ref

    def release_and_die(ref):
        os._exit(9)

    jobs.JobManager._spawn = spawn_and_die
    if point == "before-release":
        supervisor.release = release_and_die
    jobs.JobManager(Store(sys.argv[1]), slots=1).tick()
    """
)


def crash_while_starting(home: Path, point: str) -> None:
    """A dashboard process that is killed (-9) at `point` while it starts the queued job."""
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_STARTER, str(home), point],
        cwd=supervisor.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 9, done.stderr


@pytest.mark.parametrize("point", ["before-spawn", "after-spawn"])
def test_starter_killed_while_starting_runs_the_job_once(
    manager: JobManager, hermetic_env: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    job = manager.submit("sleep", "once", {"seconds": 1.0}, start=False)
    manager.store.connect().execute("UPDATE jobs SET state='Queued' WHERE id=?", (job.id,))
    crash_while_starting(hermetic_env, point)
    # Nothing runs it while the claim is fresh; once stale the claim is released and it runs.
    monkeypatch.setattr(jobs, "START_GRACE_S", 0.0, raising=False)
    wait_for(lambda: state(manager, job.id) == "Completed", timeout=30)
    wait_for(lambda: not runners_of(job.id))
    assert runs_in_log(manager, job.id) == 1
    assert manager.result(job.id) == {"slept": 1.0}


def test_starter_killed_before_release_fails_the_job_that_never_began(
    manager: JobManager, hermetic_env: Path
) -> None:
    job = manager.submit("sleep", "never", {"seconds": 1.0}, start=False)
    manager.store.connect().execute("UPDATE jobs SET state='Queued' WHERE id=?", (job.id,))
    crash_while_starting(hermetic_env, "before-release")
    ref = job_process(row(manager, job.id))
    assert ref is not None
    wait_for(lambda: not supervisor.is_alive(ref))
    assert state(manager, job.id) == "Failed"
    assert "before it began" in manager.get(job.id).error
    assert runs_in_log(manager, job.id) == 0


def test_a_second_runner_for_a_running_job_refuses_to_run_it(
    manager: JobManager, hermetic_env: Path
) -> None:
    job = manager.submit("sleep", "single", {"seconds": 2.0})
    wait_for(lambda: manager.get(job.id).progress.get("done"))
    second = subprocess.run(
        [sys.executable, "-m", "lib.local.runner", job.id],
        cwd=supervisor.REPO_ROOT,
        env=dict(os.environ, OPSDECK_HOME=str(hermetic_env)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert second.returncode == 3
    assert "does not run it" in second.stdout
    wait_for(lambda: state(manager, job.id) == "Completed")
    assert runs_in_log(manager, job.id) == 1
