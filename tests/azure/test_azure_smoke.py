"""bench/azure_smoke.py without a workspace or sign-in: it says why and creates nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def smoke_module():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location(
        "azure_smoke", REPO_ROOT / "bench" / "azure_smoke.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_without_a_workspace_it_skips_with_the_reason(capsys, tmp_path: Path) -> None:
    smoke = smoke_module()
    assert smoke.main([]) == 0
    assert "skipped, no Azure ML workspace configured" in capsys.readouterr().out


def test_without_sign_in_it_skips_before_touching_the_workspace(
    capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    smoke = smoke_module()
    monkeypatch.setenv("OPSDECK_BACKEND", "azure")
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "rg")
    monkeypatch.setenv("AZURE_ML_WORKSPACE", "ws")
    monkeypatch.setattr(smoke, "signed_in", lambda _settings: "no credential available")
    opened: list[object] = []
    monkeypatch.setattr(smoke, "open_workspace", lambda *a: opened.append(a))
    assert smoke.main(["--compute", "cpu-cluster"]) == 0
    assert "cannot sign in to Azure (no credential available)" in capsys.readouterr().out
    assert opened == []


def test_without_a_cluster_it_skips(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    smoke = smoke_module()
    monkeypatch.setenv("OPSDECK_BACKEND", "azure")
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "rg")
    monkeypatch.setenv("AZURE_ML_WORKSPACE", "ws")
    monkeypatch.setattr(smoke, "signed_in", lambda _settings: None)
    assert smoke.main([]) == 0
    assert "no compute cluster named" in capsys.readouterr().out
