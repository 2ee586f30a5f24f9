"""What happened in a run, judged from its loss curve: the verdict, apart from why it stopped.

Why a run stopped (`StopReason`: the epochs ran out, the --tol rule, early stopping, Ctrl-C, the
divergence rule) says nothing of where it got to. The verdict does, in one vocabulary for fit,
sweep-lr and compare, read from the training loss: L0 at the start, Lbest the lowest of the run,
Lend at its last epoch, and for the affine model the least-squares optimum L*:

- diverged: the divergence rule stopped it (see `core.train`), or Lend > L0: it ended above where
  it started (in floating point, however little: a run at exactly η = 2/λ flips its error's sign
  every epoch and may end an ulp above its start).
- unstable: Lend > UNSTABLE_FACTOR·Lbest: the loss blew up well above its best and did not come
  back.
- converged: the affine model: (Lend − L*)/L* ≤ gap_tol. A network (no L* to reach): the plateau
  rule stopped it (the --tol rule on the training loss, or early stopping on the validation loss):
  its monitored loss made no new best by more than --tol for the rule's patience — it has settled.
- still falling: not there yet, and still going down: Lend is the lowest loss of the run; for a
  rough run (minibatches, networks: the loss also rises by chance), its monitored loss made a new
  best within the plateau rule's last window of epochs (`Trend`).
- plateau: not there, and no longer falling: the loss wanders above its best, or a rough run's
  plateau rule stopped it short of L*. Stochastic descent at a constant rate settles at such a
  noise floor around the optimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from babynn_cli.core.choices import VERDICTS
from babynn_cli.core.history import History
from babynn_cli.core.optimizers import GD, OptimizerSpec
from babynn_cli.core.problem import Problem
from babynn_cli.core.stopping import RunEnd, StopReason
from babynn_cli.core.theory import FAR
from babynn_cli.core.vocabulary import Params

UNSTABLE_FACTOR = 10.0


class Verdict(StrEnum):
    CONVERGED = "converged"
    STILL_FALLING = "still falling"
    PLATEAU = "plateau"
    UNSTABLE = "unstable"
    DIVERGED = "diverged"

    @property
    def failed(self) -> bool:
        """The rate was too large: the run's weights are not worth keeping."""
        return self in (Verdict.UNSTABLE, Verdict.DIVERGED)


assert [v.value for v in Verdict] == [name for name, _ in VERDICTS]


@dataclass(frozen=True)
class Trend:
    """What tells a rough run (minibatches, a network) still falling from settled, when no L* says
    it: its monitored loss (the validation loss when it stopped on it, else the training loss)
    made a new best, by more than `tol` (relative), within its last `window` epochs. A noisy curve
    is rarely at its lowest at its last epoch, so the last epoch alone cannot tell."""

    monitored: np.ndarray  # at the history's epochs
    window: int
    tol: float
    scale: float | None = None  # what tol is a fraction of (None: the best loss so far)

    def falling(self, epochs: np.ndarray, last: int) -> bool:
        """Whether a new best came within the last `window` epochs up to `last`."""
        upto = epochs <= last
        M = np.where(np.isfinite(self.monitored), self.monitored, np.inf)[upto]
        recent = epochs[upto] > last - self.window
        if recent.all() or not recent.any():
            return True  # the run is shorter than the window: too soon to call it settled
        before, lately = M[~recent].min(), M[recent].min()
        scale = abs(before) if self.scale is None else self.scale
        return bool(lately < before - self.tol * scale)


@dataclass(frozen=True)
class Judgement:
    """A run's verdict and the numbers it was read from (training losses)."""

    verdict: Verdict
    initial_loss: float  # L0
    best_loss: float  # Lbest
    best_epoch: int
    final_loss: float  # Lend: at the epoch of the weights kept (the diverged epoch, if diverged)
    final_epoch: int
    optimum_loss: float | None  # L* (None for a network)
    gap_scale: float | None = None  # what the gap is measured against (`Problem.gap_scale`)
    # separable classes: the loss has no minimum, so a run that settled is still falling
    no_minimum: bool = False

    def without_minimum(self) -> Judgement:
        """The judgement of a run whose loss has no minimum (separable classes): one that
        settled (converged, or a plateau by the rule) is still falling, slower and slower, as it
        always will."""
        if self.verdict in (Verdict.CONVERGED, Verdict.PLATEAU):
            return replace(self, verdict=Verdict.STILL_FALLING, no_minimum=True)
        return replace(self, no_minimum=True)

    @property
    def relative_gap(self) -> float | None:
        """(Lend − L*)/L* (see `relative_gap`); None for a network."""
        if self.optimum_loss is None:
            return None
        return relative_gap(self.final_loss, self.optimum_loss, self.gap_scale)


