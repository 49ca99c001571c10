"""Azure endpoints: managed online endpoints serving registered MLflow models (no scoring script).

A deploy is a blue/green rollout that never blocks the page: `deploy` sends the first request
(endpoint creation, or the new deployment when the endpoint exists) and returns the endpoint in
state Creating; a background thread waits on the pollers, creates the deployment, moves 100% of
the traffic to it and retires the previous one. The rollouts are kept in memory by endpoint name,
so `get` reports Creating → Succeeded, or Failed with the deployment's logs. The endpoint, its
scoring URI and its keys survive redeploys.

A deploy may give the new deployment a share of the traffic instead (a canary: the others keep
theirs, nothing is retired); `set_traffic` sets the endpoint's `traffic` and `mirror_traffic`,
`rollback` sends all traffic back to the deployment that served before (deploying its model
version again when that deployment was retired). Azure keeps no history of these changes: the
history lists the ones made from this dashboard process.
"""

from __future__ import annotations

import getpass
import os
import re
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
from azure.ai.ml.entities import (
    EndpointAuthKeys,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    OnlineDeployment,
    OnlineEndpoint,
)
from azure.core.exceptions import AzureError, ResourceNotFoundError

from lib.appinsights import REQUEST_COLUMNS
from lib.azure.client import MLClientSource, azure_call, describe_azure_error
from lib.azure.kql import service_name
from lib.azure.values import parse_time, wire_text
from lib.errors import WorkspaceError
from lib.names import validate_deployment_name, validate_endpoint_name
from lib.traffic import check_split, free_name, rollback_target, shift
from lib.traffic import live_deployment as live_of
from lib.workspace import Deployment, DeploymentEvent, Endpoint

COLOURS = ("blue", "green")
INSTANCE_TYPE = "Standard_DS3_v2"
LOG_LINES_ON_FAILURE = 100
MODEL_TAG, VERSION_TAG = "opsdeck.model", "opsdeck.model_version"
PROVISIONING_STATES = {
    "Succeeded": "Succeeded",
    "Creating": "Creating",
    "Updating": "Creating",
    "Deleting": "Deleting",
    "Failed": "Failed",
    "Canceled": "Failed",
}
MODEL_REF = re.compile(r"^azureml:(?P<name>[^:/]+):(?P<version>\d+)$")
MODEL_ARM_ID = re.compile(r"/models/(?P<name>[^/]+)/versions/(?P<version>\d+)$", re.IGNORECASE)
NO_STOP = (
    "Azure managed online endpoints cannot be stopped, and a deployment cannot be scaled to zero "
    "instances: it is billed while it exists. Delete the endpoint to stop paying for it, and "
    "deploy the model again when it is needed."
)


def parse_model_ref(ref: Any) -> tuple[str, int]:
    """(name, version) of a deployment's model: `azureml:name:3` or a model version ARM id."""
    text = str(getattr(ref, "id", None) or ref or "")
    match = MODEL_REF.match(text) or MODEL_ARM_ID.search(text)
    if not match:
        return "", 0
    return match.group("name"), int(match.group("version"))


def scoring_contract(deployment: Any) -> tuple[str, bool]:
    """(request shape, can return probabilities) of a deployment, from how it serves its model.

    Without a scoring script Azure runs its MLflow scoring script: `input_data` (+ `params`),
    `predict` only. AutoML's generated `scoring_file_v_2_*` takes `Inputs`/`GlobalParameters`
    and answers `predict_proba`; other scripts are assumed to take the classic `data` body.
    """
    code = getattr(deployment, "code_configuration", None)
    if code is None:
        return "input_data", False
    script = PurePosixPath(str(getattr(code, "scoring_script", "") or "")).name
    if script.startswith("scoring_file_v_2"):
        return "inputs", True
    return "data", False


def live_deployment(traffic: dict[str, int] | None) -> str | None:
    """The deployment taking the most traffic (None when nothing is routed)."""
    routed = {k: int(v) for k, v in (traffic or {}).items() if int(v) > 0}
    return max(routed, key=lambda k: routed[k]) if routed else None


@dataclass
class Rollout:
    """One deploy in flight (or just ended) on an endpoint."""

    endpoint: str
    deployment: str
    model_name: str
    model_version: int
    retire: list[str]
    # The split once the new deployment is ready (all of it, unless a canary share was asked).
    traffic: dict[str, int] = field(default_factory=dict)
    mirror: dict[str, int] = field(default_factory=dict)
    models: dict[str, tuple[str, int]] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    step: str = "starting"
    state: str = "Creating"  # Creating, Succeeded, Failed
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    pollers: list[Any] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)


