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
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from tests.support.azure_service_data import (
    CONTAINER,
    LA_WORKSPACE,
    REGION,
    STORAGE_ACCOUNT,
    DataPlane,
    error,
)
from tests.support.azure_transport import Reply, Sent

__all__ = ["LA_WORKSPACE", "FakeAzureML"]

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-opsdeck"
WORKSPACE = "ws-opsdeck"
ARM = "management.azure.com"
SCHEMA_HOST = "azuremlschemasprod.azureedge.net"
API_HOST = f"{REGION}.api.azureml.ms"
PROVIDER = "Microsoft.MachineLearningServices"
WORKSPACE_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/{PROVIDER}/workspaces/{WORKSPACE}"
)
TRACKING_URI = f"azureml://{API_HOST}/mlflow/v1.0{WORKSPACE_PATH}"
WS_PREFIX = re.compile(
    r"^/subscriptions/[^/]+/resource[gG]roups/[^/]+/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)(?P<rest>/.*)?$"
)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FakeAzureML(DataPlane):
    """One workspace's services in memory: ARM resources, blobs, runs, logs and scoring."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.artifacts: dict[tuple[str, str], bytes] = {}
        self.operations: dict[str, str] = {}
        self.deployment_logs: dict[str, str] = {}
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
            return self.arm_other(sent, base, parts)
        return handler(sent, base, parts[1:])

    def arm_other(self, sent: Sent, base: str, parts: list[str]) -> Reply | None:
        """Collections the fake keeps no state for (schedules, components, batch endpoints):
        empty lists, and 404 for any one item."""
        if sent.method != "GET":
            return None
        if len(parts) == 1:
            return self._list(f"{base}/{parts[0]}")
        return error(404, "ResourceNotFound", "/".join(parts))

    def _list(self, path: str, filter_: Callable[[dict], bool] = lambda _r: True) -> Reply:
        return Reply(200, {"value": [r for r in self.children(path) if filter_(r)]})

    def arm_datastores(self, sent: Sent, base: str, parts: list[str]) -> Reply | None:
        path = f"{base}/datastores"
        if not parts and sent.method == "GET":
            default = sent.query.get("isDefault")
            return self._list(
                path,
                lambda r: (
                    default is None
                    or str(r["properties"].get("isDefault")).lower() == default.lower()
                ),
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
                if found is not None and found["properties"].get("dataUri") != props.get("dataUri"):
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
        if len(parts) == 1 and sent.method == "PUT":
            body = sent.json()
            props = {**body["properties"], "provisioningState": "Succeeded"}
            resource = self.put(f"{path}/{parts[0]}", "computes", props, location=REGION)
            return Reply(201, resource, self.async_headers())
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
