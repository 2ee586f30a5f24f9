"""The stopping rules: when one of the K runs stops, and why (`StopReason`), read over a block of
epochs at once.

A run stops when it diverges (the divergence rule below), when its monitored loss stops improving
(the --tol rule, on validation loss with early stopping), or when its training loss reaches a goal
(`StopRules.target_loss`: the affine model within --gap-tol of L*). Why a run stopped says nothing
of where it got to: that is the verdict's (`core.verdict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from babynn_cli.core.history import Record
from babynn_cli.core.vocabulary import Params

# The divergence rule: a run stops as diverged at the first epoch whose training loss
# - is not finite, or grows past DIVERGENCE_FACTOR times the larger of the initial loss and the
#   loss of predicting the mean target ("far past where it started"); or
# - when the descent is exact (the affine model at full batch), rises by more than RISE relative in
#   each of `patience` epochs in a row: on a quadratic loss, full-batch gradient descent at a stable
#   rate never raises the loss beyond rounding, so a steady rise means the rate is past the bound,
#   however slowly the loss grows; or
# - otherwise (minibatches, networks: the loss also rises by chance), is above where it started and
#   more than BLOW_UP times the lowest loss of the run so far, dips in between or not; except with
#   momentum (heavy ball, Nesterov), whose loss at a stable rate may rise many times over before
#   it falls (its velocity overshoots: 10⁴-fold with Polyak's pair at κ = 3·10⁵): for it only a
#   loss that is not finite is divergence, and theory says beforehand which rates diverge.
DIVERGENCE_FACTOR = 1e4
RISE = 1e-9
# ... and by more than this much of the loss's scale (the larger of L0 and the spread of the
# target): smaller rises are rounding, for example around an optimum with L* = 0
ROUNDING = 1e-13
BLOW_UP = 10.0


class DivergenceRule(StrEnum):
    """Which part of the divergence rule fired."""

    NOT_FINITE = "not finite"
    FAR_ABOVE_START = "far above start"  # past DIVERGENCE_FACTOR × max(L0, spread)
    STEADY_RISE = "steady rise"  # exact descent: rose in each of `patience` epochs
    BLOW_UP = "blow-up"  # above the start and BLOW_UP × the lowest loss so far


class StopReason(StrEnum):
    MAX_EPOCHS = "max_epochs"
    TOL = "tol"  # the --tol rule: training loss stopped improving by more than tol
    EARLY_STOPPING = "early_stopping"  # validation loss stopped improving
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    GAP_TOL = "gap_tol"  # the training loss came within --gap-tol of L* (`target_loss`)


@dataclass(frozen=True)
class RunEnd:
    """How one of the K runs ended: why it stopped, and after how many epochs."""

    stop_reason: StopReason
    epochs_run: int
    best_epoch: int | None = None  # with early stopping: the epoch whose weights were kept
    diverged_epoch: int | None = None
    diverged_lr: float | None = None
    diverged_by: DivergenceRule | None = None

    @property
    def weights_epoch(self) -> int:
        """The epoch whose weights the run kept: the last before it diverged, the best with
        early stopping, the last otherwise."""
        if self.stop_reason is StopReason.DIVERGED:
            return self.epochs_run - 1
        return self.best_epoch if self.best_epoch is not None else self.epochs_run


@dataclass(frozen=True)
class StopRules:
    """What ends a run before its epochs run out, besides divergence: the monitored loss (validation
    loss with `early_stopping`, training loss otherwise) improving on its best by less than `tol`
    relative for `patience` epochs in a row, or `patience_share` of the epochs run when that is
    more (tol = 0 turns that off), or the training loss at or below `target_loss` (None: no
    goal)."""

    tol: float
    patience: int
    early_stopping: bool = False
    target_loss: float | None = None
    # ... or this share of the epochs run, when that is more: a run that has improved for 400
    # epochs waits 100 without a new best (its best comes further apart as it slows down)
    patience_share: float = 0.0
    # what `tol` is a fraction of: the best loss so far (False), or the targets' variance, the
    # loss of predicting their mean (True): an improvement of the loss by 1e-4 of the variance
    # raises R² by 1e-4, whatever the loss has come down to
    tol_of_spread: bool = False


@dataclass(frozen=True)
class Stops:
    """What the stopping rules found in one block: flags (B, K) and run lengths (B, K)."""

    diverges: np.ndarray
    far: np.ndarray  # past the ceiling
    converges: np.ndarray
    rises: np.ndarray
    stales: np.ndarray
    monitor: np.ndarray  # the monitored loss over the block (B, K)
    lowest: np.ndarray  # the lowest training loss up to each epoch (B, K)
    reason: StopReason  # what a stop on the tol rule is called
    exact: bool
    reached: np.ndarray  # the training loss at or below `target_loss` (B, K)

    def decide(self, k: int, first: int, record: Record) -> tuple[RunEnd | None, int]:
        """How run k ends in this block (None: it goes on), and how many of the block's epochs
        it keeps (its weights are those of the last one kept; 0: the block's start)."""
        last = first + len(self.diverges) - 1
        j_div, j_conv = _first(self.diverges[:, k]), _first(self.converges[:, k])
        j_goal = _first(self.reached[:, k])
        if j_goal is not None and (j_conv is None or j_goal <= j_conv):
            j_conv, reason = j_goal, StopReason.GAP_TOL
        else:
            reason = self.reason
        if j_div is not None and (j_conv is None or j_div <= j_conv):
            epoch = first + j_div
            record.end_run(k, epoch, last)  # the diverged epoch stays in the history
            lr = record.at("lr", epoch, k)
            loss = record.at("loss", epoch, k)
            if not np.isfinite(loss):
                rule = DivergenceRule.NOT_FINITE
            elif self.far[j_div, k]:
                rule = DivergenceRule.FAR_ABOVE_START
            else:
                rule = DivergenceRule.STEADY_RISE if self.exact else DivergenceRule.BLOW_UP
            end = RunEnd(StopReason.DIVERGED, epoch, None, epoch, lr, rule)
            return end, j_div
        if j_conv is not None:
            record.end_run(k, first + j_conv, last)
            return RunEnd(reason, first + j_conv), j_conv + 1
        return None, len(self.diverges)  # it goes on: every epoch of the block kept


@dataclass
class Rules:
    """The stopping rules and what they carry from block to block, per run."""

    rules: StopRules
    exact: bool
    ceiling: np.ndarray  # (K,) the loss past which a run has diverged
    floor: np.ndarray  # (K,) the smallest rise of the loss that is not rounding
    best_monitor: np.ndarray  # (K,) the best monitored loss so far
    stale: np.ndarray  # (K,) epochs in a row without improvement
    rising: np.ndarray  # (K,) epochs in a row with a rising loss
    lowest: np.ndarray  # (K,) the lowest training loss so far
    best_epoch: np.ndarray  # (K,) with early stopping: the epoch of the best validation loss
    best_params: Params  # with early stopping: the weights of that epoch
    spread: float  # the loss of predicting the mean target (what `tol_of_spread` measures by)
    blow_up: bool = True  # the BLOW_UP rule holds (not with momentum)

    @classmethod
    def start(
        cls,
        record: Record,
        spread: float,
        rules: StopRules,
        exact: bool,
        params: Params,
        blow_up: bool = True,
    ) -> Rules:
        """The rules' state at epoch 0; `spread`, the loss of predicting the mean target, sets
        with the initial loss the scale of rises that count (not rounding) and of divergence."""
        loss = record.start_loss
        scale = np.maximum(np.maximum(loss, spread), np.finfo(float).tiny)
        with np.errstate(over="ignore"):  # past double precision: no ceiling
            ceiling = DIVERGENCE_FACTOR * scale if blow_up else np.full_like(scale, np.inf)
        floor = ROUNDING * scale
        K = len(loss)
        monitor = record.rows("val" if rules.early_stopping else "loss", 0, 0)
        zeros = np.zeros(K, dtype=int)
        best = {name: value.copy() for name, value in params.items()}
        lowest = loss.copy()
        return cls(
            rules, exact, ceiling, floor, monitor[0].copy(), zeros, zeros.copy(), lowest,
            zeros.copy(), best, spread, blow_up,
        )  # fmt: skip

    def read(self, record: Record, first: int, last: int) -> Stops:
        """Divergence and the tol rule over epochs first..last, for every run at once."""
        s = self.rules
        L = record.rows("loss", first, last)  # (B, K)
        rose = record.rows("loss", first - 1, last - 1) * (1 + RISE) + self.floor < L
        rises = _run_lengths(rose, self.rising)
        M = record.rows("val" if s.early_stopping else "loss", first, last)
        best_before = np.fmin.accumulate(np.vstack([self.best_monitor, M]), axis=0)[:-1]
        lowest = np.fmin.accumulate(np.vstack([self.lowest, L]), axis=0)[1:]  # up to each epoch
        with np.errstate(invalid="ignore"):
            if self.exact:
                rule = rises >= s.patience
            elif self.blow_up:
                rule = (record.start_loss < L) & (BLOW_UP * lowest < L)
            else:
                rule = np.zeros_like(rose)
            far = self.ceiling < L
            diverges = ~np.isfinite(L) | far | rule
            # a loss within rounding of 0 has nothing left to gain (a constant target, an exact fit)
            scale = self.spread if s.tol_of_spread else np.abs(best_before)
            improved = (best_before - M > s.tol * scale) & (self.floor < M)
        stales = _run_lengths(~improved, self.stale)
        epochs = np.arange(first, last + 1)[:, None]
        patience = np.maximum(s.patience, np.ceil(s.patience_share * epochs))
        converges = stales >= patience if s.tol > 0 else np.zeros_like(improved)
        reason = StopReason.EARLY_STOPPING if s.early_stopping else StopReason.TOL
        reached = np.zeros_like(diverges)
        if s.target_loss is not None:
            with np.errstate(invalid="ignore"):
                reached = s.target_loss >= L
        return Stops(
            diverges, far, converges, rises, stales, M, lowest, reason, self.exact, reached
        )

    def apply(
        self,
        record: Record,
        first: int,
        snapshots: Sequence[Params],
        start: Params,
        running: np.ndarray,
        ends: list[RunEnd | None],
    ) -> tuple[Params, np.ndarray]:
        """Read the rules over the block that began at `first` from the weights `start`; fill
        `ends` for the runs that stop in it. Returns the weights each run keeps (a stopped run:
        those of its last epoch kept) and which runs stopped."""
        last = first + len(snapshots) - 1
        record.mask_stopped(first, last, running)
        stops = self.read(record, first, last)
        kept = {name: value.copy() for name, value in snapshots[-1].items()}
        stopped = np.zeros_like(running)
        for k in map(int, np.flatnonzero(running)):
            end, keep = stops.decide(k, first, record)
            if end is not None:
                ends[k], stopped[k] = end, True
                source = snapshots[keep - 1] if keep else start
                for name in kept:
                    kept[name][k] = source[name][k]
            self.carry(k, first, stops, keep, snapshots)
        return kept, stopped

    def carry(
        self, k: int, first: int, stops: Stops, valid: int, snapshots: Sequence[Params]
    ) -> None:
        """Carry run k's counts and best loss past the `valid` epochs it kept of this block."""
        if not valid:
            return
        M = stops.monitor
        j = int(np.argmin(M[:valid, k]))  # the first epoch at the block's lowest
        if self.rules.early_stopping and M[j, k] < self.best_monitor[k]:
            self.best_epoch[k] = first + j
            for name in self.best_params:
                self.best_params[name][k] = snapshots[j][name][k]
        self.best_monitor[k] = np.fmin(self.best_monitor[k], M[j, k])
        self.stale[k], self.rising[k] = stops.stales[valid - 1, k], stops.rises[valid - 1, k]
        self.lowest[k] = stops.lowest[valid - 1, k]

    def keep_best(self, params: Params, runs: list[RunEnd]) -> tuple[Params, list[RunEnd]]:
        """Early stopping: every run that did not diverge keeps its best epoch's weights."""
        for k, run in enumerate(runs):
            if run.stop_reason is not StopReason.DIVERGED:
                for name in params:
                    params[name][k] = self.best_params[name][k]
        ends = [
            replace(r, best_epoch=None if r.stop_reason is StopReason.DIVERGED else int(b))
            for r, b in zip(runs, self.best_epoch, strict=True)
        ]
        return params, ends


def _first(flags: np.ndarray) -> int | None:
    """The index of the first True, or None."""
    hits = np.flatnonzero(flags)
    return int(hits[0]) if hits.size else None


def _run_lengths(flags: np.ndarray, carry: np.ndarray) -> np.ndarray:
    """For flags (B, K): how many epochs in a row, up to each one, were True; `carry` (K,) is the
    count the block starts with."""
    steps = np.arange(1, len(flags) + 1)[:, None]
    last_false = np.maximum.accumulate(np.where(flags, 0, steps), axis=0)  # 0: none yet
    return np.where(last_false == 0, steps + carry, steps - last_false)
