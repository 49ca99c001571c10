"""Open the embedded local workspace under the settings' home folder."""

from __future__ import annotations

import threading

from lib.local import tracking
from lib.local.automl import LocalAutoML
from lib.local.benchmarks import LocalBenchmarks
from lib.local.compute import LocalCompute
from lib.local.datasets import LocalDatasets
from lib.local.drift import LocalMonitoring
from lib.local.endpoints import LocalEndpoints
from lib.local.jobs import JobManager
from lib.local.models import LocalModels
from lib.local.pipelines.service import LocalPipelines
from lib.local.store import Store
from lib.local.telemetry_service import LocalTelemetry
from lib.settings import Settings
from lib.workspace import Workspace


def open_local_workspace(settings: Settings) -> Workspace:
    store = Store(settings.home)
    if not (store.home / tracking.TRACKING_FILE).exists():
        # Ready before the first AutoML job needs it, without holding up the page.
        threading.Thread(target=tracking.ensure_store, args=(store.home,), daemon=True).start()
    endpoints = LocalEndpoints(store)
    jobs = JobManager(store, slots=settings.worker_slots)
    datasets = LocalDatasets(store, limits=settings.limits)
    return Workspace(
        kind="local",
        description=f"Local workspace at {settings.home}",
        reason=settings.backend_reason,
        settings=settings,
        datasets=datasets,
        compute=LocalCompute(jobs),
        automl=LocalAutoML(jobs, datasets),
        models=LocalModels(store, jobs),
        endpoints=endpoints,
        telemetry=LocalTelemetry(endpoints.telemetry_db),
        monitoring=LocalMonitoring(endpoints.telemetry_db),
        benchmarks=LocalBenchmarks(jobs, datasets),
        pipelines=LocalPipelines(store, jobs, datasets),
        extras={"store": store, "jobs": jobs},
    )
