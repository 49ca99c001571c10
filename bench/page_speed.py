"""Every page's time in a real browser on a populated local workspace.

    .venv/bin/python bench/page_speed.py [--home DIR] [--repeat 12] [--idle 5]

Populates a workspace (or reuses `--home` when it was populated before): a 3,000-row Bank
Marketing dataset (synthetic rows when the file is absent), one real AutoML run (10 s budget)
registered and deployed to 20 endpoints, 49 more finished AutoML runs and 200 benchmark runs
written the way their jobs write them, and 1,000,000 telemetry rows over 7 days through the
telemetry writer (`bench/logs_scale.py`'s generator). Then starts `streamlit run app.py` and
drives Debian's Chromium: each round clicks every page in the sidebar in turn; a page's time is
from the click to the end of its script run (Streamlit's `data-test-script-state` going from
`running` to `notRunning`, observed in the page). After each page settles, script runs in the
next `--idle` seconds are counted: a page with nothing running must not refresh itself.
Prints one row per page and, last:

    pages: slowest p95 X.XX s (PAGE)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PAGES = [
    "Home",
    "Datasets",
    "Compute",
    "AutoML",
    "Models",
    "Endpoints",
    "Score",
    "Logs",
    "Monitoring",
    "Benchmarks",
    "Pipelines",
]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MARKER = "page_speed_populated"

# Click a sidebar link and resolve with the ms until the script run it starts has finished.
NAVIGATE_JS = """
(title) => new Promise((resolve) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const links = [...document.querySelectorAll('[data-testid="stSidebarNav"] a')];
  const link = links.find((a) => a.innerText.trim().endsWith(title));
  if (!link) { resolve(-2); return; }
  let running = false;
  const start = performance.now();
  const obs = new MutationObserver(() => {
    const state = app.getAttribute('data-test-script-state');
    if (state === 'running') running = true;
    else if (running && state === 'notRunning') { obs.disconnect(); resolve(performance.now() - start); }
  });
  obs.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  link.click();
  setTimeout(() => { obs.disconnect(); resolve(-1); }, 120000);
})
"""
# Count script runs (fragment reruns included) for `ms` milliseconds.
IDLE_JS = """
(ms) => new Promise((resolve) => {
  const app = document.querySelector('[data-testid="stApp"]');
  let runs = 0;
  const obs = new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'running') runs += 1;
  });
  obs.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  setTimeout(() => { obs.disconnect(); resolve(runs); }, ms);
})
"""


def wait(predicate, timeout: float, what: str):  # noqa: ANN001, ANN201
    """Poll `predicate` until it is truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s: {what}")
        time.sleep(0.5)


def dataset_bytes() -> bytes:
    """3,000 Bank Marketing rows, or synthetic rows of the same shape when the file is absent."""
    import numpy as np
    import pandas as pd

    from lib.settings import find_sample_data

    sample = find_sample_data({})
    if sample is not None and sample.is_file():
        frame = pd.read_csv(sample).sample(3000, random_state=1)
    else:
        rng = np.random.default_rng(1)
        frame = pd.DataFrame(
            {
                "age": rng.integers(18, 90, 3000),
                "job": rng.choice(["admin.", "technician", "services"], 3000),
                "balance": rng.normal(1000, 800, 3000).round(2),
                "y": rng.choice(["no", "yes"], 3000, p=[0.88, 0.12]),
            }
        )
    return frame.to_csv(index=False).encode()


