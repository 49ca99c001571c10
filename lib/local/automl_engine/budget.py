"""The time budget as a promise: a run ends within budget + 10 % + 5 s of the job's start.

The search gets what the later phases will need left over; each later phase works to a
deadline taken from the same end time and trims optional work to fit (ensemble candidates,
extra seeds, the refit on every row, verification rows, the fast path itself), recording
every trim so the run can say what it left out and why.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from lib.local import guardrails as gr

PROMISE_FRACTION = 0.10
PROMISE_SLACK_S = 5.0
# The engine returns this long before the promised end: the job still writes its results
# (0.1-0.3 s measured), and the engine's last step may overrun its own end by as much.
RETURN_MARGIN_S = 0.8
# What the phases after the refit take (save the model, load it back, compile and verify the
# fast path, record the run) on a lightly loaded 2-core machine. Measured on Bank Marketing
# they took 8-10 s at load average 9-10 and 15 s at 15: the reserve grows with the load.
TAIL_S = 2.5
# ... plus this much per feature: MLflow checks the saved model's input example column by
# column (3,000 features added 2 s).
TAIL_PER_FEATURE_S = 0.001
MAX_SLOWDOWN = 8.0
# Fits after the search ran up to 2.5x their trial's time on a loaded machine: the estimates
# the search stops by are padded by this factor.
SAFETY = 1.5
# Share of the budget the search leaves for scoring ensemble candidates.
ENSEMBLE_SHARE = 0.10
# FLAML's own budget is never below this (times the load's slowdown): its data preparation
# counts against it, and a search that ran out before its first trial has no model at all.
# The search still ends right after the first trial once the run's time is up.
MIN_SEARCH_S = 3.0
BUDGET_GUARDRAIL = "Time budget"


def slowdown() -> float:
    """How much slower than on an idle machine work runs now: runnable tasks per core."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1.0
    return min(MAX_SLOWDOWN, max(1.0, load / (os.cpu_count() or 1)))


def tail_s(features: int = 0) -> float:
    """Seconds to keep for saving, compiling and recording after the refit, at today's load."""
    return (TAIL_S + features * TAIL_PER_FEATURE_S) * slowdown()


def promised_seconds(budget_s: float) -> float:
    """Wall time a job may take from its start: the budget plus 10 % plus 5 s."""
    return budget_s * (1 + PROMISE_FRACTION) + PROMISE_SLACK_S


@dataclass
class Trim:
    step: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class Clock:
    """Deadlines of one run, counted from the job's start, and the trims made to keep them."""

    def __init__(self, budget_s: float, started_at: float | None = None) -> None:
        self.budget_s = float(budget_s)
        self.started_at = time.time() if started_at is None else float(started_at)
        self.promised_s = promised_seconds(self.budget_s)
        self.end = self.started_at + self.promised_s - RETURN_MARGIN_S
        self.budget_end = self.started_at + self.budget_s
        self.trims: list[Trim] = []

    def left(self, until: float | None = None) -> float:
        """Seconds from now to ``until`` (default: the end of the run)."""
        return (self.end if until is None else until) - time.time()

    def elapsed(self) -> float:
        return time.time() - self.started_at

    def trim(self, step: str, reason: str, log: Callable[[str], None]) -> None:
        self.trims.append(Trim(step, reason))
        log(f"time budget: {step} trimmed - {reason}")

    def summary(self) -> dict[str, Any]:
        return {
            "budget_s": self.budget_s,
            "promised_s": round(self.promised_s, 3),
            "elapsed_s": round(self.elapsed(), 3),
            "trimmed": [t.to_dict() for t in self.trims],
        }

    def guardrail(self) -> gr.Guardrail:
        """The run's time budget as a guardrail row: what was trimmed to keep the promise."""
        elapsed = self.elapsed()
        details = (
            f"Finished {elapsed:.0f} s after the job started; the promise is "
            f"{self.promised_s:.0f} s (budget {self.budget_s:g} s + 10 % + 5 s)."
        )
        if elapsed > self.promised_s:
            status = gr.ALERTED
            details += " The promise was not kept."
        else:
            status = gr.DONE if self.trims else gr.PASSED
        action = "; ".join(f"{t.step}: {t.reason}" for t in self.trims)
        return gr.Guardrail(BUDGET_GUARDRAIL, status, details, action)


@dataclass(frozen=True)
class CostModel:
    """Seconds the post-search phases will take, scaled from what the search measured."""

    rows: int  # rows the served model is refit on
    search_rows: int  # rows of a full-size search trial (the training split, or all for cv)
    refit_factor: float  # cost of one refit on every row / cost of one validation score
    folds: int = 1  # validation splits each candidate is fitted on
    features: int = 0  # columns of the encoded matrix (the saving tail grows with them)

    @classmethod
    def for_folds(
        cls, rows: int, folds: list[tuple[Any, Any]], cv: bool, features: int = 0
    ) -> CostModel:
        fit_rows = len(folds[0][0])
        return cls(
            rows=rows,
            search_rows=rows if cv else fit_rows,
            refit_factor=rows / max(1, len(folds) * fit_rows),
            folds=len(folds),
            features=features,
        )

    def tail_s(self) -> float:
        return tail_s(self.features)

    def extrapolated(self, trial: dict[str, Any]) -> bool:
        """True when the trial saw a sample: its cost at full size is a guess."""
        return int(trial.get("sample_size") or self.search_rows) < self.search_rows

    def validation_s(self, trial: dict[str, Any], fold_s: float | None = None) -> float:
        """Seconds to score a trial's config on the validation rows: from ``fold_s`` (one
        split's fit and score, measured at full size) when given, else what its trial took,
        scaled to the full sample."""
        if fold_s is not None:
            return SAFETY * fold_s * self.folds
        sample = max(1, int(trial.get("sample_size") or self.search_rows))
        scale = max(1.0, self.search_rows / sample)
        return SAFETY * float(trial.get("duration_s") or 0.0) * scale

    def refit_s(self, validation_s: float) -> float:
        return validation_s * self.refit_factor

    def finish_s(self, trial: dict[str, Any], fold_s: float | None = None) -> float:
        """The unskippable work after the search if this trial's config is served alone."""
        val = self.validation_s(trial, fold_s)
        return val + self.refit_s(val) + self.tail_s()
