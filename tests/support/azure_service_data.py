"""The data-plane side of the fake Azure ML workspace: blob storage, MLflow tracking and run
history, Log Analytics. Shapes: see `tests.support.azure_service`."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, unquote

from tests.support.azure_transport import Reply, Sent

REGION = "westeurope"
STORAGE_ACCOUNT = "stopsdeck"
CONTAINER = "azureml-blobstore-0000"
LA_WORKSPACE = "11111111-2222-3333-4444-555555555555"


def error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


class DataPlane:
    """Blobs, MLflow runs and their artifacts, and the Log Analytics query API."""

    blobs: dict[str, tuple[bytes, dict[str, str]]]
    runs: dict[str, dict[str, Any]]
    artifacts: dict[tuple[str, str], bytes]
    log_queries: list[dict[str, Any]]

    def now(self) -> datetime:
        raise NotImplementedError

    def log_tables(self, query: str) -> list[dict[str, Any]]:
        """The rows Log Analytics answers to `query` (tests replace this)."""
        return []

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
    columns = list(rows[0]) if rows else ["TimeGenerated"]
    return {
        "name": "PrimaryResult",
        "columns": [{"name": c, "type": _kql_type(rows, c)} for c in columns],
        "rows": [[row.get(c) for c in columns] for row in rows],
    }


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
