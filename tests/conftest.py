"""Shared fixtures: a hermetic environment and a temp workspace home per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before any numeric library loads: idle OpenMP threads sleep instead of spinning on 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from lib.settings import find_sample_data  # noqa: E402
from tests.support.ports import free_port  # noqa: E402, F401 - re-exported for older imports
from tests.support.waiting import wait_for  # noqa: E402, F401 - re-exported for older imports

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No stray Azure configuration; every test gets its own OPSDECK_HOME."""
    for key in list(os.environ):
        if key.startswith("AZURE_") or key.startswith("OPSDECK_"):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("OPSDECK_HOME", str(home))
    monkeypatch.setenv("OPSDECK_BACKEND", "local")
    sample = find_sample_data({})
    if sample is not None:
        monkeypatch.setenv("OPSDECK_SAMPLE_DATA", str(sample))
    return home


@pytest.fixture
def bank_csv() -> Path:
    """The Bank Marketing CSV beside the repo; tests needing it skip when it is absent."""
    path = find_sample_data({}) or (
        Path(os.environ["OPSDECK_SAMPLE_DATA"]) if os.environ.get("OPSDECK_SAMPLE_DATA") else None
    )
    if path is None or not path.is_file():
        pytest.skip("bankmarketing_train.csv not found (set OPSDECK_SAMPLE_DATA or ../shared/data)")
    return path


@pytest.fixture
def local_workspace(hermetic_env: Path):  # noqa: ANN201
    """The local workspace on this test's home, as the pages see it."""
    from lib.ui import workspace

    return workspace()
