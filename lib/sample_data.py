"""The public Bank Marketing sample used by Azure's AutoML tutorials."""

from __future__ import annotations

from pathlib import Path

import requests

BANK_MARKETING_URL = (
    "https://automlsamplenotebookdata.blob.core.windows.net/"
    "automl-sample-notebook-data/bankmarketing_train.csv"
)
BANK_MARKETING_NAME = "bankmarketing"
BANK_MARKETING_DESCRIPTION = "Bank Marketing (UCI): term-deposit subscription, target column y"


class SampleUnavailable(Exception):
    """The sample could not be fetched; the message is one line for the user."""


def fetch_bank_marketing(timeout: float = 5.0, local_copy: Path | None = None) -> tuple[bytes, str]:
    """The sample's bytes and where they came from: the local copy when there is one (no
    network wait offline), else Azure's public blob."""
    if local_copy is not None and local_copy.is_file():
        return local_copy.read_bytes(), str(local_copy)
    try:
        response = requests.get(BANK_MARKETING_URL, timeout=timeout)
        response.raise_for_status()
        return response.content, BANK_MARKETING_URL
    except requests.RequestException as exc:
        raise SampleUnavailable(
            "The Bank Marketing sample cannot be downloaded from here (no network access: "
            f"{type(exc).__name__}). Upload bankmarketing_train.csv from your disk instead, "
            "or set OPSDECK_SAMPLE_DATA to a local copy."
        ) from exc