def relative_gap(loss: float, optimum: float, scale: float | None = None) -> float:
    """(L − L*)/scale: scale is L* (the default), or, when L* is 0 to rounding (an exact fit), the
    targets' variance, or 1 (see `Problem.gap_scale`)."""
    if scale is None:
        scale = optimum if optimum > 0 else 1.0
    return (loss - optimum) / scale


def judge(
    losses: np.ndarray,
    end: RunEnd,
    optimum_loss: float | None,
    gap_tol: float,
    gap_scale: float | None = None,
    epochs: np.ndarray | None = None,
    trend: Trend | None = None,
) -> Judgement:
    """The verdict of one run from its training losses at `epochs` (None: every epoch, epoch 0
    first; a long run's history keeps some, always the first, the best, the last and the one
    whose weights were kept; nan after it stopped), why it stopped, L* (None for a network),
    what gaps are measured against (`Problem.gap_scale`; None: L*) and, for a rough run, how to
    tell it still falling (`trend`; None: an exact run, falling while its last loss is its
    lowest)."""
    curve = np.asarray(losses, dtype=float)
    at = np.arange(len(curve)) if epochs is None else np.asarray(epochs)
    last = end.epochs_run if end.stop_reason is StopReason.DIVERGED else end.weights_epoch
    ran = curve[: int(np.searchsorted(at, last)) + 1]
    L0, Lend = float(ran[0]), float(ran[-1])
    finite = np.where(np.isfinite(ran), ran, np.inf)
    best_row = int(np.argmin(finite))
    best_epoch = int(at[best_row])
    Lbest = float(finite[best_row])

    def verdict() -> Verdict:
        if end.stop_reason is StopReason.DIVERGED or not math.isfinite(Lend) or Lend > L0:
            return Verdict.DIVERGED
        if Lend > UNSTABLE_FACTOR * Lbest:
            return Verdict.UNSTABLE
        settled = end.stop_reason in (StopReason.TOL, StopReason.EARLY_STOPPING)
        if optimum_loss is not None:
            if relative_gap(Lend, optimum_loss, gap_scale) <= gap_tol:
                return Verdict.CONVERGED
            if settled and trend is not None:  # a rough run's plateau rule: short of L*
                return Verdict.PLATEAU
        elif settled:
            return Verdict.CONVERGED
        falling = trend.falling(at, end.epochs_run) if trend is not None else Lend <= Lbest
        return Verdict.STILL_FALLING if falling else Verdict.PLATEAU

    return Judgement(verdict(), L0, Lbest, best_epoch, Lend, last, optimum_loss, gap_scale)


@dataclass(frozen=True)
class Advice:
    """Numbers for the next step after a run that did not converge (affine model; None where
    theory has nothing to say: networks, minibatches, rates past the bound)."""

    more_epochs: int | None  # epochs more at the run's last rate, at full batch, to reach gap_tol
    best_lr: float | None  # η* = 2/(λmax + λmin), rounded down to 4 digits as printed
    best_lr_epochs: int | None  # epochs η* needs from the run's initial weights


def advise(
    problem: Problem,
    initial: Params,
    final: Params,
    history: History,
    batch_size: int | None,
    gap_tol: float,
    verdict: Verdict,
    optimizer: OptimizerSpec = GD,
) -> Advice:
    """What theory predicts for a run that is still falling: from its final weights, how many
    more full-batch epochs its last rate needs; from its initial weights, how many η* needs (both
    in the standardised units they trained in; `history`: the run's). Predictions are exact for
    the affine model at full batch (see `core.theory`). Other verdicts need no numbers, nor runs
    by another rule than the notes' (momentum's velocity is not saved: no carrying on exactly)."""
    last_lr = float(history.lr[-1, 0]) if len(history.epoch) > 1 else 0.0
    if not problem.has_optimum or verdict is not Verdict.STILL_FALLING or not optimizer.plain:
        return Advice(None, None, None)
    curvature = problem.curvature()
    target = problem.gap_target(gap_tol)
    best = curvature.suggested_lr  # η* as babynn prints it: the rate a user types
    best_epochs = curvature.epochs_to_reach(problem.error(initial), best, target, FAR)
    more = None
    if problem.full_batch(batch_size) and 0 < last_lr < curvature.stable_lr:
        more = curvature.epochs_to_reach(problem.error(final), last_lr, target, FAR)
    return Advice(more, best, best_epochs)
