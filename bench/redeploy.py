"""Zero-downtime deployments, measured: c=8 load through deploy → split → rollback → restart.

    .venv/bin/python bench/redeploy.py [--budget 30] [--home DIR] [--split-requests 10000]
        [--requests 5000] [--rounds 3] [--skip-sequence] [--skip-throughput]

1. Trains the AutoML model on Bank Marketing (as the dashboard does; or reuses `--home`) and
   registers it twice (v1, v2).
2. Deploys v1 as `blue`; 8 client threads (keep-alive `requests` sessions) score single rows
   without pause until the end.
3. Under that load: v2 as `green` at 10 %, then 50 % (each phase counts `--split-requests`
   answers and checks each deployment's share within ±2 points), 100 %, rollback to blue, and a
   restart (a new server process takes the port over while the old one drains). Every answer is
   counted: a failure is any answer other than 200, or no answer.
4. Single-row req/s at c=8 (`ab`, a new connection per request as in bench/scoring.py), the same
   compiled model served by the scoring server before deployments existed (`BEFORE_REF`, run
   from a `git archive` of its `lib/`) and by today's with one deployment at 100 %, drift
   sampling off and on (the deployed endpoint samples inputs when its model has a training
   profile). Interleaved rounds, medians, ratios to the first.
5. The scoring app's own time per single-row request (in process, ASGI calls with no network, no
   uvicorn), before deployments and today: what the routing adds to the hot path.

Ends with the line `redeploy: N requests, F failed, p99 during switches X ms` ("during a switch":
the request was in flight while a deploy, split change, rollback or restart was under way).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import requests  # noqa: E402

from bench.scoring import free_port, run_ab, train_and_deploy  # noqa: E402
from lib.local import tracking  # noqa: E402
from lib.local.drift import baseline_path  # noqa: E402
from lib.local.scoring import write_keys_file  # noqa: E402
from lib.local.scoring.routing import RoutingTable  # noqa: E402
from lib.settings import find_sample_data  # noqa: E402

ENDPOINT = "redeploy-bench"
# The scoring server before deployments (the parent of the commit that added them).
BEFORE_REF = "22dadcd^"


@dataclass
class Load:
    """`threads` keep-alive clients scoring `url` until stopped; every answer is kept."""

    url: str
    body: dict
    key: str
    threads: int = 8
    # (start, end, status or None, deployment) per request, perf_counter seconds
    answers: list[tuple[float, float, int | None, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)
        ]

    def _run(self) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        data = json.dumps(self.body)
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                r = session.post(self.url, data=data, headers=headers, timeout=30)
                status, deployment = r.status_code, r.headers.get("azureml-model-deployment")
            except requests.RequestException:
                status, deployment = None, None
            with self._lock:
                self.answers.append((start, time.perf_counter(), status, deployment))

    def start(self) -> None:
        for w in self._workers:
            w.start()

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=60)

    def count(self) -> int:
        with self._lock:
            return len(self.answers)

    def wait_for(self, n: int) -> None:
        target = self.count() + n
        while self.count() < target:
            time.sleep(0.02)

    def since(self, i: int) -> list[tuple]:
        with self._lock:
            return self.answers[i:]


def p99_ms(latencies: list[float]) -> float:
    return float(np.percentile(np.array(latencies) * 1000, 99)) if latencies else float("nan")


def sequence(eps, model_name: str, body: dict, split_requests: int) -> None:  # noqa: ANN001
    """Deploy → 10 % → 50 % → 100 % → rollback → restart under c=8 load; prints the result line."""
    if ENDPOINT in [e.name for e in eps.list()]:
        eps.delete(ENDPOINT)
    started = time.monotonic()
    eps.deploy(model_name, 1, ENDPOINT)
    ep = eps.wait_until_ready(ENDPOINT, timeout=300)
    if ep.state != "Succeeded":
        raise SystemExit(f"deploy failed: {ep.error}\n{eps.logs(ENDPOINT)}")
    print(f"blue (v1) serving after {time.monotonic() - started:.1f} s", flush=True)
    load = Load(ep.scoring_uri, body, eps.keys(ENDPOINT)[0])
    load.start()
    switches: list[tuple[str, float, float]] = []
    split_ok = True
    try:
        load.wait_for(500)

        def switch(label: str, action: Callable, expected: dict[str, int], count: int) -> None:
            nonlocal split_ok
            t0 = time.perf_counter()
            action()
            if label == "restart":
                ready = eps.wait_until_ready(ENDPOINT, timeout=600)
                if ready.state != "Succeeded":
                    raise SystemExit(f"restart failed: {ready.error}")
            t1 = time.perf_counter()
            switches.append((label, t0, t1))
            mark = load.count()
            load.wait_for(count)
            seen = Counter(a[3] for a in load.since(mark) if a[2] == 200)
            total = sum(seen.values())
            good = all(abs(100 * seen[k] / total - pct) <= 2 for k, pct in expected.items())
            split_ok &= good
            shares = ", ".join(f"{k} {100 * v / total:.2f} %" for k, v in sorted(seen.items()))
            print(
                f"  {label:18s} took {t1 - t0:5.2f} s; the next {total} answers: {shares}"
                f" ({'as set' if good else 'OFF'})",
                flush=True,
            )

        n = split_requests
        switch("green at 10 %", lambda: eps.deploy(model_name, 2, ENDPOINT, traffic=10),
               {"green": 10}, n)  # fmt: skip
        switch("split 50/50", lambda: eps.set_traffic(ENDPOINT, {"blue": 50, "green": 50}),
               {"green": 50}, n)  # fmt: skip
        switch("green at 100 %", lambda: eps.set_traffic(ENDPOINT, {"green": 100}),
               {"green": 100}, 2000)  # fmt: skip
        switch("rollback", lambda: eps.rollback(ENDPOINT), {"blue": 100}, 2000)
        switch("restart", lambda: eps.restart(ENDPOINT), {"blue": 100}, 2000)
    finally:
        load.stop()
    answers = load.since(0)
    failed = [a for a in answers if a[2] != 200]

    def in_switch(a: tuple) -> bool:
        return any(a[0] <= t1 and a[1] >= t0 for _, t0, t1 in switches)

    for label, t0, t1 in switches:
        window = [a[1] - a[0] for a in answers if a[0] <= t1 and a[1] >= t0]
        print(f"  {label:18s} {len(window):6d} requests in flight, p99 {p99_ms(window):6.1f} ms")
    steady = [a[1] - a[0] for a in answers if not in_switch(a)]
    print(
        f"  {'between switches':18s} {len(steady):6d} requests,           p99 {p99_ms(steady):6.1f} ms"
    )
    print("  history: " + " | ".join(e.detail for e in reversed(eps.history(ENDPOINT))))
    print(f"  every split within ±2 points: {'yes' if split_ok else 'NO'}")
    if failed:
        print(f"  failures by status: {Counter(a[2] for a in failed)}")
    during = [a[1] - a[0] for a in answers if in_switch(a)]
    print(
        f"redeploy: {len(answers)} requests, {len(failed)} failed, "
        f"p99 during switches {p99_ms(during):.0f} ms",
        flush=True,
    )


def source_tree(ref: str | None, tmp: Path) -> Path:
    """The repository (ref None) or `lib/` of an older commit, extracted under `tmp`."""
    if ref is None:
        return REPO
    tree = tmp / ref.replace("^", "-parent")
    if not tree.exists():
        tree.mkdir(parents=True)
        archive = tmp / f"{tree.name}.tar"
        archive.write_bytes(
            subprocess.run(
                ["git", "archive", "--format=tar", ref, "lib"],
                cwd=REPO,
                capture_output=True,
                check=True,
            ).stdout
        )
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
    return tree


@dataclass
class Variant:
    label: str
    ref: str | None  # None: today's code
    routing: bool  # --routing (deployments) or the single-model arguments
    drift: bool = False


VARIANTS = [
    Variant(f"before deployments ({BEFORE_REF})", BEFORE_REF, routing=False),
    Variant("today, 1 deployment at 100 %, drift off", None, routing=True),
    Variant("today, 1 deployment at 100 %, drift on", None, routing=True, drift=True),
]


def start_variant(v: Variant, home: Path, name: str, version: int, tmp: Path) -> tuple:
    compiled = home / "models" / name / f"v{version}" / "fastpath"
    if not (compiled / "verification.json").exists():
        raise SystemExit(f"{name} v{version} has no compiled fast path")
    slug = "".join(c if c.isalnum() else "-" for c in v.label)[:40]
    keys = tmp / f"{slug}-keys.json"
    key, _ = write_keys_file(keys)
    port = free_port()
    cmd = [
        sys.executable, "-m", "lib.local.scoring.serve",
        "--tracking-uri", tracking.tracking_uri(home), "--port", str(port),
        "--keys-file", str(keys), "--telemetry-db", str(tmp / f"{slug}.db"), "--endpoint", slug,
    ]  # fmt: skip
    if v.routing:
        baseline = baseline_path(home, name, version) if v.drift else None
        if v.drift and not baseline.exists():
            raise SystemExit(f"no training profile for {name} v{version}: deploy it first")
        table = RoutingTable.single(
            "blue",
            name,
            version,
            f"models:/{name}/{version}",
            fastpath_dir=str(compiled),
            baseline=str(baseline) if baseline else None,
        )
        (tmp / f"{slug}-routing.json").write_bytes(table.to_json())
        cmd += ["--routing", str(tmp / f"{slug}-routing.json")]
    else:
        cmd += ["--model-uri", f"models:/{name}/{version}", "--model-version", str(version),
                "--fastpath-dir", str(compiled)]  # fmt: skip
    log = (tmp / f"{slug}.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=source_tree(v.ref, tmp), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{v.label} exited:\n{(tmp / f'{slug}.log').read_text()}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/score", key
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{v.label} did not start")


def throughput(home: Path, name: str, body: dict, n: int, rounds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="opsdeck-redeploy-ab-"))
    body_path = tmp / "one.json"
    body_path.write_text(json.dumps(body))
    procs, targets = [], {}
    try:
        for v in VARIANTS:
            proc, url, key = start_variant(v, home, name, 1, tmp)
            procs.append(proc)
            targets[v.label] = (url, key)
        rps: dict[str, list[float]] = {label: [] for label in targets}
        order = list(targets)
        for r in range(rounds):
            for label in order if r % 2 == 0 else list(reversed(order)):
                url, key = targets[label]
                res = run_ab(url, body_path, key, n, 8)
                rps[label].append(res["rps"])
                print(f"  round {r + 1} {label:40s} {res['rps']:8.1f} req/s, failed {res['failed']}",
                      flush=True)  # fmt: skip
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    # On a shared machine the load moves between rounds: a round's servers ran back to back, so
    # the ratio within each round is steadier than the ratio of the medians.
    print(f"\nsingle row, c=8 (ab -n {n}), {rounds} interleaved rounds:")
    print(f"  {'':40s} {'median':>8s}        {'median of per-round ratios':>26s}")
    for label in order:
        med = statistics.median(rps[label])
        ratios = [a / b for a, b in zip(rps[label], rps[order[0]], strict=True)]
        print(f"  {label:40s} {med:8.1f} req/s  {statistics.median(ratios):26.0%}")


APP_TIME = """
import asyncio, json, statistics, sys, time
from pathlib import Path
from lib.local.scoring import ScoringSettings, create_app, write_keys_file
from lib.local.scoring.serve import load_compiled
from lib.local.telemetry import TelemetryWriter