class AzureEndpoints:
    """EndpointService over `ml_client.online_endpoints` and `ml_client.online_deployments`."""

    def __init__(
        self,
        ml_client: MLClientSource,
        instance_type: str = INSTANCE_TYPE,
        instance_count: int = 1,
    ) -> None:
        self.ml_client = ml_client
        self.instance_type = instance_type
        self.instance_count = instance_count
        self._rollouts: dict[str, Rollout] = {}
        self._history: dict[str, list[DeploymentEvent]] = {}
        self._lock = threading.Lock()
        # Who the history names for changes made through this object.
        self.actor = os.environ.get("OPSDECK_USER") or getpass.getuser()

    # --- reading --------------------------------------------------------------------------

    def rollout(self, name: str) -> Rollout | None:
        """The last deploy started on `name` by this process, if it is still remembered."""
        with self._lock:
            return self._rollouts.get(name)

    def _find(self, name: str) -> OnlineEndpoint | None:
        with azure_call(f"get endpoint {name}"):
            try:
                return self.ml_client().online_endpoints.get(name=name)
            except ResourceNotFoundError:
                return None

    def _live_deployment(self, endpoint: OnlineEndpoint) -> OnlineDeployment | None:
        live = live_deployment(endpoint.traffic)
        if live is None:
            return None
        with azure_call(f"get deployment {live} of endpoint {endpoint.name}"):
            try:
                return self.ml_client().online_deployments.get(
                    name=live, endpoint_name=endpoint.name
                )
            except ResourceNotFoundError:
                return None

    def to_endpoint(self, entity: OnlineEndpoint) -> Endpoint:
        """Map an online endpoint to the domain type (the model from our tags, else its deployment)."""
        tags = dict(entity.tags or {})
        if tags.get(MODEL_TAG) and str(tags.get(VERSION_TAG, "")).isdigit():
            # opsdeck deploys registered MLflow models without a scoring script.
            model_name, model_version = tags[MODEL_TAG], int(tags[VERSION_TAG])
            shape, probabilities = "input_data", False
        else:
            deployment = self._live_deployment(entity)
            model_name, model_version = parse_model_ref(deployment.model) if deployment else ("", 0)
            shape, probabilities = scoring_contract(deployment) if deployment else ("data", False)
        props = dict(entity.properties or {})
        created = parse_time(props.get("createdAt")) or datetime.now(UTC)
        provisioning = wire_text(entity.provisioning_state)
        return Endpoint(
            name=str(entity.name),
            state=PROVISIONING_STATES.get(provisioning, provisioning or "Unknown"),
            scoring_uri=entity.scoring_uri or "",
            swagger_uri=entity.openapi_uri or "",
            model_name=model_name,
            model_version=model_version,
            created=created,
            updated=parse_time(props.get("lastModifiedAt")) or created,
            request_shape=shape,
            probabilities=probabilities,
        )

    def _merge(self, endpoint: Endpoint | None, rollout: Rollout | None) -> Endpoint | None:
        """The endpoint as Azure reports it, overlaid with this process's rollout."""
        if rollout is None:
            return endpoint
        if endpoint is None:
            endpoint = Endpoint(
                name=rollout.endpoint,
                state="Creating",
                scoring_uri="",
                swagger_uri="",
                model_name=rollout.model_name,
                model_version=rollout.model_version,
                created=rollout.started,
                updated=rollout.started,
            )
        if rollout.state == "Creating":
            return replace(
                endpoint,
                state="Creating",
                model_name=rollout.model_name,
                model_version=rollout.model_version,
                error=None,
            )
        if rollout.state == "Failed":
            if not endpoint.model_name:
                endpoint = replace(
                    endpoint, model_name=rollout.model_name, model_version=rollout.model_version
                )
            return replace(endpoint, state="Failed", error=rollout.error)
        with self._lock:
            # Succeeded: from now on Azure's own state is the truth.
            if self._rollouts.get(rollout.endpoint) is rollout:
                del self._rollouts[rollout.endpoint]
        return endpoint

    def get(self, name: str) -> Endpoint:
        rollout = self.rollout(name)
        entity = self._find(name)
        merged = self._merge(self.to_endpoint(entity) if entity else None, rollout)
        if merged is None:
            raise WorkspaceError(f"Endpoint {name} does not exist.")
        return merged

    def list(self) -> list[Endpoint]:
        """The workspace's online endpoints, with deploys in flight from this process."""
        with azure_call("list endpoints"):
            entities = list(self.ml_client().online_endpoints.list())
        found = {str(e.name): self.to_endpoint(e) for e in entities}
        with self._lock:
            rollouts = dict(self._rollouts)
        for name in set(found) | set(rollouts):
            merged = self._merge(found.get(name), rollouts.get(name))
            if merged is not None:
                found[name] = merged
        return sorted(found.values(), key=lambda e: e.created)

    def keys(self, name: str) -> tuple[str, str]:
        with azure_call(
            f"get the keys of endpoint {name}", not_found=f"Endpoint {name} does not exist."
        ):
            keys = self.ml_client().online_endpoints.get_keys(name=name)
        if not isinstance(keys, EndpointAuthKeys):
            raise WorkspaceError(
                f"Endpoint {name} uses token authentication, not keys; opsdeck creates key-auth "
                "endpoints."
            )
        return keys.primary_key or "", keys.secondary_key or ""

    def regenerate_key(self, name: str, which: str = "primary") -> tuple[str, str]:
        """A new value for one key (the other keeps working); waits for Azure, a few seconds."""
        if which not in ("primary", "secondary"):
            raise WorkspaceError("Key must be 'primary' or 'secondary'.")
        action = f"regenerate the {which} key of endpoint {name}"
        with azure_call(action, not_found=f"Endpoint {name} does not exist."):
            poller = self.ml_client().online_endpoints.begin_regenerate_keys(
                name=name, key_type=which
            )
            poller.result(timeout=120)
        if not poller.done():
            raise WorkspaceError(f"Azure is still regenerating the {which} key of {name}; retry.")
        return self.keys(name)

    def logs(self, name: str, lines: int = 80) -> str:
        """The inference server log of the deployment being rolled out, else the live one."""
        rollout = self.rollout(name)
        if rollout is not None and rollout.state != "Succeeded":
            deployment: str | None = rollout.deployment
        else:
            entity = self._find(name)
            if entity is None:
                raise WorkspaceError(f"Endpoint {name} does not exist.")
            deployment = live_deployment(entity.traffic)
        if deployment is None:
            return ""
        with azure_call(f"read the logs of deployment {deployment}"):
            try:
                text = self.ml_client().online_deployments.get_logs(
                    name=deployment, endpoint_name=name, lines=lines
                )
            except ResourceNotFoundError:
                return ""
        return f"--- deployment {deployment} ---\n{text or ''}".rstrip()

    def health(self, name: str, timeout: float = 1.0) -> bool:
        """Azure reports the endpoint provisioned (Succeeded) and no deploy has failed."""
        try:
            return self.get(name).state == "Succeeded"
        except WorkspaceError:
            return False

    def requests(self, name: str | None = None, limit: int = 20) -> pd.DataFrame:
        """Empty: Azure request logs live in Application Insights, read by the telemetry service."""
        return pd.DataFrame(columns=REQUEST_COLUMNS)

    # --- changing -------------------------------------------------------------------------

    def _deployments(self, name: str) -> list[OnlineDeployment]:
        with azure_call(f"list the deployments of endpoint {name}"):
            try:
                return list(self.ml_client().online_deployments.list(endpoint_name=name))
            except ResourceNotFoundError:
                return []

    def deploy(
        self,
        model_name: str,
        model_version: int,
        endpoint_name: str,
        deployment: str | None = None,
        traffic: int = 100,
    ) -> Endpoint:
        """Start a rollout of a model version to an endpoint; returns it in state Creating.

        The new deployment takes `traffic` percent once it is ready; at 100 % the others are
        retired (an idle deployment is billed), below it they keep the rest (`lib.traffic.shift`).
        """
        name = validate_endpoint_name(endpoint_name)
        if deployment is not None:
            validate_deployment_name(deployment)
        current = self.rollout(name)
        if current is not None and current.state == "Creating":
            raise WorkspaceError(
                f"Endpoint {name} is already deploying {current.model_name} "
                f"v{current.model_version} ({current.step}); wait for it to finish."
            )
        label = f"{model_name} v{model_version}"
        with azure_call(f"get model {label}", not_found=f"Model {label} is not registered."):
            self.ml_client().models.get(name=model_name, version=str(int(model_version)))
        entity = self._find(name)
        routed = dict(entity.traffic or {}) if entity is not None else {}
        found = self._deployments(name)
        existing = {str(d.name): int(routed.get(str(d.name), 0)) for d in found}
        colour = deployment or free_name(existing)
        if not existing and int(traffic) != 100:
            raise WorkspaceError("The first deployment of an endpoint takes all the traffic.")
        split = shift(
            {k: v for k, v in existing.items() if k != colour} | {colour: 0}, colour, traffic
        )
        mirrored = dict(getattr(entity, "mirror_traffic", None) or {}) if entity else {}
        mirror = {k: int(v) for k, v in mirrored.items() if not (k == colour and split[colour])}
        check_split(split, mirror, split)
        models = {str(d.name): parse_model_ref(d.model) for d in found}
        rollout = Rollout(
            endpoint=name,
            deployment=colour,
            model_name=model_name,
            model_version=int(model_version),
            retire=[d for d in existing if d != colour] if split[colour] == 100 else [],
            traffic=split,
            mirror=mirror,
            models=models | {colour: (model_name, int(model_version))},
        )
        deployment = ManagedOnlineDeployment(
            name=colour,
            endpoint_name=name,
            model=f"azureml:{model_name}:{int(model_version)}",
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            app_insights_enabled=True,
            # The inference server names its App Insights role after SERVICE_NAME: the Logs
            # page splits requests by endpoint and deployment through it (lib.azure.kql).
            environment_variables={"SERVICE_NAME": service_name(name, colour)},
        )
        ml = self.ml_client()
        if entity is None:
            endpoint = ManagedOnlineEndpoint(
                name=name,
                auth_mode="key",
                description=f"opsdeck endpoint for {model_name}",
                tags={MODEL_TAG: model_name, VERSION_TAG: str(int(model_version))},
            )
            rollout.step = "creating the endpoint"
            with azure_call(f"create endpoint {name}"):
                first = ml.online_endpoints.begin_create_or_update(endpoint)
        else:
            rollout.step = f"creating deployment {colour}"
            with azure_call(f"create deployment {colour} of endpoint {name}"):
                first = ml.online_deployments.begin_create_or_update(deployment)
        rollout.pollers.append(first)
        with self._lock:
            self._rollouts[name] = rollout
        # Read before the thread starts, so the answer is Creating however fast Azure is.
        started = self.get(name)
        threading.Thread(
            target=self._finish_rollout,
            args=(rollout, first, deployment, entity is None),
            name=f"deploy-{name}",
            daemon=True,
        ).start()
        return started

    def _finish_rollout(
        self, rollout: Rollout, first: Any, deployment: ManagedOnlineDeployment, new: bool
    ) -> None:
        ml = self.ml_client()
        name, colour = rollout.endpoint, rollout.deployment
        action = f"create endpoint {name}" if new else f"create deployment {colour} of {name}"
        deployment_started = not new
        try:
            first.result()
            if new:
                rollout.step = f"creating deployment {colour}"
                action = f"create deployment {colour} of {name}"
                deployment_started = True
                poller = ml.online_deployments.begin_create_or_update(deployment)
                rollout.pollers.append(poller)
                poller.result()
            share = rollout.traffic.get(colour, 100)
            rollout.step = f"routing {share} % of the traffic to {colour}"
            action = f"route the traffic of {name} to {colour}"
            endpoint = ml.online_endpoints.get(name=name)
            endpoint.traffic = rollout.traffic or {colour: 100}
            endpoint.mirror_traffic = {k: v for k, v in rollout.mirror.items() if v}
            self._tag_live(endpoint, rollout.models)
            poller = ml.online_endpoints.begin_create_or_update(endpoint)
            rollout.pollers.append(poller)
            poller.result()
            for old in rollout.retire:
                # An idle deployment keeps its VMs billed; the new one already takes all traffic.
                rollout.step = f"deleting the previous deployment {old}"
                try:
                    poller = ml.online_deployments.begin_delete(name=old, endpoint_name=name)
                    rollout.pollers.append(poller)
                    poller.result()
                except AzureError as exc:
                    rollout.notes.append(describe_azure_error(exc, f"delete deployment {old}"))
            rollout.step = "done"
            rollout.state = "Succeeded"
            share = rollout.traffic.get(colour, 100)
            detail = f"{colour}: {rollout.model_name} v{rollout.model_version} at {share} %"
            kept = {k: v for k, v in rollout.models.items() if k not in rollout.retire}
            self._record(name, "deploy", detail, rollout.traffic, rollout.mirror, kept)
        except Exception as exc:  # any failure must end the rollout, never leave it Creating
            message = (
                describe_azure_error(exc, action)
                if isinstance(exc, AzureError)
                else f"Could not {action}: {exc}"
            )
            if not new and rollout.retire:
                message += f" Traffic stays on {', '.join(rollout.retire)}."
            logs = self._failure_logs(name, colour) if deployment_started else ""
            rollout.error = f"{message}\n{logs}".strip()
            rollout.state = "Failed"
            self._record(
                name, "deploy", f"{colour}: {message}", rollout.traffic, rollout.mirror,
                rollout.models, "Failed",
            )  # fmt: skip
        finally:
            rollout.finished.set()

    def _failure_logs(self, name: str, colour: str) -> str:
        try:
            text = self.ml_client().online_deployments.get_logs(
                name=colour, endpoint_name=name, lines=LOG_LINES_ON_FAILURE
            )
        except AzureError as exc:
            return f"(no deployment logs: {describe_azure_error(exc, 'read the logs')})"
        return f"--- deployment {colour} logs ---\n{text}" if text else ""

    # --- deployments and traffic ----------------------------------------------------------

    @staticmethod
    def _tag_live(endpoint: OnlineEndpoint, models: dict[str, tuple[str, int]]) -> None:
        """Name the live deployment's model in the endpoint's tags (what `to_endpoint` shows)."""
        live = live_of(dict(endpoint.traffic or {}), list(models))
        if live is not None and models.get(live, ("", 0))[0]:
            model_name, version = models[live]
            endpoint.tags = {
                **(endpoint.tags or {}),
                MODEL_TAG: model_name,
                VERSION_TAG: str(version),
            }

    def _record(
        self,
        name: str,
        action: str,
        detail: str,
        traffic: dict[str, int],
        mirror: dict[str, int],
        models: dict[str, tuple[str, int]],
        outcome: str = "Succeeded",
    ) -> None:
        event = DeploymentEvent(
            endpoint=name,
            time=datetime.now(UTC),
            who=self.actor,
            action=action,
            detail=detail,
            traffic={k: int(v) for k, v in traffic.items() if int(v)},
            mirror={k: int(v) for k, v in mirror.items() if int(v)},
            models=dict(models),
            outcome=outcome,
        )
        with self._lock:
            self._history.setdefault(name, []).append(event)

    def _require(self, name: str) -> OnlineEndpoint:
        entity = self._find(name)
        if entity is None:
            raise WorkspaceError(f"Endpoint {name} does not exist.")
        return entity

    def deployments(self, name: str) -> list[Deployment]:
        """The endpoint's deployments as Azure lists them, with the endpoint's split."""
        entity = self._require(name)
        traffic = {k: int(v) for k, v in (entity.traffic or {}).items()}
        mirror = {k: int(v) for k, v in (getattr(entity, "mirror_traffic", None) or {}).items()}
        found = []
        for d in self._deployments(name):
            model_name, version = parse_model_ref(d.model)
            state = wire_text(d.provisioning_state)
            found.append(
                Deployment(
                    endpoint=name,
                    name=str(d.name),
                    model_name=model_name,
                    model_version=version,
                    traffic=traffic.get(str(d.name), 0),
                    mirror=mirror.get(str(d.name), 0),
                    state=PROVISIONING_STATES.get(state, state or "Unknown"),
                    note=f"{d.instance_type} × {d.instance_count}",
                )
            )
        return sorted(found, key=lambda d: (-d.traffic, d.name))

    def set_traffic(
        self, name: str, traffic: dict[str, int], mirror: dict[str, int] | None = None
    ) -> Endpoint:
        """Set the endpoint's `traffic` (and `mirror_traffic`) and wait for Azure to apply it."""
        entity = self._require(name)
        models = {str(d.name): parse_model_ref(d.model) for d in self._deployments(name)}
        if mirror is None:
            mirrored = dict(getattr(entity, "mirror_traffic", None) or {})
            mirror = {k: int(v) for k, v in mirrored.items() if not traffic.get(k)}
        live, shadow = check_split(traffic, mirror, models)
        detail = ", ".join(f"{k} {v} %" for k, v in live.items() if v)
        if any(shadow.values()):
            detail += "; mirror " + ", ".join(f"{k} {v} %" for k, v in shadow.items() if v)
        return self._route(name, entity, models, live, shadow, "traffic", detail)

    def _route(
        self,
        name: str,
        entity: OnlineEndpoint,
        models: dict[str, tuple[str, int]],
        live: dict[str, int],
        shadow: dict[str, int],
        action: str,
        detail: str,
    ) -> Endpoint:
        current = self.rollout(name)
        if current is not None and current.state == "Creating":
            raise WorkspaceError(f"Endpoint {name} is deploying ({current.step}); wait for it.")
        entity.traffic = live
        entity.mirror_traffic = {k: v for k, v in shadow.items() if v}
        self._tag_live(entity, models)
        with azure_call(f"set the traffic of endpoint {name}"):
            try:
                self.ml_client().online_endpoints.begin_create_or_update(entity).result()
            except AzureError:
                self._record(name, action, detail, live, shadow, models, "Failed")
                raise
        self._record(name, action, detail, live, shadow, models)
        return self.get(name)

    def rollback(self, name: str) -> Endpoint:
        """All traffic back to the deployment that served before, deploying its model again if
        that deployment was retired."""
        entity = self._require(name)
        traffic = {k: int(v) for k, v in (entity.traffic or {}).items()}
        models = {str(d.name): parse_model_ref(d.model) for d in self._deployments(name)}
        target = rollback_target(self.history(name, 500), traffic, list(models))
        if target is None:
            idle = [k for k in models if not traffic.get(k)]
            if len(models) != 2 or not idle:
                raise WorkspaceError(
                    f"Nothing to roll back to: no earlier deployment of {name} is known here."
                )
            target = (idle[0], *models[idle[0]])
        deployment, model_name, version = target
        if models.get(deployment) != (model_name, version):
            # Retired: deploy that model version again, taking all the traffic.
            return self.deploy(model_name, version, name)
        live = dict.fromkeys(models, 0) | {deployment: 100}
        detail = f"all traffic back to {deployment} ({model_name} v{version})"
        return self._route(name, entity, models, live, dict.fromkeys(models, 0), "rollback", detail)

    def history(self, name: str, limit: int = 50) -> list[DeploymentEvent]:
        """Changes made from this dashboard process, newest first (Azure keeps none)."""
        with self._lock:
            return list(reversed(self._history.get(name, [])))[:limit]

    def delete_deployment(self, name: str, deployment: str) -> None:
        """Delete a deployment that takes no live or mirrored traffic (it stops being billed)."""
        entity = self._require(name)
        mirrored = dict(getattr(entity, "mirror_traffic", None) or {})
        if int((entity.traffic or {}).get(deployment, 0)) or int(mirrored.get(deployment, 0)):
            raise WorkspaceError(f"Deployment {deployment} still takes traffic; move it first.")
        with azure_call(
            f"delete deployment {deployment} of endpoint {name}",
            not_found=f"Deployment {deployment} does not exist on {name}.",
        ):
            self.ml_client().online_deployments.begin_delete(
                name=deployment, endpoint_name=name
            ).result()
        models = {str(d.name): parse_model_ref(d.model) for d in self._deployments(name)}
        self._record(
            name, "delete-deployment", deployment, dict(entity.traffic or {}), mirrored, models
        )

    def stop(self, name: str) -> Endpoint:
        """Refused: see NO_STOP."""
        raise WorkspaceError(NO_STOP)

    def restart(self, name: str) -> Endpoint:
        """Roll the live model version out again onto fresh instances (blue/green, same URI)."""
        endpoint = self.get(name)
        if not endpoint.model_name or not endpoint.model_version:
            raise WorkspaceError(f"Endpoint {name} serves no model to restart; deploy one.")
        return self.deploy(endpoint.model_name, endpoint.model_version, name)

    def delete(self, name: str) -> None:
        """Start deleting the endpoint and its deployments (Azure finishes in a few minutes)."""
        with azure_call(f"delete endpoint {name}", not_found=f"Endpoint {name} does not exist."):
            self.ml_client().online_endpoints.begin_delete(name=name)
        with self._lock:
            self._rollouts.pop(name, None)
