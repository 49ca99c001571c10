"""Process entry point of a local endpoint: load the model once, serve it on uvicorn.

    python -m lib.local.scoring.serve --model-uri models:/name/1 --tracking-uri sqlite:////abs/mlflow.db \\
        --port 5001 --keys-file keys.json --telemetry-db telemetry.db --endpoint name --model-version 1

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
import gc  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from lib.local.scoring.app import ScoringSettings, create_app  # noqa: E402
from lib.local.scoring.payloads import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS  # noqa: E402
from lib.local.scoring.served_model import prepare_compiled  # noqa: E402
from lib.local.telemetry import TelemetryWriter, TraceHandler  # noqa: E402

log = logging.getLogger("opsdeck.serve")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m lib.local.scoring.serve", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--model-uri", required=True, help="models:/name/version, runs:/..., or a local path"
    )
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
    p.add_argument(
        "--fastpath-dir",
        type=Path,
        default=None,
        help="a compiled model (lib.local.fastpath) to serve with numpy only, skipping MLflow",
    )
    p.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    return p.parse_args(argv)


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


def _setup_logging(writer: TelemetryWriter) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    traces = TraceHandler(writer)
    traces.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root.addHandler(console)
    root.addHandler(traces)
    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    writer = TelemetryWriter(args.telemetry_db, endpoint=args.endpoint)
    _setup_logging(writer)
    try:
        with tempfile.TemporaryDirectory(prefix="opsdeck-model-") as dst:
            log.info("loading model %s (version %s)", args.model_uri, args.model_version or "?")
            try:
                if args.fastpath_dir is not None:
                    model = load_compiled(args.fastpath_dir)
                else:
                    model = load_pyfunc(args.model_uri, args.tracking_uri, Path(dst))
                loaded_at = time.perf_counter()
                settings = ScoringSettings(
                    endpoint=args.endpoint,
                    model_version=str(args.model_version),
                    keys_file=args.keys_file,
                    max_rows=args.max_rows,
                    max_bytes=args.max_bytes,
                    telemetry=writer,
                )
                app = create_app(model, settings)
            except Exception:
                log.exception("could not start endpoint %s", args.endpoint)
                return 2
            import uvicorn

            _release_memory()
            log.info(
                "endpoint %s ready in %.2f s (model load %.2f s) on http://%s:%d (scoring path: %s; %s)",
                args.endpoint,
                time.perf_counter() - started,
                loaded_at - started,
                args.host,
                args.port,
                app.served.path,
                app.served.check_message,
            )
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
            )
            server = uvicorn.Server(config)
            # NB: uvicorn re-raises the stop signal once it has shut down; a no-op handler turns
            # that into a normal return so telemetry is flushed and the exit code is 0.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: None)
            server.run()
            log.info("endpoint %s stopped", args.endpoint)
            return 0 if server.started else 1
    finally:
        writer.close()


if __name__ == "__main__":
    sys.exit(main())
