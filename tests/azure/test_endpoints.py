import threading

import pytest
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint
from azure.ai.ml.entities import Model as AzureModel

from lib.appinsights import REQUEST_COLUMNS
from lib.azure.endpoints import AzureEndpoints, parse_model_ref
from lib.names import endpoint_name_for
from lib.workspace import EndpointService, WorkspaceError
from tests.support.azure_fakes import LOCATION, FakeMLClient, http_error

SCORING_URI = f"https://bank-ep.{LOCATION}.inference.ml.azure.com/score"


@pytest.fixture
def endpoints(fake_client: FakeMLClient) -> AzureEndpoints:
    for version in (1, 2):
        fake_client.models.create_or_update(
            AzureModel(
                name="bank",
                path=f"azureml://jobs/run_{version}/outputs/artifacts/paths/outputs/mlflow-model/",
                type="mlflow_model",
            )
        )
    return AzureEndpoints(fake_client)


def finish(endpoints: AzureEndpoints, name: str) -> None:
    rollout = endpoints.rollout(name)
    assert rollout is not None
    assert rollout.finished.wait(timeout=10), f"rollout stuck at {rollout.step}"


def calls(ops, verb: str) -> list[tuple]:
    return [c for c in ops.calls if c[0] == verb]


def test_implements_the_protocol(endpoints: AzureEndpoints) -> None:
    assert isinstance(endpoints, EndpointService)


