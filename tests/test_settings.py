import json
import tomllib
from pathlib import Path

import pytest

from lib.settings import (
    DEFAULT_MAX_UPLOAD_MB,
    MB,
    REPO_ROOT,
    UploadLimits,
    find_sample_data,
    load_settings,
    mask_secret,
)


def test_local_by_default_with_reason(tmp_path: Path) -> None:
    s = load_settings(env={}, root=tmp_path)
    assert s.backend == "local"
    assert "no [azure] section" in s.backend_reason
    assert s.home == tmp_path / ".opsdeck"
    assert s.max_upload_mb == 200


def test_env_home_and_limits(tmp_path: Path) -> None:
    env = {"OPSDECK_HOME": "rel/home", "OPSDECK_MAX_UPLOAD_MB": "5", "OPSDECK_WORKER_SLOTS": "3"}
    s = load_settings(env=env, root=tmp_path)
    assert s.home == (tmp_path / "rel/home").resolve()
    assert s.max_upload_mb == 5 and s.worker_slots == 3


def test_azure_from_secrets_toml(tmp_path: Path) -> None:
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        '[azure]\nsubscription_id = "sub"\nresource_group = "rg"\nworkspace_name = "ws"\n'
    )
    s = load_settings(env={}, root=tmp_path)
    assert s.backend == "azure"
    assert s.azure is not None and s.azure.workspace_name == "ws"
    assert "secrets.toml" in s.backend_reason
    forced = load_settings(env={"OPSDECK_BACKEND": "local"}, root=tmp_path)
    assert forced.backend == "local"


def test_incomplete_azure_section_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[azure]\nsubscription_id = "sub"\n')
    with pytest.raises(ValueError, match="resource_group, workspace_name"):
        load_settings(env={}, root=tmp_path)


def test_azure_from_env_and_config_json(tmp_path: Path) -> None:
    env = {
        "AZURE_SUBSCRIPTION_ID": "s",
        "AZURE_RESOURCE_GROUP": "r",
        "AZURE_ML_WORKSPACE": "w",
    }
    assert load_settings(env=env, root=tmp_path).azure.source.startswith("AZURE_")
    (tmp_path / "config.json").write_text(
        json.dumps({"subscription_id": "s", "resource_group": "r", "workspace_name": "w2"})
    )
    s = load_settings(env={}, root=tmp_path)
    assert s.backend == "azure" and s.azure.workspace_name == "w2"


def test_mask_secret_never_shows_whole_key() -> None:
    key = "abcdefghijklmnop"
    masked = mask_secret(key)
    assert key not in masked and masked.endswith("mnop")
    assert mask_secret("short") == "•" * 8


def test_upload_limits_default_and_override(tmp_path: Path) -> None:
    s = load_settings(env={}, root=tmp_path)
    assert s.limits == UploadLimits()
    assert s.limits.max_upload_bytes == DEFAULT_MAX_UPLOAD_MB * MB
    env = {
        "OPSDECK_MAX_UPLOAD_MB": "5",
        "OPSDECK_MAX_ROWS": "1000",
        "OPSDECK_MAX_COLUMNS": "20",
        "OPSDECK_MAX_UNCOMPRESSED_MB": "64",
    }
    s = load_settings(env=env, root=tmp_path)
    assert s.limits == UploadLimits(
        max_upload_bytes=5 * MB, max_rows=1000, max_columns=20, max_uncompressed_bytes=64 * MB
    )
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("[opsdeck]\nmax_rows = 77\n")
    assert load_settings(env={}, root=tmp_path).limits.max_rows == 77
    with pytest.raises(ValueError, match="OPSDECK_MAX_ROWS must be a whole number"):
        load_settings(env={"OPSDECK_MAX_ROWS": "lots"}, root=tmp_path)
    with pytest.raises(ValueError, match="OPSDECK_MAX_COLUMNS must be at least 1"):
        load_settings(env={"OPSDECK_MAX_COLUMNS": "0"}, root=tmp_path)
    # Where uploads start registering out of process: 20 MB unless said otherwise.
    assert load_settings(env={}, root=tmp_path).background_upload_bytes == 20 * MB
    both = {"OPSDECK_BACKGROUND_UPLOAD_MB": "3"}
    assert load_settings(env=both, root=tmp_path).background_upload_bytes == 3 * MB


