"""Local compute: the worker slots of this machine, with live CPU and memory."""

from __future__ import annotations

import psutil

from lib.local.jobs import JobManager
from lib.workspace import ComputeTarget, Job


class LocalCompute:
    def __init__(self, jobs: JobManager) -> None:
        self.manager = jobs

    def list(self) -> list[ComputeTarget]:
        self.manager.tick()
        counts = self.manager.counts()
        busy = counts.get("Running", 0)
        return [
            ComputeTarget(
                name="local",
                kind="local",
                state="Running" if busy else "Idle",
                vm_size=f"{psutil.cpu_count()} CPU, {psutil.virtual_memory().total / 2**30:.0f} GiB",
                min_nodes=1,
                max_nodes=1,
                current_nodes=1,
                busy_slots=busy,
                idle_slots=max(0, self.manager.slots - busy),
                queued_jobs=counts.get("Queued", 0),
                cpu_percent=psutil.cpu_percent(interval=None),
                memory_percent=psutil.virtual_memory().percent,
            )
        ]

    def jobs(self) -> list[Job]:
        """Every job on the local target, newest first."""
        self.manager.tick()
        return self.manager.list()
