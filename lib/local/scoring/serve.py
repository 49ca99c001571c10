"""Process entry point of a local endpoint: load its deployments once, serve them on uvicorn.

    python -m lib.local.scoring.serve --routing routing.json --tracking-uri sqlite:////abs/mlflow.db \\
        --port 5001 --keys-file keys.json --telemetry-db telemetry.db --endpoint name \\
        [--control STEM] [--takeover PID]

`--routing` names the deployments and their traffic (`routing.RoutingTable`); a single model can
be given instead with `--model-uri` (and `--fastpath-dir`, `--model-version`, `--deployment`).
With `--control`, the server answers on its control socket (`control`): `status`, `apply` (load
and verify a new routing table, then swap it in between two requests), `listener` and `drain`.
With `--takeover PID` it loads and verifies everything first, then takes the listening socket of
the running server PID (which keeps accepting until it is told to drain), so a restart refuses
no connection. Draining stops accepting, answers every request with `Connection: close`, and
exits once the open connections are gone.

Console lines go to stderr and, as traces, to the telemetry store. SIGTERM/SIGINT shut the
server down gracefully and flush telemetry before exit.
"""

from __future__ import annotations

import os

# Single-threaded numeric libraries: on a busy machine OpenMP threads waiting for a core turn a
# 0.1 ms predict into 15 ms (reference/performance.md). Must be set before numpy & co. load.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import itertools  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from lib.local.scoring.app import ScoringApp, ScoringSettings  # noqa: E402
from lib.local.scoring.connections import (  # noqa: E402
    add_guard_arguments,
    connection_cap,
    guarded_protocol,
    raise_fd_limit,
)
from lib.local.scoring.control import ControlError, ControlServer, take_listener  # noqa: E402
from lib.local.scoring.payloads import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS  # noqa: E402
from lib.local.scoring.routing import (  # noqa: E402
    DeploymentSpec,
    Routes,
    RoutingError,
    RoutingTable,
    load_routes,
)
from lib.local.scoring.served_model import ServedModel, prepare_compiled, prepare_model  # noqa: E402
from lib.local.scoring.server_log import DEFAULT_MAX_BYTES as LOG_MAX_BYTES  # noqa: E402
from lib.local.scoring.server_log import RotatingStderrHandler  # noqa: E402
from lib.local.telemetry import TelemetryWriter, TraceHandler  # noqa: E402

log = logging.getLogger("opsdeck.serve")

BACKLOG = 2048
# How long a draining server waits for its open connections before it closes them.
DRAIN_TIMEOUT_S = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m lib.local.scoring.serve", description=__doc__.splitlines()[0]
    )
    p.add_argument("--routing", type=Path, default=None, help="routing table (JSON)")
    p.add_argument("--model-uri", default=None, help="models:/name/version, runs:/..., or a path")
    p.add_argument("--tracking-uri", default=None, help="absolute MLflow tracking/registry URI")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument(
        "--keys-file",
        type=Path,
        required=True,
        help="JSON with primary_key/secondary_key (mode 600)",
    )
    p.add_argument("--telemetry-db", type=Path, required=True)
    p.add_argument("--endpoint", required=True, help="endpoint name recorded with every request")
    p.add_argument("--model-version", default="")
    p.add_argument("--deployment", default="default", help="deployment name of --model-uri")
    p.add_argument(
        "--fastpath-dir",
        type=Path,
        default=None,
        help="a compiled model (lib.local.fastpath) to serve with numpy only, skipping MLflow",
    )
    p.add_argument(
        "--control", default=None, help="control socket stem (lib.local.scoring.control)"
    )
    p.add_argument("--takeover", type=int, default=None, help="PID of the server to take over")
    p.add_argument("--drain-timeout", type=float, default=DRAIN_TIMEOUT_S)
    p.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    add_guard_arguments(p)
    p.add_argument("--log-max-bytes", type=int, default=LOG_MAX_BYTES, help="0: no rotation")
    p.add_argument(
        "--swagger-training-values",
        choices=("on", "off"),
        default=None,
        help="real training values in /swagger.json and /docs (default: the settings)",
    )
    args = p.parse_args(argv)
    if (args.routing is None) == (args.model_uri is None):
        p.error("give either --routing or --model-uri")
    if args.takeover is not None and args.control is None:
        p.error("--takeover needs --control")
    return args


def load_pyfunc(model_uri: str, tracking_uri: str | None, dst: Path) -> Any:
    """Load the registered model through MLflow (the reference `predict` the fast path is checked against)."""
    import mlflow.pyfunc

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    # NB: suppress_warnings skips the pip-requirements comparison, a slow metadata scan.
    return mlflow.pyfunc.load_model(model_uri, suppress_warnings=True, dst_path=str(dst))


