"""Fakes of `ml_client.online_endpoints` and `ml_client.online_deployments`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from azure.ai.ml._restclient.arm_ml_service.models import DefaultScaleSettings, SystemData
from azure.ai.ml.entities import EndpointAuthKeys, OnlineDeployment, OnlineEndpoint
from azure.ai.ml.exceptions import ValidationException
from azure.core.exceptions import ResourceNotFoundError
from azure.core.polling import LROPoller

from tests.support.azure_fakes_assets import FakeModelOperations
from tests.support.azure_fakes_core import (
    ARM_WORKSPACE,
    LOCATION,
    Clock,
    Gated,
    check_name,
    http_error,
    text_state,
)


class FakeOnlineEndpointOperations(Gated):
    """Stands in for `ml_client.online_endpoints` (OnlineEndpointOperations)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.entities: dict[str, OnlineEndpoint] = {}
        self.keys: dict[str, list[str]] = {}
        self.received: list[OnlineEndpoint] = []
        self.calls: list[tuple[Any, ...]] = []
        self.deployments: FakeOnlineDeploymentOperations | None = None
        self._key_counter = 0

    def _new_key(self) -> str:
        self._key_counter += 1
        return f"key-{self._key_counter:04d}"

    def _store(self, endpoint: OnlineEndpoint, state: str, created: datetime) -> OnlineEndpoint:
        rest = endpoint._to_rest_online_endpoint(LOCATION)
        rest.name = endpoint.name
        rest.id = f"{ARM_WORKSPACE}/onlineEndpoints/{endpoint.name}"
        rest.properties.provisioning_state = state
        base = f"https://{endpoint.name}.{LOCATION}.inference.ml.azure.com"
        rest.properties.scoring_uri = f"{base}/score"
        rest.properties.swagger_uri = f"{base}/swagger.json"
        rest.system_data = SystemData(
            created_at=created, created_by="operator", last_modified_at=self.clock()
        )
        stored = OnlineEndpoint._from_rest_object(rest)
        self.entities[str(endpoint.name)] = stored
        return stored

    @staticmethod
    def _created(entity: OnlineEndpoint) -> datetime:
        return datetime.strptime(entity.properties["createdAt"], "%Y-%m-%dT%H:%M:%S.%f%z")

    def drop_traffic(self, name: str, deployment: str) -> None:
        """What the service does to an endpoint's traffic when one of its deployments goes."""
        entity = self._require(name)
        entity.traffic = {k: v for k, v in (entity.traffic or {}).items() if k != deployment}
        self._store(entity, text_state(entity.provisioning_state), self._created(entity))

    def _require(self, name: str) -> OnlineEndpoint:
        if name not in self.entities:
            raise ResourceNotFoundError(f"Online endpoint {name} was not found.")
        return self.entities[name]

    def get(self, name: str, **_: Any) -> OnlineEndpoint:
        self.calls.append(("get", name))
        return self._require(name)

    def list(self, **_: Any) -> list[OnlineEndpoint]:
        self.calls.append(("list",))
        return list(self.entities.values())

    def begin_create_or_update(self, endpoint: OnlineEndpoint, **_: Any) -> LROPoller:
        self.calls.append(("begin_create_or_update", endpoint.name, dict(endpoint.traffic or {})))
        self.received.append(endpoint)
        check_name(str(endpoint.name))
        OnlineEndpoint._load(data=endpoint._to_dict())
        traffic = {k: int(v) for k, v in (endpoint.traffic or {}).items()}
        existing = self.deployments.names(str(endpoint.name)) if self.deployments else set()
        unknown = set(traffic) - existing
        if unknown:
            raise http_error(f"Traffic refers to unknown deployment(s) {sorted(unknown)}.", 400)
        if traffic and sum(traffic.values()) not in (0, 100):
            raise http_error("Traffic must add up to 0 or 100.", 400)
        previous = self.entities.get(str(endpoint.name))
        created = self._created(previous) if previous is not None else self.clock()
        self._store(endpoint, "Creating" if previous is None else "Updating", created)
        self.keys.setdefault(str(endpoint.name), [self._new_key(), self._new_key()])
        return self._poller(lambda: self._store(endpoint, "Succeeded", created))

    def begin_delete(self, name: str | None = None, **_: Any) -> LROPoller:
        self.calls.append(("begin_delete", name))
        entity = self._require(str(name))
        self._store(entity, "Deleting", self._created(entity))

        def finish() -> None:
            self.entities.pop(str(name), None)
            if self.deployments is not None:
                self.deployments.entities.pop(str(name), None)

        return self._poller(finish, fail=False)

    def get_keys(self, name: str) -> EndpointAuthKeys:
        self.calls.append(("get_keys", name))
        self._require(name)
        primary, secondary = self.keys[name]
        return EndpointAuthKeys(primary_key=primary, secondary_key=secondary)

    def begin_regenerate_keys(self, name: str, *, key_type: str = "primary") -> LROPoller:
        self.calls.append(("begin_regenerate_keys", name, key_type))
        self._require(name)
        if key_type not in ("primary", "secondary"):
            raise ValidationException(
                message=f"Unknown key type {key_type}.",
                no_personal_data_message="Unknown key type.",
            )

        def finish() -> None:
            self.keys[name][0 if key_type == "primary" else 1] = self._new_key()

        return self._poller(finish, fail=False)


