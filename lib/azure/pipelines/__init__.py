"""Azure retrain pipelines: the dsl pipeline job, its step scripts, and the service."""

from lib.azure.pipelines.service import AzurePipelines

__all__ = ["AzurePipelines"]
