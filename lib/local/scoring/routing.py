"""Deployments behind one endpoint, inside its server: what is loaded and who answers a request.

`RoutingTable` is what the control plane asks for (a JSON file in the endpoint folder, and the
body of an `apply` on the control socket). `Routes` is a table loaded: every deployment, with
traffic or not, holds its verified `ServedModel`, and the split is a cycle of 100
slots, reshuffled each turn, so every 100 consecutive requests honour it exactly and a request's
choice costs one index. The app replaces its whole `Routes` in one assignment: a request sees
the old table or the new one, never a mix.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lib.local.scoring.payloads import dumps
from lib.local.scoring.served_model import ServedModel
from lib.traffic import check_split, live_deployment

SLOTS = 100


class RoutingError(Exception):
    """A table that cannot be served: invalid, or a deployment failed to load or verify."""


@dataclass(frozen=True)
class DeploymentSpec:
    """Where a deployment's model comes from."""

    model_name: str
    model_version: int
    model_uri: str
    fastpath_dir: str | None = None
    baseline: str | None = None  # training profile for drift sampling (lib.local.drift)

    @property
    def source(self) -> tuple[str, str | None]:
        """Two deployments with the same source share one loaded model."""
        return self.model_uri, self.fastpath_dir


@dataclass(frozen=True)
class RoutingTable:
    """Deployments (name -> spec) and their live and mirrored traffic, in percent."""

    deployments: dict[str, DeploymentSpec]
    traffic: dict[str, int]
    mirror: dict[str, int] = field(default_factory=dict)
    generation: int = 0

    def check(self) -> None:
        """RoutingError unless the split follows `lib.traffic.check_split`."""
        try:
            check_split(self.traffic, self.mirror, self.deployments)
        except Exception as exc:  # WorkspaceError: the seam's message, said by the server
            raise RoutingError(str(exc)) from None

    def serving(self) -> list[str]:
        """The deployments a server loads: every one, a deployment at 0 % too, so that it is
        verified when deployed and Azure's `azureml-model-deployment` header reaches it for a
        test before it takes traffic."""
        return list(self.deployments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "deployments": {name: asdict(spec) for name, spec in self.deployments.items()},
            "traffic": dict(self.traffic),
            "mirror": {name: pct for name, pct in self.mirror.items() if pct},
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True).encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingTable:
        try:
            table = cls(
                deployments={
                    str(name): DeploymentSpec(**spec)
                    for name, spec in dict(data["deployments"]).items()
                },
                traffic={str(k): int(v) for k, v in dict(data["traffic"]).items()},
                mirror={str(k): int(v) for k, v in dict(data.get("mirror") or {}).items()},
                generation=int(data.get("generation", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RoutingError(f"not a routing table: {exc!r}") from None
        table.check()
        return table

    @classmethod
    def load(cls, path: Path) -> RoutingTable:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def single(
        cls, name: str, model_name: str, model_version: int, model_uri: str, **spec: Any
    ) -> RoutingTable:
        """One deployment taking all the traffic."""
        return cls(
            {name: DeploymentSpec(model_name, model_version, model_uri, **spec)}, {name: 100}
        )


@dataclass(frozen=True)
class Deployed:
    """A deployment loaded in this server, with the response headers that name it."""

    name: str
    model_version: str
    served: ServedModel
    spec: DeploymentSpec | None = None
    # `azureml-model-deployment` (as Azure's front end adds it) on every answer it gives.
    headers: tuple[tuple[bytes, bytes], ...] = ()
    # `x-ms-classes` (the probability order) on its 200 answers.
    ok_headers: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def of(
        cls, name: str, model_version: str, served: ServedModel, spec: DeploymentSpec | None = None
    ) -> Deployed:
        named = ((b"azureml-model-deployment", name.encode("latin-1")),)
        classes = () if served.classes is None else ((b"x-ms-classes", dumps(served.classes)),)
        return cls(name, model_version, served, spec, named, named + classes)


def _cycle(weights: list[tuple[Any, int]]) -> list[Any]:
    return [item for item, pct in weights for _ in range(pct)]


class Routes:
    """A loaded routing table: `pick()` the deployment that answers, `mirror()` a copy's target."""

    def __init__(
        self,
        deployed: Mapping[str, Deployed],
        traffic: Mapping[str, int],
        mirror: Mapping[str, int] | None = None,
        generation: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        self.deployed = dict(deployed)
        self.traffic = {name: int(pct) for name, pct in traffic.items() if int(pct) > 0}
        self.mirror_share = {name: int(pct) for name, pct in (mirror or {}).items() if int(pct)}
        self.generation = generation
        missing = [n for n in [*self.traffic, *self.mirror_share] if n not in self.deployed]
        if missing or not self.traffic or sum(self.traffic.values()) != SLOTS:
            raise RoutingError(f"cannot route {self.traffic} over {list(self.deployed)}")
        self._rng = rng or random.Random()
        primary = live_deployment(self.traffic, list(self.deployed))
        assert primary is not None
        self.primary = self.deployed[primary]
        live = [(self.deployed[n], pct) for n, pct in self.traffic.items()]
        # With one live deployment the choice is a constant: the hot path pays nothing for it.
        self._single: Deployed | None = live[0][0] if len(live) == 1 else None
        self._slots = _cycle(live)
        self._next = SLOTS
        self._mirror_slots: list[Deployed | None] = []
        self._mirror_next = SLOTS
        if self.mirror_share:
            (name, pct), *_ = self.mirror_share.items()
            self._mirror_slots = _cycle([(self.deployed[name], pct), (None, SLOTS - pct)])
        # Filled by the app: what GET /swagger.json and /docs serve for this table.
        self.swagger: dict[int, bytes] = {}
        self.docs_html = b""

    def pick(self) -> Deployed:
        """The deployment that answers the next request."""
        if self._single is not None:
            return self._single
        i = self._next
        if i >= SLOTS:
            self._rng.shuffle(self._slots)
            i = 0
        self._next = i + 1
        return self._slots[i]

    def mirror(self) -> Deployed | None:
        """Where a copy of the next request goes (None: nowhere)."""
        if not self._mirror_slots:
            return None
        i = self._mirror_next
        if i >= SLOTS:
            self._rng.shuffle(self._mirror_slots)
            i = 0
        self._mirror_next = i + 1
        return self._mirror_slots[i]

    def get(self, name: str) -> Deployed | None:
        return self.deployed.get(name)

    def describe(self) -> dict[str, Any]:
        """What the control socket reports: the split and how each deployment is served."""
        return {
            "generation": self.generation,
            "traffic": dict(self.traffic),
            "mirror": dict(self.mirror_share),
            "deployments": {
                name: {
                    "model_version": d.model_version,
                    "path": d.served.path,
                    "check": d.served.check_message,
                }
                for name, d in self.deployed.items()
            },
        }


def verify(served: ServedModel) -> None:
    """RoutingError unless the model answers its example rows (one answer per row)."""
    examples = [dict(r) for r in served.example_records] or None
    if examples is None:
        return
    try:
        answers = served.predict(examples)
        if served.has_proba:
            served.predict_proba([dict(r) for r in served.example_records])
    except Exception as exc:
        raise RoutingError(f"the model fails on its example rows: {exc!r}") from None
    if len(answers) != len(examples):
        raise RoutingError(f"the model gave {len(answers)} answers for {len(examples)} rows")


def load_routes(
    table: RoutingTable,
    load: Callable[[str, DeploymentSpec], ServedModel],
    previous: Routes | None = None,
    rng: random.Random | None = None,
) -> Routes:
    """Load and verify every deployment the table serves (reusing `previous`'s models)."""
    table.check()
    loaded = {}
    if previous is not None:
        loaded = {d.spec.source: d.served for d in previous.deployed.values() if d.spec}
    deployed: dict[str, Deployed] = {}
    for name in table.serving():
        spec = table.deployments[name]
        served = loaded.get(spec.source)
        if served is None:
            try:
                served = load(name, spec)
            except Exception as exc:
                raise RoutingError(
                    f"deployment {name} ({spec.model_name} v{spec.model_version}) did not load: "
                    f"{exc!r}"
                ) from None
            try:
                verify(served)
            except RoutingError as exc:
                raise RoutingError(f"deployment {name}: {exc}") from None
            loaded[spec.source] = served
        deployed[name] = Deployed.of(name, str(spec.model_version), served, spec)
    return Routes(deployed, table.traffic, table.mirror, table.generation, rng)
