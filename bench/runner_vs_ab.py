"""Does lib.benchmark measure the server, not itself? Compare it with ab, interleaved.

    .venv/bin/python bench/runner_vs_ab.py [--requests 5000] [--rounds 3]
        [--model-url URL --key-env VAR --body-file F --model-requests 1000]

Targets (each started here on a free loopback port unless given):
  hello       raw ASGI hello-world on uvicorn (h11: no HTTP/1.0 keep-alive, so ab -k cannot reuse
              connections there; compare its rows with our new-connection mode)
  hello-ka    asyncio hello-world that honours HTTP/1.0 and 1.1 keep-alive (ab -k vs our pool)
  synthetic   uvicorn app whose POST /score parses the JSON body and burns ~--work-ms of CPU,
              a stand-in for a model endpoint
  model       --model-url, if given

Rows are medians over rounds; in each round the tools alternate order (A B, then B A).
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

from lib.benchmark import (  # noqa: E402
    BenchmarkConfig,
    ab_available,
    load_bodies,
    run_ab,
    run_benchmark,
)

UVICORN_APP = r"""
import json, sys, time, uvicorn
WORK_S = float(sys.argv[2]) / 1000.0

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    if scope["path"] == "/score":
        rows = json.loads(body)["data"]
        end = time.perf_counter() + WORK_S
        while time.perf_counter() < end:
            pass
        out = json.dumps({"result": ["no"] * len(rows)}).encode()
    else:
        out = b"Hello world!"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

KEEPALIVE_SERVER = r"""
import asyncio, sys

class Hello(asyncio.Protocol):
    def connection_made(self, t):
        self.t, self.buf = t, b""
    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            i = head.find(b"content-length:")
            n = int(head[i + 15:].split(b"\r\n", 1)[0]) if i >= 0 else 0
            if len(self.buf) < end + 4 + n:
                return
            self.buf = self.buf[end + 4 + n:]
            v10 = head.split(b"\r\n", 1)[0].endswith(b"1.0")
            keep = (b"connection: keep-alive" in head) if v10 else (b"connection: close" not in head)
            conn = b"keep-alive" if keep else b"close"
            self.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: "
                         + conn + b"\r\n\r\nHello world!")
            if not keep:
                self.t.close()
                return

async def main():
    server = await asyncio.get_running_loop().create_server(Hello, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    await server.serve_forever()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(source: str, *args: str) -> tuple[subprocess.Popen, int]:
    path = Path(tempfile.mkdtemp(prefix="opsdeck-bench-")) / "server.py"
    path.write_text(source)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(path), str(port), *args], stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=5000, help="per run, hello targets")
    p.add_argument("--model-requests", type=int, default=600, help="per run, model targets")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--work-ms", type=float, default=5.0, help="CPU per request of the synthetic model"
    )
    p.add_argument("--model-url")
    p.add_argument("--key-env")
    p.add_argument("--body-file", type=Path)
    p.add_argument("--targets", default="hello,hello-ka,synthetic,model")
    p.add_argument("--json", type=Path, help="write all raw rows here")
    args = p.parse_args()
    if ab_available() is None:
        print("ab is not installed (apt-get install apache2-utils)")
        return 2

    procs = []
    targets: list[tuple[str, str, list, int]] = []
    wanted = set(args.targets.split(","))
    body = [{"data": [{"age": 17, "job": "blue-collar", "marital": "married", "duration": 971}]}]
    if "hello" in wanted:
        proc, port = start(UVICORN_APP, "0")
        procs.append(proc)
        targets.append(("hello", f"http://127.0.0.1:{port}/", [], args.requests))
    if "hello-ka" in wanted:
        proc, port = start(KEEPALIVE_SERVER)
        procs.append(proc)
        targets.append(("hello-ka", f"http://127.0.0.1:{port}/", [], args.requests))
    if "synthetic" in wanted:
        proc, port = start(UVICORN_APP, str(args.work_ms))
        procs.append(proc)
        targets.append(("synthetic", f"http://127.0.0.1:{port}/score", body, args.model_requests))
    key = os.environ.get(args.key_env) if args.key_env else None
    if args.model_url and "model" in wanted:
        bodies = load_bodies(args.body_file) if args.body_file else body
        targets.append(("model", args.model_url, bodies, args.model_requests))

    rows: list[dict] = []
    try:
        for rnd in range(args.rounds):
            for name, url, bodies, n in targets:
                for conc in (1, 8):
                    for keep_alive in (True, False):
                        config = BenchmarkConfig(
                            url=url,
                            key=key if name == "model" else None,
                            method="POST" if bodies else "GET",
                            concurrency=conc,
                            requests=n,
                            warmup=min(200, n // 10),
                            keep_alive=keep_alive,
                            timeout_s=30,
                        )
                        runners = [("opsdeck", run_benchmark), ("ab", run_ab)]
                        if rnd % 2:
                            runners.reverse()
                        for tool, run in runners:
                            r = run(config, bodies or None)
                            rows.append(
                                {
                                    "round": rnd,
                                    "target": name,
                                    "tool": tool,
                                    "mode": "keep-alive" if keep_alive else "new-conn",
                                    "c": conc,
                                    "rps": r.throughput_rps,
                                    "p50": r.p50_ms,
                                    "p99": r.p99_ms,
                                    "errors": r.errors,
                                    "workers": r.workers,
                                    "cpu_s": r.client_cpu_s,
                                }
                            )
                            print(".", end="", flush=True)
    finally:
        for proc in procs:
            proc.kill()
    print()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))

    def med(sel: list[dict], key: str) -> float:
        vals = [r[key] for r in sel if r[key] is not None]
        return statistics.median(vals) if vals else float("nan")

    print(f"cores: {os.cpu_count()}, rounds: {args.rounds}, medians; ratio = opsdeck / ab")
    header = f"{'target':<10} {'mode':<10} {'c':>2} | {'tool':<7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'err':>4}"
    print(header + f" | {'rps ratio':>9} {'p50 ratio':>9} {'p99 ratio':>9}")
    print("-" * (len(header) + 33))
    for name, *_ in targets:
        for mode in ("keep-alive", "new-conn"):
            for conc in (1, 8):
                stats = {}
                for tool in ("opsdeck", "ab"):
                    sel = [
                        r
                        for r in rows
                        if (r["target"], r["mode"], r["c"], r["tool"]) == (name, mode, conc, tool)
                    ]
                    stats[tool] = {k: med(sel, k) for k in ("rps", "p50", "p99", "errors")}
                for tool in ("opsdeck", "ab"):
                    s = stats[tool]
                    line = f"{name:<10} {mode:<10} {conc:>2} | {tool:<7} {s['rps']:>9.1f} {s['p50']:>8.3f} {s['p99']:>8.3f} {s['errors']:>4.0f}"
                    if tool == "opsdeck":
                        a = stats["ab"]
                        line += f" | {s['rps'] / a['rps']:>9.2f} {s['p50'] / a['p50']:>9.2f} {s['p99'] / a['p99']:>9.2f}"
                    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
