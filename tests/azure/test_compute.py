import threading
from datetime import UTC, datetime

import pytest
from azure.ai.ml import Input, automl
from azure.ai.ml.entities import AmlCompute, CommandJob, ComputeInstance, KubernetesCompute

from lib.azure.compute import AzureCompute, Operation
from lib.workspace import ComputeService, ComputeTarget, WorkspaceError
from tests.support.azure_fakes import FakeMLClient, http_error


@pytest.fixture
def compute(fake_client: FakeMLClient) -> AzureCompute:
    return AzureCompute(fake_client)


@pytest.fixture
def workspace_computes(fake_client: FakeMLClient) -> FakeMLClient:
    ops = fake_client.compute
    ops.add(
        AmlCompute(
            name="cpu-cluster",
            size="STANDARD_DS3_V2",
            min_instances=0,
            max_instances=4,
            idle_time_before_scale_down=300,
        ),
        nodes=["running", "idle", "preparing"],
    )
    ops.add(AmlCompute(name="gpu", size="STANDARD_NC6S_V3", max_instances=2), "Creating")
    ops.add(
        ComputeInstance(
            name="ci-alice", size="STANDARD_DS11_V2", idle_time_before_shutdown_minutes=30
        ),
        state="Running",
    )
    ops.add(ComputeInstance(name="ci-bob", size="STANDARD_DS11_V2"), state="Stopped")
    ops.add(KubernetesCompute(name="aks", namespace="default"))
    return fake_client


def creates(client: FakeMLClient) -> list[tuple]:
    return [c for c in client.compute.calls if c[0] == "begin_create_or_update"]


def test_implements_the_protocol(compute: AzureCompute) -> None:
    assert isinstance(compute, ComputeService)


def test_list_maps_clusters_and_instances(
    compute: AzureCompute, workspace_computes: FakeMLClient
) -> None:
    targets = {t.name: t for t in compute.list()}
    assert set(targets) == {"cpu-cluster", "gpu", "ci-alice", "ci-bob"}  # aks left out

    cpu = targets["cpu-cluster"]
    assert (cpu.kind, cpu.state, cpu.vm_size) == ("AmlCompute", "Running", "STANDARD_DS3_V2")
    assert (cpu.min_nodes, cpu.max_nodes, cpu.current_nodes) == (0, 4, 3)
    assert (cpu.busy_slots, cpu.idle_slots) == (1, 1)
    assert cpu.idle_seconds_before_scale_down == 300

    gpu = targets["gpu"]
    assert (gpu.state, gpu.current_nodes, gpu.max_nodes) == ("Creating", 0, 2)
    # A cluster still provisioning has no nodes to ask about.
    assert ("list_nodes", "gpu") not in workspace_computes.compute.calls

    alice, bob = targets["ci-alice"], targets["ci-bob"]
    assert (alice.kind, alice.state, alice.current_nodes) == ("ComputeInstance", "Running", 1)
    assert alice.idle_seconds_before_scale_down == 1800
    assert (bob.state, bob.current_nodes, bob.idle_seconds_before_scale_down) == (
        "Stopped",
        0,
        None,
    )


def test_cluster_states_follow_the_nodes(
    compute: AzureCompute, workspace_computes: FakeMLClient
) -> None:
    nodes = workspace_computes.compute.nodes
    nodes["cpu-cluster"] = ["preparing"]
    assert compute.get("cpu-cluster").state == "Preparing"
    nodes["cpu-cluster"] = ["idle", "idle"]
    target = compute.get("cpu-cluster")
    assert (target.state, target.current_nodes, target.idle_slots) == ("Idle", 2, 2)


def test_failed_node_listing_keeps_the_cluster_without_guessing(
    compute: AzureCompute, workspace_computes: FakeMLClient
) -> None:
    workspace_computes.compute.list_nodes_error = http_error("Forbidden", 403)
    cpu = next(t for t in compute.list() if t.name == "cpu-cluster")
    assert (cpu.state, cpu.current_nodes, cpu.max_nodes) == ("Succeeded", 0, 4)


