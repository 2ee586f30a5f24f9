"""The training loop: gradient descent, minibatch or stochastic, for K learning rates at once.

Each of the K runs has its own schedule and its own stopping: it stops when its loss stops
improving, or when it diverges, and then keeps its weights while the others go on. All K start
from the same weights and see the rows in the same order, so run k is exactly what training with
schedule k alone would give; `babynn fit` is the loop with K = 1.

The loop never prints and never raises for what the caller should report (divergence, Ctrl-C): it
returns a `TrainResult` that says why each run stopped, and calls `on_epoch` after every block of
epochs so that the caller can show progress. Its chapters: schedule → update → record (the notes'
rule, `core.descent`; the history, `core.history`), stopping rules (`core.stopping`), progress.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from babynn_cli.core.descent import Descent, Epochs, Rates
from babynn_cli.core.history import EpochInfo, History, Record
from babynn_cli.core.losses import spread_of
from babynn_cli.core.model import Model
from babynn_cli.core.optimizers import GD, OptimizerSpec
from babynn_cli.core.rows import Rows
from babynn_cli.core.schedules import Schedule
from babynn_cli.core.signals import Held, held
from babynn_cli.core.stopping import Rules, RunEnd, StopReason, StopRules
from babynn_cli.core.threads import blas_threads
from babynn_cli.core.verdict import Trend
from babynn_cli.core.vocabulary import Evaluator, Params, full_batch, stack

# Epochs run in blocks that double while a block takes less than BLOCK_SECONDS; the stopping rules
# are read over a block at once, from every epoch's weights, which a block holds: at most
# MAX_BLOCK epochs and BLOCK_BYTES of weights (10,000 features' 7 probe runs held 570 MB a block).
BLOCK_SECONDS = 0.05
MAX_BLOCK = 1024
BLOCK_BYTES = 32 << 20


def train(
    model: Model,
    params: Params,
    data: Rows,
    schedules: Sequence[Schedule],
    settings: TrainSettings,
    rng: np.random.Generator,
    *,
    val: Rows | None = None,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> TrainResult:
    """Train one copy of `params` per schedule on `data` (rows standardised as they are used).

    `rng` shuffles the rows each epoch (the same order for every run). Epochs run in blocks, a
    block growing while it takes under BLOCK_SECONDS: the stopping rules are read over a whole
    block at once, and `on_epoch` is called after each block, with its last epoch.
    """
    if settings.early_stopping and val is None:
        raise ValueError("early stopping needs validation data")
    K, E = len(schedules), settings.epochs
    descent = model.descent(
        data, settings.batch_size, rng, epochs=E, runs=K, optimizer=settings.optimizer
    )
    val_losses = model.evaluator(val) if val is not None else None
    params = stack(params, K)
    start = descent.restart(params)
    record = Record.start(E, start, val_losses, params, settings.history_every, settings.watch_loss)
    # the loss of predicting the mean target, in the units the model learns (a network's targets
    # are standardised: its losses are the targets' own over target_scale²)
    moments = data.moments
    spread = spread_of(model.loss, moments.y_mean, moments.spread) / data.target_scale**2
    blow_up = not settings.optimizer.heavy  # momentum may rise far before it falls
    rules = Rules.start(record, spread, settings.stop_rules, descent.exact, params, blow_up)
    running = np.ones(K, dtype=bool)
    ends: list[RunEnd | None] = [None] * K
    pins: set[int] = set()  # epochs the history must keep: where runs ended, and the one before
    clock = time.perf_counter()
    done, size, interrupted = 0, 1, False
    most = max(1, min(MAX_BLOCK, BLOCK_BYTES // max(1, sum(v.nbytes for v in params.values()))))

    def rates(t0: int, count: int) -> np.ndarray:
        """(count, K): each run's rate for updates t0, t0 + 1, ...; 0 for runs that stopped."""
        t = np.arange(t0, t0 + count, dtype=float)
        return np.stack([s.rates(t) for s in schedules], axis=1) * running

    # a minibatch's products are small: one BLAS thread is faster, above all beside busy cores
    minibatch = not full_batch(settings.batch_size, data.n_rows)
    # Ctrl-C and SIGTERM stop an epoch at once, but wait while the records are written (`held`)
    with blas_threads(1) if minibatch else nullcontext(), held() as signals:
        while done < E and running.any() and not interrupted:
            first, last = done + 1, min(E, done + size)
            block_start = time.perf_counter()
            # -- schedule → update → record: the notes' rule, epoch after epoch, each run's rates
            snapshots, interrupted = _descend(
                descent, first, last, rates, record, val_losses, clock, signals
            )
            if not snapshots:
                break
            last = first + len(snapshots) - 1
            if time.perf_counter() - block_start < BLOCK_SECONDS:
                size = min(2 * size, most)
            # -- stopping rules: read over the block at once; a run that stops keeps its weights
            params, stopped = rules.apply(record, first, snapshots, params, running, ends)
            running &= ~stopped
            if stopped.any():
                descent.restart(params, changed=stopped)
                pins |= {e for k in np.flatnonzero(stopped) for e in _ended(ends[k])}
            done = last
            # -- progress: show the caller where the runs are ---------------------------------
            try:
                if on_epoch is not None:
                    on_epoch(
                        record.info(last, E, descent.updates_per_epoch, running, val is not None)
                    )
                signals.deliver()  # a Ctrl-C that came meanwhile ends the runs here
            except KeyboardInterrupt:
                interrupted = True
            record.slide(last, pins)

    end_reason = StopReason.INTERRUPTED if interrupted else StopReason.MAX_EPOCHS
    runs = [e if e is not None else RunEnd(end_reason, done) for e in ends]
    if settings.early_stopping:
        params, runs = rules.keep_best(params, runs)
    pins |= {r.epochs_run for r in runs} | {max(r.epochs_run - 1, 0) for r in runs}
    history = record.history(max(r.epochs_run for r in runs), descent.updates_per_epoch, val, pins)
    return TrainResult(params, history, tuple(runs), settings.stop_rules, descent.exact)


