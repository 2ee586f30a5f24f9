"""The training loop: gradient descent, minibatch or stochastic, for K learning rates at once.

Each of the K runs has its own schedule and its own stopping: it stops when its loss stops
improving, or when it diverges, and then keeps its weights while the others go on. All K start
from the same weights and see the rows in the same order, so run k is exactly what training with
schedule k alone would give; `babynn fit` is the loop with K = 1.

The loop never prints and never raises for what the caller should report (divergence, Ctrl-C): it
returns a `TrainResult` that says why each run stopped, and calls `on_epoch` after every epoch so
that the caller can show progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from babynn_cli.core.model import Model, Params, stack
from babynn_cli.core.schedules import Schedule

# Divergence is declared when the training loss
# - is not finite, or grows past DIVERGENCE_FACTOR times the larger of the initial loss and the
#   loss of predicting the mean target ("far past where it started"); or
# - rises by more than RISE relative in each of `patience` epochs in a row, and, with minibatches
#   (whose loss is noisy), ends above twice its best. On a quadratic loss, full-batch gradient
#   descent at a stable rate never raises the loss beyond rounding, so a steady rise means the rate
#   is past the bound, however slowly the loss grows.
DIVERGENCE_FACTOR = 1e4
RISE = 1e-9


class StopReason(StrEnum):
    MAX_EPOCHS = "max_epochs"
    CONVERGED = "converged"  # training loss stopped improving by more than tol
    EARLY_STOPPING = "early_stopping"  # validation loss stopped improving
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"


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


@dataclass(frozen=True)
class EpochInfo:
    """Passed to `on_epoch`: arrays of length K, nan for runs that have stopped."""

    epoch: int
    epochs: int
    updates: int
    lr: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray | None
    seconds: float
    running: int  # how many of the K runs are still training


@dataclass(frozen=True)
class History:
    """One row per epoch, epoch 0 the initial weights; a column per run (nan once it stopped).

    lr is the rate of the epoch's last update.
    """

    epoch: np.ndarray  # (E+1,)
    updates: np.ndarray  # (E+1,)
    lr: np.ndarray  # (E+1, K)
    train_loss: np.ndarray  # (E+1, K)
    val_loss: np.ndarray | None  # (E+1, K)
    seconds: np.ndarray  # (E+1,)

    def column(self, k: int) -> History:
        """Run k alone, up to the epoch it stopped at."""
        rows = ~np.isnan(self.train_loss[:, k])
        rows[0] = True
        last = int(np.flatnonzero(rows)[-1]) + 1
        return History(
            epoch=self.epoch[:last],
            updates=self.updates[:last],
            lr=self.lr[:last, k : k + 1],
            train_loss=self.train_loss[:last, k : k + 1],
            val_loss=None if self.val_loss is None else self.val_loss[:last, k : k + 1],
            seconds=self.seconds[:last],
        )


@dataclass(frozen=True)
class Run:
    """How one of the K runs ended."""

    stop_reason: StopReason
    epochs_run: int
    best_epoch: int | None = None  # with early stopping: the epoch whose weights were kept
    diverged_epoch: int | None = None
    diverged_lr: float | None = None


@dataclass(frozen=True)
class TrainResult:
    params: Params  # stacked; per run the last finite epoch's, or the best with early stopping
    history: History
    runs: tuple[Run, ...]


def train(
    model: Model,
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    schedules: Sequence[Schedule],
    settings: TrainSettings,
    rng: np.random.Generator,
    *,
    X_val: np.ndarray | None = None,
    Y_val: np.ndarray | None = None,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> TrainResult:
    """Train one copy of `params` per schedule on X: (N, m), Y: (N, n).

    `rng` shuffles the rows each epoch (the same order for every run).
    """
    N, K = len(X), len(schedules)
    batch = N if settings.batch_size is None else min(settings.batch_size, N)
    full_batch = batch == N
    has_val = X_val is not None and Y_val is not None
    if settings.early_stopping and not has_val:
        raise ValueError("early stopping needs validation data")
    per_epoch = -(-N // batch)
    oracle = model.full_batch(X, Y) if full_batch else None
    train_losses = model.evaluator(X, Y) if oracle is None else None
    val_evaluator = model.evaluator(X_val, Y_val) if has_val else None  # type: ignore[arg-type]

    def val_losses(p: Params) -> np.ndarray:
        return val_evaluator(p) if val_evaluator is not None else np.full(K, np.nan)

    def rates(t0: int) -> np.ndarray:
        """(per_epoch, K): the rate of every update of the epoch starting at update t0."""
        t = np.arange(t0, t0 + per_epoch, dtype=float)
        return np.stack([s.rates(t) for s in schedules], axis=1)

    params = stack(params, K)
    start = time.perf_counter()
    if oracle is not None:
        loss, grads = oracle(params)
    else:
        loss = train_losses(params)  # type: ignore[misc]
    v_loss = val_losses(params)
    spread = float(np.mean(((Y - Y.mean(axis=0)) ** 2).sum(axis=1)))
    ceiling = DIVERGENCE_FACTOR * np.maximum(np.maximum(loss, spread), np.finfo(float).tiny)

    epochs_col, updates_col, seconds_col = [0], [0], [0.0]
    lr_rows, loss_rows, val_rows = [np.full(K, np.nan)], [loss.copy()], [v_loss.copy()]

    running = np.ones(K, dtype=bool)
    outcome: list[Run | None] = [None] * K
    monitor0 = v_loss if settings.early_stopping else loss
    best_monitor, stale = monitor0.copy(), np.zeros(K, dtype=int)
    best_train, prev_train, rising = loss.copy(), loss.copy(), np.zeros(K, dtype=int)
    best_params = {k: v.copy() for k, v in params.items()}
    best_epoch = np.zeros(K, dtype=int)
    t = 0
    epoch = 0
    interrupted = False

    for epoch in range(1, settings.epochs + 1):
        try:
            table = rates(t) * running  # a stopped run takes steps of size 0
            with np.errstate(all="ignore"):
                if oracle is not None:
                    lr = table[0]
                    new = {
                        k: v - _per_run(lr, v) * grads[k]  # w ← w - η∇L_w
                        for k, v in params.items()
                    }
                    loss, grads = oracle(new)
                else:
                    new = {k: v.copy() for k, v in params.items()}
                    order = rng.permutation(N)
                    steps = {k: _per_run(table, v) for k, v in new.items()}
                    for j, lo in enumerate(range(0, N, batch)):
                        idx = order[lo : lo + batch]
                        _, g = model.losses_and_grads(new, X[idx], Y[idx])
                        for k, v in new.items():
                            v -= steps[k][j] * g[k]  # w ← w - η∇L_w on this batch
                    loss = train_losses(new)  # type: ignore[misc]
                    lr = table[-1]
                v_loss = val_losses(new)
            t += per_epoch
        except KeyboardInterrupt:
            interrupted = True
            break

        # Divergence, run by run: such a run keeps its last finite weights and stops.
        rising = np.where(loss > prev_train * (1 + RISE), rising + 1, 0)
        best_train, prev_train = np.fmin(best_train, loss), loss
        steady_rise = (rising >= settings.patience) & (full_batch | (loss > 2 * best_train))
        with np.errstate(invalid="ignore"):
            diverged = running & (~np.isfinite(loss) | (loss > ceiling) | steady_rise)
        for k in np.flatnonzero(diverged):
            outcome[k] = Run(StopReason.DIVERGED, epoch, diverged_epoch=epoch, diverged_lr=lr[k])
            for name in new:
                new[name][k] = params[name][k]
        if diverged.any() and oracle is not None:
            loss_kept, grads = oracle(new)  # the gradients of the weights kept
            loss = np.where(diverged, loss, loss_kept)
        shown = running.copy()
        running &= ~diverged
        params = new

        epochs_col.append(epoch)
        updates_col.append(t)
        seconds_col.append(time.perf_counter() - start)
        lr_rows.append(np.where(shown, lr, np.nan))
        loss_rows.append(np.where(shown, loss, np.nan))
        val_rows.append(np.where(shown, v_loss, np.nan))

        # Stopping when the monitored loss stops improving.
        monitor = v_loss if settings.early_stopping else loss
        if settings.early_stopping:
            better = running & (monitor < best_monitor)
            for name in params:
                best_params[name][better] = params[name][better]
            best_epoch[better] = epoch
        improved = best_monitor - monitor > settings.tol * np.abs(best_monitor)
        stale = np.where(improved, 0, stale + 1)
        best_monitor = np.where(running, np.fmin(best_monitor, monitor), best_monitor)
        if settings.tol > 0:
            done = running & (stale >= settings.patience)
            reason = StopReason.EARLY_STOPPING if settings.early_stopping else StopReason.CONVERGED
            for k in np.flatnonzero(done):
                outcome[k] = Run(reason, epoch)
            running &= ~done

        try:
            if on_epoch is not None:
                on_epoch(
                    EpochInfo(
                        epoch=epoch,
                        epochs=settings.epochs,
                        updates=t,
                        lr=lr_rows[-1],
                        train_loss=loss_rows[-1],
                        val_loss=val_rows[-1] if has_val else None,
                        seconds=seconds_col[-1],
                        running=int(running.sum()),
                    )
                )
        except KeyboardInterrupt:
            interrupted = True
            break
        if not running.any():
            break

    last = epochs_col[-1]
    end_reason = StopReason.INTERRUPTED if interrupted else StopReason.MAX_EPOCHS
    runs = tuple(o if o is not None else Run(end_reason, last) for o in outcome)
    if settings.early_stopping:
        kept = {name: value.copy() for name, value in params.items()}
        for k, run in enumerate(runs):
            if run.stop_reason is not StopReason.DIVERGED:
                for name in kept:
                    kept[name][k] = best_params[name][k]
        runs = tuple(
            Run(r.stop_reason, r.epochs_run, int(best_epoch[k]), r.diverged_epoch, r.diverged_lr)
            for k, r in enumerate(runs)
        )
        params = kept
    history = History(
        epoch=np.array(epochs_col),
        updates=np.array(updates_col),
        lr=np.array(lr_rows),
        train_loss=np.array(loss_rows),
        val_loss=np.array(val_rows) if has_val else None,
        seconds=np.array(seconds_col),
    )
    return TrainResult(params=params, history=history, runs=runs)


def _per_run(lr: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Rates shaped to scale a stacked parameter (K, ...): (..., K) -> (..., K, 1, ...)."""
    return lr.reshape(lr.shape + (1,) * (value.ndim - 1))
