"""Azure AutoML: `automl.classification` / `automl.regression` jobs over an MLTable of a dataset.

Read in the order a job lives: `submit` (checks, MLTable input, job entity), `jobs` (job entities
as domain Jobs), `tracking` (the workspace's MLflow over REST, where trials are child runs),
`trials` (the trial table, leaderboard and best trial), `details` (best-model curves). `translate` maps our
metric and algorithm names to Azure's; `service` is the AutoMLService built from them.
"""

from lib.azure.automl.service import AzureAutoML
from lib.azure.automl.submit import timeout_minutes
from lib.azure.automl.tracking import MlflowClientSource, WorkspaceTracking, default_tracking

__all__ = [
    "AzureAutoML",
    "MlflowClientSource",
    "WorkspaceTracking",
    "default_tracking",
    "timeout_minutes",
]