@dataclass(frozen=True)
class TrainSettings:
    """epochs: the most to run. batch_size: None for the whole data set (gradient descent).

    Early stopping: when the monitored loss (validation loss with `early_stopping`, training loss
    otherwise) improves on its best by less than `tol` relative for `patience` epochs in a row,
    training stops. tol = 0 turns that off.
    """

    epochs: int = 1000
    batch_size: int | None = None
    tol: float = 1e-10
    patience: int = 5
    early_stopping: bool = False
    # stop a run once its training loss is at or below this (the affine model within --gap-tol
    # of L*: a run until convergence); None: no such goal
    target_loss: float | None = None
    # the history keeps every epoch to FULL_HISTORY, then about PER_DECADE a decade; or, given,
    # every this many epochs (and always epoch 0, the best and the last)
    history_every: int | None = None
    # note each run's first epoch with training loss at or below this (exactly, whatever the
    # history keeps): the affine model within --gap-tol of L*
    watch_loss: float | None = None

    # the --tol rule waits `patience` epochs, or this share of the epochs run when that is more
    patience_share: float = 0.0
    tol_of_spread: bool = False  # tol is a fraction of the targets' variance, not the best loss
    optimizer: OptimizerSpec = GD  # the update rule (`core.optimizers`)

    @property
    def stop_rules(self) -> StopRules:
        """The stopping rules these settings ask for (`core.stopping`)."""
        return StopRules(
            self.tol, self.patience, self.early_stopping, self.target_loss, self.patience_share,
            self.tol_of_spread,
        )  # fmt: skip


@dataclass(frozen=True)
class TrainResult:
    params: Params  # stacked; per run the last finite epoch's, or the best with early stopping
    history: History
    runs: tuple[RunEnd, ...]
    rules: StopRules  # the stopping rules the runs trained under
    exact: bool  # the descent was exact (the affine model at full batch)

    def trend(self, k: int, spread: float) -> Trend | None:
        """How run k's verdict reads whether it was still falling, for a rough run (None: an
        exact one, whose loss only falls); see `core.verdict.Trend`. `spread`: the loss of
        predicting the mean target, in the history's units."""
        if self.exact:
            return None
        h, r = self.history, self.rules
        watched = h.val_loss if r.early_stopping and h.val_loss is not None else None
        monitored = (h.train_loss if watched is None else watched)[:, k]
        window = max(r.patience, math.ceil(r.patience_share * self.runs[k].epochs_run))
        return Trend(monitored, window, r.tol, spread if r.tol_of_spread else None)


def _descend(
    descent: Descent,
    first: int,
    last: int,
    rates: Rates,
    record: Record,
    val_losses: Evaluator | None,
    clock: float,
    signals: Held,
) -> tuple[Sequence[Params], bool]:
    """Epochs first..last, recorded as they come: the weights after each, and whether Ctrl-C
    stopped the block (the epochs it finished are kept; it acts at once here)."""
    parts: list[Epochs] = []
    done = first
    interrupted = False
    try:
        with np.errstate(all="ignore"), signals.let_through():
            for epochs in descent.epochs(first, last, rates):
                record.epochs(done, epochs, val_losses, time.perf_counter() - clock)
                parts.append(epochs)
                done += len(epochs.params)
                signals.deliver()  # a Ctrl-C whose exception a finalizer swallowed acts here
    except KeyboardInterrupt:
        signals.acted()
        record.drop_after(done - 1)
        interrupted = True
    if len(parts) == 1:
        return parts[0].params, interrupted
    return [params for part in parts for params in part.params], interrupted


def _ended(end: RunEnd | None) -> set[int]:
    """The epochs a run's history must keep where it ended: its last, and the one before."""
    assert end is not None
    return {end.epochs_run, max(end.epochs_run - 1, 0)}
