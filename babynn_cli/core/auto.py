"""What babynn chooses when the user does not: the learning rate and the number of epochs.

- The rate (`--lr` not given, or `auto`). Full-batch gradient descent on the affine model has a
  best constant rate, and theory names it: η* = 2/(λmax + λmin) of H = (2/N) X̃ᵀX̃ (`core.theory`),
  printed and used to four significant digits, rounded down. For minibatches and networks no such
  formula holds, so a short sweep picks it: PROBE_RATES rates, evenly spaced in log from 1/1000 of
  a ceiling to the ceiling (the affine model's full-batch bound 2/λmax, or 1 for a network on
  standardised features), each trained a few epochs from the same start (`probe_epochs`), read as
  `sweep-lr` reads its grid: of the rates below the smallest that failed, those within --gap-tol of
  the lowest loss, the one that got there in the fewest epochs.
- The epochs (`--epochs` not given). A full-batch run of the affine model goes on until it has
  converged, (L − L*)/L* ≤ --gap-tol: theory predicts exactly how many epochs a constant rate
  needs from the initial weights, and the run may take up to HEADROOM times that (at least
  DEFAULT_EPOCHS, at most MAX_EPOCHS: a full-batch epoch costs O(m²n), so even the most is
  seconds). Other runs, which theory cannot time, keep DEFAULT_EPOCHS. When even MAX_EPOCHS would
  not do, `IllConditioned` says why before training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from babynn_cli.core.choices import DEFAULT_EPOCHS, DEFAULT_TOL, MAX_EPOCHS
from babynn_cli.core.history import EpochInfo
from babynn_cli.core.problem import Problem
from babynn_cli.core.schedules import ScheduleSpec
from babynn_cli.core.train import TrainSettings
from babynn_cli.core.vocabulary import Params

HEADROOM = 10  # a run until convergence may take this many times the epochs theory predicts
PROBE_RATES = 7
PROBE_UPDATES = 1000  # a probe runs about this many updates a rate ...
PROBE_SHARE = 20  # ... but no more than 1/20 of the run's epochs


class NoRateFound(Exception):
    """Every rate the short sweep tried failed: babynn found no rate to offer."""


@dataclass(frozen=True)
class Probe:
    """The short sweep that picked a rate."""

    rates: tuple[float, ...]
    epochs: int


@dataclass(frozen=True)
class IllConditioned:
    """Why even MAX_EPOCHS will not bring the run to --gap-tol, and what would help."""

    condition_number: float
    standardized: bool
    pair: tuple[int, int] | None  # the two features most correlated ...
    correlation: float  # ... and their correlation


@dataclass(frozen=True)
class Plan:
    """The rate and epochs a run will use, and how they were chosen."""

    lr: float
    lr_rule: str  # "given", "theory" (η*) or "sweep" (the probe picked it)
    epochs: int  # the most epochs to run
    until_converged: bool  # the run stops once (L − L*)/L* ≤ --gap-tol (`settings.target_loss`)
    predicted: int | None  # theory's epochs at this rate (full batch, affine, constant rate)
    tol: float
    probe: Probe | None = None
    ill: IllConditioned | None = None

    def settings(
        self, problem: Problem, batch_size: int | None, patience: int, early_stopping: bool,
        gap_tol: float,
    ) -> TrainSettings:  # fmt: skip
        """The training settings this plan asks for."""
        target = None
        if self.until_converged:
            target = problem.converged_loss(gap_tol)
        return TrainSettings(self.epochs, batch_size, self.tol, patience, early_stopping, target)


def probes(problem: Problem, batch_size: int | None, lr: float | None) -> bool:
    """Whether choosing the rate takes a short sweep: none given, and no formula for it (a
    minibatch run, or a network)."""
    return lr is None and not (problem.affine and problem.full_batch(batch_size))


def theory_times(problem: Problem, batch_size: int | None, schedule: str) -> bool:
    """Whether theory can say how many epochs the run needs: the affine model at full batch with
    a constant rate."""
    return problem.affine and problem.full_batch(batch_size) and schedule == "constant"


def plan(
    problem: Problem,
    params: Params,
    *,
    lr: float | None,
    epochs: int | None,
    tol: float | None,
    batch_size: int | None,
    spec: ScheduleSpec,
    seed: int,
    gap_tol: float,
    patience: int,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> Plan:
    """The rate and epochs for a run: what was given, and for what was not, babynn's choice."""
    rule = "given"
    probe = None
    if probes(problem, batch_size, lr):
        budget = DEFAULT_EPOCHS if epochs is None else epochs
        lr, probe = probed_rate(
            problem, params, batch_size, spec, seed, gap_tol, patience, budget, on_epoch
        )
        rule = "sweep"
    elif lr is None:
        lr, rule = problem.curvature().suggested_lr, "theory"
    until = epochs is None and problem.affine and problem.full_batch(batch_size)
    until = until and spec.name != "cosine"  # cosine's shape needs the run's length: not open
    predicted = None
    ill = None
    if theory_times(problem, batch_size, spec.name):
        curvature = problem.curvature()
        target = problem.gap_target(gap_tol)
        predicted = curvature.epochs_to_reach(problem.error(params), lr, target, MAX_EPOCHS)
        if until and (
            curvature.epochs_to_reach(problem.error(params), curvature.best_lr, target, MAX_EPOCHS)
            is None
        ):  # not even the fastest rate gets there within the cap: say why before training
            ill = ill_conditioned(problem)
    if epochs is None:
        epochs = DEFAULT_EPOCHS
        if until:
            epochs = MAX_EPOCHS
            if predicted is not None:
                epochs = min(MAX_EPOCHS, max(DEFAULT_EPOCHS, HEADROOM * predicted))
    if tol is None:
        tol = 0.0 if until and spec.name == "constant" else DEFAULT_TOL
    return Plan(lr, rule, epochs, until, predicted, tol, probe, ill)


