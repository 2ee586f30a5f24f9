"""A learning-rate sweep: K rates trained at once, read against what theory predicts.

For the affine model with squared loss at full batch, theory gives the answer: a constant rate
converges exactly when η < 2/λmax(H), H = (2/N) X̃ᵀX̃, fastest at η* = 2/(λmax + λmin). The sweep
runs the experiment (every rate from the same initial weights and shuffling) and puts the two side
by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from babynn_cli.core.choices import STEADY_RISE
from babynn_cli.core.fitted import train_problem
from babynn_cli.core.history import EpochInfo
from babynn_cli.core.optimizers import GD, OptimizerSpec
from babynn_cli.core.problem import Problem
from babynn_cli.core.schedules import ScheduleSpec
from babynn_cli.core.stopping import ROUNDING, StopReason
from babynn_cli.core.theory import Curvature
from babynn_cli.core.train import TrainResult, TrainSettings
from babynn_cli.core.verdict import Judgement, Trend, Verdict, judge
from babynn_cli.core.vocabulary import Params, unstack


def lr_grid(lr_min: float, lr_max: float, num: int) -> np.ndarray:
    """`num` rates spaced evenly on a log scale from lr_min to lr_max."""
    return np.geomspace(lr_min, lr_max, num)


@dataclass(frozen=True)
class SweepRow:
    lr: float
    final_loss: float  # training loss at the end of the run (at the last finite epoch if diverged)
    final_val_loss: float | None
    final_monitored: float  # the final loss the suggestion reads
    best_loss: float  # the lowest monitored loss of the run
    reached_epoch: int | None  # first epoch within gap_tol of the sweep's best loss
    verdict: Verdict  # as `babynn fit` at this rate would judge the run
    stop_reason: StopReason
    # affine model: the first epoch within gap_tol of L*, measured and (full batch, constant
    # rate, below 2/λmax) predicted by theory from the initial weights
    epochs_to_optimum: int | None
    stopped_epoch: int  # the epoch the run stopped at (diverged at, for a diverged run)
    final_epoch: int  # the epoch of the final losses: the weights kept (before it diverged)
    from_theory: bool = False  # the rate 2/(λmax + λmin), added by the sweep itself
    predicted_epochs: int | None = None
    # how far the training loss rose above its best so far, at its highest (relative): 0 for a
    # curve that only fell (it is the training loss that blows up past the divergence edge)
    rise: float = 0.0
    accuracy: float | None = None  # classes: the share of training rows classified right

    @property
    def steady(self) -> bool:
        """Its loss never rose more than STEADY_RISE above its best so far."""
        return self.rise <= STEADY_RISE


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
    monitor: str  # "training" or "validation": the loss the suggestion reads
    best_loss: float  # the lowest final monitored loss the suggestion reads (`suggest`)
    suggested: int | None  # index into rows
    edge: tuple[float | None, float | None]  # (largest rate below it, smallest that diverged)
    full_batch: bool
    affine: bool  # the theory is the affine model's: for a network it is only a reference
    result: TrainResult
    # the first epoch the η* run's (L - L*)/L* fell to gap_tol: theory's prediction, measured
    measured_epochs: int | None = None
    separable: bool = False  # classes a hyperplane separates: no optimum, the bound alone
    optimizer: OptimizerSpec = GD  # the rule every rate trained by

    @property
    def suggested_lr(self) -> float | None:
        return None if self.suggested is None else self.rows[self.suggested].lr


def theory(problem: Problem, params: Params, gap_tol: float) -> Theory:
    """The curvature of H and the epochs η* = 2/(λmax + λmin) needs, predicted exactly from the
    initial weights (see `core.theory`). For a network, the affine model's λs, bound and L* are
    given for reference, and no epochs are predicted (its start is no affine model's)."""
    curvature = problem.curvature()
    # (no L* where none is known: separable classes, or too many weights for Newton's method)
    optimum_loss = problem.optimum_loss if problem.reference_exists else math.nan
    if not problem.has_optimum:
        return Theory(curvature, optimum_loss, math.nan, None)
    error = problem.error(params)
    initial = optimum_loss + curvature.excess_loss(error)
    target = problem.gap_target(gap_tol)
    predicted = curvature.epochs_to_reach(error, curvature.fastest_safe_lr, target)
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

    The suggestion: among the rates below the smallest rate that failed (diverged or unstable),
    those whose final loss is within gap_tol of the lowest final loss; of them, the one that got
    there in the fewest epochs (the smaller rate on a tie).
    """
    full_batch = problem.full_batch(settings.batch_size)
    th = theory(problem, params, gap_tol)
    if problem.has_optimum:  # the epoch each run comes within gap_tol of L*, noted exactly
        settings = replace(settings, watch_loss=problem.converged_loss(gap_tol))
    rates = sorted({float(lr) for lr in lrs})
    theory_lr = None
    constant = spec.name == "constant"
    rule = settings.optimizer
    if problem.has_optimum and full_batch and constant and not settings.early_stopping:
        if rule.plain:
            theory_lr = th.curvature.fastest_safe_lr
        elif rule.heavy and th.curvature.exact:  # theory's rate beside this β
            theory_lr = th.curvature.momentum_rate(rule.beta, rule.name == "nesterov")
        if theory_lr is not None:
            rates = sorted({*rates, theory_lr})
    result = train_problem(problem, params, [spec.at(lr) for lr in rates], settings, seed, on_epoch)
    predict = problem.has_optimum and full_batch and spec.name == "constant"
    predict = predict and (rule.plain or rule.heavy)  # Adam has no exact theory
    rows = _rows(problem, params if predict else None, result, rates, theory_lr, gap_tol, rule)
    pool = _pool(rows, not rule.heavy)
    best_loss = min((rows[k].final_monitored for k in pool), default=math.inf)
    rows = _reached(rows, result, best_loss + gap_tol * abs(best_loss))
    first_failed = next((row.lr for row in rows if row.verdict.failed), None)
    below_alive = [k for k, row in enumerate(rows) if not row.verdict.failed]
    below_alive = [k for k in below_alive if first_failed is None or rows[k].lr < first_failed]
    edge = (rows[below_alive[-1]].lr if below_alive else None, first_failed)
    suggested = suggest(rows, gap_tol, not rule.heavy)
    measured = None
    if theory_lr is not None:
        k = rates.index(theory_lr)
        measured = _reached_optimum(result, k)
    return Sweep(
        rows=tuple(rows),
        theory=th,
        monitor="validation" if result.history.val_loss is not None else "training",
        best_loss=best_loss,
        suggested=suggested,
        edge=edge,
        full_batch=full_batch,
        affine=problem.has_optimum,
        result=result,
        measured_epochs=measured,
        separable=problem.separable,
        optimizer=rule,
    )


def suggest(rows: Sequence[SweepRow], gap_tol: float, steady_first: bool = True) -> int | None:
    """The one rule that picks a rate, for `sweep-lr`'s suggestion and `fit --lr auto` alike:
    SUGGESTION_RULE, over rows sorted by rate whose `reached_epoch` counts from their pool's best
    (as `sweep` notes it). None when every rate failed. `steady_first`: see `_pool`."""
    pool = _pool(rows, steady_first)
    if not pool:
        return None
    best = min(rows[k].final_monitored for k in pool)
    close = [k for k in pool if rows[k].final_monitored <= best + gap_tol * abs(best)]
    return min(close, key=lambda k: (_epochs_or_inf(rows[k].reached_epoch), rows[k].lr))


def _pool(rows: Sequence[SweepRow], steady_first: bool = True) -> list[int]:
    """The rates the suggestion chooses from: below the smallest that failed, the steady ones,
    or all of them when none is steady (or with momentum, whose loss rises at stable rates
    while its velocity overshoots: `steady_first` False)."""
    first_failed = next((row.lr for row in rows if row.verdict.failed), None)
    below = [
        k
        for k, row in enumerate(rows)
        if not row.verdict.failed and (first_failed is None or row.lr < first_failed)
    ]
    if not steady_first:
        return below
    return [k for k in below if rows[k].steady] or below


def _epochs_or_inf(epoch: int | None) -> float:
    return math.inf if epoch is None else epoch


def _rows(
    problem: Problem,
    initial: Params | None,
    result: TrainResult,
    rates: list[float],
    theory_lr: float | None,
    gap_tol: float,
    rule: OptimizerSpec = GD,
) -> list[SweepRow]:
    """A row per rate: its final losses, its verdict (read as `fit` reads it), and for the affine
    model the epochs it took to come within gap_tol of L*; with `initial` weights given (full
    batch, constant rate), also the epochs theory predicts for it."""
    h = result.history
    monitored = h.val_loss if h.val_loss is not None else h.train_loss
    optimum = problem.optimum_loss if problem.has_optimum else None
    scale = problem.gap_scale if problem.has_optimum else None
    curvature = problem.curvature()
    target = problem.gap_target(gap_tol) if problem.has_optimum else 0.0
    spread = problem.spread

    def trend(k: int) -> Trend | None:
        return result.trend(k, spread)

    rows = []
    for k, end in enumerate(result.runs):
        last = end.weights_epoch
        measured = predicted = None
        if optimum is not None:
            measured = _reached_optimum(result, k)
        horizon = max(100 * int(h.epoch[-1]), 10_000)  # past that, off any plot
        if initial is not None and rule.heavy:
            nesterov = rule.name == "nesterov"
            predicted = curvature.momentum_epochs_to_reach(
                problem.error(initial), rates[k], rule.beta, target, horizon, nesterov
            )
        elif initial is not None and rates[k] < curvature.stable_lr:
            error = problem.error(initial)
            predicted = curvature.epochs_to_reach(error, rates[k], target, horizon)
        rows.append(
            SweepRow(
                lr=rates[k],
                final_loss=float(h.train_loss[h.row(last), k]),
                final_val_loss=None if h.val_loss is None else float(h.val_loss[h.row(last), k]),
                final_monitored=float(monitored[h.row(last), k]),
                best_loss=float(np.nanmin(monitored[: h.row(last) + 1, k])),
                reached_epoch=None,
                verdict=_judged(
                    judge(h.train_loss[:, k], end, optimum, gap_tol, scale, h.epoch, trend(k)),
                    problem.separable,
                ),
                stop_reason=end.stop_reason,
                epochs_to_optimum=measured,
                stopped_epoch=end.epochs_run,
                final_epoch=last,
                from_theory=rates[k] == theory_lr,
                predicted_epochs=predicted,
                rise=_rise(h.train_loss[: h.row(end.epochs_run) + 1, k]),
                accuracy=_accuracy(problem, result, k) if problem.classifies else None,
            )
        )
    return rows


def _judged(judgement: Judgement, separable: bool) -> Verdict:
    """The verdict, as `Fitted.of` reads it: separable classes have no optimum to settle at."""
    return (judgement.without_minimum() if separable else judgement).verdict


def _accuracy(problem: Problem, result: TrainResult, k: int) -> float | None:
    """Run k's accuracy on the training rows, with its final weights (none if they are not
    finite: a diverged run)."""
    from babynn_cli.core.fitted import evaluate

    params = unstack(result.params, k)
    if not all(np.isfinite(v).all() for v in params.values()):
        return None
    return evaluate(problem, params, problem.train)[2]


def _rise(losses: np.ndarray) -> float:
    """How far a loss curve rose above its best so far, at its highest, relative to that best
    (0 when it only fell; inf when it became non-finite). Wiggles of rounding near a loss of 0
    (an exact fit) are not rises."""
    if not np.isfinite(losses).all():
        return math.inf
    best = np.minimum.accumulate(losses)
    floor = ROUNDING * max(float(losses[0]), float(np.finfo(float).tiny))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(best > floor, losses / best - 1.0, 0.0)
    return float(max(ratio.max(initial=0.0), 0.0))


def _reached_optimum(result: TrainResult, k: int) -> int | None:
    """The first epoch run k came within gap_tol of L* (noted in training, exactly)."""
    reached = result.history.reached
    epoch = None if reached is None else reached[k]
    return epoch if epoch is not None and epoch <= result.runs[k].epochs_run else None


def _reached(rows: list[SweepRow], result: TrainResult, within: float) -> list[SweepRow]:
    """Each run that did not fail, with the first epoch its loss came within reach of the best."""
    h = result.history
    monitored = h.val_loss if h.val_loss is not None else h.train_loss
    out = []
    for k, row in enumerate(rows):
        close = np.flatnonzero(monitored[:, k] <= within)
        reached = int(h.epoch[close[0]]) if close.size and not row.verdict.failed else None
        out.append(replace(row, reached_epoch=reached))
    return out
