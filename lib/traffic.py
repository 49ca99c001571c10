"""Traffic rules of an endpoint's deployments, the same for both backends.

An endpoint has one URI and keys and one or more deployments (model versions). Live traffic is
split between them in whole percentages that add up to 100; a deployment with no live traffic
may receive a mirrored copy of a share of the requests (at most `MAX_MIRROR` percent, one
mirrored deployment), whose answers are recorded and never returned. These are Azure managed
online endpoints' rules (`traffic` / `mirror_traffic`), so a split that works locally also works
after switching to Azure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lib.errors import WorkspaceError

MAX_MIRROR = 50
# The deployment names a new deployment takes, in order (Azure's blue/green convention).
COLOURS = ("blue", "green")


def _percent(value: Any, what: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise WorkspaceError(f"{what} must be a whole percentage, not {value!r}.") from None
    if number != int(number) or not 0 <= number <= 100:
        raise WorkspaceError(f"{what} must be a whole percentage from 0 to 100, not {value!r}.")
    return int(number)


def check_split(
    traffic: Mapping[str, Any],
    mirror: Mapping[str, Any] | None,
    deployments: Iterable[str],
) -> tuple[dict[str, int], dict[str, int]]:
    """The split as {deployment: percent} for every deployment (zeros included), or WorkspaceError.

    Live traffic adds up to 100; mirrored traffic goes to at most one deployment, which takes no
    live traffic, and to at most `MAX_MIRROR` percent of the requests.
    """
    known = list(deployments)
    if not known:
        raise WorkspaceError("The endpoint has no deployments.")
    for name in [*traffic, *(mirror or {})]:
        if name not in known:
            raise WorkspaceError(
                f"Deployment {name} does not exist on this endpoint ({', '.join(known)})."
            )
    live = {name: _percent(traffic.get(name, 0), f"Traffic of {name}") for name in known}
    total = sum(live.values())
    if total != 100:
        raise WorkspaceError(f"Live traffic must add up to 100 %, not {total} %.")
    shadow = {name: _percent((mirror or {}).get(name, 0), f"Mirror of {name}") for name in known}
    mirrored = [name for name, pct in shadow.items() if pct]
    if len(mirrored) > 1:
        raise WorkspaceError("Traffic can be mirrored to one deployment only.")
    if mirrored:
        name = mirrored[0]
        if live[name]:
            raise WorkspaceError(
                f"Deployment {name} takes live traffic; only a deployment with 0 % live traffic "
                "can receive mirrored traffic."
            )
        if shadow[name] > MAX_MIRROR:
            raise WorkspaceError(f"At most {MAX_MIRROR} % of the traffic can be mirrored.")
    return live, shadow


def live_deployment(traffic: Mapping[str, int], order: Sequence[str] = ()) -> str | None:
    """The deployment taking the most live traffic; a tie goes to the first in `order`."""
    routed = {name: int(pct) for name, pct in traffic.items() if int(pct) > 0}
    if not routed:
        return None
    rank = {name: i for i, name in enumerate(order)}
    return min(routed, key=lambda name: (-routed[name], rank.get(name, len(rank)), name))


def shift(traffic: Mapping[str, int], to: str, percent: int) -> dict[str, int]:
    """Give `to` `percent` of the live traffic and scale the others to the rest (sum 100)."""
    percent = _percent(percent, f"Traffic of {to}")
    others = {name: int(pct) for name, pct in traffic.items() if name != to and int(pct) > 0}
    rest = 100 - percent
    result = dict.fromkeys(traffic, 0) | {to: percent}
    if not others:
        if rest:
            raise WorkspaceError(
                f"No other deployment takes traffic: {to} must take 100 %, not {percent} %."
            )
        return result
    total = sum(others.values())
    # Largest remainder, so the shares stay whole percentages that add up exactly.
    exact = {name: pct * rest / total for name, pct in others.items()}
    floors = {name: int(value) for name, value in exact.items()}
    left = rest - sum(floors.values())
    for name in sorted(exact, key=lambda n: floors[n] - exact[n])[:left]:
        floors[name] += 1
    return result | floors


def free_name(existing: Mapping[str, int]) -> str:
    """A deployment name for a new model version: a colour not in use, else the one taking the
    least live traffic (it is replaced)."""
    free = [c for c in COLOURS if c not in existing]
    if free:
        return free[0]
    return min(COLOURS, key=lambda c: (existing.get(c, 0), COLOURS.index(c)))


def rollback_target(
    events: Sequence[Any], traffic: Mapping[str, int], order: Sequence[str] = ()
) -> tuple[str, str, int] | None:
    """(deployment, model name, model version) that served before the current live deployment.

    `events` are `DeploymentEvent`s, newest first; the target is the live deployment of the
    newest succeeded event whose live deployment differs from today's, with the model version it
    served then. None when no earlier event had another live deployment.
    """
    current = live_deployment(traffic, order)
    for event in events:
        if getattr(event, "outcome", "Succeeded") != "Succeeded":
            continue
        then = live_deployment(event.traffic, order)
        if then is None or then == current or then not in event.models:
            continue
        model_name, model_version = event.models[then]
        return then, model_name, int(model_version)
    return None
