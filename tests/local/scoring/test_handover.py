"""Server processes with a control socket: apply a routing table, hand the port to a new process."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests

from lib.local.scoring import write_keys_file
from lib.local.scoring.control import ControlError, call, control_id
from lib.local.scoring.routing import DeploymentSpec, RoutingTable
from tests.local.scoring_models import records
from tests.support.load import Load
from tests.support.ports import free_port
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def table(models, traffic: dict, generation: int, green_uri: str | None = None) -> RoutingTable:
    return RoutingTable(
        {
            "blue": DeploymentSpec("fast-lgbm", 1, models.fast_uri),
            "green": DeploymentSpec("plain-sklearn", 1, green_uri or models.sklearn_uri),
        },
        traffic,
        {},
        generation,
    )


class Server:
    def __init__(self, tmp: Path, models, port: int, stem: str, takeover: int | None = None):
        cmd = [
            sys.executable, "-m", "lib.local.scoring.serve", "--routing", str(tmp / "routing.json"),
            "--tracking-uri", models.tracking_uri, "--port", str(port),
            "--keys-file", str(tmp / "keys.json"), "--telemetry-db", str(tmp / "t.db"),
            "--endpoint", "handover-ep", "--control", stem, "--drain-timeout", "20",
        ]  # fmt: skip
        if takeover is not None:
            cmd += ["--takeover", str(takeover)]
        self.log = tmp / f"server-{len(list(tmp.glob('server-*')))}.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        self.stem = stem

    def status(self) -> dict | None:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            return call(self.stem, self.proc.pid, {"op": "status"})
        except ControlError:
            return None

    def serving(self) -> bool:
        answer = self.status()
        return bool(answer and answer["serving"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def test_apply_then_hand_the_port_to_a_new_process_under_load(tmp_path, models):
    key, _ = write_keys_file(tmp_path / "keys.json")
    (tmp_path / "routing.json").write_bytes(table(models, {"blue": 100}, 1).to_json())
    port, stem = free_port(), control_id(tmp_path)
    url = f"http://127.0.0.1:{port}/score"
    body = {"data": records(models.frame, 2)}
    old = Server(tmp_path, models, port, stem)
    new = None
    try:
        # Loading through MLflow alone takes 20+ s when the machine is busy.
        wait_for(old.serving, timeout=120, what="first server serving")
        assert old.status()["traffic"] == {"blue": 100}

        # Only the PID a client means answers it.
        with pytest.raises(ControlError):
            call(stem, old.proc.pid + 1, {"op": "status"}, timeout=1)

        with Load(url, body, key, threads=8) as load:
            load.wait_for_more(200)
            answer = call(
                stem,
                old.proc.pid,
                {"op": "apply", "table": table(models, {"blue": 50, "green": 50}, 2).to_dict()},
                timeout=120,
            )
            assert answer["ok"] and answer["generation"] == 2, answer
            assert answer["deployments"]["green"]["path"] == "pyfunc"
            since = load.count()
            load.wait_for_more(400)
            split = load.deployments(since)
            assert set(split) == {"blue", "green"}

            # A table that cannot load is refused; the split stays as it was.
            bad = table(models, {"blue": 50, "green": 50}, 3, "models:/no-such-model/1")
            answer = call(stem, old.proc.pid, {"op": "apply", "table": bad.to_dict()}, timeout=120)
            assert not answer["ok"] and "green" in answer["error"]
            assert old.status()["generation"] == 2

            # Restart for update: the new process loads, takes the socket, the old one drains.
            (tmp_path / "routing.json").write_bytes(table(models, {"green": 100}, 4).to_json())
            new = Server(tmp_path, models, port, stem, takeover=old.proc.pid)
            wait_for(lambda: old.proc.poll() is not None, timeout=180, what="old server drained")
            assert new.serving() and new.status()["generation"] == 4
            since = load.count()
            load.wait_for_more(200)
            assert set(load.deployments(since)) == {"green"}
        assert old.proc.returncode == 0, old.log.read_text()
        assert load.failures() == [], Counter(a.error for a in load.failures())
        assert "listening socket handed over" in old.log.read_text()
        assert "drained" in old.log.read_text()
        assert requests.post(url, json=body, headers={"Authorization": f"Bearer {key}"}).ok
    finally:
        old.stop()
        if new is not None:
            new.stop()
