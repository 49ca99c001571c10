"""Every name rule of the workspace, one place for both backends.

Each rule follows what Azure ML accepts for that kind of object, so a name that works locally
also works after switching to Azure. `validate_*` return the cleaned name or raise
`WorkspaceError` with the rule in the user's terms.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from lib.errors import WorkspaceError


@dataclass(frozen=True)
class NameRule:
    """One kind of name: its pattern and the sentence shown when a name breaks it."""

    kind: str
    pattern: re.Pattern[str]
    message: str

    def validate(self, name: str) -> str:
        """The stripped name, or `WorkspaceError` with the rule."""
        name = (name or "").strip()
        if not self.pattern.match(name):
            raise WorkspaceError(self.message)
        return name

    def is_valid(self, name: str) -> bool:
        return bool(self.pattern.match((name or "").strip()))


# Data assets and models (Azure asset names): letters, digits, '-', '_', '.'.
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ASSET_CHARS = "use only letters, digits, '-', '_' or '.' (at most 100 characters)."
# Online endpoints and their deployments (azure-ai-ml `EndpointConfigurations`): 3-32 characters.
ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
# Pipeline components: lower-case letters, digits and '_', starting with a letter.
PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,254}$")
# AmlCompute clusters: 2-16 characters.
COMPUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,14}[A-Za-z0-9]$")

DATASET = NameRule(
    "dataset", ASSET_NAME, f"Dataset name must start with a letter or digit and {_ASSET_CHARS}"
)
MODEL = NameRule(
    "model", ASSET_NAME, f"Model name must start with a letter or digit and {_ASSET_CHARS}"
)
ENDPOINT = NameRule(
    "endpoint",
    ENDPOINT_NAME,
    "Endpoint name must be 3-32 characters, start with a letter, use only letters, digits and "
    "'-', and not end with '-'.",
)
DEPLOYMENT = NameRule(
    "deployment",
    ENDPOINT_NAME,
    "Deployment name must be 3-32 characters, start with a letter, use only letters, digits "
    "and '-', and not end with '-'.",
)
PIPELINE = NameRule(
    "pipeline",
    PIPELINE_NAME,
    "Pipeline name must start with a lower-case letter and use only lower-case letters, digits "
    "and '_' (at most 255 characters).",
)
SCHEDULE = NameRule(
    "schedule", ASSET_NAME, f"Schedule name must start with a letter or digit and {_ASSET_CHARS}"
)
COMPUTE = NameRule(
    "compute",
    COMPUTE_NAME,
    "Cluster name must be 2 to 16 characters: letters, digits or '-', starting with a letter "
    "and not ending with '-'.",
)


def validate_dataset_name(name: str) -> str:
    return DATASET.validate(name)


def validate_model_name(name: str) -> str:
    return MODEL.validate(name)


def validate_endpoint_name(name: str) -> str:
    return ENDPOINT.validate(name)


def validate_deployment_name(name: str) -> str:
    return DEPLOYMENT.validate(name)


def validate_pipeline_name(name: str) -> str:
    return PIPELINE.validate(name)


def validate_schedule_name(name: str) -> str:
    return SCHEDULE.validate(name)


def validate_compute_name(name: str) -> str:
    return COMPUTE.validate(name)


def name_part(text: str, allowed: str = "A-Za-z0-9_.-") -> str:
    """`text` in the characters a name allows: accents dropped (qualität -> qualitat, ñandú ->
    nandu), any other run of characters one dash."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(rf"[^{allowed}]+", "-", folded)


def endpoint_name_for(model_name: str) -> str:
    """A valid endpoint name derived from a model name (3-32 chars, letter first)."""
    name = re.sub(r"-{2,}", "-", name_part(model_name, "a-zA-Z0-9-")).strip("-").lower()
    if not name or not name[0].isalpha():
        name = f"ep-{name}"
    name = name[:32].rstrip("-")
    return name if len(name) >= 3 else f"{name}-ep"


def model_name_for(dataset: str, target: str) -> str:
    """The suggested model name for an AutoML run: `<dataset>-<target>`, made valid."""
    name = name_part(f"{dataset}-{target}").strip("-._")
    return name[:100] or "model"
