"""A learning-rate sweep: K rates trained at once, read against what theory predicts.

For the affine model with squared loss at full batch, theory gives the answer: a constant rate
converges exactly when η < 2/λmax(H), H = (2/N) X̃ᵀX̃, fastest at η* = 2/(λmax + λmin). The sweep
runs the experiment (every rate from the same initial weights and shuffling) and puts the two side
by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from babynn_cli.core.fit import train_problem
from babynn_cli.core.problem import Problem
from babynn_cli.core.schedules import ScheduleSpec
from babynn_cli.core.theory import Curvature
from babynn_cli.core.train import EpochInfo, StopReason, TrainResult, TrainSettings
from babynn_cli.core.vocabulary import Params

CONVERGED, STALLED, FALLING, DIVERGED, INTERRUPTED = (
    "converged",  # within gap_tol of the optimum L*
    "stalled",  # the --tol rule stopped it short of that
    "still falling",  # it ran every epoch, short of that
    "diverged",
    "interrupted",
)


def status_of(reason: StopReason, at_optimum: bool | None) -> str:
    """A run's status, from why it stopped and whether its loss is within gap_tol of L*.

    at_optimum None: there is no optimum to measure against (a network), so a run the --tol rule
    stopped has converged.
    """
    if reason is StopReason.DIVERGED:
        return DIVERGED
    if at_optimum or (at_optimum is None and reason is StopReason.CONVERGED):
        return CONVERGED
    if reason is StopReason.INTERRUPTED:
        return INTERRUPTED
    return FALLING if reason is StopReason.MAX_EPOCHS else STALLED


def lr_grid(lr_min: float, lr_max: float, num: int) -> np.ndarray:
    """`num` rates spaced evenly on a log scale from lr_min to lr_max."""
    return np.geomspace(lr_min, lr_max, num)


@dataclass(frozen=True)
class SweepRow:
    lr: float
    final_loss: float  # training loss at the end of the run (at the last finite epoch if diverged)
    final_val_loss: float | None
    final_monitored: float  # the final loss the statuses and the suggestion read
    best_loss: float  # the lowest monitored loss of the run
    reached_epoch: int | None  # first epoch within gap_tol of the sweep's best loss
    status: str  # converged (to L*) / stalled / still falling / diverged / interrupted
    stopped_epoch: int  # the epoch the run stopped at (diverged at, for a diverged run)
    from_theory: bool = False  # the rate 2/(λmax + λmin), added by the sweep itself


@dataclass(frozen=True)
class Theory:
    """What theory says of constant-rate full-batch gradient descent on this problem."""

    curvature: Curvature  # λmax, λmin, 2/λmax, η* = 2/(λmax + λmin)
    optimum_loss: float  # L*, the least-squares training loss
    initial_loss: float  # L at the initial weights (nan for a network)
    predicted_epochs: int | None  # epochs η* needs to bring (L - L*)/L* below gap_tol


@dataclass(frozen=True)
class Sweep:
    rows: tuple[SweepRow, ...]  # by rate, ascending
    theory: Theory
    monitor: str  # "training" or "validation": the loss the statuses and suggestion read
    best_loss: float  # the lowest final monitored loss among runs that did not diverge
    suggested: int | None  # index into rows
    edge: tuple[float | None, float | None]  # (largest rate below it, smallest that diverged)
    full_batch: bool
    affine: bool  # the theory is the affine model's: for a network it is only a reference
    result: TrainResult
    # the first epoch the η* run's (L - L*)/L* fell to gap_tol: theory's prediction, measured
    measured_epochs: int | None = None

    @property
    def suggested_lr(self) -> float | None:
        return None if self.suggested is None else self.rows[self.suggested].lr


def theory(problem: Problem, params: Params, gap_tol: float) -> Theory:
    """The curvature of H and the epochs η* = 2/(λmax + λmin) needs, predicted exactly from the
    initial weights (see `core.theory`). For a network, the affine model's λs, bound and L* are
    given for reference, and no epochs are predicted (its start is no affine model's)."""
    curvature = problem.curvature()
    optimum_loss = problem.optimum_loss
    if not problem.affine:
        return Theory(curvature, optimum_loss, math.nan, None)
    error = problem.error(params)
    initial = optimum_loss + curvature.excess_loss(error)
    target = gap_tol * optimum_loss if optimum_loss > 0 else gap_tol * initial
    predicted = curvature.epochs_to_reach(error, curvature.best_lr, target)
    return Theory(curvature, optimum_loss, initial, predicted)


def sweep(
    problem: Problem,
    params: Params,
    lrs: Sequence[float],
    spec: ScheduleSpec,
    settings: TrainSettings,
    seed: int,
    gap_tol: float = 1e-6,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> Sweep:
    """Train one run per rate (and at 2/(λmax + λmin) when that is meaningful) and read them.

    The suggestion: among the rates below the smallest rate that diverged, those whose final
    loss is within gap_tol of the lowest final loss; of them, the one that got there in the
    fewest epochs (the smaller rate on a tie).
    """
    full_batch = settings.batch_size is None or settings.batch_size >= problem.n_train
    th = theory(problem, params, gap_tol)
    rates = sorted({float(lr) for lr in lrs})
    theory_lr = None
    if problem.affine and full_batch and spec.name == "constant" and not settings.early_stopping:
        theory_lr = th.curvature.best_lr
        rates = sorted({*rates, theory_lr})
    result = train_problem(problem, params, [spec.at(lr) for lr in rates], settings, seed, on_epoch)
    h = result.history
    use_val = h.val_loss is not None
    monitored = h.val_loss if use_val else h.train_loss
    assert monitored is not None

    diverged = [r.stop_reason is StopReason.DIVERGED for r in result.runs]

    def last_epoch(k: int) -> int:
        """The epoch whose weights run k kept."""
        run = result.runs[k]
        if diverged[k]:
            return run.epochs_run - 1
        return run.best_epoch if run.best_epoch is not None else run.epochs_run

    finals = [float(monitored[last_epoch(k), k]) for k in range(len(rates))]
    finals_arr = np.array(finals)
    alive = ~np.array(diverged)
    best_loss = float(finals_arr[alive].min()) if alive.any() else math.inf
    within = best_loss + gap_tol * abs(best_loss)

    rows = []
    for k, run in enumerate(result.runs):
        column = monitored[:, k]
        close = np.flatnonzero(column <= within) if alive[k] else np.array([], dtype=int)
        reached = int(h.epoch[close[0]]) if close.size else None
        last = last_epoch(k)
        at_optimum = None
        if problem.affine:
            at_optimum = bool(h.train_loss[last, k] <= th.optimum_loss * (1 + gap_tol))
        status = status_of(run.stop_reason, at_optimum)
        rows.append(
            SweepRow(
                lr=rates[k],
                final_loss=float(h.train_loss[last, k]),
                final_val_loss=float(h.val_loss[last, k]) if h.val_loss is not None else None,
                final_monitored=finals[k],
                best_loss=float(np.nanmin(column[: last + 1])),
                reached_epoch=reached,
                status=status,
                stopped_epoch=run.epochs_run,
                from_theory=rates[k] == theory_lr,
            )
        )

    first_diverged = next((rates[k] for k in range(len(rates)) if diverged[k]), None)
    below = [k for k in range(len(rates)) if first_diverged is None or rates[k] < first_diverged]
    below_alive = [k for k in below if alive[k]]
    edge = (rates[below_alive[-1]] if below_alive else None, first_diverged)
    suggested = None
    candidates = [
        k for k in below_alive if finals[k] <= within and rows[k].reached_epoch is not None
    ]
    if candidates:
        suggested = min(candidates, key=lambda k: (rows[k].reached_epoch, rates[k]))
    measured = None
    if theory_lr is not None:
        k = rates.index(theory_lr)
        target = th.optimum_loss + gap_tol * (th.optimum_loss or th.initial_loss)
        hits = np.flatnonzero(h.train_loss[:, k] <= target)
        measured = int(h.epoch[hits[0]]) if hits.size else None
    return Sweep(
        measured_epochs=measured,
        rows=tuple(rows),
        theory=th,
        monitor="validation" if use_val else "training",
        best_loss=best_loss,
        suggested=suggested,
        edge=edge,
        full_batch=full_batch,
        affine=problem.affine,
        result=result,
    )