def load_compiled(directory: Path) -> Any:
    """The compiled model and its verification report, ready for `create_app` (numpy only)."""
    import json

    from lib.local.fastpath import load

    report_path = Path(directory) / "verification.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return prepare_compiled(load(directory), report)


class ModelLoader:
    """Loads a deployment's model: its verified compiled fast path, else MLflow's pyfunc."""

    def __init__(self, tracking_uri: str | None, dst: Path) -> None:
        self.tracking_uri = tracking_uri
        self.dst = dst
        self._count = itertools.count()

    def __call__(self, name: str, spec: DeploymentSpec) -> ServedModel:
        started = time.perf_counter()
        compiled = Path(spec.fastpath_dir) if spec.fastpath_dir else None
        if compiled is not None and (compiled / "verification.json").exists():
            served = load_compiled(compiled)
        else:
            folder = self.dst / f"{name}-{next(self._count)}"
            folder.mkdir(parents=True)
            served = prepare_model(load_pyfunc(spec.model_uri, self.tracking_uri, folder))
        log.info(
            "deployment %s (model version %s) loaded in %.2f s: scoring path: %s (%s)",
            name,
            spec.model_version,
            time.perf_counter() - started,
            served.path,
            served.check_message,
        )
        return served


def routing_table(args: argparse.Namespace) -> RoutingTable:
    if args.routing is not None:
        return RoutingTable.load(args.routing)
    uri = str(args.model_uri)
    parts = uri.split("/")
    name = parts[1] if uri.startswith("models:/") and len(parts) > 2 else ""
    version = int(args.model_version) if str(args.model_version).isdigit() else 0
    fastpath = str(args.fastpath_dir) if args.fastpath_dir else None
    return RoutingTable.single(args.deployment, name, version, uri, fastpath_dir=fastpath)


def set_baselines(writer: TelemetryWriter, routes: Routes, previous: Routes | None) -> None:
    """Drift sampling of each served deployment against its model's training profile."""
    for name in set(previous.deployed if previous else ()) - set(routes.deployed):
        writer.set_baseline(None, name)
    for name, deployed in routes.deployed.items():
        path = deployed.spec.baseline if deployed.spec else None
        if not path or not Path(path).exists():
            writer.set_baseline(None, name)
            continue
        try:
            from lib.drift import Baseline

            writer.set_baseline(Baseline.from_json(Path(path).read_text()), name)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("deployment %s: no drift sampling (%s)", name, exc)


def bind(host: str, port: int) -> socket.socket:
    """The endpoint's socket, bound; uvicorn starts listening on it once it serves."""
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets that say TCP, and
    # with it on, every answer on a kept-alive connection waited ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


async def drain(server: Any, app: ScoringApp, timeout: float) -> None:
    """Stop accepting (the socket lives on in the new server), let open connections finish."""
    app.draining = True
    for listener in server.servers:
        listener.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Idle keep-alive connections end at uvicorn's keep-alive timeout; busy ones after their
    # next answer (which says `Connection: close`): neither is closed under a client.
    while server.server_state.connections and loop.time() < deadline:
        await asyncio.sleep(0.05)
    log.info("drained (%d connections left)", len(server.server_state.connections))
    server.should_exit = True


class Controller:
    """Answers the control socket: status, apply, listener, drain."""

    def __init__(
        self,
        app: ScoringApp,
        server: Any,
        sock: socket.socket,
        load: ModelLoader,
        writer: TelemetryWriter,
        drain_timeout: float,
    ) -> None:
        self.app, self.server, self.sock = app, server, sock
        self.load, self.writer = load, writer
        self.drain_timeout = drain_timeout
        self._apply = threading.Lock()

    def status(self) -> dict[str, Any]:
        return {
            "ok": True,
            "pid": os.getpid(),
            "serving": bool(self.server.started) and not self.app.draining,
            "draining": self.app.draining,
            "mirror_dropped": self.app.mirror.dropped,
            **self.app.routes.describe(),
        }

    def __call__(self, message: dict[str, Any], conn: socket.socket) -> dict[str, Any] | None:
        op = message.get("op")
        if op == "status":
            return self.status()
        if op == "apply":
            return self.apply(message.get("table") or {})
        if op == "listener":
            socket.send_fds(conn, [b'{"ok": true}\n'], [self.sock.fileno()])
            log.info("listening socket handed over")
            return None
        if op == "drain":
            if self.app.loop is None or self.app.draining:
                return {"ok": False, "error": "not serving"}
            asyncio.run_coroutine_threadsafe(
                drain(self.server, self.app, self.drain_timeout), self.app.loop
            )
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        # One apply at a time: each builds on the routes the previous one left.
        with self._apply:
            started = time.perf_counter()
            previous = self.app.routes
            try:
                table = RoutingTable.from_dict(data)
                routes = load_routes(table, self.load, previous)
            except RoutingError as exc:
                log.warning("routing table %s refused: %s", data.get("generation"), exc)
                return {"ok": False, "error": str(exc)}
            set_baselines(self.writer, routes, previous)
            self.app.set_routes(routes)
            log.info(
                "routing table %d applied in %.2f s: traffic %s, mirror %s",
                table.generation,
                time.perf_counter() - started,
                routes.traffic,
                routes.mirror_share or "none",
            )
            return self.status()


