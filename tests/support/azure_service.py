"""A fake Azure ML workspace at the HTTP level, answering `FakeTransport` requests.

Where each answer's shape comes from:
- ARM resources (`management.azure.com/.../workspaces/<ws>/...`): the REST API specs' examples in
  Azure/azure-rest-api-specs, specification/machinelearningservices/.../stable/2024-04-01/examples
  (Workspace/get, Datastore/get, Compute/get/AmlCompute, Compute/listNodes, Job/AutoMLJob/get,
  OnlineEndpoint/get, OnlineDeployment/ManagedOnlineDeployment/createOrUpdate,
  OnlineEndpoint/listKeys, ...): an `{id, name, type, systemData, properties}` envelope, lists as
  `{"value": [...], "nextLink": null}`, errors as `{"error": {"code", "message"}}`, long
  operations as 201 + `Azure-AsyncOperation` polled to `{"status": "Succeeded"}`. A PUT is
  answered with what was sent plus the service's read-only fields, as ARM does.
- Blob storage (`<account>.blob.core.windows.net`): the Blob service REST reference (Put Blob →
  201, Get Blob Properties → `x-ms-meta-*` headers, Set Blob Metadata → 200, Get Blob).
- MLflow tracking (`<region>.api.azureml.ms/mlflow/v1.0/...`): MLflow's REST API
  (`api/2.0/mlflow/runs/get` → `{"run": ...}`, `runs/search` → `{"runs": [...],
  "next_page_token"}`, errors `{"error_code", "message"}`); run history's
  `artifacts/contentinfo` → `ArtifactContentInformation` (`contentUri`, ...) as modelled in the
  SDK's own runhistory REST client (azure/ai/ml/_restclient/runhistory/models).
- Log Analytics (`api.loganalytics.io/v1/workspaces/<id>/query`): the Log Analytics query API
  (`{"tables": [{"name", "columns": [{"name", "type"}], "rows"}]}`, partial errors under
  `"error"`), as azure-monitor-query's own tests record it.
- Scoring (`<endpoint>.<region>.inference.ml.azure.com/score`): `tests.support.azure_serving`.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from tests.support.azure_transport import Reply, Sent

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-opsdeck"
WORKSPACE = "ws-opsdeck"
REGION = "westeurope"
STORAGE_ACCOUNT = "stopsdeck"
CONTAINER = "azureml-blobstore-0000"
LA_WORKSPACE = "11111111-2222-3333-4444-555555555555"
ARM = "management.azure.com"
SCHEMA_HOST = "azuremlschemasprod.azureedge.net"
API_HOST = f"{REGION}.api.azureml.ms"
PROVIDER = "Microsoft.MachineLearningServices"
WORKSPACE_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/{PROVIDER}/workspaces/{WORKSPACE}"
)
TRACKING_URI = f"azureml://{API_HOST}/mlflow/v1.0{WORKSPACE_PATH}"
DATASTORE_URI = (
    f"azureml://subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}"
    f"/workspaces/{WORKSPACE}/datastores/workspaceblobstore/paths"
)
WS_PREFIX = re.compile(
    r"^/subscriptions/[^/]+/resource[gG]roups/[^/]+/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)(?P<rest>/.*)?$"
)
TYPES = {
    "datastores": "datastores",
    "data": "data",
    "computes": "computes",
    "jobs": "jobs",
    "models": "models",
    "onlineEndpoints": "onlineEndpoints",
    "deployments": "onlineEndpoints/deployments",
}


def error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FakeAzureML:
    """One workspace's services in memory: ARM resources, blobs, runs, logs and scoring."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.artifacts: dict[tuple[str, str], bytes] = {}
        self.operations: dict[str, str] = {}
        self.deployment_logs: dict[str, str] = {}
        self.log_tables: Callable[[str], list[dict[str, Any]]] = lambda _query: []
        self.log_queries: list[dict[str, Any]] = []
        self.scoring: Callable[[Sent], Reply] | None = None
        self.keys = ("primary-key-0000", "secondary-key-0000")
        self.unexpected: list[str] = []
        self._now = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._seed()

    # --- helpers ----------------------------------------------------------------------------

    def now(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now

    def _system(self) -> dict[str, Any]:
        stamp = iso(self.now())
        return {
            "createdAt": stamp,
            "createdBy": "operator@example.com",
            "createdByType": "User",
            "lastModifiedAt": stamp,
            "lastModifiedBy": "operator@example.com",
            "lastModifiedByType": "User",
        }

    @staticmethod
    def key(path: str) -> str:
        return path.rstrip("/").lower()

    def put(self, path: str, collection: str, properties: dict[str, Any], **extra: Any) -> dict:
        """Store an ARM resource (the service's read-only fields filled in)."""
        name = unquote(path.rstrip("/").rsplit("/", 1)[-1])
        old = self.resources.get(self.key(path))
        resource = {
            "id": path,
            "name": name,
            "type": f"{PROVIDER}/workspaces/{collection}",
            "systemData": old["systemData"] if old else self._system(),
            "properties": properties,
            **extra,
        }
        self.resources[self.key(path)] = resource
        return resource

    def get(self, path: str) -> dict[str, Any] | None:
        return self.resources.get(self.key(path))

    def children(self, path: str) -> list[dict[str, Any]]:
        """Resources directly under a collection path."""
        prefix = self.key(path) + "/"
        return [
            r
            for k, r in self.resources.items()
            if k.startswith(prefix) and "/" not in k[len(prefix) :]
        ]

    def _seed(self) -> None:
        self.resources[self.key(WORKSPACE_PATH)] = {
            "id": WORKSPACE_PATH,
            "name": WORKSPACE,
            "type": f"{PROVIDER}/workspaces",
            "location": REGION,
            "systemData": self._system(),
            "properties": {
                "friendlyName": WORKSPACE,
                "discoveryUrl": f"https://{API_HOST}/discovery",
                "mlFlowTrackingUri": TRACKING_URI,
                "provisioningState": "Succeeded",
                "storageAccount": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
                f"/providers/Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}",
            },
        }
        self.put(
            f"{WORKSPACE_PATH}/datastores/workspaceblobstore",
            "datastores",
            {
                "datastoreType": "AzureBlob",
                "accountName": STORAGE_ACCOUNT,
                "containerName": CONTAINER,
                "endpoint": "core.windows.net",
                "protocol": "https",
                # Identity-based access: the SDK signs blob requests with the user's token.
                "credentials": {"credentialsType": "None"},
                "isDefault": True,
                "tags": {},
            },
        )

    # --- the test's side of the service -----------------------------------------------------

    def add_cluster(self, name: str, vm_size: str = "STANDARD_DS3_V2", max_nodes: int = 4) -> None:
        self.put(
            f"{WORKSPACE_PATH}/computes/{name}",
            "computes",
            {
                "computeType": "AmlCompute",
                "provisioningState": "Succeeded",
                "computeLocation": REGION,
                "properties": {
                    "vmSize": vm_size,
                    "vmPriority": "Dedicated",
                    "osType": "Linux",
                    "scaleSettings": {
                        "maxNodeCount": max_nodes,
                        "minNodeCount": 0,
                        "nodeIdleTimeBeforeScaleDown": "PT120S",
                    },
                    "currentNodeCount": 0,
                    "targetNodeCount": 0,
                    "allocationState": "Steady",
                },
            },
            location=REGION,
        )

    def set_job_status(self, name: str, status: str) -> None:
        job = self.get(f"{WORKSPACE_PATH}/jobs/{name}")
        assert job is not None, f"no job {name}"
        job["properties"]["status"] = status

    def add_run(
        self,
        run_id: str,
        *,
        experiment_id: str = "7",
        parent: str | None = None,
        status: str = "FINISHED",
        metrics: dict[str, float] | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """An MLflow run as Azure's tracking server returns it (MLflow REST `Run` JSON)."""
        all_tags = dict(tags or {})
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        start = int(self.now().timestamp() * 1000)
        self.runs[run_id] = {
            "info": {
                "run_id": run_id,
                "run_uuid": run_id,
                "run_name": run_id,
                "experiment_id": experiment_id,
                "user_id": "operator@example.com",
                "status": status,
                "start_time": str(start),
                "end_time": str(start + 60_000) if status == "FINISHED" else None,
                "artifact_uri": f"azureml://experiments/exp/runs/{run_id}/artifacts",
                "lifecycle_stage": "active",
            },
            "data": {
                "metrics": [
                    {"key": k, "value": float(v), "timestamp": str(start), "step": "0"}
                    for k, v in (metrics or {}).items()
                ],
                "params": [{"key": k, "value": str(v)} for k, v in (params or {}).items()],
                "tags": [{"key": k, "value": str(v)} for k, v in all_tags.items()],
            },
            "inputs": {},
        }
        for key in ("end_time",):
            if self.runs[run_id]["info"][key] is None:
                del self.runs[run_id]["info"][key]

    # --- dispatch ---------------------------------------------------------------------------

    def __call__(self, sent: Sent) -> Reply:
        with self._lock:
            host = sent.host
            if host == ARM:
                reply = self.arm(sent)
            elif host.endswith(".blob.core.windows.net"):
                reply = self.blob(sent)
            elif host == API_HOST:
                reply = self.data_plane(sent)
            elif host == "api.loganalytics.io":
                reply = self.logs(sent)
            elif host == SCHEMA_HOST:
                # The SDK validates MLTable files against a schema it downloads: accept all.
                reply = Reply(200, {"$schema": "http://json-schema.org/draft-07/schema#"})
            elif host.endswith(".inference.ml.azure.com") and self.scoring is not None:
                reply = self.scoring(sent)
            else:
                reply = None
            if reply is None:
                self.unexpected.append(f"{sent.method} {sent.url}")
                return error(501, "NotImplementedInFake", f"{sent.method} {sent.path}")
            return reply

    # --- ARM ----------------------------------------------------------------------------------

    def arm(self, sent: Sent) -> Reply | None:
        path = unquote(sent.path)
        if "/operations/" in path:
            return self.operation_status(path)
        match = WS_PREFIX.match(path)
        if match is None:
            return None
        rest = match.group("rest") or ""
        base = path[: len(path) - len(rest)] if rest else path
        if rest == "":
            found = self.get(base)
            return Reply(200, found) if found else error(404, "ResourceNotFound", base)
        parts = rest.strip("/").split("/")
        handler = getattr(self, f"arm_{parts[0]}", None)
        if handler is None:
            return None
        return handler(sent, base, parts[1:])

    def _list(self, path: str, filter_: Callable[[dict], bool] = lambda _r: True) -> Reply:
        return Reply(200, {"value": [r for r in self.children(path) if filter_(r)]})

    def arm_datastores(self, sent: Sent, base: str, parts: list[str]) -> Reply | None:
        path = f"{base}/datastores"
        if not parts and sent.method == "GET":
            default = sent.query.get("isDefault")
            return self._list(
                path,
                lambda r: default is None
                or str(r["properties"].get("isDefault")).lower() == default.lower(),
            )
        if len(parts) == 1 and sent.method == "GET":
            found = self.get(f"{path}/{parts[0]}")
            return Reply(200, found) if found else error(404, "UserError", "No such datastore")
        return None

    def arm_data(self, sent: Sent, base: str, parts: list[str]) -> Reply | None:
        path = f"{base}/data"
        if not parts and sent.method == "GET":
            return self._list(path)
        name = parts[0]
        container = f"{path}/{name}"
        if len(parts) == 1 and sent.method == "GET":
            found = self.get(container)
            return Reply(200, found) if found else error(404, "UserError", f"{name} not found")
        if len(parts) == 2 and parts[1] == "versions" and sent.method == "GET":
            if self.get(container) is None:
                return error(404, "UserError", f"Data container {name} was not found.")
            view = sent.query.get("listViewType", "ActiveOnly")
            return self._list(
                f"{container}/versions",
                lambda r: view == "All" or not r["properties"].get("isArchived"),
            )
        if len(parts) == 3 and parts[1] == "versions":
            version_path = f"{container}/versions/{parts[2]}"
            found = self.get(version_path)
            if sent.method == "GET":
                if found is None:
                    return error(404, "UserError", f"Data {name}:{parts[2]} not found.")
                return Reply(200, found)
            if sent.method == "PUT":
                props = sent.json()["properties"]
                if found is not None and found["properties"].get("dataUri") != props.get(
                    "dataUri"
                ):
                    # Versions are immutable: what a racing upload of another file gets.
                    return error(400, "UserError", "Asset paths cannot be updated.")
                props = {**props, "provisioningState": "Succeeded"}
                if self.get(container) is None:
                    self.put(
                        container, "data", {"dataType": props.get("dataType"), "isArchived": False}
                    )
                return Reply(200 if found else 201, self.put(version_path, "data", props))
        return None

    def arm_computes(self, sent: Sent, base: str, parts: list[str]) -> Reply | None:
        path = f"{base}/computes"
        if not parts and sent.method == "GET":
            return self._list(path)
        found = self.get(f"{path}/{parts[0]}")
        if len(parts) == 1 and sent.method == "GET":
            return Reply(200, found) if found else error(404, "ResourceNotFound", parts[0])
        if len(parts) == 2 and parts[1] == "listNodes" and sent.method == "POST":
            return Reply(200, {"nodes": [], "nextLink": None})
        return None

    def arm_jobs(self, sent: Sent, base: str, parts: list[str]) -> Reply | None:
        path = f"{base}/jobs"
        if not parts and sent.method == "GET":
            return self._list(path)
        job_path = f"{path}/{parts[0]}"
        found = self.get(job_path)
        if len(parts) == 1 and sent.method == "GET":
            return Reply(200, found) if found else error(404, "UserError", f"{parts[0]} not found")
        if len(parts) == 1 and sent.method == "PUT":
            props = copy.deepcopy(sent.json()["properties"])
            name = parts[0]
            props.setdefault("experimentName", "Default")
            props["status"] = "NotStarted"
            props["services"] = {
                "Studio": {
                    "jobServiceType": "Studio",
                    "endpoint": f"https://ml.azure.com/runs/{name}?wsid={WORKSPACE_PATH}",
                }
            }
            props.setdefault("properties", {})
            return Reply(201, self.put(job_path, "jobs", props))
        if len(parts) == 2 and parts[1] == "cancel" and sent.method == "POST":
            if found is None:
                return error(404, "UserError", parts[0])
            found["properties"]["status"] = "CancelRequested"
            return Reply(202, None, self.async_headers("Succeeded"))
        return None

    def arm_models(self, sent: Sent, base: str, parts: list[str]) -> Reply | None:
        path = f"{base}/models"
        if not parts and sent.method == "GET":
            return self._list(path)
        container = f"{path}/{parts[0]}"
        if len(parts) == 1 and sent.method == "GET":
            found = self.get(container)
            return Reply(200, found) if found else error(404, "UserError", parts[0])
        if len(parts) == 2 and parts[1] == "versions" and sent.method == "GET":
            if self.get(container) is None:
                return error(404, "UserError", f"Model container {parts[0]} was not found.")
            return self._list(f"{container}/versions")
        if len(parts) == 3 and parts[1] == "versions":
            version_path = f"{container}/versions/{parts[2]}"
            found = self.get(version_path)
            if sent.method == "GET":
                if found is None:
                    return error(404, "UserError", f"Model {parts[0]}:{parts[2]} not found.")
                return Reply(200, found)
            if sent.method == "PUT":
                props = {**sent.json()["properties"], "provisioningState": "Succeeded"}
                if props.get("modelType") == "mlflow_model":
                    # The service reads the flavors from the model's MLmodel file.
                    props.setdefault("flavors", {"python_function": {"data": {}}})
                props.setdefault("flavors", {})
                if self.get(container) is None:
                    self.put(container, "models", {"isArchived": False})
                return Reply(201, self.put(version_path, "models", props))
        return None

    def async_headers(self, final: str = "Succeeded") -> dict[str, str]:
        op = f"op-{next(self._ids)}"
        self.operations[op] = final
        url = (
            f"https://{ARM}/subscriptions/{SUBSCRIPTION}/providers/{PROVIDER}/locations/{REGION}"
            f"/mfeOperationsStatus/operations/{op}?api-version=2023-04-01-preview"
        )
        # Retry-After 0: the SDK's poller asks again at once instead of sleeping.
        return {"Azure-AsyncOperation": url, "Location": url, "Retry-After": "0"}

    def operation_status(self, path: str) -> Reply:
        op = path.rstrip("/").rsplit("/", 1)[-1]
        status = self.operations.get(op)
        if status is None:
            return error(404, "NotFound", op)
        body: dict[str, Any] = {"status": status}
        if status == "Failed":
            body["error"] = {"code": "DeploymentFailed", "message": "The container crashed."}
        return Reply(200, body)

    def arm_onlineEndpoints(self, sent: Sent, base: str, parts: list[str]) -> Reply | None:  # noqa: N802
        path = f"{base}/onlineEndpoints"
        if not parts and sent.method == "GET":
            return self._list(path)
        name = parts[0]
        ep_path = f"{path}/{name}"
        found = self.get(ep_path)
        if len(parts) == 1:
            if sent.method == "GET":
                return Reply(200, found) if found else error(404, "ResourceNotFound", name)
            if sent.method == "PUT":
                body = sent.json()
                props = copy.deepcopy(body["properties"])
                props["provisioningState"] = "Succeeded"
                props["scoringUri"] = f"https://{name}.{REGION}.inference.ml.azure.com/score"
                props["swaggerUri"] = f"https://{name}.{REGION}.inference.ml.azure.com/swagger.json"
                props.setdefault("traffic", {})
                resource = self.put(
                    ep_path,
                    "onlineEndpoints",
                    props,
                    location=body.get("location", REGION),
                    identity=body.get("identity") or {"type": "SystemAssigned"},
                    tags=body.get("tags", {}),
                    kind="Managed",
                )
                return Reply(201, resource, self.async_headers())
            if sent.method == "DELETE":
                if found is None:
                    return error(404, "ResourceNotFound", name)
                for key in [k for k in self.resources if k.startswith(self.key(ep_path))]:
                    del self.resources[key]
                return Reply(202, None, self.async_headers())
        if len(parts) == 2 and parts[1] == "listKeys" and sent.method == "POST":
            if found is None:
                return error(404, "ResourceNotFound", name)
            return Reply(200, {"primaryKey": self.keys[0], "secondaryKey": self.keys[1]})
        if len(parts) >= 2 and parts[1] == "deployments":
            if found is None:
                return error(404, "ResourceNotFound", name)
            return self.deployments(sent, ep_path, parts[2:])
        return None

    def deployments(self, sent: Sent, ep_path: str, parts: list[str]) -> Reply | None:
        path = f"{ep_path}/deployments"
        if not parts and sent.method == "GET":
            return self._list(path)
        dep_path = f"{path}/{parts[0]}"
        found = self.get(dep_path)
        if len(parts) == 1:
            if sent.method == "GET":
                return Reply(200, found) if found else error(404, "ResourceNotFound", parts[0])
            if sent.method == "PUT":
                body = sent.json()
                props = {**copy.deepcopy(body["properties"]), "provisioningState": "Succeeded"}
                # Settings the service fills in when the request leaves them out.
                props.setdefault("scaleSettings", {"scaleType": "Default"})
                props.setdefault(
                    "requestSettings",
                    {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 1},
                )
                for probe in ("livenessProbe", "readinessProbe"):
                    props.setdefault(
                        probe,
                        {
                            "initialDelay": "PT10S",
                            "period": "PT10S",
                            "timeout": "PT2S",
                            "successThreshold": 1,
                            "failureThreshold": 30,
                        },
                    )
                resource = self.put(
                    dep_path,
                    "onlineEndpoints/deployments",
                    props,
                    location=body.get("location", REGION),
                    sku=body.get("sku"),
                    tags=body.get("tags", {}),
                    kind="Managed",
                )
                return Reply(201, resource, self.async_headers())
            if sent.method == "DELETE":
                self.resources.pop(self.key(dep_path), None)
                return Reply(202, None, self.async_headers())
        if len(parts) == 2 and parts[1] == "getLogs" and sent.method == "POST":
            return Reply(200, {"content": self.deployment_logs.get(parts[0], "")})
        return None

    # --- blob storage -------------------------------------------------------------------------

    def blob(self, sent: Sent) -> Reply | None:
        path = unquote(sent.path)
        comp = sent.query.get("comp")
        if sent.query.get("restype") == "container" and comp == "list":
            prefix = sent.query.get("prefix", "")
            names = sorted(k for k in self.blobs if k.startswith(f"/{CONTAINER}/{prefix}"))
            items = "".join(
                f"<Blob><Name>{n[len(CONTAINER) + 2 :]}</Name><Properties>"
                f"<Content-Length>{len(self.blobs[n][0])}</Content-Length>"
                "<BlobType>BlockBlob</BlobType></Properties></Blob>"
                for n in names
            )
            xml = (
                '<?xml version="1.0" encoding="utf-8"?><EnumerationResults>'
                f"<Blobs>{items}</Blobs><NextMarker /></EnumerationResults>"
            )
            return Reply(200, xml.encode(), {"Content-Type": "application/xml"})
        stored = self.blobs.get(path)
        common = {
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-version": "2025-01-05",
            "Date": format_datetime(self.now(), usegmt=True),
            "ETag": '"0x8D000000000"',
            "Last-Modified": format_datetime(self.now(), usegmt=True),
        }
        if sent.method == "PUT" and comp == "metadata":
            if stored is None:
                return Reply(404, b"", {**common, "x-ms-error-code": "BlobNotFound"})
            meta = {
                k[len("x-ms-meta-") :]: v
                for k, v in sent.headers.items()
                if k.lower().startswith("x-ms-meta-")
            }
            self.blobs[path] = (stored[0], meta)
            return Reply(200, b"", common)
        if sent.method == "PUT" and comp is None:
            self.blobs[path] = (sent.body, {})
            return Reply(201, b"", {**common, "Content-MD5": ""})
        if sent.method in ("HEAD", "GET"):
            if stored is None:
                return Reply(404, b"", {**common, "x-ms-error-code": "BlobNotFound"})
            data, meta = stored
            headers = {
                **common,
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(data)),
                "x-ms-blob-type": "BlockBlob",
                **{f"x-ms-meta-{k}": v for k, v in meta.items()},
            }
            wanted = next(
                (v for k, v in sent.headers.items() if k.lower() in ("x-ms-range", "range")), ""
            )
            ranged = re.match(r"bytes=(\d+)-(\d*)", wanted)
            if sent.method == "GET" and ranged:
                first = int(ranged.group(1))
                last = min(int(ranged.group(2) or len(data) - 1), len(data) - 1)
                part = data[first : last + 1]
                headers["Content-Length"] = str(len(part))
                headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
                return Reply(206, part, headers)
            return Reply(200, data if sent.method == "GET" else b"", headers)
        return None

    # --- Azure ML data plane: MLflow tracking, run history ----------------------------------

    def data_plane(self, sent: Sent) -> Reply | None:
        path = sent.path
        if path.endswith("/api/2.0/mlflow/runs/get"):
            run = self.runs.get(sent.query.get("run_id", ""))
            if run is None:
                return Reply(
                    404,
                    {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run not found."},
                )
            return Reply(200, {"run": run})
        if path.endswith("/api/2.0/mlflow/runs/search") and sent.method == "POST":
            return self.search_runs(sent.json())
        if path.endswith("/artifacts/contentinfo"):
            run_id = unquote(path.split("/runs/")[1].split("/")[0])
            name = sent.query.get("path", "")
            if (run_id, name) not in self.artifacts:
                return error(404, "NotFound", f"No artifact {name}")
            uri = (
                f"https://{STORAGE_ACCOUNT}.blob.core.windows.net/{CONTAINER}/"
                f"ExperimentRun/dcid.{quote(run_id)}/{quote(name)}?sv=2025&sig=fake"
            )
            self.blobs[f"/{CONTAINER}/ExperimentRun/dcid.{run_id}/{name}"] = (
                self.artifacts[(run_id, name)],
                {},
            )
            return Reply(
                200,
                {
                    "contentUri": uri,
                    "origin": "ExperimentRun",
                    "container": f"dcid.{run_id}",
                    "path": name,
                },
            )
        return None

    FILTER = re.compile(r"^tags\.mlflow\.parentRunId\s*=\s*'([^']+)'$")

    def search_runs(self, body: dict[str, Any]) -> Reply:
        match = self.FILTER.match(body.get("filter", ""))
        if match is None:
            return Reply(
                400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "Unsupported filter"}
            )
        experiments = set(body.get("experiment_ids", []))
        found = [
            r
            for r in self.runs.values()
            if r["info"]["experiment_id"] in experiments
            and {"key": "mlflow.parentRunId", "value": match.group(1)} in r["data"]["tags"]
        ]
        start = int(body.get("page_token") or 0)
        size = int(body.get("max_results", 1000))
        page = found[start : start + size]
        reply: dict[str, Any] = {"runs": page}
        if start + size < len(found):
            reply["next_page_token"] = str(start + size)
        return Reply(200, reply)

    # --- Log Analytics ------------------------------------------------------------------------

    def logs(self, sent: Sent) -> Reply | None:
        if not sent.path.endswith(f"/v1/workspaces/{LA_WORKSPACE}/query"):
            return error(404, "WorkspaceNotFoundError", "The workspace could not be found")
        body = sent.json()
        self.log_queries.append(body)
        return Reply(200, {"tables": [wire_table(body["query"], self.log_tables(body["query"]))]})


def wire_table(query: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A Log Analytics result table: the columns the rows carry, typed as Log Analytics types them."""
    columns = list(rows[0]) if rows else [_last_project(query)]
    return {
        "name": "PrimaryResult",
        "columns": [{"name": c, "type": _kql_type(rows, c)} for c in columns],
        "rows": [[row.get(c) for c in columns] for row in rows],
    }


def _last_project(query: str) -> str:
    return "TimeGenerated"


def _kql_type(rows: list[dict[str, Any]], column: str) -> str:
    sample = next((r[column] for r in rows if r.get(column) is not None), None)
    if column == "TimeGenerated":
        return "datetime"
    if isinstance(sample, bool):
        return "bool"
    if isinstance(sample, int):
        return "long"
    if isinstance(sample, float):
        return "real"
    return "string"


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def path_after(url: str, marker: str) -> str:
    return urlsplit(url).path.split(marker, 1)[1]
