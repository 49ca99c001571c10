"""Deploy step: if the gate said deploy, roll the new model out to the endpoint blue/green.

The new deployment is created beside the live one and takes all traffic only once it is up;
the old one is deleted after. (The dashboard's own deploy, `lib.azure.endpoints`, rolls out the
same way; this copy runs inside the pipeline job, where opsdeck itself is not installed.)
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

COLOURS = ("blue", "green")


def next_colour(traffic: dict[str, int]) -> str:
    """The deployment name that is not live (blue first)."""
    live = max(traffic, key=traffic.get) if traffic else None
    return next(c for c in COLOURS if c != live)


def roll_out(ml: Any, endpoint: str, model_name: str, model_version: int, instance: str) -> str:
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

    try:
        entity = ml.online_endpoints.get(endpoint)
    except Exception:  # noqa: BLE001 - first deploy: create the endpoint
        entity = ml.online_endpoints.begin_create_or_update(
            ManagedOnlineEndpoint(name=endpoint, auth_mode="key")
        ).result()
    traffic = {k: int(v) for k, v in dict(entity.traffic or {}).items()}
    colour = next_colour(traffic)
    ml.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(
            name=colour,
            endpoint_name=endpoint,
            model=f"azureml:{model_name}:{model_version}",
            instance_type=instance,
            instance_count=1,
            app_insights_enabled=True,
            environment_variables={"SERVICE_NAME": endpoint},
        )
    ).result()
    entity.traffic = {colour: 100}
    ml.online_endpoints.begin_create_or_update(entity).result()
    for old in traffic:
        if old != colour:
            ml.online_deployments.begin_delete(name=old, endpoint_name=endpoint).result()
    return colour


def main(argv: list[str] | None = None) -> None:
    import mlflow
    from register import ml_client

    parser = argparse.ArgumentParser()
    parser.add_argument("--decision", type=Path, required=True)
    parser.add_argument("--registered", type=Path, required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--instance_type", default="Standard_DS3_v2")
    parser.add_argument("--deployed", type=Path, required=True)
    args = parser.parse_args(argv)
    decision = json.loads((args.decision / "decision.json").read_text())
    model = json.loads((args.registered / "model.json").read_text())
    args.deployed.mkdir(parents=True, exist_ok=True)
    if decision["decision"] != "deploy":
        outcome = {"skipped": f"the gate kept the live model ({decision['reason']})"}
    else:
        colour = roll_out(
            ml_client(),
            args.endpoint,
            model["model_name"],
            model["model_version"],
            args.instance_type,
        )
        outcome = {
            "endpoint": args.endpoint,
            "deployment": colour,
            "deployed_version": model["model_version"],
        }
    (args.deployed / "deployed.json").write_text(json.dumps(outcome))
    mlflow.set_tags({"opsdeck.deploy": json.dumps(outcome)})
    logging.info("deploy: %s", outcome)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
