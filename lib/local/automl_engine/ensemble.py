"""The served model's choice: validation scores of the strongest configs, a greedy weighted
ensemble over them (boosters and bagged trees), the decision threshold and its metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flaml import AutoML

from lib.local.automl_engine import evaluation as ev
from lib.local.automl_engine.budget import Clock, CostModel
from lib.local.automl_engine.data import Prepared
from lib.local.automl_engine.members import (
    BOOSTERS,
    complete,
    fit_member,
    learner_class,
    member_of,
    plain_config,
    search_fit_of_best,
)
from lib.local.automl_engine.search import FirstSplit, SearchOutcome, config_key
from lib.local.automl_engine.spec import AutoMLSpec
from lib.local.tabular_model import Encoder, Member, TabularModel

ENSEMBLE_ROUNDS = 25
# Bagged trees are weaker alone than the boosters, but their errors differ: the greedy
# selection on out-of-fold scores takes them when they help.
DIVERSE_MEMBERS = ("rf", "extra_tree")
MAX_ENSEMBLE_CANDIDATES = 8

Config = tuple[str, dict[str, Any]]  # (estimator name, FLAML config)


@dataclass
class Selection:
    """The configs the served model averages, and what they score on the validation rows."""

    chosen: list[tuple[Config, int]]  # (config, count in the greedy selection)
    val_scores: np.ndarray  # the weighted average's scores on the validation rows
    threshold: float | None
    metrics: dict[str, float]  # full metric set of the average on the validation rows
    name: str  # "VotingEnsemble" or the single estimator's name
    # Per chosen config: the member fitted on the first validation split (served when there is
    # no time to refit it on every row) and the estimated seconds of that refit.
    split_members: list[Member] = field(default_factory=list)
    refit_s: list[float] = field(default_factory=list)

    @property
    def is_ensemble(self) -> bool:
        return len(self.chosen) > 1

    @property
    def weights(self) -> list[float]:
        total = sum(c for _cfg, c in self.chosen)
        return [c / total for _cfg, c in self.chosen]

    def leaderboard_row(self, task: str) -> dict[str, Any]:
        """The ensemble's row beside the per-estimator rows."""
        return {
            "estimator": self.name,
            "trial": None,
            "trials": None,
            **{m: self.metrics.get(m) for m in ev.metric_names(task)},
            "config": {f"{n}#{k}": c for k, ((n, _), c) in enumerate(self.chosen)},
        }


def candidates(search: SearchOutcome, metric: str, ensemble: bool) -> list[Config]:
    """The best config first, then (for an ensemble) each estimator's best and booster runners-up."""
    automl = search.automl
    best_name = automl.best_estimator
    out: list[Config] = [(best_name, plain_config(automl.best_config_per_estimator[best_name]))]
    if not ensemble:
        return out
    for name in (*BOOSTERS, *DIVERSE_MEMBERS):
        cfg = automl.best_config_per_estimator.get(name)
        if cfg and name != best_name:
            out.append((name, plain_config(cfg)))
    # Runners-up of the boosters at full sample size add diversity cheaply.
    trials_df = search.trials_frame
    full = trials_df[
        trials_df["estimator"].isin(BOOSTERS)
        & (trials_df["sample_size"] >= trials_df["sample_size"].max())
        & trials_df[metric].notna()
    ].sort_values(metric, ascending=not ev.greater_is_better(metric))
    for _, row in full.iterrows():
        if len(out) >= MAX_ENSEMBLE_CANDIDATES:
            break
        key = (row["estimator"], row["config"])
        if key not in out:
            out.append(key)
    return out