compiled, tmp, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
key, _ = write_keys_file(tmp / "app-keys.json")
# Telemetry on, as in a server (the rows are written by the writer's thread).
writer = TelemetryWriter(tmp / f"app-{time.time_ns()}.db", endpoint="app")
settings = ScoringSettings(keys_file=tmp / "app-keys.json", telemetry=writer)
app = create_app(load_compiled(compiled), settings)
body = sys.stdin.buffer.read()
scope = {"type": "http", "method": "POST", "path": "/score", "query_string": b"",
         "headers": [(b"authorization", b"Bearer " + key.encode()),
                     (b"content-type", b"application/json"),
                     (b"content-length", str(len(body)).encode())],
         "server": ("127.0.0.1", 5000), "scheme": "http"}
async def receive():
    return {"type": "http.request", "body": body, "more_body": False}
sent = []
async def send(message):
    sent.append(message)
async def run(k):
    for _ in range(k):
        await app(scope, receive, send)
asyncio.run(run(2000))
assert sent[-2]["status"] == 200, sent[-1]
blocks = []
for _ in range(7):
    t = time.perf_counter()
    asyncio.run(run(n))
    blocks.append((time.perf_counter() - t) / n * 1e6)
print(json.dumps(statistics.median(blocks)))
"""


def app_time(home: Path, name: str, body: dict, rounds: int, n: int = 5000) -> None:
    """Microseconds of the app per single-row request, before deployments and today."""
    tmp = Path(tempfile.mkdtemp(prefix="opsdeck-redeploy-app-"))
    compiled = home / "models" / name / "v1" / "fastpath"
    label = {BEFORE_REF: f"before deployments ({BEFORE_REF})", None: "today, 1 deployment"}
    times: dict[str, list[float]] = {v: [] for v in label.values()}
    for r in range(rounds):
        for ref in (BEFORE_REF, None) if r % 2 == 0 else (None, BEFORE_REF):
            out = subprocess.run(
                [sys.executable, "-c", APP_TIME, str(compiled), str(tmp), str(n)],
                cwd=source_tree(ref, tmp),
                input=json.dumps(body).encode(),
                capture_output=True,
                check=True,
            )
            times[label[ref]].append(float(out.stdout.decode().strip().splitlines()[-1]))
    print(f"\nthe app's time per single-row request (in process, median of {rounds} runs):")
    for text, values in times.items():
        print(f"  {text:40s} {statistics.median(values):7.1f} µs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=30)
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=find_sample_data())
    ap.add_argument("--split-requests", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=5000, help="ab requests per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-sequence", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    if args.data is None:
        raise SystemExit(
            "bankmarketing_train.csv not found: pass --data or set OPSDECK_SAMPLE_DATA"
        )
    home = args.home or Path(tempfile.mkdtemp(prefix="opsdeck-redeploy-"))
    ws, model = train_and_deploy(home, args.budget, args.data)
    if len([m for m in ws.models.list() if m.name == model.name]) < 2:
        ws.models.register(model.source_job, model.name)
    one = json.loads(pd.read_csv(args.data).drop(columns="y").head(1).to_json(orient="records"))
    body = {"data": one}
    try:
        if not args.skip_throughput:
            # The deployed endpoint builds the training profile drift sampling needs.
            from lib.local.drift import ensure_baseline

            ensure_baseline(ws.extras["store"], model.name, 1)
            throughput(home, model.name, body, args.requests, args.rounds)
            app_time(home, model.name, body, args.rounds)
        if not args.skip_sequence:
            sequence(ws.endpoints, model.name, body, args.split_requests)
    finally:
        try:
            ws.endpoints.delete(ENDPOINT)
        except Exception:  # noqa: BLE001
            pass


if __name__ == "__main__":
    main()
