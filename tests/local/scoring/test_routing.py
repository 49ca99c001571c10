"""The router inside a server: split and mirror shares, routing tables, loading and verifying."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lib.local.scoring.payloads import Column
from lib.local.scoring.routing import (
    SLOTS,
    Deployed,
    DeploymentSpec,
    Routes,
    RoutingError,
    RoutingTable,
    load_routes,
)
from lib.local.scoring.served_model import ServedModel


def model(answer: str = "yes", fail: bool = False) -> ServedModel:
    def predict(records: list[dict]) -> list:
        if fail:
            raise ValueError("broken model")
        return [answer for _ in records]

    return ServedModel(
        pyfunc=None,
        columns=[Column(name="x", kind="number")],
        path="fast",
        check_message="test model",
        example_records=[{"x": 1.0}, {"x": 2.0}],
        _fast_predict=predict,
    )


def deployed(*names: str) -> dict[str, Deployed]:
    return {n: Deployed.of(n, str(i + 1), model(n)) for i, n in enumerate(names)}


@pytest.mark.parametrize(
    "traffic",
    [{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"a": 33, "b": 33, "c": 34}],
)
def test_the_split_is_honoured_within_2_points_over_10000_requests(traffic: dict) -> None:
    routes = Routes(deployed(*traffic), traffic, rng=random.Random(7))
    picks = [routes.pick().name for _ in range(10_000)]
    counts = Counter(picks)
    for name, pct in traffic.items():
        assert abs(counts[name] / 100 - pct) <= 2, counts
    # Stronger: every block of 100 consecutive requests follows the split exactly ...
    for start in range(0, 10_000, SLOTS):
        assert Counter(picks[start : start + SLOTS]) == Counter(traffic)
    # ... in an order that changes from block to block.
    assert picks[:SLOTS] != picks[SLOTS : 2 * SLOTS]


def test_one_deployment_is_a_constant_choice() -> None:
    routes = Routes(deployed("blue", "green"), {"blue": 100, "green": 0})
    assert {routes.pick().name for _ in range(500)} == {"blue"}
    assert routes.primary.name == "blue" and routes.mirror() is None


def test_the_mirror_share_is_honoured_and_goes_to_the_mirrored_deployment() -> None:
    routes = Routes(deployed("blue", "green"), {"blue": 100}, {"green": 20}, rng=random.Random(1))
    copies = [routes.mirror() for _ in range(10_000)]
    targets = Counter(c.name for c in copies if c is not None)
    assert targets == {"green": 2_000}
    assert {routes.pick().name for _ in range(100)} == {"blue"}


def test_routes_refuse_a_split_they_cannot_serve() -> None:
    with pytest.raises(RoutingError):
        Routes(deployed("blue"), {"blue": 90})
    with pytest.raises(RoutingError):
        Routes(deployed("blue"), {"blue": 50, "green": 50})


def test_the_primary_deployment_takes_the_most_traffic() -> None:
    routes = Routes(deployed("blue", "green"), {"blue": 30, "green": 70})
    assert routes.primary.name == "green"
    assert (b"azureml-model-deployment", b"green") in routes.primary.headers


def spec(version: int, uri: str | None = None) -> DeploymentSpec:
    return DeploymentSpec("m", version, uri or f"models:/m/{version}")


def test_routing_table_round_trips_and_checks_the_split() -> None:
    table = RoutingTable({"blue": spec(1), "green": spec(2)}, {"blue": 90, "green": 10}, {}, 4)
    again = RoutingTable.from_dict(table.to_dict())
    assert again == table and again.serving() == ["blue", "green"]
    shadow = RoutingTable({"blue": spec(1), "green": spec(2)}, {"blue": 100}, {"green": 10})
    assert RoutingTable.from_dict(shadow.to_dict()).serving() == ["blue", "green"]
    # at 0 %, loaded all the same: the deployment header reaches it for a test
    idle = RoutingTable({"blue": spec(1), "green": spec(2)}, {"blue": 100})
    assert idle.serving() == ["blue", "green"]
    with pytest.raises(RoutingError, match="add up to 100"):
        RoutingTable.from_dict({"deployments": {"blue": spec(1).__dict__}, "traffic": {"blue": 5}})
    with pytest.raises(RoutingError, match="not a routing table"):
        RoutingTable.from_dict({"traffic": {}})


def test_load_routes_loads_every_deployment_and_reuses_loaded_models() -> None:
    loads: list[str] = []

    def load(name: str, s: DeploymentSpec) -> ServedModel:
        loads.append(s.model_uri)
        return model(f"v{s.model_version}")

    first = load_routes(RoutingTable({"blue": spec(1)}, {"blue": 100}), load)
    assert loads == ["models:/m/1"] and list(first.deployed) == ["blue"]
    # green at 0 %: loaded (and verified) now, reached by the header, picked by no request
    idle = load_routes(
        RoutingTable({"blue": spec(1), "green": spec(2)}, {"blue": 100}), load, first
    )
    assert loads == ["models:/m/1", "models:/m/2"] and idle.get("green") is not None
    assert {idle.pick().name for _ in range(200)} == {"blue"}
    second = load_routes(
        RoutingTable({"blue": spec(1), "green": spec(2)}, {"blue": 90, "green": 10}), load, idle
    )
    assert loads == ["models:/m/1", "models:/m/2"]
    assert second.deployed["blue"].served is first.deployed["blue"].served


def test_a_deployment_that_fails_to_load_or_verify_refuses_the_whole_table() -> None:
    def load(name: str, s: DeploymentSpec) -> ServedModel:
        if s.model_version == 9:
            raise FileNotFoundError("no such model")
        return model(fail=s.model_version == 8)

    good = RoutingTable({"blue": spec(1)}, {"blue": 100})
    assert load_routes(good, load).primary.name == "blue"
    missing = RoutingTable({"blue": spec(1), "green": spec(9)}, {"blue": 90, "green": 10})
    with pytest.raises(RoutingError, match=r"deployment green \(m v9\) did not load"):
        load_routes(missing, load)
    broken = RoutingTable({"blue": spec(1), "green": spec(8)}, {"blue": 90, "green": 10})
    with pytest.raises(RoutingError, match="green: the model fails on its example rows"):
        load_routes(broken, load)
