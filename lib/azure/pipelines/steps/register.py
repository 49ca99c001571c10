"""Register step: the AutoML job's best model as the next version of a registered model."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def ml_client():  # noqa: ANN201 - azure-ai-ml is only importable inside the step's environment
    """An MLClient acting as the user who submitted the pipeline job."""
    from azure.ai.ml import MLClient
    from azure.identity import AzureMLOnBehalfOfCredential, DefaultAzureCredential

    try:
        credential = AzureMLOnBehalfOfCredential()
        return MLClient.from_config(credential=credential)
    except Exception:  # noqa: BLE001 - outside a user-identity job, fall back to the default chain
        return MLClient.from_config(credential=DefaultAzureCredential())


def main(argv: list[str] | None = None) -> None:
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--description", default="")
    parser.add_argument("--registered", type=Path, required=True)
    args = parser.parse_args(argv)
    model = ml_client().models.create_or_update(
        Model(
            path=str(args.model),
            name=args.model_name,
            type=AssetTypes.MLFLOW_MODEL,
            description=args.description,
            tags={"opsdeck.registered_by": "pipeline"},
        )
    )
    args.registered.mkdir(parents=True, exist_ok=True)
    payload = {"model_name": model.name, "model_version": int(model.version)}
    (args.registered / "model.json").write_text(json.dumps(payload))
    import mlflow

    mlflow.set_tags({"opsdeck.model": json.dumps(payload)})
    logging.info("registered %s v%s", model.name, model.version)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