def probe_epochs(problem: Problem, batch_size: int | None, budget: int) -> int:
    """Epochs a probed rate trains: about PROBE_UPDATES updates, at most 1/PROBE_SHARE of the
    run's `budget` of epochs, at least one."""
    from babynn_cli.core.problem import updates_per_epoch

    per_epoch = updates_per_epoch(problem.n_train, batch_size)
    return max(1, min(budget // PROBE_SHARE, math.ceil(PROBE_UPDATES / per_epoch)))


def probed_rate(
    problem: Problem,
    params: Params,
    batch_size: int | None,
    spec: ScheduleSpec,
    seed: int,
    gap_tol: float,
    patience: int,
    budget: int,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> tuple[float, Probe]:
    """The rate a short sweep picks (see the module's docstring); NoRateFound when every probed
    rate failed."""
    from babynn_cli.core.sweep import sweep

    ceiling = problem.curvature().stable_lr if problem.affine else 1.0
    rates = tuple(float(r) for r in np.geomspace(ceiling / 1000, ceiling, PROBE_RATES))
    epochs = probe_epochs(problem, batch_size, budget)
    settings = TrainSettings(epochs, batch_size, 0.0, patience, False)
    found = sweep(problem, params, rates, spec, settings, seed, gap_tol, on_epoch)
    if found.suggested_lr is None:
        raise NoRateFound(
            f"every rate --lr auto tried ({_span(rates)}, {epochs} epoch(s) each) failed: "
            "pass a smaller --lr"
        )
    return found.suggested_lr, Probe(rates, epochs)


def ill_conditioned(problem: Problem) -> IllConditioned:
    """Why the data needs so many epochs: its κ, and the pair of features whose correlation is
    nearest ±1 (a feature that is nearly a combination of others)."""
    curvature = problem.curvature()
    xx = problem.train.unscaled_moments.xx
    sd = np.sqrt(np.diag(xx))
    pair, correlation = None, 0.0
    if len(sd) >= 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = xx / np.outer(sd, sd)
        corr = np.where(np.isfinite(corr), corr, 0.0)
        np.fill_diagonal(corr, 0.0)
        i, j = np.unravel_index(int(np.argmax(np.abs(corr))), corr.shape)
        pair, correlation = (int(min(i, j)), int(max(i, j))), float(corr[i, j])
    return IllConditioned(curvature.condition_number, problem.standardized, pair, correlation)


def _span(rates: tuple[float, ...]) -> str:
    return f"{len(rates)} rates from {rates[0]:.3g} to {rates[-1]:.3g}"