def _release_memory() -> None:
    # The model load leaves MLflow's import-time garbage behind: collect it, hand freed heap back
    # to the OS, and freeze what survives so the collector never rescans it on the request path.
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    gc.freeze()


def _setup_logging(writer: TelemetryWriter, log_max_bytes: int = LOG_MAX_BYTES) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = RotatingStderrHandler(log_max_bytes)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    traces = TraceHandler(writer)
    traces.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root.addHandler(console)
    root.addHandler(traces)
    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _listener(args: argparse.Namespace) -> socket.socket:
    if args.takeover is not None:
        try:
            sock = take_listener(args.control, args.takeover)
            log.info("took over the listening socket of server %d", args.takeover)
            return sock
        except ControlError as exc:
            # The old server is gone: its port is free (or held by something we must not share).
            log.info(
                "server %d did not hand its socket over (%s): binding the port", args.takeover, exc
            )
    return bind(args.host, args.port)


def _drain_when_serving(server: Any, stem: str, old_pid: int, timeout: float = 60.0) -> None:
    """Once this server accepts on the shared socket, tell the old one to drain."""
    from lib.local.scoring.control import call

    deadline = time.monotonic() + timeout
    while not server.started:
        if server.should_exit or time.monotonic() > deadline:
            return
        time.sleep(0.01)
    try:
        answer = call(stem, old_pid, {"op": "drain"})
        log.info("server %d told to drain: %s", old_pid, answer)
    except ControlError as exc:
        log.info("server %d could not be told to drain (%s)", old_pid, exc)


def _swagger_training_values(args: argparse.Namespace) -> bool:
    if args.swagger_training_values is not None:
        return args.swagger_training_values == "on"
    from lib.settings import load_settings

    return load_settings().swagger_training_values


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    fd_limit = raise_fd_limit()
    writer = TelemetryWriter(args.telemetry_db, endpoint=args.endpoint)
    _setup_logging(writer, args.log_max_bytes)
    control: ControlServer | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="opsdeck-model-") as dst:
            try:
                table = routing_table(args)
                log.info(
                    "loading deployments %s (routing table %d)", table.serving(), table.generation
                )
                loader = ModelLoader(args.tracking_uri, Path(dst))
                routes = load_routes(table, loader)
                loaded_at = time.perf_counter()
                settings = ScoringSettings(
                    endpoint=args.endpoint,
                    model_version=str(args.model_version),
                    keys_file=args.keys_file,
                    max_rows=args.max_rows,
                    max_bytes=args.max_bytes,
                    telemetry=writer,
                    swagger_training_values=_swagger_training_values(args),
                )
                app = ScoringApp(routes, settings)
                set_baselines(writer, routes, None)
                import uvicorn

                _release_memory()
                # Last: until the server serves, a restart's old server keeps the port alone.
                sock = _listener(args)
            except Exception:
                log.exception("could not start endpoint %s", args.endpoint)
                return 2
            config = uvicorn.Config(
                app,
                host=args.host,
                port=args.port,
                workers=1,
                access_log=False,
                log_level="warning",
                log_config=None,
                lifespan="on",
                timeout_graceful_shutdown=10,
                backlog=BACKLOG,
                http=guarded_protocol(
                    args.receipt_timeout, connection_cap(args.max_connections, fd_limit, BACKLOG)
                ),
            )
            server = uvicorn.Server(config)
            if args.control:
                handler = Controller(app, server, sock, loader, writer, args.drain_timeout)
                control = ControlServer(args.control, handler).start()
            if args.takeover is not None:
                threading.Thread(
                    target=_drain_when_serving,
                    args=(server, args.control, args.takeover),
                    name="takeover",
                    daemon=True,
                ).start()
            log.info(
                "endpoint %s ready in %.2f s (models loaded in %.2f s) on http://%s:%d "
                "(traffic %s; scoring path: %s; %s)",
                args.endpoint,
                time.perf_counter() - started,
                loaded_at - started,
                args.host,
                args.port,
                routes.traffic,
                app.served.path,
                app.served.check_message,
            )
            # NB: uvicorn re-raises the stop signal once it has shut down; a no-op handler turns
            # that into a normal return so telemetry is flushed and the exit code is 0.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: None)
            server.run(sockets=[sock])
            log.info("endpoint %s stopped", args.endpoint)
            return 0 if server.started else 1
    finally:
        if control is not None:
            control.close()
        writer.close()


if __name__ == "__main__":
    sys.exit(main())
