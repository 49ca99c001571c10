"""Local compute: this machine's worker slots, live load, and the jobs on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.local.compute import LocalCompute
from lib.local.jobs import JobManager
from lib.local.store import Store
from tests.support.waiting import wait_for


@pytest.fixture
def manager(hermetic_env: Path) -> JobManager:
    return JobManager(Store(hermetic_env), slots=1)


def test_idle_machine_is_one_local_target(manager: JobManager) -> None:
    [target] = LocalCompute(manager).list()
    assert (target.name, target.kind, target.state) == ("local", "local", "Idle")
    assert (target.busy_slots, target.idle_slots, target.queued_jobs) == (0, 1, 0)
    assert 0 <= target.cpu_percent <= 100 and 0 < target.memory_percent <= 100
    assert "CPU" in target.vm_size and "GiB" in target.vm_size
    assert LocalCompute(manager).jobs() == []


def test_held_jobs_take_no_slot(manager: JobManager) -> None:
    manager.submit("sleep", "staged", {"seconds": 1}, start=False)
    [target] = LocalCompute(manager).list()
    assert (target.state, target.busy_slots, target.queued_jobs) == ("Idle", 0, 0)


@pytest.mark.slow
def test_busy_slots_and_queue_follow_the_jobs(manager: JobManager) -> None:
    compute = LocalCompute(manager)
    running = manager.submit("sleep", "running", {"seconds": 60})
    waiting = manager.submit("sleep", "waiting", {"seconds": 60})
    [target] = compute.list()
    assert (target.state, target.busy_slots, target.idle_slots, target.queued_jobs) == (
        "Running",
        1,
        0,
        1,
    )
    assert [j.id for j in compute.jobs()] == [waiting.id, running.id]
    manager.cancel(waiting.id)
    manager.cancel(running.id)
    wait_for(lambda: compute.list()[0].state == "Idle")
    assert {j.state for j in compute.jobs()} == {"Canceled"}
