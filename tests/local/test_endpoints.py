"""Local endpoints with real server processes: lifecycle, keys, deployments and traffic under
load, rollback, restart, reconcile, concurrency, crashes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path

import psutil
import pytest
import requests

from lib.local import supervisor, tracking
from lib.local.endpoints import LocalEndpoints
from lib.local.endpoints import servers as server_control
from lib.local.endpoints.deployments import Split, routing_table
from lib.local.store import Store
from lib.local.supervisor import ProcessRef
from lib.workspace import WorkspaceError
from tests.local.scoring_models import FastLightGBMModel, make_frame, records, train_booster
from tests.support.load import Load
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

MODEL = "fast-lgbm"
BODY = {"data": records(make_frame(5)[0], 2)}


def register_versions(home: Path, versions: int) -> None:
    """Register `versions` versions of a small LightGBM model in the home's MLflow registry."""
    import mlflow
    from mlflow.models import infer_signature

    uri = tracking.tracking_uri(home)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment(
        "endpoint-tests", artifact_location=tracking.artifact_root(home).as_uri()
    )
    X, y = make_frame()
    model = FastLightGBMModel(train_booster(X, y), ["no", "yes"])
    for _ in range(versions):
        with mlflow.start_run(experiment_id=experiment):
            # Explicit requirements: inferring them runs the model in a subprocess, for seconds.
            mlflow.pyfunc.log_model(
                name="model",
                python_model=model,
                signature=infer_signature(X, y),
                registered_model_name=MODEL,
                pip_requirements=["lightgbm"],
            )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace home with two registered model versions, shared by this module's tests."""
    path = tmp_path_factory.mktemp("endpoints-home")
    register_versions(path, 2)
    return path


@pytest.fixture
def endpoints(home: Path):  # noqa: ANN201
    eps = LocalEndpoints(Store(home))
    yield eps
    for ep in eps.list():
        eps.delete(ep.name)
    for proc in servers(eps):
        supervisor.stop(supervisor.identify(proc.pid), grace_s=2)


def servers(eps: LocalEndpoints, name: str | None = None) -> list[psutil.Process]:
    """Live processes serving (or about to serve) this workspace's endpoints."""
    prefix = str(eps.root) + os.sep + (f"{name}{os.sep}" if name else "")
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(
            a.startswith(prefix) and a.endswith("keys.json") for a in cmd
        ):
            found.append(proc)
    return found


def score(url: str, key: str) -> int | None:
    """The status code of a scoring request, or None when nothing listens."""
    try:
        return requests.post(
            url, json=BODY, headers={"Authorization": f"Bearer {key}"}, timeout=5
        ).status_code
    except requests.ConnectionError:
        return None


def recorded(eps: LocalEndpoints, name: str) -> ProcessRef | None:
    row = eps.store.connect().execute("SELECT * FROM endpoints WHERE name=?", (name,)).fetchone()
    return ProcessRef.of(row["pid"], row["pid_started"]) if row else None


def ready(eps: LocalEndpoints, name: str) -> str:
    return eps.wait_until_ready(name, timeout=90).state


def test_lifecycle_keys_regenerate_stop_restart_delete(endpoints: LocalEndpoints) -> None:
    ep = endpoints.deploy(MODEL, 1, "life-ep")
    assert ep.state == "Creating"
    assert ready(endpoints, "life-ep") == "Succeeded", endpoints.logs("life-ep")
    primary, secondary = endpoints.keys("life-ep")
    assert score(ep.scoring_uri, primary) == 200
    assert score(ep.scoring_uri, secondary) == 200
    assert score(ep.scoring_uri, "not-a-key") == 401
    assert endpoints.health("life-ep")

    new_primary, same_secondary = endpoints.regenerate_key("life-ep", "primary")
    assert same_secondary == secondary and new_primary != primary
    assert score(ep.scoring_uri, primary) == 401
    assert score(ep.scoring_uri, new_primary) == 200
    with pytest.raises(WorkspaceError):
        endpoints.regenerate_key("life-ep", "tertiary")

    assert endpoints.stop("life-ep").state == "Stopped"
    assert score(ep.scoring_uri, new_primary) is None
    assert [e.state for e in endpoints.list()] == ["Stopped"]

    again = endpoints.restart("life-ep")
    assert again.scoring_uri == ep.scoring_uri
    assert ready(endpoints, "life-ep") == "Succeeded"
    assert score(ep.scoring_uri, new_primary) == 200

    endpoints.delete("life-ep")
    assert endpoints.list() == []
    assert score(ep.scoring_uri, new_primary) is None
    assert not servers(endpoints, "life-ep")
    with pytest.raises(WorkspaceError):
        endpoints.keys("life-ep")