def validation_scores(
    automl: AutoML,
    config: Config,
    data: Prepared,
    task: str,
    first_split: FirstSplit | None = None,
    deadline: float | None = None,
) -> tuple[np.ndarray, Member]:
    """Scores of one config on the validation rows (holdout) or out-of-fold (cv), and the
    member fitted on the first split (``first_split``: that fit and its scores, if the search
    made them already). With a ``deadline`` each fold's boosting stops at its share of the
    time left, and the scores are those of the trees it fitted."""
    name, cfg = config
    n_classes = len(data.classes)
    width = (len(data.y), n_classes) if task == "classification" else (len(data.y),)
    out = np.full(width, np.nan)
    first: Member | None = None
    for k, (tr, va) in enumerate(data.folds):
        if k == 0 and first_split is not None:
            member, scores, _seconds = first_split
        else:
            member = fit_member(
                learner_class(automl, name),
                name,
                cfg,
                data.X[tr],
                data.y[tr],
                task,
                data.cat_idx,
                data.n_jobs,
                None if deadline is None else _fold_deadline(deadline, len(data.folds) - k),
            )
            part = TabularModel(
                task=task, encoder=Encoder([]), members=[member], classes=list(range(n_classes))
            )
            scores = part.encoded_scores(data.X[va])
        first = first or member
        if task == "classification" and scores.shape[1] != n_classes:
            raise ValueError("a validation fold is missing a class; use fewer folds")
        out[va] = scores
    assert first is not None
    return out[data.val_rows], first


def _fold_deadline(deadline: float, folds_left: int) -> float:
    """When the next fold's fit must end for the folds left to end by ``deadline``."""
    now = time.time()
    return now + max(0.0, deadline - now) / folds_left


def _search_scores(
    search: SearchOutcome, data: Prepared, task: str
) -> tuple[np.ndarray, Member] | None:
    """Holdout scores of the search's own fit of the best config, when it saw every
    training row (holdout validation only)."""
    if len(data.folds) != 1:
        return None
    train, holdout = data.folds[0]
    fitted = search_fit_of_best(search.automl, len(train))
    if fitted is None:
        return None
    member = member_of(search.automl.best_estimator, fitted, search.automl.best_config)
    n_classes = len(data.classes)
    part = TabularModel(
        task=task, encoder=Encoder([]), members=[member], classes=list(range(n_classes))
    )
    scores = part.encoded_scores(data.X[holdout])
    if task == "classification" and scores.shape[1] != n_classes:
        return None
    return scores, member


def _trial_of(search: SearchOutcome, config: Config) -> dict[str, Any]:
    """The trial that measured a config, or (not found) its estimator's slowest trial."""
    name, cfg = config
    rows = [r for r in search.trials if r["estimator"] == name]
    same = [r for r in rows if r["config"] == cfg]
    if same:
        return same[-1]
    return max(rows, key=lambda r: r["duration_s"] / max(1, r["sample_size"]), default={})


def greedy_ensemble(
    task: str,
    y: np.ndarray,
    candidate_scores: list[np.ndarray],
    metric: str,
    until: float = float("inf"),
) -> list[int]:
    """Caruana-style forward selection with replacement; returns counts per candidate.

    Rounds stop early at ``until`` (wall clock): the counts so far are an ensemble already.
    """
    counts = [0] * len(candidate_scores)
    total = None
    best_value = None
    for _ in range(ENSEMBLE_ROUNDS):
        if total is not None and time.time() > until:
            break
        round_best = None
        for i, s in enumerate(candidate_scores):
            n = sum(counts) + 1
            trial = s if total is None else (total * (n - 1) + s) / n
            loss = ev.loss(metric, ev.metric_value(task, y, trial, metric))
            if round_best is None or loss < round_best[0]:
                round_best = (loss, i, trial)
        if best_value is not None and round_best[0] > best_value + 1e-12:
            break
        best_value = round_best[0]
        counts[round_best[1]] += 1
        total = round_best[2]
    return counts


def _selection_metric(task: str, metric: str) -> str:
    """The metric members are weighed by: log loss when the primary metric needs a threshold."""
    if task == "regression":
        return metric
    return "log_loss" if metric in ev.THRESHOLD_METRICS else metric


