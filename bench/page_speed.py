"""Every page's time in a real browser on a populated local workspace.

    .venv/bin/python bench/page_speed.py [--home DIR] [--repeat 12] [--idle 5]

Populates a workspace (or reuses `--home` when it was populated before): a 3,000-row Bank
Marketing dataset (synthetic rows when the file is absent), one real AutoML run (10 s budget)
registered and deployed to 20 endpoints, 49 more finished AutoML runs and 200 benchmark runs
written the way their jobs write them, and 1,000,000 telemetry rows over 7 days through the
telemetry writer (`bench/logs_scale.py`'s generator). Then starts `streamlit run app.py` and
drives Debian's Chromium: a first round visits every page once (its time is shown apart: the
first visit in a fresh server process imports and caches), then each of `--repeat` rounds
clicks every page in the sidebar in turn; a page's time is from the click to the end of the
script run it starts: the server has reported it finished (the `script_finished` message on
the page's WebSocket) and the page no longer shows the app as running. After each first visit, script runs in the next `--idle` seconds are counted: a page with nothing running must not refresh itself.
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
    "Audit log",
]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MARKER = "page_speed_populated"
NOT_RUNNING = '[data-testid="stApp"][data-test-script-state="notRunning"]'


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


class RunWatch:
    """Script-run ends as the server reports them: the `script_finished` messages on the page's
    WebSocket, decoded with Streamlit's own protobuf, stamped when they arrive."""

    def __init__(self, page) -> None:  # noqa: ANN001
        self.page = page
        self.ends: list[tuple[float, str]] = []
        self.last_server_s = 0.0  # click to the server's script_finished, of the last page
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: str | bytes) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, str):
            return
        msg = ForwardMsg()
        msg.ParseFromString(payload)
        if msg.WhichOneof("type") == "script_finished":
            self.ends.append(
                (time.perf_counter(), ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished))
            )

    def until_end(self, since: float, timeout: float = 120.0) -> float:
        """Seconds from `since` until a whole script run that started after it has ended and
        the page no longer shows it as running (after the server's post-run work)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = [at for at, s in self.ends if at > since and s == "FINISHED_SUCCESSFULLY"]
            if ended:
                self.page.wait_for_selector(NOT_RUNNING)
                self.last_server_s = ended[0] - since
                return time.perf_counter() - since
            self.page.wait_for_timeout(10)
        raise SystemExit(f"no script run ended within {timeout:g} s: {self.ends[-5:]}")

    def runs_within(self, seconds: float) -> int:
        """Script runs (fragment runs included) that end in the next `seconds`."""
        start = time.perf_counter()
        self.page.wait_for_timeout(seconds * 1000)
        return sum(1 for at, _ in self.ends if at > start)

    def settle(self, quiet_s: float = 1.0, timeout: float = 120.0) -> None:
        """Wait until no run has ended for `quiet_s` (the first run opens the workspace)."""
        deadline = time.monotonic() + timeout
        while self.runs_within(quiet_s) or not self.ends:
            if time.monotonic() > deadline:
                raise SystemExit("the app never stopped running")


def measure(
    url: str, repeat: int, idle_s: float, pages: list[str]
) -> tuple[dict[str, list[float]], dict, dict, dict[str, list[float]]]:
    """Seconds per page over `repeat` rounds after a first round (each page's first visit in
    this server process, reported apart), and script runs seen while each page sat idle."""
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {p: [] for p in pages}
    server: dict[str, list[float]] = {p: [] for p in pages}
    first: dict[str, float] = dict.fromkeys(pages, 0.0)
    idle: dict[str, int] = dict.fromkeys(pages, 0)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        watch = RunWatch(page)
        page.goto(url)
        page.wait_for_selector('[data-testid="stSidebarNav"] a')
        nav = page.get_by_test_id("stSidebarNav")
        # Start on the last page so the first round's first click changes page.
        nav.get_by_role("link", name=PAGES[-1] if pages[0] != PAGES[-1] else PAGES[0]).click()
        for n in range(repeat + 1):
            for name in pages:
                watch.settle()
                link = nav.get_by_role("link", name=name)
                link.wait_for()
                since = time.perf_counter()
                link.click()
                seconds = watch.until_end(since)
                if n == 0:
                    first[name] = seconds
                    idle[name] = watch.runs_within(idle_s)
                else:
                    times[name].append(seconds)
                    server[name].append(watch.last_server_s)
        browser.close()
    return times, first, idle, server


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
    parser.add_argument("--pages", nargs="+", choices=PAGES, default=PAGES, metavar="PAGE")
    args = parser.parse_args()
    pages = [p for p in PAGES if p in args.pages]

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
        times, first, idle, served = measure(server.url, args.repeat, args.idle, pages)
    finally:
        server.stop(grace_s=20)
        if args.home is None:
            stop_endpoints(home)
    print(
        f"{'page':<12} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'server p95 s':>13} "
        f"{'first s':>8} {'idle runs':>10}"
    )
    for name in pages:
        values = times[name]
        p50, p95 = statistics.median(values), percentile(values, 95)
        print(
            f"{name:<12} {p50:7.2f} {p95:7.2f} {max(values):7.2f} "
            f"{percentile(served[name], 95):13.2f} {first[name]:8.2f} {idle[name]:10d}"
        )
    slowest = max(pages, key=lambda p: percentile(times[p], 95))
    print(f"pages: slowest p95 {percentile(times[slowest], 95):.2f} s ({slowest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