def test_create_cluster_sends_a_valid_aml_compute_and_returns_an_operation(
    compute: AzureCompute, fake_client: FakeMLClient
) -> None:
    op = compute.create_cluster("train-1", "STANDARD_DS3_V2", 1, 3, 600)

    [sent] = fake_client.compute.received
    assert isinstance(sent, AmlCompute)
    assert (sent.name, sent.size, sent.min_instances, sent.max_instances) == (
        "train-1",
        "STANDARD_DS3_V2",
        1,
        3,
    )
    scale = sent._to_rest_object().properties.properties.scale_settings
    assert (scale.min_node_count, scale.max_node_count) == (1, 3)
    assert scale["nodeIdleTimeBeforeScaleDown"] == "PT10M"
    assert isinstance(op, Operation)
    assert op.done() and op.status() == "Succeeded"
    target = op.result()
    assert isinstance(target, ComputeTarget)
    assert (target.name, target.state, target.max_nodes) == ("train-1", "Idle", 3)
    assert target.idle_seconds_before_scale_down == 600


def test_operation_reports_progress_without_blocking(
    compute: AzureCompute, fake_client: FakeMLClient
) -> None:
    fake_client.compute.gate = threading.Event()
    op = compute.create_cluster("train-1", "STANDARD_DS3_V2", 0, 2, 120)
    assert not op.done() and op.status() == "InProgress"
    assert compute.get("train-1").state == "Creating"
    with pytest.raises(WorkspaceError, match="still in progress"):
        op.result(timeout=0.01)
    fake_client.compute.gate.set()
    assert op.result(timeout=5).state == "Idle"
    assert op.done() and op.status() == "Succeeded"
    assert op.elapsed_s >= 0


def test_failed_operation_raises_a_readable_error(
    compute: AzureCompute, fake_client: FakeMLClient
) -> None:
    fake_client.compute.fail_with = http_error("Quota exceeded for STANDARD_NC24", 400)
    op = compute.create_cluster("train-1", "STANDARD_NC24", 0, 2, 120)
    with pytest.raises(WorkspaceError, match="create cluster train-1.*Quota exceeded"):
        op.result(timeout=5)
    assert op.status() == "Failed"


@pytest.mark.parametrize(
    "name, vm_size, min_nodes, max_nodes, idle, message",
    [
        ("a", "STANDARD_DS3_V2", 0, 2, 120, "2 to 16 characters"),
        ("1cluster", "STANDARD_DS3_V2", 0, 2, 120, "2 to 16 characters"),
        ("cluster-name-too-long", "STANDARD_DS3_V2", 0, 2, 120, "2 to 16 characters"),
        ("bad_name", "STANDARD_DS3_V2", 0, 2, 120, "2 to 16 characters"),
        ("trailing-", "STANDARD_DS3_V2", 0, 2, 120, "2 to 16 characters"),
        ("ok", " ", 0, 2, 120, "VM size"),
        ("ok", "STANDARD_DS3_V2", 3, 2, 120, "cannot exceed"),
        ("ok", "STANDARD_DS3_V2", -1, 2, 120, "negative"),
        ("ok", "STANDARD_DS3_V2", 0, 0, 120, "at least 1"),
        ("ok", "STANDARD_DS3_V2", 0, 2, 0, "Idle time"),
    ],
)
def test_bad_cluster_definitions_are_refused_before_any_call(
    compute: AzureCompute,
    fake_client: FakeMLClient,
    name: str,
    vm_size: str,
    min_nodes: int,
    max_nodes: int,
    idle: int,
    message: str,
) -> None:
    with pytest.raises(WorkspaceError, match=message):
        compute.create_cluster(name, vm_size, min_nodes, max_nodes, idle)
    assert fake_client.compute.calls == []


def test_longest_and_shortest_valid_names_pass_the_service_rules(
    compute: AzureCompute, fake_client: FakeMLClient
) -> None:
    for name in ("ab", "a234567890123456"):
        compute.create_cluster(name, "STANDARD_DS3_V2", 0, 1, 120).result(timeout=5)
    assert [c[1] for c in creates(fake_client)] == ["ab", "a234567890123456"]