def answered_by(url: str, key: str) -> str | None:
    r = requests.post(url, json=BODY, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return r.headers.get("azureml-model-deployment") if r.status_code == 200 else None


def test_redeploy_is_a_new_deployment_in_the_same_server(endpoints: LocalEndpoints) -> None:
    first = endpoints.deploy(MODEL, 1, "move-ep")
    assert ready(endpoints, "move-ep") == "Succeeded", endpoints.logs("move-ep")
    keys = endpoints.keys("move-ep")
    server = recorded(endpoints, "move-ep")
    assert answered_by(first.scoring_uri, keys[0]) == "blue"
    # The running server loads and verifies v2, then routes to it: no restart, no Creating.
    second = endpoints.deploy(MODEL, 2, "move-ep")
    assert second.state == "Succeeded" and second.model_version == 2
    assert second.scoring_uri == first.scoring_uri and endpoints.keys("move-ep") == keys
    assert recorded(endpoints, "move-ep") == server and supervisor.is_alive(server)
    assert answered_by(first.scoring_uri, keys[0]) == "green"
    deployments = {d.name: d for d in endpoints.deployments("move-ep")}
    assert {n: (d.model_version, d.traffic) for n, d in deployments.items()} == {
        "blue": (1, 0),
        "green": (2, 100),
    }
    assert "agrees with pyfunc.predict" in deployments["green"].note
    assert [e.action for e in endpoints.history("move-ep")] == ["deploy", "deploy"]
    assert len(servers(endpoints, "move-ep")) == 1


def telemetry_by_deployment(eps: LocalEndpoints, name: str) -> Counter:
    with sqlite3.connect(eps.telemetry_db) as conn:
        rows = conn.execute(
            "SELECT Deployment, COUNT(*) FROM AppRequests WHERE Endpoint=? AND ResultCode='200'"
            " AND Name='POST /score' GROUP BY 1",
            (name,),
        ).fetchall()
    return Counter(dict(rows))


def share(counts: Counter, name: str) -> float:
    return 100 * counts[name] / sum(counts.values())


def test_no_request_fails_through_split_rollback_key_rotation_and_restart(
    endpoints: LocalEndpoints,
) -> None:
    name = "safe-ep"
    ep = endpoints.deploy(MODEL, 1, name)
    assert ready(endpoints, name) == "Succeeded", endpoints.logs(name)
    primary, secondary = endpoints.keys(name)
    key = {"now": secondary}
    with Load(ep.scoring_uri, BODY, lambda: key["now"], threads=8) as load:
        load.wait_for_more(100)
        for step, expected in (
            (lambda: endpoints.deploy(MODEL, 2, name, traffic=10), {"green": 10}),
            (lambda: endpoints.set_traffic(name, {"blue": 50, "green": 50}), {"green": 50}),
            (lambda: endpoints.set_traffic(name, {"green": 100}), {"green": 100}),
            (lambda: endpoints.rollback(name), {"blue": 100}),
        ):
            assert step().state == "Succeeded"
            since = load.count()
            load.wait_for_more(1_000, timeout=240)
            counts = load.deployments(since)
            for deployment, pct in expected.items():
                assert abs(share(counts, deployment) - pct) <= 2, counts
        # Rotating keys: clients move to the other key before each one is regenerated.
        new_primary, _ = endpoints.regenerate_key(name, "primary")
        load.wait_for_more(200)
        key["now"] = new_primary
        # Requests sent with the secondary just before the move are still in flight: the
        # move is over once every client thread has sent with the new key.
        load.wait_for_more(200)
        endpoints.regenerate_key(name, "secondary")
        load.wait_for_more(200)
        # Restart for update: a new process takes the port over, the old one drains.
        old = recorded(endpoints, name)
        assert endpoints.restart(name).state == "Creating"
        assert ready(endpoints, name) == "Succeeded", endpoints.logs(name)
        assert recorded(endpoints, name) != old
        load.wait_for_more(300)
    assert load.count() > 4_500
    assert load.failures() == [], Counter(a.error or a.status for a in load.failures())
    wait_for(lambda: not supervisor.is_alive(old), timeout=60, what="the old server drained")
    assert [p.pid for p in servers(endpoints, name)] == [recorded(endpoints, name).pid]
    events = endpoints.history(name)
    assert [e.action for e in events] == [
        "restart", "rollback", "traffic", "traffic", "deploy", "deploy",
    ]  # fmt: skip
    assert events[1].traffic == {"blue": 100} and events[4].traffic == {"blue": 90, "green": 10}
    assert all(e.outcome == "Succeeded" and e.who for e in events)
    # The telemetry names the deployment that answered each request.
    wait_for(lambda: telemetry_by_deployment(endpoints, name)["green"] > 1_000)
    assert set(telemetry_by_deployment(endpoints, name)) == {"blue", "green"}


def test_a_change_the_server_refuses_leaves_the_split(endpoints: LocalEndpoints) -> None:
    name = "refuse-ep"
    ep = endpoints.deploy(MODEL, 1, name)
    assert ready(endpoints, name) == "Succeeded", endpoints.logs(name)
    key = endpoints.keys(name)[0]
    with pytest.raises(WorkspaceError, match="did not load.*traffic is unchanged"):
        endpoints.deploy(MODEL, 9, name, traffic=10)
    assert [(d.name, d.traffic) for d in endpoints.deployments(name)] == [("blue", 100)]
    assert endpoints.history(name)[0].outcome == "Failed"
    assert endpoints.get(name).state == "Succeeded" and answered_by(ep.scoring_uri, key) == "blue"
    with pytest.raises(WorkspaceError, match="add up to 100"):
        endpoints.set_traffic(name, {"blue": 90})
    with pytest.raises(WorkspaceError, match="Nothing to roll back to"):
        endpoints.rollback(name)


def test_mirror_and_removing_an_idle_deployment(endpoints: LocalEndpoints) -> None:
    name = "mirror-ep"
    ep = endpoints.deploy(MODEL, 1, name)
    assert ready(endpoints, name) == "Succeeded", endpoints.logs(name)
    key = endpoints.keys(name)[0]
    endpoints.deploy(MODEL, 2, name, traffic=0)
    # At 0 % green takes no traffic, but Azure's header reaches it for a test before it does.
    assert {answered_by(ep.scoring_uri, key) for _ in range(20)} == {"blue"}
    tested = requests.post(
        ep.scoring_uri,
        json=BODY,
        headers={"Authorization": f"Bearer {key}", "azureml-model-deployment": "green"},
        timeout=10,
    )
    assert tested.status_code == 200, tested.text
    assert tested.headers["azureml-model-deployment"] == "green"
    endpoints.set_traffic(name, {"blue": 100}, mirror={"green": 50})
    # 100 requests: one turn of the mirror's 100-slot cycle, so exactly half are copied.
    assert {answered_by(ep.scoring_uri, key) for _ in range(100)} == {"blue"}

    def mirrored() -> int:
        with sqlite3.connect(endpoints.telemetry_db) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM AppRequests WHERE Endpoint=? AND Deployment='green'",
                (name,),
            ).fetchone()[0]

    # the test request above, and half of the 100
    wait_for(lambda: mirrored() == 51, what="half the requests mirrored to green")
    with pytest.raises(WorkspaceError, match="still takes traffic"):
        endpoints.delete_deployment(name, "green")
    endpoints.set_traffic(name, {"blue": 100}, mirror={})
    endpoints.delete_deployment(name, "green")
    assert [d.name for d in endpoints.deployments(name)] == ["blue"]
    assert answered_by(ep.scoring_uri, key) == "blue"


