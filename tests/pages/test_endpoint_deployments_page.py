"""Endpoints page, Deployments tab: the split editor, mirror, rollback, idle deployments, history."""

from __future__ import annotations

from dataclasses import replace

from lib.traffic import check_split
from lib.workspace import Deployment, DeploymentEvent, WorkspaceError
from tests.pages.conftest import button, open_page
from tests.pages.test_endpoint_pages import NOW, FakeEndpoints, stub_url, use_fakes

__all__ = ["stub_url"]  # the fixture, shared with the other Endpoints page tests


def frame(at, column: str):  # noqa: ANN001, ANN201
    """The first table on the page with `column` (plain tables are not addressable by key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


class SplitEndpoints(FakeEndpoints):
    """Two deployments; set_traffic and rollback change what every later read sees."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.split = {"blue": 90, "green": 10}
        self.mirror: dict[str, int] = {}
        self.calls: list[tuple] = []
        self.events: list[DeploymentEvent] = []

    def deployments(self, name: str) -> list[Deployment]:
        return [
            Deployment(name, d, "churn", v, self.split.get(d, 0), self.mirror.get(d, 0))
            for d, v in (("blue", 1), ("green", 2), ("old", 3))
        ]

    def set_traffic(self, name: str, traffic: dict, mirror: dict | None = None) -> None:
        self.calls.append(("set_traffic", traffic, mirror))
        self.split, self.mirror = check_split(traffic, mirror, ["blue", "green", "old"])
        self.events.insert(
            0, DeploymentEvent(name, NOW, "me", "traffic", "", dict(self.split), dict(self.mirror))
        )

    def rollback(self, name: str) -> None:
        self.calls.append(("rollback",))
        if self.split.get("blue") == 100:
            raise WorkspaceError("Nothing to roll back to: churn has served only blue so far.")
        self.split = {"blue": 100}

    def delete_deployment(self, name: str, deployment: str) -> None:
        self.calls.append(("delete_deployment", deployment))

    def history(self, name: str, limit: int = 50) -> list[DeploymentEvent]:
        return self.events


def test_split_mirror_rollback_and_history(local_workspace, stub_url):
    use_fakes(local_workspace, stub_url)
    endpoints = local_workspace.endpoints = SplitEndpoints(stub_url)
    at = open_page("endpoints.py")
    assert not at.exception, at.exception
    table = frame(at, "traffic %")
    assert list(table["traffic %"]) == [90, 10, 0]
    assert any("No changes recorded" in c.value for c in at.caption)

    at.number_input(key="endpoints_traffic_churn_blue").set_value(50)
    at.number_input(key="endpoints_traffic_churn_green").set_value(50)
    at.selectbox(key="endpoints_mirror_to_churn").set_value("old")
    at.number_input(key="endpoints_mirror_pct_churn").set_value(20)
    at.button(key="FormSubmitter:endpoints_traffic_form_churn-Apply").click().run()
    assert not at.exception, at.exception
    assert endpoints.calls[-1] == (
        "set_traffic",
        {"blue": 50, "green": 50, "old": 0},
        {"old": 20},
    )
    table = frame(at, "traffic %")
    assert list(table["traffic %"]) == [50, 50, 0] and list(table["mirror %"]) == [0, 0, 20]
    history = frame(at, "outcome")
    assert history["split"].iloc[0] == "blue 50 %, green 50 % (mirror old 20 %)"

    # The same split again (what a share typed past 100 leaves): said, nothing sent.
    sent = len(endpoints.calls)
    at.button(key="FormSubmitter:endpoints_traffic_form_churn-Apply").click().run()
    assert any(i.value.startswith("Nothing to change: the split is already") for i in at.info)
    assert len(endpoints.calls) == sent

    # A split that does not add up is refused with the reason; nothing changes.
    at.number_input(key="endpoints_traffic_churn_blue").set_value(60)
    at.button(key="FormSubmitter:endpoints_traffic_form_churn-Apply").click().run()
    assert any("add up to 100" in e.value for e in at.error)
    assert endpoints.split == {"blue": 50, "green": 50, "old": 0}

    button(at, "Roll back").click().run()
    assert not at.exception, at.exception
    assert endpoints.calls[-1] == ("rollback",)
    assert list(frame(at, "traffic %")["traffic %"]) == [100, 0, 0]
    assert any("**churn** rolled back" in m.value for m in at.success)
    # the boxes show the rolled-back split: Apply would otherwise undo the rollback
    assert at.number_input(key="endpoints_traffic_churn_blue").value == 100
    assert at.number_input(key="endpoints_traffic_churn_green").value == 0
    button(at, "Roll back").click().run()
    assert any("Nothing to roll back to" in e.value for e in at.error)


def test_an_idle_deployment_can_be_deleted(local_workspace, stub_url):
    use_fakes(local_workspace, stub_url)
    endpoints = local_workspace.endpoints = SplitEndpoints(stub_url)
    at = open_page("endpoints.py")
    assert at.selectbox(key="endpoints_idle_churn").options == ["old"]
    button(at, "Delete deployment").click().run()
    assert not at.exception, at.exception
    assert endpoints.calls == [("delete_deployment", "old")]


def test_deploying_to_an_existing_endpoint_asks_for_its_traffic(local_workspace, stub_url):
    use_fakes(local_workspace, stub_url)
    calls = []
    endpoints = local_workspace.endpoints = SplitEndpoints(stub_url)

    def deploy(model_name, model_version, endpoint_name, deployment=None, traffic=100):  # noqa: ANN001, ANN202
        calls.append((model_name, model_version, endpoint_name, traffic))
        return replace(endpoints._endpoint(endpoint_name), state="Succeeded")

    endpoints.deploy = deploy
    at = open_page("endpoints.py")
    at.text_input(key="endpoints_name_churn").set_value("churn").run()
    at.slider(key="endpoints_deploy_traffic").set_value(10).run()
    at.button(key="endpoints_deploy").click().run()
    assert not at.exception, at.exception
    assert calls == [("churn", 1, "churn", 10)]
    assert any("Deployed **churn v1** to **churn**" in s.value for s in at.success)
