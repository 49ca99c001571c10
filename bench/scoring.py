"""Scoring servers compared in one run: our endpoint vs `mlflow models serve` vs a FastAPI hello-world.

    .venv/bin/python bench/scoring.py [--budget 60] [--requests 5000] [--rounds 2]
        [--home DIR]  (reuse a workspace that already has a registered model)

1. Trains the best AutoML model on Bank Marketing (the same job the dashboard runs),
   registers it and deploys it on our scoring server (telemetry on, as in use).
2. Serves the same registered model with `mlflow models serve --env-manager local`.
3. Starts a FastAPI hello-world on uvicorn (the HTTP floor).
4. For each server: cold start (process start → first 200) and RSS (process tree, MB).
5. `ab -n N` with a 1-row and a 100-row body at -c 1 and -c 8, interleaved (A B C, then C B A),
   prints req/s, p50/p99 and the ratios; checks our predictions against `pyfunc.predict` on the
   holdout rows.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from lib.backend import open_workspace  # noqa: E402
from lib.benchmark import parse_ab_output  # noqa: E402
from lib.local import tracking  # noqa: E402
from lib.settings import find_sample_data, load_settings  # noqa: E402
from lib.workspace import AutoMLRequest  # noqa: E402

HELLO_APP = """
from fastapi import FastAPI
app = FastAPI()

@app.post("/score")
async def score(payload: dict):
    return {"result": ["hello"]}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20


def wait_ready(url: str, body: bytes, headers: dict, started: float, timeout: float = 120) -> float:
    """Seconds from `started` to the first 200 on a real scoring request."""
    while time.monotonic() - started < timeout:
        try:
            if requests.post(url, data=body, headers=headers, timeout=2).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


def run_ab(url: str, body_path: Path, key: str | None, n: int, c: int) -> dict:
    cmd = ["ab", "-n", str(n), "-c", str(c), "-l", "-p", str(body_path), "-T", "application/json"]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=1800)
    parsed = parse_ab_output(out.stdout)
    pct = parsed["percentiles_ms"]
    return {
        "rps": parsed["requests_per_second"],
        "p50": pct.get(50),
        "p99": pct.get(99),
        "failed": parsed["failed"] + parsed["non_2xx"],
    }