def test_streamlit_upload_cap_is_the_default_limit() -> None:
    """Streamlit's own uploader cap and the services' check are one number."""
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == DEFAULT_MAX_UPLOAD_MB
    assert UploadLimits().max_upload_mb == DEFAULT_MAX_UPLOAD_MB


def test_empty_sample_variable_falls_back_to_the_default_copy(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    default = tmp_path / "shared" / "data" / "bankmarketing_train.csv"
    default.parent.mkdir(parents=True)
    default.write_text("age,y\n1,no\n")
    for value in ("", "   "):
        assert find_sample_data({"OPSDECK_SAMPLE_DATA": value}, repo) == default
        assert load_settings(env={"OPSDECK_SAMPLE_DATA": value}, root=repo).sample_data_path == (
            default
        )
    own = tmp_path / "mine.csv"
    own.write_text("a\n1\n")
    assert find_sample_data({"OPSDECK_SAMPLE_DATA": str(own)}, repo) == own


def test_monitoring_retention_and_drift_sampling(tmp_path: Path) -> None:
    default = load_settings(env={}, root=tmp_path).monitoring
    assert (default.raw_days, default.rollup_days) == (30.0, 400.0)
    assert (default.drift_sampling, default.drift_rate) == (True, 1.0)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        "[opsdeck]\ntelemetry_raw_days = 7\ndrift_sample_rate = 0.5\n"
    )
    chosen = load_settings(
        env={"OPSDECK_DRIFT_SAMPLING": "off", "OPSDECK_DRIFT_CAP_PER_MINUTE": "500"}, root=tmp_path
    ).monitoring
    assert (chosen.raw_days, chosen.drift_rate, chosen.drift_sampling) == (7.0, 0.5, False)
    assert chosen.drift_cap_per_minute == 500
    assert (
        load_settings({"OPSDECK_DRIFT_SAMPLE_RATE": "25%"}, tmp_path).monitoring.drift_rate == 0.25
    )
    with pytest.raises(ValueError, match="OPSDECK_DRIFT_SAMPLE_RATE"):
        load_settings(env={"OPSDECK_DRIFT_SAMPLE_RATE": "2"}, root=tmp_path)
    with pytest.raises(ValueError, match="OPSDECK_TELEMETRY_ROLLUP_DAYS"):
        load_settings(env={"OPSDECK_TELEMETRY_ROLLUP_DAYS": "0"}, root=tmp_path)


def test_sign_in_is_read_from_the_auth_section(tmp_path: Path) -> None:
    from lib.settings import sign_in_from_secrets

    assert load_settings({}, root=tmp_path).sign_in is None
    good = {
        "redirect_uri": "https://ops.example.com/oauth2callback",
        "cookie_secret": "x" * 32,
        "microsoft": {
            "client_id": "id",
            "client_secret": "secret",
            "server_metadata_url": "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration",
        },
    }
    sign_in = sign_in_from_secrets({"auth": good})
    assert sign_in.providers == ("microsoft",) and sign_in.ready
    flat = {k: v for k, v in good.items() if k != "microsoft"} | good["microsoft"]
    assert sign_in_from_secrets({"auth": flat}).providers == ("default",)
    broken = sign_in_from_secrets({"auth": {"redirect_uri": "http://x/", "cookie_secret": "s"}})
    assert not broken.ready
    assert any("oauth2callback" in p for p in broken.problems)
    assert any("cookie_secret" in p for p in broken.problems)
    assert any("no identity provider" in p for p in broken.problems)
    partial = sign_in_from_secrets({"auth": {**good, "microsoft": {"client_id": "id"}}})
    assert partial.problems == ("[auth.microsoft] is missing client_secret, server_metadata_url",)


def test_swagger_training_values_are_opt_in(tmp_path: Path) -> None:
    assert load_settings({}, root=tmp_path).swagger_training_values is False
    on = load_settings({"OPSDECK_SWAGGER_TRAINING_VALUES": "on"}, root=tmp_path)
    assert on.swagger_training_values is True
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        "[opsdeck]\nswagger_training_values = true\n"
    )
    assert load_settings({}, root=tmp_path).swagger_training_values is True
    with pytest.raises(ValueError, match="OPSDECK_SWAGGER_TRAINING_VALUES"):
        load_settings({"OPSDECK_SWAGGER_TRAINING_VALUES": "maybe"}, root=tmp_path)