def select_model(
    search: SearchOutcome,
    data: Prepared,
    spec: AutoMLSpec,
    metric: str,
    clock: Clock,
    costs: CostModel,
    log: Callable[[str], None],
) -> Selection:
    """Score candidates while their refits still fit in the time left; pick the ensemble."""
    cand_scores: list[np.ndarray] = []
    kept: list[Config] = []
    split_members: list[Member] = []
    refit_s: list[float] = []
    configs = candidates(search, metric, spec.ensemble)
    metric_s = 0.0  # one evaluation of the selection metric on the validation rows
    for i, config in enumerate(configs):
        scoring = costs.validation_s(_trial_of(search, config))
        if i > 0:
            selecting = metric_s * (i + 1) * ENSEMBLE_ROUNDS
            need = scoring + costs.refit_s(scoring) + sum(refit_s) + selecting + costs.tail_s()
            if time.time() + need > clock.end:
                clock.trim(
                    "Ensemble",
                    f"{i} of {len(configs)} candidate models scored; the next would not be "
                    "scored, refit and saved in time",
                    log,
                )
                break
        t = time.time()
        reused = None
        if i == 0 and time.time() + scoring + costs.tail_s() > clock.end:
            reused = _search_scores(search, data, spec.task)
        if reused is not None:
            scores, member = reused
            clock.trim(
                "Validation",
                "the best model was scored as the search fitted it, with no time to fit it again",
                log,
            )
        else:
            done = search.first_splits.get(config_key(config))
            # The estimate is a guess (a trial FLAML cut short looks cheap): the folds also
            # stop at the promise.
            scores, member = validation_scores(
                search.automl, config, data, spec.task, done, clock.end - costs.tail_s()
            )
            t -= done[2] if done else 0.0  # the refit estimate counts the reused fit too
            if not complete(member):
                clock.trim(
                    "Validation",
                    f"{config[0]} stopped adding trees at the promise: scored (and served) with "
                    f"fewer than the {member.config.get('n_estimators')} its config asks for",
                    log,
                )
        cand_scores.append(scores)
        kept.append(config)
        split_members.append(member)
        refit_s.append(costs.refit_s(time.time() - t))
        if i == 0 and spec.ensemble:
            t = time.time()
            ev.metric_value(spec.task, data.y_val, scores, _selection_metric(spec.task, metric))
            metric_s = time.time() - t
    y_val = data.y_val
    if spec.ensemble and len(kept) > 1:
        select_until = clock.end - sum(refit_s) - costs.tail_s()
        counts = greedy_ensemble(
            spec.task, y_val, cand_scores, _selection_metric(spec.task, metric), select_until
        )
    else:
        counts = [1] + [0] * (len(kept) - 1)
    chosen = [(kept[i], c) for i, c in enumerate(counts) if c > 0]
    val_scores = sum(cand_scores[i] * c for i, c in enumerate(counts)) / sum(counts)

    threshold = None
    if data.is_clf and len(data.classes) == 2:
        threshold = (
            ev.best_accuracy_threshold(y_val, val_scores[:, 1]) if data.tune_threshold else 0.5
        )
    metrics = ev.compute_metrics(spec.task, y_val, val_scores, threshold)
    name = "VotingEnsemble" if len(chosen) > 1 else chosen[0][0][0]
    log(
        f"model: {name} ({', '.join(f'{n} x{c}' for (n, _), c in chosen)}), "
        f"validation {metric} = {metrics.get(metric):.4f}"
        + (f", threshold {threshold:.2f}" if threshold is not None else "")
    )
    used = [i for i, c in enumerate(counts) if c > 0]
    return Selection(
        chosen,
        val_scores,
        threshold,
        metrics,
        name,
        split_members=[split_members[i] for i in used],
        refit_s=[refit_s[i] for i in used],
    )