def test_a_server_left_on_another_table_gets_the_recorded_one_back(
    endpoints: LocalEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "drift-table-ep"
    ep = endpoints.deploy(MODEL, 1, name)
    assert ready(endpoints, name) == "Succeeded", endpoints.logs(name)
    endpoints.deploy(MODEL, 2, name, traffic=50)
    # As after a crash between the server's answer and the record: the server routes by a
    # table nobody recorded.
    stray = Split({"blue": (MODEL, 1), "green": (MODEL, 2)}, {"green": 100}, {})
    answer = server_control.apply(
        endpoints.stem(name), recorded(endpoints, name), routing_table(endpoints.store, stray, 99)
    )
    assert answer["ok"]
    key = endpoints.keys(name)[0]
    assert {answered_by(ep.scoring_uri, key) for _ in range(10)} == {"green"}
    endpoints.get(name)  # the next look
    assert {answered_by(ep.scoring_uri, key) for _ in range(20)} == {"blue", "green"}
    # A look at every endpoint does not ask a server that answered with the recorded table
    # lately (one control round trip per endpoint per page); a look at the one endpoint does.
    endpoints.list()
    asked: list[str] = []
    status = server_control.status
    monkeypatch.setattr(
        server_control, "status", lambda stem, ref: asked.append(stem) or status(stem, ref)
    )
    endpoints.list()
    assert asked == []
    endpoints.get(name)
    assert asked == [endpoints.stem(name)]


def test_reconcile_after_kill_9_of_the_server(endpoints: LocalEndpoints) -> None:
    endpoints.deploy(MODEL, 1, "crash-ep")
    assert ready(endpoints, "crash-ep") == "Succeeded"
    os.kill(recorded(endpoints, "crash-ep").pid, signal.SIGKILL)
    wait_for(lambda: endpoints.get("crash-ep").state == "Unhealthy")
    assert "not running" in endpoints.get("crash-ep").error
    endpoints.restart("crash-ep")
    assert ready(endpoints, "crash-ep") == "Succeeded"


def test_a_server_whose_keys_file_is_gone_rejects_every_key(endpoints: LocalEndpoints) -> None:
    ep = endpoints.deploy(MODEL, 1, "keyless-ep")
    assert ready(endpoints, "keyless-ep") == "Succeeded"
    primary, secondary = endpoints.keys("keyless-ep")
    assert score(ep.scoring_uri, primary) == 200
    endpoints.keys_file("keyless-ep").unlink()
    assert score(ep.scoring_uri, primary) == 401
    assert score(ep.scoring_uri, secondary) == 401


def check_one_server_then_delete(eps: LocalEndpoints, name: str) -> None:
    """After concurrent deploys: one Succeeded endpoint, one live server, dead after Delete."""
    assert [e.name for e in eps.list()] == [name]
    assert ready(eps, name) == "Succeeded", eps.logs(name)
    live = servers(eps, name)
    assert [p.pid for p in live] == [recorded(eps, name).pid]
    ep = eps.get(name)
    key = eps.keys(name)[0]
    assert score(ep.scoring_uri, key) == 200
    eps.delete(name)
    assert not servers(eps, name)
    assert score(ep.scoring_uri, key) is None


def test_eight_concurrent_deploys_in_threads(endpoints: LocalEndpoints, home: Path) -> None:
    errors: list[BaseException] = []

    def deploy() -> None:
        try:
            LocalEndpoints(Store(home)).deploy(MODEL, 1, "race-ep")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deploy) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    check_one_server_then_delete(endpoints, "race-ep")


