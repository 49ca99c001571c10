"""Copy-paste snippets that start a published pipeline run, exactly as the page shows them."""

from __future__ import annotations

import json
import pprint
import shlex
from typing import Any


def request_body(experiment: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """The classic published-pipeline body."""
    return {"ExperimentName": experiment, "ParameterAssignments": dict(parameters or {})}


def curl_snippet(url: str, key: str, experiment: str, parameters: dict[str, Any] | None) -> str:
    """A curl command (POSIX shell quoting) that starts a run and prints the JSON answer."""
    body = json.dumps(request_body(experiment, parameters))
    return (
        f"curl -sS -X POST {shlex.quote(url)} \\\n"
        f"  -H {shlex.quote('Authorization: Bearer ' + key)} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )


def python_snippet(url: str, key: str, experiment: str, parameters: dict[str, Any] | None) -> str:
    """A `requests` script that starts a run and prints its id and status URL."""
    body = pprint.pformat(request_body(experiment, parameters), indent=4, width=88)
    body = body.replace("\n", "\n    ")
    return (
        "import requests\n\n"
        "response = requests.post(\n"
        f"    {url!r},\n"
        f"    headers={{'Authorization': {('Bearer ' + key)!r}}},\n"
        f"    json={body},\n"
        "    timeout=30,\n"
        ")\n"
        "response.raise_for_status()\n"
        "run = response.json()\n"
        "print(run['Id'], run['Status'], run['StatusUrl'])\n"
    )


def azure_snippet(url: str, experiment: str, dataset: str, gate_margin: float) -> str:
    """Invoking a pipeline published on an Azure ML batch endpoint (Azure AD sign-in, SDK v2).

    The published pipeline's inputs are the dataset (the newest version here), the model name
    and the gate margin; other settings are fixed by the published version.
    """
    endpoint = url.split("//", 1)[-1].split(".", 1)[0]
    return (
        "from azure.ai.ml import Input, MLClient\n"
        "from azure.identity import DefaultAzureCredential\n\n"
        "ml_client = MLClient.from_config(DefaultAzureCredential())\n"
        "job = ml_client.batch_endpoints.invoke(\n"
        f"    endpoint_name={endpoint!r},\n"
        f"    experiment_name={experiment!r},\n"
        "    inputs={\n"
        f"        'dataset': Input(type='uri_file', path={f'azureml:{dataset}@latest'!r}),\n"
        f"        'gate_margin': Input(type='number', default={float(gate_margin)!r}),\n"
        "    },\n"
        ")\n"
        "print(job.name, job.status, job.studio_url)\n"
    )
