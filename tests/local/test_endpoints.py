"""Local endpoints with real server processes: lifecycle, keys, reconcile, concurrency, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import psutil
import pytest
import requests

from lib.local import supervisor, tracking
from lib.local.endpoints import LocalEndpoints
from lib.local.store import Store
from lib.local.supervisor import ProcessRef
from lib.workspace import WorkspaceError
from tests.local.scoring_models import FastLightGBMModel, make_frame, records, train_booster
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


def test_redeploy_keeps_uri_and_keys_and_records_the_new_version(
    endpoints: LocalEndpoints,
) -> None:
    first = endpoints.deploy(MODEL, 1, "move-ep")
    keys = endpoints.keys("move-ep")
    old = recorded(endpoints, "move-ep")
    second = endpoints.deploy(MODEL, 2, "move-ep")
    assert second.scoring_uri == first.scoring_uri and second.model_version == 2
    assert endpoints.keys("move-ep") == keys
    assert not supervisor.is_alive(old)
    assert ready(endpoints, "move-ep") == "Succeeded", endpoints.logs("move-ep")
    assert score(second.scoring_uri, keys[0]) == 200
    assert len(servers(endpoints, "move-ep")) == 1


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
    eps.deploy("fast-lgbm", 1, name)
    """
)


@pytest.mark.parametrize(
    ("point", "existing"),
    [
        ("before-spawn", False),
        ("after-spawn", False),
        ("before-release", False),
        ("after-spawn", True),
    ],
    ids=["new-before-spawn", "new-after-spawn", "new-before-release", "redeploy-after-spawn"],
)
def test_kill_9_during_deploy_leaves_no_orphan(
    endpoints: LocalEndpoints, home: Path, point: str, existing: bool
) -> None:
    name = f"k9-{point}-{int(existing)}"
    if existing:
        endpoints.deploy(MODEL, 1, name)
        assert ready(endpoints, name) == "Succeeded"
    crash = subprocess.run(
        [sys.executable, "-c", CRASHING_DEPLOYER, str(home), name, point],
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
    assert [p.pid for p in servers(endpoints, name)] == [recorded(endpoints, name).pid]


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