DEPLOYER = textwrap.dedent(
    """
    import sys
    from lib.local.endpoints import LocalEndpoints
    from lib.local.store import Store
    LocalEndpoints(Store(sys.argv[1])).deploy("fast-lgbm", 1, sys.argv[2])
    """
)


def test_eight_concurrent_deploys_in_processes(endpoints: LocalEndpoints, home: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DEPLOYER, str(home), "race-proc-ep"],
            cwd=supervisor.REPO_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    check_one_server_then_delete(endpoints, "race-proc-ep")


CRASHING_DEPLOYER = textwrap.dedent(
    """
    import os, subprocess, sys
    from lib.local import endpoints
    from lib.local.store import Store

    home, name, point = sys.argv[1], sys.argv[2], sys.argv[3]
    popen = subprocess.Popen

    class SpawnThenDie(popen):
        def __init__(self, args, *rest, **kw):
            super().__init__(args, *rest, **kw)
            if any(str(a).endswith("keys.json") for a in args):
                os._exit(9)  # killed after starting the server, before recording it

    def die(*args, **kwargs):
        os._exit(9)

    eps = endpoints.LocalEndpoints(Store(home))
    if point == "after-spawn":
        subprocess.Popen = SpawnThenDie
    elif point == "before-spawn":
        eps._stop_process = die
    elif point == "before-release":
        endpoints.supervisor.release = die
    if sys.argv[4] == "restart":
        eps.restart(name)
    else:
        eps.deploy("fast-lgbm", 1, name)
    """
)