class FakeOnlineDeploymentOperations(Gated):
    """Stands in for `ml_client.online_deployments` (OnlineDeploymentOperations)."""

    def __init__(
        self, endpoints: FakeOnlineEndpointOperations, models: FakeModelOperations
    ) -> None:
        self.endpoints = endpoints
        self.models = models
        self.entities: dict[str, dict[str, OnlineDeployment]] = {}
        self.received: list[OnlineDeployment] = []
        self.calls: list[tuple[Any, ...]] = []
        self.logs: dict[tuple[str, str], str] = {}
        endpoints.deployments = self

    def names(self, endpoint: str) -> set[str]:
        return set(self.entities.get(endpoint, {}))

    def _store(self, deployment: OnlineDeployment, state: str) -> OnlineDeployment:
        rest = deployment._to_rest_object(LOCATION)
        rest.name = deployment.name
        rest.id = (
            f"{ARM_WORKSPACE}/onlineEndpoints/{deployment.endpoint_name}"
            f"/deployments/{deployment.name}"
        )
        rest.properties.provisioning_state = state
        rest.properties.scale_settings = rest.properties.scale_settings or DefaultScaleSettings()
        stored = OnlineDeployment._from_rest_object(rest)
        stored.endpoint_name = deployment.endpoint_name
        self.entities.setdefault(str(deployment.endpoint_name), {})[str(deployment.name)] = stored
        return stored

    def begin_create_or_update(self, deployment: OnlineDeployment, **_: Any) -> LROPoller:
        self.calls.append(("begin_create_or_update", deployment.endpoint_name, deployment.name))
        self.received.append(deployment)
        check_name(str(deployment.name))
        OnlineDeployment._load(data=deployment._to_dict())
        self.endpoints._require(str(deployment.endpoint_name))
        model = str(deployment.model)
        match = re.match(r"^azureml:([^:]+):(\d+)$", model)
        if not match:
            raise http_error(f"Model reference {model!r} is not a registered model version.", 400)
        self.models.get(match.group(1), match.group(2))
        self._store(deployment, "Creating")

        def finish() -> OnlineDeployment:
            return self._store(deployment, "Succeeded")

        poller = self._poller(finish)
        if self.fail_with is not None:
            self.logs[(str(deployment.endpoint_name), str(deployment.name))] = (
                "Liveness probe failed: the model could not be loaded."
            )
        return poller

    def get(self, name: str, endpoint_name: str, **_: Any) -> OnlineDeployment:
        self.calls.append(("get", endpoint_name, name))
        try:
            return self.entities[endpoint_name][name]
        except KeyError:
            raise ResourceNotFoundError(f"Deployment {name} was not found.") from None

    def list(self, endpoint_name: str, **_: Any) -> list[OnlineDeployment]:
        self.calls.append(("list", endpoint_name))
        self.endpoints._require(endpoint_name)
        return list(self.entities.get(endpoint_name, {}).values())

    def begin_delete(self, name: str, endpoint_name: str, **_: Any) -> LROPoller:
        self.calls.append(("begin_delete", endpoint_name, name))
        traffic = self.endpoints._require(endpoint_name).traffic or {}
        if int(traffic.get(name, 0)) > 0:
            raise http_error(f"Deployment {name} still takes traffic.", 400)
        self.get(name, endpoint_name)

        def finish() -> None:
            self.entities[endpoint_name].pop(name)
            self.endpoints.drop_traffic(endpoint_name, name)

        return self._poller(finish, fail=False)

    def get_logs(self, name: str, endpoint_name: str, lines: int, **_: Any) -> str:
        self.calls.append(("get_logs", endpoint_name, name, lines))
        self.get(name, endpoint_name)
        text = self.logs.get((endpoint_name, name), "Listening on 0.0.0.0:5001\nModel loaded.")
        return "\n".join(text.splitlines()[-lines:])
