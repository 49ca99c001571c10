import os
import signal
from pathlib import Path

import pytest

from lib.local.jobs import JobManager, pid_alive
from lib.local.store import Store
from tests.conftest import wait_for


@pytest.fixture
def manager(hermetic_env: Path) -> JobManager:
    return JobManager(Store(hermetic_env), slots=1)


def state(manager: JobManager, job_id: str) -> str:
    manager.tick()
    return manager.get(job_id).state


def test_job_runs_out_of_process_and_completes(manager: JobManager) -> None:
    job = manager.submit("sleep", "short", {"seconds": 0.3})
    assert job.state == "Running"
    row = manager.store.connect().execute("SELECT pid FROM jobs WHERE id=?", (job.id,)).fetchone()
    assert row["pid"] != os.getpid()
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
    pid = (
        manager.store.connect()
        .execute("SELECT pid FROM jobs WHERE id=?", (running.id,))
        .fetchone()[0]
    )
    canceled = manager.cancel(running.id)
    assert canceled.state == "Canceled"
    wait_for(lambda: not pid_alive(pid))


def test_kill_9_marks_job_failed_not_running(manager: JobManager) -> None:
    job = manager.submit("sleep", "victim", {"seconds": 60})
    wait_for(lambda: manager.get(job.id).progress.get("done"))
    pid = (
        manager.store.connect().execute("SELECT pid FROM jobs WHERE id=?", (job.id,)).fetchone()[0]
    )
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: state(manager, job.id) == "Failed")
    assert "ended without reporting" in manager.get(job.id).error


def test_orphan_after_dashboard_restart(hermetic_env: Path) -> None:
    """A Running row whose PID no longer exists (e.g. after a reboot) is failed on first look."""
    store = Store(hermetic_env)
    manager = JobManager(store, slots=2)
    job = manager.submit("sleep", "x", {"seconds": 0.1})
    wait_for(lambda: state(manager, job.id) == "Completed")
    store.connect().execute(
        "UPDATE jobs SET state='Running', pid=999999999, ended=NULL WHERE id=?", (job.id,)
    )
    fresh = JobManager(Store(hermetic_env), slots=2)
    fresh.tick()
    assert fresh.get(job.id).state == "Failed"