def populate(home: Path, endpoints: int, automl_runs: int, benchmarks: int, rows: int) -> None:
    """Fill the workspace at `home` through its services and stores (see the module doc)."""
    import logs_scale

    from lib.backend import open_workspace
    from lib.settings import load_settings
    from lib.workspace import AutoMLRequest
    from tests.support.populate import benchmark_run, finished_automl_run

    os.environ.update(OPSDECK_HOME=str(home), OPSDECK_BACKEND="local")
    ws = open_workspace(load_settings())
    started = time.perf_counter()
    ws.datasets.upload("bank", dataset_bytes(), "bank.csv")
    job = ws.automl.submit(
        AutoMLRequest(
            dataset="bank",
            dataset_version=1,
            target="y",
            task="classification",
            primary_metric="AUC_weighted",
            time_budget_s=10,
        )
    )
    done = wait(lambda: ws.automl.get(job.id).is_terminal, 300, "the AutoML run")
    if ws.automl.get(job.id).state != "Completed" or not done:
        raise SystemExit(f"AutoML run {job.id}: {ws.automl.get(job.id).error}")
    model, _ = ws.register_and_deploy(job.id, "bank")
    names = ["bank"] + [f"bank-{i:02d}" for i in range(1, endpoints)]
    for name in names[1:]:
        ws.deploy_model(model.name, model.version, name)
    for name in names:
        wait(lambda n=name: ws.endpoints.get(n).state == "Succeeded", 180, f"endpoint {name}")
    print(f"  1 AutoML run, model and {endpoints} endpoints: {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    for i in range(automl_runs - 1):
        finished_automl_run(ws, dataset="bank", trials=20 + i % 30, seed=i)
    for i in range(benchmarks):
        benchmark_run(ws, requests=5000, duration_s=10, seed=i)
    print(
        f"  {automl_runs - 1} AutoML runs, {benchmarks} benchmark runs: "
        f"{time.perf_counter() - started:.0f} s"
    )
    # The generator's endpoints become this workspace's: three of them take the traffic.
    logs_scale.ENDPOINTS = [(names[0], "", 0.6), (names[1], "", 0.3), (names[2], "", 0.1)]
    seconds = logs_scale.generate(home / "telemetry.db", rows, 7.0, time.time())
    print(f"  {rows:,} telemetry rows: {seconds:.0f} s")
    (home / MARKER).write_text("ok\n")


def stop_endpoints(home: Path) -> None:
    from lib.backend import open_workspace
    from lib.settings import load_settings

    os.environ.update(OPSDECK_HOME=str(home), OPSDECK_BACKEND="local")
    ws = open_workspace(load_settings())
    for ep in ws.endpoints.list():
        ws.endpoints.stop(ep.name)


def settle(page, quiet_s: float = 1.0, timeout: float = 120.0) -> None:  # noqa: ANN001
    """Wait until no script runs and none starts for `quiet_s` (the first run opens the
    workspace; a click during a run would be measured from the wrong start)."""
    deadline = time.monotonic() + timeout
    while page.evaluate(IDLE_JS, int(quiet_s * 1000)) or page.get_attribute(
        '[data-testid="stApp"]', "data-test-script-state"
    ) not in ("notRunning", "initial"):
        if time.monotonic() > deadline:
            raise SystemExit("the app never stopped running")


def measure(url: str, repeat: int, idle_s: float) -> tuple[dict[str, list[float]], dict]:
    """Seconds per page over `repeat` rounds, and script runs seen while each page sat idle."""
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {p: [] for p in PAGES}
    idle: dict[str, int] = dict.fromkeys(PAGES, 0)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.wait_for_selector('[data-testid="stSidebarNav"] a')
        for n in range(repeat):
            for name in PAGES:
                settle(page)
                ms = page.evaluate(NAVIGATE_JS, name)
                if ms < 0:
                    raise SystemExit(f"{name}: {'no sidebar link' if ms == -2 else 'no end'}")
                times[name].append(ms / 1000)
                if n == 0:
                    idle[name] = page.evaluate(IDLE_JS, int(idle_s * 1000))
        browser.close()
    return times, idle


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="workspace to populate once and reuse")
    parser.add_argument("--repeat", type=int, default=12, help="rounds over every page")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds watched for refreshes")
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--automl-runs", type=int, default=50)
    parser.add_argument("--benchmarks", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    from tests.support.servers import ServerProcess

    home = args.home or Path(tempfile.mkdtemp(prefix="opsdeck-page-speed-"))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / MARKER).exists():
        print(f"populating {home}")
        populate(home, args.endpoints, args.automl_runs, args.benchmarks, args.rows)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "OPSDECK_"))}
    env.update(OPSDECK_HOME=str(home), OPSDECK_BACKEND="local")
    argv = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", "{port}"]
    argv += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    server = ServerProcess(argv, home / "page-speed-streamlit.log", "/_stcore/health", env, ROOT)
    try:
        times, idle = measure(server.url, args.repeat, args.idle)
    finally:
        server.stop(grace_s=20)
        if args.home is None:
            stop_endpoints(home)
    print(f"{'page':<12} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'idle runs':>10}")
    for name in PAGES:
        values = times[name]
        p50, p95 = statistics.median(values), percentile(values, 95)
        print(f"{name:<12} {p50:7.2f} {p95:7.2f} {max(values):7.2f} {idle[name]:10d}")
    slowest = max(PAGES, key=lambda p: percentile(times[p], 95))
    print(f"pages: slowest p95 {percentile(times[slowest], 95):.2f} s ({slowest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
