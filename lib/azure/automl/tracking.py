"""The workspace's MLflow tracking, where AutoML records its trials, read over REST.

The AutoML job is the parent run and every trial a child run (`tags.mlflow.parentRunId`); the
parent's `automl_best_child_run_id` tag names Azure's pick. `WorkspaceTracking` speaks the MLflow
REST API of the workspace's tracking server (`runs/get`, `runs/search`) with an Azure AD token,
which is all the `azureml-mlflow` plugin's tracking store does on top of MLflow's own REST store.
The plugin is not needed (its releases pin `mlflow-skinny<=3.15`, older than ours): the requests
go through azure-core with the MLClient's credential and transport, and MLflow's own protobuf
parser turns the answers into `mlflow.entities.Run`. Trial artifacts (confusion matrix, accuracy
table) come from the run history service's `artifacts/contentinfo`, which gives a read-only
storage URL for one file.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from azure.core import PipelineClient
from azure.core.credentials import TokenCredential
from azure.core.pipeline import policies
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest

from lib.azure.client import MLClientSource, azure_call
from lib.errors import WorkspaceError

MlflowClientSource = Callable[[], Any]

MAX_CHILD_RUNS = 1000
SEARCH_PAGE = 500
# The audience of Azure ML's data-plane APIs (the SDK's run history client asks for the same).
ML_SCOPE = "https://ml.azure.com/.default"
TRACKING_PREFIX = "/mlflow/v1.0/"
HISTORY_PREFIX = "/history/v1.0/"


@contextmanager
def mlflow_call(action: str) -> Iterator[None]:
    """Run MLflow tracking calls, re-raising their errors as WorkspaceError."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except WorkspaceError:
        raise
    except MlflowException as exc:
        raise WorkspaceError(
            f"Could not {action} from the workspace's MLflow tracking: {exc.message}"
        ) from exc


def data_plane_client(
    base_url: str, credential: TokenCredential | None, transport: HttpTransport | None = None
) -> PipelineClient:
    """An azure-core client for an Azure ML data-plane host, signed in with `credential`.

    Without a credential it sends no Authorization header (for pre-signed storage URLs).
    """
    pipeline_policies: list[Any] = [
        policies.HeadersPolicy(),
        policies.UserAgentPolicy(sdk_moniker="opsdeck"),
        policies.RetryPolicy(),
    ]
    if credential is not None:
        pipeline_policies.append(policies.BearerTokenCredentialPolicy(credential, ML_SCOPE))
    # No ContentDecodePolicy: answers are read here (JSON) or kept as bytes (artifacts).
    pipeline_policies += [policies.DistributedTracingPolicy(), policies.HttpLoggingPolicy()]
    kwargs: dict[str, Any] = {"policies": pipeline_policies}
    if transport is not None:
        kwargs["transport"] = transport
    return PipelineClient(base_url=base_url, **kwargs)


def rest_base(tracking_uri: str) -> str:
    """The https URL of the tracking server from the workspace's `azureml://` tracking URI."""
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("azureml", "https") or TRACKING_PREFIX not in parts.path + "/":
        raise WorkspaceError(
            f"The workspace reports an MLflow tracking URI opsdeck cannot read: {tracking_uri!r}."
        )
    return f"https://{parts.netloc}{parts.path.rstrip('/')}"