def test_deploy_returns_creating_then_succeeds_when_the_deployment_does(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    gate = threading.Event()
    fake_client.online_deployments.gate = gate

    ep = endpoints.deploy("bank", 1, "bank-ep")
    assert (ep.state, ep.model_name, ep.model_version) == ("Creating", "bank", 1)

    [endpoint] = fake_client.online_endpoints.received  # checked by the SDK's schema and REST
    assert isinstance(endpoint, ManagedOnlineEndpoint)
    assert endpoint.auth_mode == "key"
    assert endpoint.traffic in (None, {})
    assert endpoint._to_rest_online_endpoint(LOCATION).properties.auth_mode == "Key"
    # The deployment starts once the endpoint exists; the page is not kept waiting.
    rollout = endpoints.rollout("bank-ep")
    for _ in range(200):
        if fake_client.online_deployments.received:
            break
        threading.Event().wait(0.01)
    [deployment] = fake_client.online_deployments.received
    assert isinstance(deployment, ManagedOnlineDeployment)
    assert (deployment.name, deployment.endpoint_name) == ("blue", "bank-ep")
    assert deployment.model == "azureml:bank:1"
    assert (deployment.instance_type, deployment.instance_count) == ("Standard_DS3_v2", 1)
    assert deployment.app_insights_enabled is True
    assert deployment.environment is None and deployment.code_configuration is None
    rest = deployment._to_rest_object(LOCATION)
    assert rest.properties.app_insights_enabled is True
    assert endpoints.get("bank-ep").state == "Creating"
    assert not rollout.finished.is_set()

    gate.set()
    finish(endpoints, "bank-ep")
    ep = endpoints.get("bank-ep")
    assert (ep.state, ep.error) == ("Succeeded", None)
    assert ep.scoring_uri == SCORING_URI
    assert ep.swagger_uri.endswith("/swagger.json")
    assert (ep.model_name, ep.model_version) == ("bank", 1)
    assert fake_client.online_endpoints.entities["bank-ep"].traffic == {"blue": 100}
    assert endpoints.rollout("bank-ep") is None  # Azure's state is the truth from now on
    assert endpoints.health("bank-ep") is True


def test_failed_deployment_reports_failed_with_its_logs(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    fake_client.online_deployments.fail_with = http_error("Deployment failed: probe timeout", 400)
    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")

    ep = endpoints.get("bank-ep")
    assert ep.state == "Failed"
    assert "probe timeout" in ep.error
    assert "Liveness probe failed: the model could not be loaded." in ep.error
    assert ("get_logs", "bank-ep", "blue", 100) in fake_client.online_deployments.calls
    assert endpoints.health("bank-ep") is False
    assert "Liveness probe failed" in endpoints.logs("bank-ep")
    # No traffic was routed to the broken deployment.
    assert not fake_client.online_endpoints.entities["bank-ep"].traffic


def test_redeploy_keeps_the_endpoint_and_moves_traffic(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")
    keys = endpoints.keys("bank-ep")

    ep = endpoints.deploy("bank", 2, "bank-ep")
    assert (ep.state, ep.model_version, ep.scoring_uri) == ("Creating", 2, SCORING_URI)
    finish(endpoints, "bank-ep")

    ep = endpoints.get("bank-ep")
    assert (ep.state, ep.model_name, ep.model_version) == ("Succeeded", "bank", 2)
    assert ep.scoring_uri == SCORING_URI
    assert endpoints.keys("bank-ep") == keys
    assert (
        len(calls(fake_client.online_endpoints, "begin_create_or_update")) == 3
    )  # create + 2 routes
    green = fake_client.online_deployments.received[-1]
    assert (green.name, green.model) == ("green", "azureml:bank:2")
    assert fake_client.online_endpoints.entities["bank-ep"].traffic == {"green": 100}
    # The previous deployment is retired once it takes no traffic.
    assert ("begin_delete", "bank-ep", "blue") in fake_client.online_deployments.calls
    assert fake_client.online_deployments.names("bank-ep") == {"green"}

    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")
    assert fake_client.online_endpoints.entities["bank-ep"].traffic == {"blue": 100}
    assert endpoints.get("bank-ep").model_version == 1


def test_failed_redeploy_leaves_traffic_on_the_live_deployment(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")
    fake_client.online_deployments.fail_with = http_error("Quota exceeded", 400)
    endpoints.deploy("bank", 2, "bank-ep")
    finish(endpoints, "bank-ep")

    ep = endpoints.get("bank-ep")
    assert ep.state == "Failed"
    assert (ep.model_name, ep.model_version) == ("bank", 1)  # still what is live
    assert "Traffic stays on blue" in ep.error
    assert fake_client.online_endpoints.entities["bank-ep"].traffic == {"blue": 100}


def test_deploy_refuses_while_one_is_in_flight(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    gate = threading.Event()
    fake_client.online_deployments.gate = gate
    endpoints.deploy("bank", 1, "bank-ep")
    with pytest.raises(WorkspaceError, match="already deploying bank v1"):
        endpoints.deploy("bank", 2, "bank-ep")
    gate.set()
    finish(endpoints, "bank-ep")


def test_list_includes_endpoints_being_created(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    gate = threading.Event()
    fake_client.online_endpoints.gate = gate
    endpoints.deploy("bank", 1, "bank-ep")
    [ep] = endpoints.list()
    assert (ep.name, ep.state, ep.model_version) == ("bank-ep", "Creating", 1)
    gate.set()
    finish(endpoints, "bank-ep")
    assert [(e.name, e.state) for e in endpoints.list()] == [("bank-ep", "Succeeded")]


def test_keys_regenerate_and_delete_call_the_right_operations(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")
    primary, secondary = endpoints.keys("bank-ep")
    assert primary and secondary and primary != secondary

    new_primary, same_secondary = endpoints.regenerate_key("bank-ep", "primary")
    assert (new_primary != primary, same_secondary) == (True, secondary)
    _, new_secondary = endpoints.regenerate_key("bank-ep", "secondary")
    assert new_secondary != secondary
    assert calls(fake_client.online_endpoints, "begin_regenerate_keys") == [
        ("begin_regenerate_keys", "bank-ep", "primary"),
        ("begin_regenerate_keys", "bank-ep", "secondary"),
    ]
    with pytest.raises(WorkspaceError, match="'primary' or 'secondary'"):
        endpoints.regenerate_key("bank-ep", "tertiary")

    endpoints.delete("bank-ep")
    assert calls(fake_client.online_endpoints, "begin_delete") == [("begin_delete", "bank-ep")]
    with pytest.raises(WorkspaceError, match="Endpoint bank-ep does not exist"):
        endpoints.get("bank-ep")
    with pytest.raises(WorkspaceError, match="Endpoint nope does not exist"):
        endpoints.delete("nope")


@pytest.mark.parametrize("name", ["ab", "1-endpoint", "bank_ep", "bank-", "x" * 33, ""])
def test_bad_endpoint_names_are_refused_before_any_call(
    endpoints: AzureEndpoints, fake_client: FakeMLClient, name: str
) -> None:
    with pytest.raises(WorkspaceError, match="3-32 characters"):
        endpoints.deploy("bank", 1, name)
    assert fake_client.online_endpoints.calls == []


@pytest.mark.parametrize(
    "name", ["abc", "a" + "-b" * 15 + "c", endpoint_name_for("Bank Marketing")]
)
def test_shortest_longest_and_derived_names_pass_the_service_rules(
    endpoints: AzureEndpoints, name: str
) -> None:
    endpoints.deploy("bank", 1, name)
    finish(endpoints, name)
    assert endpoints.get(name).state == "Succeeded"


def test_unknown_model_is_refused_before_any_endpoint_call(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    with pytest.raises(WorkspaceError, match="Model bank v9 is not registered"):
        endpoints.deploy("bank", 9, "bank-ep")
    assert fake_client.online_endpoints.calls == []


def test_stop_is_explained_and_restart_rolls_out_again(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")
    with pytest.raises(WorkspaceError, match="cannot be stopped"):
        endpoints.stop("bank-ep")
    ep = endpoints.restart("bank-ep")
    assert (ep.state, ep.model_version) == ("Creating", 1)
    finish(endpoints, "bank-ep")
    assert fake_client.online_endpoints.entities["bank-ep"].traffic == {"green": 100}


def test_logs_and_requests(endpoints: AzureEndpoints, fake_client: FakeMLClient) -> None:
    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")
    assert "Model loaded." in endpoints.logs("bank-ep", lines=5)
    assert ("get_logs", "bank-ep", "blue", 5) in fake_client.online_deployments.calls
    frame = endpoints.requests("bank-ep")
    assert frame.empty and list(frame.columns) == REQUEST_COLUMNS


def test_endpoints_made_elsewhere_read_the_model_from_the_live_deployment(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    ops = fake_client.online_endpoints
    ops.begin_create_or_update(ManagedOnlineEndpoint(name="studio-ep", auth_mode="key")).result()
    fake_client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(
            name="main",
            endpoint_name="studio-ep",
            model="azureml:bank:2",
            instance_type="Standard_DS3_v2",
            instance_count=1,
        )
    ).result()
    endpoint = ops.get("studio-ep")
    endpoint.traffic = {"main": 100}
    ops.begin_create_or_update(endpoint).result()

    ep = endpoints.get("studio-ep")
    assert (ep.state, ep.model_name, ep.model_version) == ("Succeeded", "bank", 2)


def test_model_references_are_parsed() -> None:
    assert parse_model_ref("azureml:bank:3") == ("bank", 3)
    assert parse_model_ref(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices"
        "/workspaces/ws/models/bank/versions/12"
    ) == ("bank", 12)
    assert parse_model_ref("bank") == ("", 0)


def test_a_canary_keeps_the_others_then_split_mirror_and_rollback(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")
    endpoints.deploy("bank", 2, "bank-ep", traffic=10)
    finish(endpoints, "bank-ep")
    entity = fake_client.online_endpoints.entities["bank-ep"]
    assert entity.traffic == {"blue": 90, "green": 10}
    assert ("begin_delete", "bank-ep", "blue") not in fake_client.online_deployments.calls
    assert endpoints.get("bank-ep").model_version == 1  # blue still takes the most
    assert [(d.name, d.model_version, d.traffic) for d in endpoints.deployments("bank-ep")] == [
        ("blue", 1, 90),
        ("green", 2, 10),
    ]

    endpoints.set_traffic("bank-ep", {"blue": 50, "green": 50})
    assert fake_client.online_endpoints.entities["bank-ep"].traffic == {"blue": 50, "green": 50}
    ep = endpoints.set_traffic("bank-ep", {"blue": 0, "green": 100}, mirror={"blue": 20})
    assert ep.model_version == 2
    entity = fake_client.online_endpoints.entities["bank-ep"]
    assert entity.traffic == {"blue": 0, "green": 100} and entity.mirror_traffic == {"blue": 20}
    # What Azure receives: the SDK's own REST form of the endpoint.
    rest = fake_client.online_endpoints.received[-1]._to_rest_online_endpoint(LOCATION)
    assert rest.properties.mirror_traffic == {"blue": 20}

    ep = endpoints.rollback("bank-ep")
    assert (ep.model_name, ep.model_version) == ("bank", 1)
    entity = fake_client.online_endpoints.entities["bank-ep"]
    assert entity.traffic == {"blue": 100, "green": 0} and not entity.mirror_traffic
    history = endpoints.history("bank-ep")
    assert [e.action for e in history] == ["rollback", "traffic", "traffic", "deploy", "deploy"]
    assert history[0].traffic == {"blue": 100} and history[1].mirror == {"blue": 20}
    assert all(e.outcome == "Succeeded" and e.who for e in history)


def test_invalid_splits_are_refused_before_any_call(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")
    writes = calls(fake_client.online_endpoints, "begin_create_or_update")
    with pytest.raises(WorkspaceError, match="add up to 100"):
        endpoints.set_traffic("bank-ep", {"blue": 90})
    with pytest.raises(WorkspaceError, match="red does not exist"):
        endpoints.set_traffic("bank-ep", {"blue": 100}, mirror={"red": 10})
    with pytest.raises(WorkspaceError, match="Nothing to roll back to"):
        endpoints.rollback("bank-ep")
    with pytest.raises(WorkspaceError, match="first deployment .* all the traffic"):
        endpoints.deploy("bank", 1, "new-ep", traffic=10)
    assert calls(fake_client.online_endpoints, "begin_create_or_update") == writes


def test_rollback_deploys_a_retired_model_version_again(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")
    endpoints.deploy("bank", 2, "bank-ep")  # 100 %: blue is retired
    finish(endpoints, "bank-ep")
    assert fake_client.online_deployments.names("bank-ep") == {"green"}
    ep = endpoints.rollback("bank-ep")
    assert (ep.state, ep.model_version) == ("Creating", 1)
    finish(endpoints, "bank-ep")
    entity = fake_client.online_endpoints.entities["bank-ep"]
    assert entity.traffic == {"blue": 100}
    assert fake_client.online_deployments.received[-1].model == "azureml:bank:1"
    assert endpoints.get("bank-ep").model_version == 1


def test_only_an_idle_deployment_can_be_deleted(
    endpoints: AzureEndpoints, fake_client: FakeMLClient
) -> None:
    endpoints.deploy("bank", 1, "bank-ep")
    finish(endpoints, "bank-ep")
    endpoints.deploy("bank", 2, "bank-ep", traffic=0)
    finish(endpoints, "bank-ep")
    with pytest.raises(WorkspaceError, match="still takes traffic"):
        endpoints.delete_deployment("bank-ep", "blue")
    endpoints.delete_deployment("bank-ep", "green")
    assert fake_client.online_deployments.names("bank-ep") == {"blue"}
    assert endpoints.history("bank-ep")[0].action == "delete-deployment"
