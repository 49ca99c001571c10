import pytest

from lib.metrics import (
    CATALOG,
    CLASSIFICATION_METRICS,
    LOWER_IS_BETTER,
    METRICS,
    REGRESSION_METRICS,
    canonical,
    higher_is_better,
    label,
    primary_metrics,
    task_metrics,
)


def test_catalog_names_are_unique_and_tasks_known() -> None:
    assert len(METRICS) == len(CATALOG)
    assert {m.task for m in CATALOG} == {"classification", "regression"}


def test_form_choices_are_derived_from_the_catalog() -> None:
    assert CLASSIFICATION_METRICS[0] == "AUC_weighted"  # the form's default
    assert set(CLASSIFICATION_METRICS) == {
        "AUC_weighted",
        "accuracy",
        "f1_score_weighted",
        "precision_score_weighted",
        "recall_score_weighted",
        "average_precision_score_weighted",
        "log_loss",
    }
    assert REGRESSION_METRICS == ("r2_score", "rmse", "mae")
    assert primary_metrics("regression") == REGRESSION_METRICS
    assert "normalized_root_mean_squared_error" in task_metrics("regression")
    with pytest.raises(ValueError):
        primary_metrics("forecasting")


def test_direction_is_defined_once() -> None:
    assert LOWER_IS_BETTER == {"log_loss", "rmse", "mae", "normalized_root_mean_squared_error"}
    assert higher_is_better("AUC_weighted") and higher_is_better("r2_score")
    assert not higher_is_better("log_loss")
    assert not higher_is_better("root_mean_squared_error")  # alias of rmse
    # Outside the catalog the name decides.
    assert not higher_is_better("normalized_mean_absolute_error")
    assert higher_is_better("matthews_correlation")


def test_aliases_and_labels() -> None:
    assert canonical("roc_auc") == "AUC_weighted"
    assert canonical("something_else") == "something_else"
    assert label("AUC_weighted") == "AUC (weighted)"
    assert label("roc_auc") == "AUC (weighted)"
    assert label("spearman_correlation") == "spearman_correlation"


def test_a_models_task_is_told_by_its_metrics() -> None:
    from lib.metrics import task_of

    assert task_of({"r2_score": 0.8, "rmse": 2.0}) == "regression"
    assert task_of({"root_mean_squared_error": 2.0}) == "regression"  # an alias
    assert task_of({"AUC_weighted": 0.9, "accuracy": 0.8}) == "classification"
    assert task_of({}) is None and task_of({"custom": 1.0}) is None