def train_and_deploy(home: Path, budget: int, data: Path):  # noqa: ANN201
    os.environ["OPSDECK_HOME"] = str(home)
    ws = open_workspace(load_settings())
    models = [m for m in ws.models.list() if m.name == "bank-bench"]
    if not models:
        ws.datasets.upload("bank", data.read_bytes(), data.name)
        job = ws.automl.submit(
            AutoMLRequest(dataset="bank", dataset_version=1, target="y", time_budget_s=budget)
        )
        print(f"AutoML job {job.id}: {budget} s budget …", flush=True)
        while not (job := ws.automl.get(job.id)).is_terminal:
            time.sleep(2)
        if job.state != "Completed":
            raise SystemExit(f"AutoML failed: {job.error}\n{ws.automl.log_tail(job.id)}")
        model = ws.models.register(job.id, "bank-bench")
    else:
        model = models[0]
    return ws, model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=find_sample_data())
    args = ap.parse_args()
    if args.data is None:
        raise SystemExit(
            "bankmarketing_train.csv not found: pass --data or set OPSDECK_SAMPLE_DATA"
        )
    home = args.home or Path(tempfile.mkdtemp(prefix="opsdeck-bench-"))
    ws, model = train_and_deploy(home, args.budget, args.data)
    frame = pd.read_csv(args.data)
    features = frame.drop(columns="y")
    one = json.loads(features.head(1).to_json(orient="records"))
    hundred = json.loads(features.head(100).to_json(orient="records"))
    tmp = Path(tempfile.mkdtemp(prefix="opsdeck-bodies-"))

    servers: dict[str, dict] = {}
    procs: list[subprocess.Popen] = []
    try:
        # ours: deploy through the product (process start → first 200 measured from deploy).
        started = time.monotonic()
        ep = ws.endpoints.deploy(model.name, model.version, "bank-bench")
        key = ws.endpoints.keys(ep.name)[0]
        body1 = json.dumps({"data": one}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        cold = wait_ready(ep.scoring_uri, body1, headers, started)
        pid = (
            ws.endpoints.store.connect()
            .execute("SELECT pid FROM endpoints WHERE name=?", (ep.name,))
            .fetchone()[0]
        )
        servers["opsdeck"] = {
            "url": ep.scoring_uri,
            "key": key,
            "cold_s": cold,
            "pid": pid,
            "bodies": {1: {"data": one}, 100: {"data": hundred}},
        }

        port = free_port()
        # mlflow serve execs `uvicorn` by name: the venv's bin must be on PATH.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = dict(os.environ, MLFLOW_TRACKING_URI=tracking.tracking_uri(home), PATH=path)
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                model.uri,
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "--env-manager",
                "local",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}/invocations"
        split = {"dataframe_split": features.head(1).to_dict(orient="split")}
        split["dataframe_split"].pop("index", None)
        cold = wait_ready(
            url, json.dumps(split).encode(), {"Content-Type": "application/json"}, started
        )
        split100 = {"dataframe_split": features.head(100).to_dict(orient="split")}
        split100["dataframe_split"].pop("index", None)
        servers["mlflow serve"] = {
            "url": url,
            "key": None,
            "cold_s": cold,
            "pid": proc.pid,
            "bodies": {1: split, 100: split100},
        }

        hello = tmp / "hello_app.py"
        hello.write_text(HELLO_APP)
        port = free_port()
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "hello_app:app",
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}/score"
        cold = wait_ready(url, body1, {"Content-Type": "application/json"}, started)
        servers["fastapi hello"] = {
            "url": url,
            "key": None,
            "cold_s": cold,
            "pid": proc.pid,
            "bodies": {1: {"data": one}, 100: {"data": hundred}},
        }

        # Agreement of our endpoint with the registered model on 2,000 real rows.
        import mlflow.pyfunc

        mlflow.set_tracking_uri(tracking.tracking_uri(home))
        reference = mlflow.pyfunc.load_model(model.uri).predict(features.tail(2000))
        served = requests.post(
            servers["opsdeck"]["url"],
            json={"data": json.loads(features.tail(2000).to_json(orient="records"))},
            headers=headers,
            timeout=60,
        ).json()["result"]
        agree = sum(a == b for a, b in zip(served, list(reference), strict=True))

        for name, s in servers.items():
            s["rss_mb"] = tree_rss_mb(s["pid"])
            for rows, body in s["bodies"].items():
                path = tmp / f"{name.replace(' ', '_')}-{rows}.json"
                path.write_text(json.dumps(body))
                s[f"body_{rows}"] = path

        results: dict[tuple[str, int, int], list[dict]] = {}
        order = list(servers)
        for r in range(args.rounds):
            for rows in (1, 100):
                for c in (1, 8):
                    for name in order if r % 2 == 0 else reversed(order):
                        s = servers[name]
                        res = run_ab(s["url"], s[f"body_{rows}"], s["key"], args.requests, c)
                        results.setdefault((name, rows, c), []).append(res)
                        print(
                            f"  round {r + 1} {name:14s} rows={rows:3d} c={c}: {res['rps']:8.1f} req/s",
                            flush=True,
                        )
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, 15)
            except ProcessLookupError:
                pass
        try:
            ws.endpoints.delete("bank-bench")
        except Exception:  # noqa: BLE001
            pass

    print(
        f"\nmachine: {os.cpu_count()} cores; ab -n {args.requests}, medians of {args.rounds} rounds\n"
    )
    print(
        f"{'server':16s}{'rows':>5s}{'c':>3s}{'req/s':>10s}{'p50 ms':>8s}{'p99 ms':>8s}{'failed':>8s}"
    )
    med = {}
    for (name, rows, c), runs in sorted(
        results.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])
    ):
        m = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99", "failed")}
        med[(name, rows, c)] = m
        print(
            f"{name:16s}{rows:5d}{c:3d}{m['rps']:10.1f}{m['p50']:8.0f}{m['p99']:8.0f}{m['failed']:8.0f}"
        )
    print(f"\n{'server':16s}{'cold start s':>14s}{'RSS MB':>9s}")
    for name, s in servers.items():
        print(f"{name:16s}{s['cold_s']:14.2f}{s['rss_mb']:9.0f}")
    ours, peer, floor = (
        med[(n, 1, 8)]["rps"] for n in ("opsdeck", "mlflow serve", "fastapi hello")
    )
    print(
        f"\nsingle row, c=8: opsdeck / mlflow serve = {ours / peer:.1f}x (goal ≥ 40x); "
        f"opsdeck / FastAPI hello = {ours / floor:.0%} (goal ≥ 50%)"
    )
    print(f"predictions identical to pyfunc.predict on {agree}/2000 holdout rows")


if __name__ == "__main__":
    main()
