import pytest
from azure.ai.ml.entities import Model as AzureModel
from azure.core.exceptions import ResourceNotFoundError

from lib.azure.automl import AzureAutoML
from lib.azure.models import AzureModels
from lib.model_signature import signature_columns
from lib.workspace import ModelService, WorkspaceError
from tests.support.azure_fakes import FakeMLClient, FakeMlflowClient
from tests.support.azure_fakes_automl import request, submit_with_trials

MLMODEL = """\
artifact_path: outputs/mlflow-model
flavors:
  python_function:
    loader_module: mlflow.sklearn
signature:
  inputs: '[{"type": "long", "name": "age", "required": true}, {"type": "string", "name":
    "job", "required": true}, {"type": "double", "name": "balance", "required": true},
    {"type": "string", "name": "contact", "required": true}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "object", "shape": [-1]}}]'
"""


@pytest.fixture
def fetched() -> list[AzureModel]:
    return []


@pytest.fixture
def models(fake_client: FakeMLClient, automl: AzureAutoML, fetched: list) -> AzureModels:
    def fetch(model: AzureModel) -> str:
        fetched.append(model)
        return MLMODEL

    return AzureModels(fake_client, automl, fetch_mlmodel=fetch)


@pytest.fixture
def completed_job(
    automl: AzureAutoML, fake_client: FakeMLClient, fake_mlflow: FakeMlflowClient
) -> str:
    return submit_with_trials(automl, fake_client, fake_mlflow)


def test_implements_the_protocol(models: AzureModels) -> None:
    assert isinstance(models, ModelService)


def test_register_builds_an_mlflow_model_from_the_best_child(
    models: AzureModels, fake_client: FakeMLClient, completed_job: str
) -> None:
    model = models.register(completed_job, "bank-model", "Best of the first run")

    [sent] = fake_client.models.received  # loaded by the SDK's schema in the fake
    best = f"{completed_job}_3"
    assert sent.type == "mlflow_model"
    assert sent.path == f"azureml://jobs/{best}/outputs/artifacts/paths/outputs/mlflow-model/"
    assert sent.version is None  # Azure numbers the versions
    assert sent.tags["opsdeck.job"] == completed_job
    assert sent.tags["opsdeck.run_id"] == best
    assert sent.tags["opsdeck.estimator"] == "VotingEnsemble"
    assert sent.tags["opsdeck.dataset"] == "bank"
    assert sent.tags["opsdeck.target"] == "y"
    rest = sent._to_rest_object()
    assert rest.properties.model_type == "mlflow_model"

    assert (model.name, model.version, model.uri) == ("bank-model", 1, "azureml:bank-model:1")
    assert (model.source_job, model.run_id) == (completed_job, best)
    assert model.description == "Best of the first run"
    assert model.metrics == {
        "AUC_weighted": 0.95,
        "accuracy": 0.92,
        "log_loss": pytest.approx(0.05),
    }
    assert not any(k.startswith("metric.") for k in model.tags)

    again = models.register(completed_job, "bank-model")
    assert again.version == 2


def test_register_refuses_bad_names_and_unfinished_jobs(
    models: AzureModels, automl: AzureAutoML, fake_client: FakeMLClient, completed_job: str
) -> None:
    with pytest.raises(WorkspaceError, match="Model name"):
        models.register(completed_job, "bad name!")
    running = automl.submit(request()).id
    fake_client.jobs.set_status(running, "Running")
    with pytest.raises(WorkspaceError, match="is Running"):
        models.register(running, "bank-model")
    assert fake_client.models.received == []


def test_list_and_get(models: AzureModels, completed_job: str) -> None:
    models.register(completed_job, "bank-model")
    models.register(completed_job, "bank-model")
    models.register(completed_job, "other")
    assert [(m.name, m.version) for m in models.list()] == [
        ("bank-model", 2),
        ("bank-model", 1),
        ("other", 1),
    ]
    assert models.get("bank-model").version == 2
    assert models.get("bank-model", 1).version == 1
    with pytest.raises(WorkspaceError, match="Model bank-model v7 is not registered"):
        models.get("bank-model", 7)
    with pytest.raises(WorkspaceError, match="Model nope is not registered"):
        models.get("nope")


def test_feature_spec_follows_the_signature_enriched_by_training_data(
    models: AzureModels, completed_job: str, fetched: list
) -> None:
    model = models.register(completed_job, "bank-model")
    spec = models.feature_spec(model.name, model.version)
    assert [s["name"] for s in spec] == ["age", "job", "balance", "contact"]
    by_name = {s["name"]: s for s in spec}
    assert by_name["job"]["kind"] == "categorical"
    assert set(by_name["job"]["categories"]) == {"admin", "technician", "services"}
    assert by_name["age"]["kind"] == "numeric"
    assert (by_name["age"]["min"], by_name["age"]["max"]) == (20.0, 69.0)
    # A signature column missing from the training data keeps the signature's type.
    assert by_name["contact"] == {
        "name": "contact",
        "kind": "categorical",
        "dtype": "string",
        "example": None,
        "categories": [],
        "min": None,
        "max": None,
    }
    assert [(m.name, str(m.version)) for m in fetched] == [("bank-model", "1")]


def test_feature_spec_falls_back_to_training_data_then_explains(
    fake_client: FakeMLClient, automl: AzureAutoML, completed_job: str
) -> None:
    def missing(model: AzureModel) -> str:
        raise ResourceNotFoundError("The blob does not exist.")

    models = AzureModels(fake_client, automl, fetch_mlmodel=missing)
    model = models.register(completed_job, "bank-model")
    spec = models.feature_spec(model.name, model.version)
    assert [s["name"] for s in spec] == ["age", "job", "balance"]

    fake_client.models.create_or_update(
        AzureModel(
            name="foreign", path="azureml://jobs/x/outputs/artifacts/paths/m/", type="mlflow_model"
        )
    )
    with pytest.raises(WorkspaceError, match="input schema of model foreign v1 is unknown"):
        models.feature_spec("foreign", 1)


def test_signature_parsing_ignores_tensor_and_missing_signatures() -> None:
    assert signature_columns(MLMODEL)[:2] == [("age", "long"), ("job", "string")]
    assert signature_columns("flavors: {}\n") == []
    tensor = (
        'signature:\n  inputs: \'[{"type": "tensor", "tensor-spec": '
        '{"dtype": "float64", "shape": [-1, 3]}}]\'\n'
    )
    assert signature_columns(tensor) == []