def test_create_refuses_an_existing_name(
    compute: AzureCompute, workspace_computes: FakeMLClient
) -> None:
    with pytest.raises(WorkspaceError, match="already exists"):
        compute.create_cluster("cpu-cluster", "STANDARD_DS3_V2", 0, 2, 120)
    assert creates(workspace_computes) == []


def test_resize_updates_only_the_node_range(
    compute: AzureCompute, workspace_computes: FakeMLClient
) -> None:
    op = compute.resize("cpu-cluster", 1, 8)
    [sent] = workspace_computes.compute.received
    assert ("begin_update", "cpu-cluster") in workspace_computes.compute.calls
    assert isinstance(sent, AmlCompute)
    assert (sent.min_instances, sent.max_instances, sent.size) == (1, 8, "STANDARD_DS3_V2")
    assert int(sent.idle_time_before_scale_down) == 300
    target = op.result(timeout=5)
    assert (target.min_nodes, target.max_nodes, target.idle_seconds_before_scale_down) == (
        1,
        8,
        300,
    )


def test_resize_refusals(compute: AzureCompute, workspace_computes: FakeMLClient) -> None:
    with pytest.raises(WorkspaceError, match="only clusters can be resized"):
        compute.resize("ci-alice", 0, 1)
    with pytest.raises(WorkspaceError, match="Compute nope does not exist."):
        compute.resize("nope", 0, 1)
    with pytest.raises(WorkspaceError, match="cannot exceed"):
        compute.resize("cpu-cluster", 5, 2)
    assert not [c for c in workspace_computes.compute.calls if c[0] == "begin_update"]


def test_delete_start_stop_call_the_matching_operations(
    compute: AzureCompute, workspace_computes: FakeMLClient
) -> None:
    ops = workspace_computes.compute
    compute.stop_instance("ci-alice").result(timeout=5)
    assert compute.get("ci-alice").state == "Stopped"
    compute.start_instance("ci-bob").result(timeout=5)
    assert compute.get("ci-bob").state == "Running"
    assert compute.delete("gpu").result(timeout=5) is None
    assert "gpu" not in {t.name for t in compute.list()}
    called = [c for c in ops.calls if c[0].startswith("begin_")]
    assert called == [
        ("begin_stop", "ci-alice"),
        ("begin_start", "ci-bob"),
        ("begin_delete", "gpu", "Delete"),
    ]


@pytest.mark.parametrize("method", ["delete", "start_instance", "stop_instance", "get"])
def test_missing_compute_is_a_workspace_error(
    compute: AzureCompute, workspace_computes: FakeMLClient, method: str
) -> None:
    with pytest.raises(WorkspaceError, match="Compute nope does not exist."):
        getattr(compute, method)("nope")


def test_jobs_are_listed_newest_first_with_domain_states(
    compute: AzureCompute, fake_client: FakeMLClient
) -> None:
    jobs = fake_client.jobs
    training = Input(type="mltable", path="azureml:bank-mltable:1")
    classification = automl.classification(
        compute="cpu-cluster",
        experiment_name="bank",
        training_data=training,
        target_column_name="y",
        primary_metric="AUC_weighted",
    )
    classification.display_name = "bank automl"
    jobs.add(
        classification,
        "automl-1",
        "Completed",
        {"StartTimeUtc": "2025-01-01T09:00:00Z", "EndTimeUtc": "2025-01-01T09:20:00Z"},
    )
    train = CommandJob(
        command="python train.py", environment="azureml:env:1", compute="cpu-cluster"
    )
    jobs.add(train, "cmd-2", "Preparing")
    jobs.add(train, "cmd-3", "Finalizing")

    listed = compute.jobs()
    assert [j.id for j in listed] == ["cmd-3", "cmd-2", "automl-1"]
    assert [j.state for j in listed] == ["Running", "Queued", "Completed"]
    auto = listed[-1]
    assert (auto.kind, auto.display_name, auto.compute) == ("automl", "bank automl", "cpu-cluster")
    assert auto.spec == {"experiment": "bank", "azure_status": "Completed"}
    assert auto.started == datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
    assert auto.ended == datetime(2025, 1, 1, 9, 20, tzinfo=UTC)
    assert auto.is_terminal and not listed[0].is_terminal