@pytest.mark.parametrize(
    "point", ["before-spawn", "after-spawn", "before-release"], ids=lambda p: f"new-{p}"
)
def test_kill_9_during_deploy_leaves_no_orphan(
    endpoints: LocalEndpoints, home: Path, point: str
) -> None:
    name = f"k9-{point}"
    crash = subprocess.run(
        [sys.executable, "-c", CRASHING_DEPLOYER, str(home), name, point, "deploy"],
        cwd=supervisor.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert crash.returncode == 9, crash.stderr
    ep = LocalEndpoints(Store(home)).get(name)  # the next look, as a fresh dashboard
    key = endpoints.keys(name)[0]
    # Nothing the crashed deploy started may be left running beside what the row records.
    ref = recorded(endpoints, name)
    wait_for(lambda: {p.pid for p in servers(endpoints, name)} <= ({ref.pid} if ref else set()))
    assert not supervisor.is_alive(ref)
    assert ep.state == "Failed"
    assert score(ep.scoring_uri, key) is None
    # The lock died with the crashed process: the endpoint can be deployed again.
    assert endpoints.deploy(MODEL, 1, name).state == "Creating"
    # Released from its gate the moment deploy returns, the server may be inside exec(), when
    # its command line reads empty for an instant.
    wait_for(lambda: [p.pid for p in servers(endpoints, name)] == [recorded(endpoints, name).pid])


@pytest.mark.parametrize("point", ["after-spawn", "before-release"])
def test_kill_9_during_a_restart_keeps_the_old_server_serving(
    endpoints: LocalEndpoints, home: Path, point: str
) -> None:
    name = f"k9-restart-{point}"
    ep = endpoints.deploy(MODEL, 1, name)
    assert ready(endpoints, name) == "Succeeded", endpoints.logs(name)
    old = recorded(endpoints, name)
    crash = subprocess.run(
        [sys.executable, "-c", CRASHING_DEPLOYER, str(home), name, point, "restart"],
        cwd=supervisor.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert crash.returncode == 9, crash.stderr
    key = endpoints.keys(name)[0]
    # The held new server exits without its spawner; the old one never stopped serving.
    wait_for(lambda: [p.pid for p in servers(endpoints, name)] == [old.pid])
    assert LocalEndpoints(Store(home)).get(name).state == "Succeeded"
    assert recorded(endpoints, name) == old
    assert score(ep.scoring_uri, key) == 200


def test_an_unrecorded_server_is_stopped_on_the_first_look(
    endpoints: LocalEndpoints, home: Path
) -> None:
    ep = endpoints.deploy(MODEL, 1, "orphan-ep")
    assert ready(endpoints, "orphan-ep") == "Succeeded"
    assert score(ep.scoring_uri, endpoints.keys("orphan-ep")[0]) == 200
    ref = recorded(endpoints, "orphan-ep")
    # As an older opsdeck left it: the server runs but the row does not know it.
    endpoints.store.connect().execute(
        "UPDATE endpoints SET pid=NULL, pid_started=NULL WHERE name='orphan-ep'"
    )
    fresh = LocalEndpoints(Store(home))
    assert fresh.get("orphan-ep").state == "Unhealthy"
    assert not supervisor.is_alive(ref)
    assert score(ep.scoring_uri, endpoints.keys("orphan-ep")[0]) is None


def test_unknown_endpoint_and_bad_names(endpoints: LocalEndpoints) -> None:
    with pytest.raises(WorkspaceError):
        endpoints.get("nope-ep")
    with pytest.raises(WorkspaceError):
        endpoints.delete("nope-ep")
    with pytest.raises(WorkspaceError):
        endpoints.deploy(MODEL, 1, "-bad")
    assert endpoints.count() == 0
