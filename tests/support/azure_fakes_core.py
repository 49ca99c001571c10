"""Shared pieces of the Azure fakes: the fake workspace's ids, service errors, LRO pollers."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name
from azure.ai.ml.exceptions import ValidationException
from azure.core.exceptions import HttpResponseError
from azure.core.polling import LROPoller, PollingMethod

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-opsdeck"
WORKSPACE = "ws-opsdeck"
ARM_WORKSPACE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}"
)
DATASTORE_PREFIX = (
    f"azureml://subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}"
    f"/workspaces/{WORKSPACE}/datastores/workspaceblobstore/paths"
)
LOCATION = "westeurope"
# The service's own rule for compute cluster names.
SERVICE_CLUSTER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,14}[A-Za-z0-9]$")


def http_error(message: str, status: int) -> HttpResponseError:
    error = HttpResponseError(message=message)
    error.status_code = status
    return error


class Clock:
    """Strictly increasing creation times, one minute apart."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


class ScriptedPolling(PollingMethod):
    """A polling method that finishes when `gate` is set (at once without one)."""

    def __init__(
        self,
        finish: Any,
        gate: threading.Event | None = None,
        error: Exception | None = None,
    ) -> None:
        self._finish = finish
        self._gate = gate
        self._error = error
        self._status = "InProgress"
        self._resource: Any = None

    def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
        # Without a gate a success completes at once; a failure still runs on the poller's thread.
        if self._gate is None and self._error is None:
            self.run()

    def run(self) -> None:
        if self._gate is not None and not self._gate.wait(timeout=10):
            raise TimeoutError("test gate never opened")
        if self._error is not None:
            self._status = "Failed"
            raise self._error
        self._resource = self._finish()
        self._status = "Succeeded"

    def status(self) -> str:
        return self._status

    def finished(self) -> bool:
        return self._status in ("Succeeded", "Failed")

    def resource(self) -> Any:
        return self._resource


class Gated:
    """Pollers that finish at once, or when `gate` is set, or fail with `fail_with`."""

    gate: threading.Event | None = None
    fail_with: Exception | None = None

    def _poller(self, finish: Any, *, fail: bool = True) -> LROPoller:
        error = self.fail_with if fail else None
        polling = ScriptedPolling(finish, gate=self.gate, error=error)
        return LROPoller(None, None, lambda x: x, polling)


def text_state(value: Any) -> str:
    return str(getattr(value, "value", value))


def check_name(name: str) -> None:
    try:
        validate_endpoint_or_deployment_name(name)
    except ValidationException as exc:
        raise http_error(str(exc), 400) from exc
