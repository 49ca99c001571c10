"""Job process entry point: `python -m lib.local.runner JOB_ID`."""

from __future__ import annotations

import signal
import sys
import time
import traceback
from typing import Any

from lib.local.jobs import HANDLERS, JobContext, JobManager, NotThisProcessJob, handler, log
from lib.local.store import Store
from lib.settings import load_settings


@handler("sleep")
def _sleep_job(ctx: JobContext, spec: dict[str, Any], settings: Any) -> dict[str, Any]:
    """A diagnostic job: sleeps in small steps, reporting progress (used to test the runner)."""
    total = float(spec.get("seconds", 1))
    steps = max(1, int(total / 0.1))
    for i in range(steps):
        if ctx.cancel_requested():
            raise KeyboardInterrupt
        time.sleep(total / steps)
        ctx.progress(done=i + 1, total=steps)
    if spec.get("fail"):
        raise RuntimeError(str(spec["fail"]))
    return {"slept": total}


def _load_handlers() -> None:
    # Imported lazily: the AutoML handler pulls in FLAML and MLflow.
    import lib.local.automl_job  # noqa: F401
    import lib.local.benchmarks  # noqa: F401
    import lib.local.pipelines.run  # noqa: F401


def main(job_id: str) -> int:
    settings = load_settings()
    store = Store(settings.home)
    ctx = JobContext(store, job_id)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        spec = ctx.start()
    except NotThisProcessJob as exc:
        log(f"not running job {job_id}: {exc}")
        return 3
    try:
        kind = (
            spec.get("_kind")
            or store.connect().execute("SELECT kind FROM jobs WHERE id=?", (job_id,)).fetchone()[0]
        )
        if kind not in HANDLERS:
            _load_handlers()
        log(f"job {job_id} ({kind}) started")
        result = HANDLERS[kind](ctx, spec, settings)
        ctx.finish("Completed", result=result)
        log(f"job {job_id} completed")
        code = 0
    except KeyboardInterrupt:
        ctx.finish("Canceled", error=ctx.cancel_reason())
        log(f"job {job_id} canceled")
        code = 130
    except Exception as exc:  # noqa: BLE001 - every failure is reported on the job
        traceback.print_exc()
        ctx.finish("Failed", error=f"{type(exc).__name__}: {exc}")
        code = 1
    # Free slot: start whatever is queued next.
    try:
        JobManager(store, settings.worker_slots).tick()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
