"""What the Endpoints page shows of an endpoint's deployments and their history (plain frames)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from lib.workspace import Deployment, DeploymentEvent


def _split_text(traffic: dict[str, int], mirror: dict[str, int]) -> str:
    text = ", ".join(f"{name} {pct} %" for name, pct in traffic.items() if pct)
    mirrored = ", ".join(f"{name} {pct} %" for name, pct in mirror.items() if pct)
    return text + (f" (mirror {mirrored})" if mirrored else "")


def deployments_frame(deployments: Sequence[Deployment]) -> pd.DataFrame:
    """One row per deployment: model version, live and mirrored traffic, state, how it is served."""
    return pd.DataFrame(
        [
            {
                "deployment": d.name,
                "model": f"{d.model_name} v{d.model_version}",
                "traffic %": d.traffic,
                "mirror %": d.mirror,
                "state": d.state,
                "served by": d.note,
            }
            for d in deployments
        ],
        columns=["deployment", "model", "traffic %", "mirror %", "state", "served by"],
    )


def history_frame(events: Sequence[DeploymentEvent]) -> pd.DataFrame:
    """One row per change, newest first: when, who, what, the split it left, and its outcome."""
    return pd.DataFrame(
        [
            {
                "time": e.time,
                "who": e.who,
                "action": e.action,
                "detail": e.detail,
                "split": _split_text(e.traffic, e.mirror),
                "models": ", ".join(f"{k}: {m} v{v}" for k, (m, v) in e.models.items()),
                "outcome": e.outcome,
            }
            for e in events
        ],
        columns=["time", "who", "action", "detail", "split", "models", "outcome"],
    )


def mirror_choice(deployments: Sequence[Deployment]) -> tuple[str | None, int]:
    """The deployment receiving mirrored traffic and its share (None, 0 when none)."""
    for d in deployments:
        if d.mirror:
            return d.name, d.mirror
    return None, 0
