"""Traffic rules shared by both backends: split checks, shifting, the live deployment, rollback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lib.traffic import check_split, free_name, live_deployment, rollback_target, shift
from lib.workspace import DeploymentEvent, WorkspaceError

DEPS = ["blue", "green"]


def test_a_valid_split_lists_every_deployment() -> None:
    live, mirror = check_split({"blue": 90, "green": 10}, None, DEPS)
    assert live == {"blue": 90, "green": 10} and mirror == {"blue": 0, "green": 0}
    live, mirror = check_split({"blue": 100}, {"green": 20}, DEPS)
    assert live == {"blue": 100, "green": 0} and mirror == {"blue": 0, "green": 20}
    assert check_split({"blue": 100.0}, {}, DEPS)[0]["blue"] == 100


@pytest.mark.parametrize(
    ("traffic", "mirror", "message"),
    [
        ({"blue": 90}, None, "add up to 100"),
        ({"blue": 60, "green": 60}, None, "add up to 100"),
        ({"blue": 100, "red": 0}, None, "red does not exist"),
        ({"blue": 99.5, "green": 0.5}, None, "whole percentage"),
        ({"blue": "lots"}, None, "whole percentage"),
        ({"blue": 110, "green": -10}, None, "from 0 to 100"),
        ({"blue": 100}, {"green": 60}, "At most 50"),
        ({"blue": 50, "green": 50}, {"green": 10}, "takes live traffic"),
        ({"blue": 100}, {"green": 10, "gold": 10}, "gold does not exist"),
    ],
)
def test_invalid_splits_say_why(traffic: dict, mirror: dict | None, message: str) -> None:
    with pytest.raises(WorkspaceError, match=message):
        check_split(traffic, mirror, DEPS)


def test_mirroring_to_two_deployments_is_refused() -> None:
    with pytest.raises(WorkspaceError, match="one deployment"):
        check_split({"blue": 100}, {"green": 10, "gold": 10}, [*DEPS, "gold"])


def test_shift_gives_the_new_deployment_its_share_and_scales_the_rest() -> None:
    assert shift({"blue": 100, "green": 0}, "green", 10) == {"blue": 90, "green": 10}
    assert shift({"blue": 90, "green": 10}, "green", 50) == {"blue": 50, "green": 50}
    assert shift({"blue": 50, "green": 50}, "green", 100) == {"blue": 0, "green": 100}
    three = shift({"a": 50, "b": 30, "c": 20, "d": 0}, "d", 10)
    assert three["d"] == 10 and sum(three.values()) == 100
    assert three == {"a": 45, "b": 27, "c": 18, "d": 10}
    odd = shift({"a": 1, "b": 1, "c": 1, "d": 0}, "d", 1)
    assert sum(odd.values()) == 100 and odd["d"] == 1
    with pytest.raises(WorkspaceError, match="must take 100"):
        shift({"blue": 0}, "blue", 10)


def test_live_deployment_takes_the_most_traffic_and_ties_go_to_the_incumbent() -> None:
    assert live_deployment({"blue": 10, "green": 90}) == "green"
    assert live_deployment({"green": 50, "blue": 50}, order=["blue", "green"]) == "blue"
    assert live_deployment({"blue": 0}) is None


def test_free_name_prefers_an_unused_colour_then_the_idle_one() -> None:
    assert free_name({}) == "blue"
    assert free_name({"blue": 100}) == "green"
    assert free_name({"blue": 100, "green": 0}) == "green"
    assert free_name({"blue": 0, "green": 100}) == "blue"


def event(traffic: dict, models: dict, outcome: str = "Succeeded") -> DeploymentEvent:
    return DeploymentEvent(
        endpoint="ep",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        who="me",
        action="traffic",
        detail="",
        traffic=traffic,
        models=models,
        outcome=outcome,
    )


def test_rollback_goes_to_the_deployment_that_served_before_the_current_one() -> None:
    v1 = {"blue": ("m", 1)}
    both = {"blue": ("m", 1), "green": ("m", 2)}
    events = [  # newest first: deploy blue, green 10 %, 50 %, 100 %
        event({"green": 100}, both),
        event({"blue": 50, "green": 50}, both),
        event({"blue": 90, "green": 10}, both),
        event({"blue": 100}, v1),
    ]
    order = ["blue", "green"]
    assert rollback_target(events, {"green": 100}, order) == ("blue", "m", 1)
    # Half way, blue is still the live deployment: nothing earlier served otherwise.
    assert rollback_target(events[1:], {"blue": 50, "green": 50}, order) is None
    # A refused change is not a state the endpoint was ever in.
    failed = [event({"green": 100}, both, "Failed"), event({"blue": 100}, v1)]
    assert rollback_target(failed, {"blue": 100}, order) is None


def test_rollback_restores_the_model_version_a_reused_deployment_had() -> None:
    events = [
        event({"blue": 100}, {"blue": ("m", 3), "green": ("m", 2)}),
        event({"green": 100}, {"blue": ("m", 1), "green": ("m", 2)}),
    ]
    assert rollback_target(events, {"blue": 100}, ["blue", "green"]) == ("green", "m", 2)
