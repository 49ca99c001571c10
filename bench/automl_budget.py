"""AutoML time budgets as a user meets them: jobs on Bank Marketing in a fresh local workspace.

Each job runs in its own process as from the AutoML page; its wall time is read from the job's
recorded start and end and set against the promise (budget + 10 % + 5 s). The machine's load
average is printed beside it: on 2 cores, start-up alone (process, imports) takes 8-10 s idle
and 20-30 s at load 10.

    .venv/bin/python -m bench.automl_budget --budgets 10 60
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", type=float, nargs="+", default=[10, 60])
    ap.add_argument(
        "--data", type=Path, default=REPO.parent / "shared/data/bankmarketing_train.csv"
    )
    ap.add_argument("--target", default="y")
    args = ap.parse_args()
    if not args.data.exists():
        sys.exit(f"data file not found: {args.data}")
    os.environ["OPSDECK_HOME"] = tempfile.mkdtemp(prefix="opsdeck-budget-")
    os.environ["OPSDECK_BACKEND"] = "local"
    from lib.backend import open_workspace
    from lib.workspace import AutoMLRequest

    ws = open_workspace()
    ws.datasets.upload("bench", args.data.read_bytes(), args.data.name)
    for budget in args.budgets:
        request = AutoMLRequest("bench", 1, args.target, time_budget_s=int(budget))
        job = ws.automl.submit(request)
        while not (job := ws.automl.get(job.id)).is_terminal:
            time.sleep(0.5)
        wall = (job.ended - job.started).total_seconds()
        promise = budget * 1.1 + 5
        result = ws.automl.result(job.id) if job.state == "Completed" else {}
        trimmed = [t["step"] for t in (result.get("budget") or {}).get("trimmed", [])]
        print(
            f"budget {budget:g}s: {job.state}, job start -> end {wall:.1f}s, promise {promise:.1f}s"
            f" ({'kept' if wall <= promise else 'NOT kept'}), load {os.getloadavg()[0]:.1f}, "
            f"best {result.get('best_estimator')} "
            f"{(result.get('best_metrics') or {}).get('AUC_weighted', float('nan')):.4f}, "
            f"trimmed: {', '.join(trimmed) or 'nothing'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
