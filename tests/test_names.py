import pytest

from lib.names import (
    endpoint_name_for,
    model_name_for,
    validate_compute_name,
    validate_dataset_name,
    validate_deployment_name,
    validate_endpoint_name,
    validate_model_name,
    validate_pipeline_name,
    validate_schedule_name,
)
from lib.workspace import WorkspaceError


@pytest.mark.parametrize("validate", [validate_dataset_name, validate_model_name])
def test_asset_names(validate) -> None:
    assert validate("  bank.marketing_v2-x ") == "bank.marketing_v2-x"
    assert validate("a" * 100) == "a" * 100
    for bad in ("", "-lead", "has space", "a" * 101, "ümlaut", None):
        with pytest.raises(WorkspaceError, match="start with a letter or digit"):
            validate(bad)


@pytest.mark.parametrize("validate", [validate_endpoint_name, validate_deployment_name])
def test_endpoint_and_deployment_names(validate) -> None:
    assert validate("ep-1") == "ep-1"
    assert validate("a" * 32) == "a" * 32
    for bad in ("ab", "1ep", "ep-", "ep_1", "a" * 33, "e p"):
        with pytest.raises(WorkspaceError, match="3-32 characters"):
            validate(bad)


def test_pipeline_schedule_and_compute_names() -> None:
    assert validate_pipeline_name("retrain_bank") == "retrain_bank"
    with pytest.raises(WorkspaceError, match="lower-case"):
        validate_pipeline_name("Retrain-bank")
    assert validate_schedule_name("nightly-retrain") == "nightly-retrain"
    with pytest.raises(WorkspaceError, match="Schedule name"):
        validate_schedule_name("every night")
    assert validate_compute_name("cpu-cluster") == "cpu-cluster"
    with pytest.raises(WorkspaceError, match="2 to 16 characters"):
        validate_compute_name("cpu-cluster-far-too-long")


@pytest.mark.parametrize(
    ("model", "endpoint"),
    [
        ("bankmarketing-y", "bankmarketing-y"),
        ("Bank Marketing", "bank-marketing"),
        ("7up", "ep-7up"),
        ("x", "x-ep"),
        ("m" * 40, "m" * 32),
        ("a_b.c", "a-b-c"),
        ("WA_Fn-UseC_-Telco-Customer-Churn", "wa-fn-usec-telco-customer-churn"),  # no "--"
        ("wein_qualität", "wein-qualitat"),
    ],
)
def test_endpoint_name_for_always_gives_a_valid_name(model, endpoint) -> None:
    assert endpoint_name_for(model) == endpoint
    assert validate_endpoint_name(endpoint_name_for(model)) == endpoint


def test_model_name_for_a_run_is_valid() -> None:
    assert model_name_for("bankmarketing", "y") == "bankmarketing-y"
    assert model_name_for("sales 2026", "net price (€)") == "sales-2026-net-price"
    assert validate_model_name(model_name_for("__x", "y z")) == "x-y-z"
    assert model_name_for("wein_qualität", "Qualität") == "wein_qualitat-Qualitat"


def test_a_files_accented_name_keeps_its_letters() -> None:
    """`wein_qualität.csv` was registered as `wein_qualit-t`, `penguins ñandú 🐧` as
    `penguins-and`."""
    from lib.upload_form import default_dataset_name

    assert default_dataset_name("wein_qualität.csv") == "wein_qualitat"
    assert default_dataset_name("penguins ñandú 🐧.csv") == "penguins-nandu"
    assert default_dataset_name("数据.csv") == "dataset"