def _mlflow_error(response: Any, action: str) -> WorkspaceError:
    """The tracking server's own message (`{"error_code", "message"}`) as a WorkspaceError."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("error_code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    status = response.status_code
    if status in (401, 403) and not message:
        message = "the signed-in identity may not read the workspace's runs"
    detail = message or (response.text()[:200] if response.text() else "no message")
    return WorkspaceError(
        f"Could not {action} from the workspace's MLflow tracking (HTTP {status}"
        f"{', ' + code if code else ''}): {detail}"
    )


class WorkspaceTracking:
    """MLflow tracking of one workspace over REST: `get_run`, `search_runs`, `download_artifacts`.

    The method names and results are those of `mlflow.tracking.MlflowClient`.
    """

    def __init__(
        self, client: PipelineClient, base_url: str, storage: PipelineClient | None = None
    ) -> None:
        self._client = client
        self._storage = storage or client
        self.base_url = base_url.rstrip("/")
        self.history_url = self.base_url.replace(TRACKING_PREFIX, HISTORY_PREFIX, 1)

    @classmethod
    def connect(
        cls,
        tracking_uri: str,
        credential: TokenCredential,
        transport: HttpTransport | None = None,
    ) -> WorkspaceTracking:
        base = rest_base(tracking_uri)
        return cls(
            data_plane_client(base, credential, transport),
            base,
            storage=data_plane_client(base, None, transport),
        )

    def _send(self, request: HttpRequest, action: str) -> Any:
        with azure_call(action):
            response = self._client.send_request(request)
        if response.status_code >= 400:
            raise _mlflow_error(response, action)
        try:
            return response.json()
        except ValueError:
            raise WorkspaceError(
                f"Could not {action}: the tracking server did not answer with JSON."
            ) from None

    def get_run(self, run_id: str) -> Any:
        """One run (`mlflow.entities.Run`)."""
        from mlflow.entities import Run
        from mlflow.protos.service_pb2 import GetRun
        from mlflow.utils.proto_json_utils import parse_dict

        action = f"read run {run_id}"
        body = self._send(
            HttpRequest(
                "GET", f"{self.base_url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}
            ),
            action,
        )
        message = GetRun.Response()
        with mlflow_call(action):
            parse_dict(body, message)
        return Run.from_proto(message.run)

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        max_results: int = MAX_CHILD_RUNS,
    ) -> list[Any]:
        """Runs of the experiments matching `filter_string`, following the server's pages."""
        from mlflow.entities import Run
        from mlflow.protos.service_pb2 import SearchRuns
        from mlflow.utils.proto_json_utils import parse_dict

        runs: list[Any] = []
        token: str | None = None
        while len(runs) < max_results:
            payload: dict[str, Any] = {
                "experiment_ids": list(experiment_ids),
                "filter": filter_string,
                "max_results": min(SEARCH_PAGE, max_results - len(runs)),
            }
            if token:
                payload["page_token"] = token
            action = "list the trials"
            body = self._send(
                HttpRequest("POST", f"{self.base_url}/api/2.0/mlflow/runs/search", json=payload),
                action,
            )
            message = SearchRuns.Response()
            with mlflow_call(action):
                parse_dict(body, message)
            runs.extend(Run.from_proto(r) for r in message.runs)
            token = message.next_page_token or None
            if not token or not message.runs:
                break
        return runs[:max_results]

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Download one artifact file of a run into `dst_path`; its local path."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        run = self.get_run(run_id)
        url = (
            f"{self.history_url}/experimentids/{quote(run.info.experiment_id, safe='')}"
            f"/runs/{quote(run_id, safe='')}/artifacts/contentinfo"
        )
        action = f"read artifact {path} of run {run_id}"
        with azure_call(action):
            response = self._client.send_request(HttpRequest("GET", url, params={"path": path}))
        if response.status_code == 404:
            raise MlflowException(f"No artifact {path} in run {run_id}", RESOURCE_DOES_NOT_EXIST)
        if response.status_code >= 400:
            raise _mlflow_error(response, action)
        content_uri = (response.json() or {}).get("contentUri")
        if not content_uri:
            raise MlflowException(f"No artifact {path} in run {run_id}", RESOURCE_DOES_NOT_EXIST)
        # The content URI carries its own read-only signature: no bearer token is sent with it.
        with azure_call(action):
            content = self._storage.send_request(HttpRequest("GET", content_uri))
        if content.status_code >= 400:
            raise MlflowException(f"Artifact {path} of run {run_id} could not be downloaded")
        target = Path(dst_path or tempfile.mkdtemp(prefix="opsdeck-artifact-"), path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.content)
        return str(target)


def default_tracking(
    ml_client: MLClientSource,
    credential: Callable[[], TokenCredential],
    transport: HttpTransport | None = None,
) -> WorkspaceTracking:
    """The tracking client of the workspace `ml_client` works on."""
    ml = ml_client()
    with azure_call("read the workspace's MLflow tracking URI"):
        uri = ml.workspaces.get(ml.workspace_name).mlflow_tracking_uri
    if not uri:
        raise WorkspaceError("The workspace reports no MLflow tracking URI; trials cannot be read.")
    return WorkspaceTracking.connect(uri, credential(), transport)


def iteration(run: Any, parent: str) -> int | None:
    """The trial number of a child run; None for children that are not trials."""
    raw = run.data.tags.get("iteration", run.data.params.get("iteration"))
    if raw is not None and str(raw).isdigit():
        return int(raw)
    # Child runs are named <parent>_<iteration>; <parent>_setup and the like are not trials.
    suffix = run.info.run_id[len(parent) + 1 :] if run.info.run_id.startswith(parent) else ""
    return int(suffix) if suffix.isdigit() else None


def child_runs(client: Any, parent_id: str, experiment_id: str) -> list[Any]:
    """Every child run of `parent_id`, through a HyperDrive sweep child when there is one."""
    with mlflow_call(f"list the trials of {parent_id}"):
        runs = list(
            client.search_runs(
                experiment_ids=[experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
                max_results=MAX_CHILD_RUNS,
            )
        )
    nested = [r for r in runs if r.info.run_id == f"{parent_id}_HD"]
    for sweep in nested:
        # Some AutoML versions run the trials under a HyperDrive child of the parent.
        runs.extend(child_runs(client, sweep.info.run_id, experiment_id))
    return runs


def get_run(client: Any, run_id: str) -> Any:
    with mlflow_call(f"read run {run_id}"):
        return client.get_run(run_id)


def parent_and_trials(client: Any, job_id: str) -> tuple[Any, list[tuple[int, Any]]]:
    """The job's parent run and its trial runs as (iteration, run), in trial order."""
    if "'" in job_id:
        raise WorkspaceError(f"{job_id!r} is not a job name.")
    parent = get_run(client, job_id)
    trials = []
    for run in child_runs(client, job_id, parent.info.experiment_id):
        number = iteration(run, run.data.tags.get("mlflow.parentRunId", job_id))
        if number is not None:
            trials.append((number, run))
    trials.sort(key=lambda t: (t[0], t[1].info.start_time or 0))
    return parent, trials


def json_artifact(client: Any, run_id: str, name: str) -> dict[str, Any] | None:
    """A JSON artifact of a run, or None when Azure did not log it."""
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="opsdeck-artifact-") as tmp:
        try:
            path = Path(client.download_artifacts(run_id, name, tmp))
            if path.is_dir():
                path = next((p for p in sorted(path.rglob("*")) if p.is_file()), path)
            return json.loads(path.read_text())
        except (MlflowException, WorkspaceError, OSError, ValueError):
            return None
