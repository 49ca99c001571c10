from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lib.local.scoring import ScoringSettings, create_app, write_keys_file
from lib.local.telemetry import TelemetryWriter
from tests.local.scoring_models import LiveServer, loaded, registered


@dataclass
class Endpoint:
    url: str
    keys_file: Path
    primary: str
    secondary: str
    telemetry_db: Path
    writer: TelemetryWriter
    app: object
    name: str


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return registered(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def fast_pyfunc(tmp_path_factory, models):
    return loaded(tmp_path_factory.getbasetemp(), "fast")


@pytest.fixture(scope="session")
def broken_pyfunc(tmp_path_factory, models):
    return loaded(tmp_path_factory.getbasetemp(), "broken")


@pytest.fixture(scope="session")
def sklearn_pyfunc(tmp_path_factory, models):
    return loaded(tmp_path_factory.getbasetemp(), "sklearn")


def _serve(tmp: Path, pyfunc, name: str, **limits) -> tuple[Endpoint, LiveServer]:
    keys_file = tmp / f"{name}-keys.json"
    primary, secondary = write_keys_file(keys_file)
    db = tmp / f"{name}-telemetry.db"
    writer = TelemetryWriter(db, endpoint=name, flush_interval=0.05)
    settings = ScoringSettings(
        endpoint=name, model_version="1", keys_file=keys_file, telemetry=writer, **limits
    )
    app = create_app(pyfunc, settings)
    server = LiveServer(app)
    return Endpoint(server.url, keys_file, primary, secondary, db, writer, app, name), server


@pytest.fixture(scope="session")
def fast_endpoint(tmp_path_factory, fast_pyfunc):
    ep, server = _serve(
        tmp_path_factory.mktemp("fast"), fast_pyfunc, "fast-ep", max_rows=500, max_bytes=200_000
    )
    yield ep
    server.stop()
    ep.writer.close()


@pytest.fixture(scope="session")
def sklearn_endpoint(tmp_path_factory, sklearn_pyfunc):
    ep, server = _serve(tmp_path_factory.mktemp("sk"), sklearn_pyfunc, "sk-ep")
    yield ep
    server.stop()
    ep.writer.close()
