"""The training loop: gradient descent, minibatch or stochastic, with early stopping.

It never prints and never raises for what the caller should report (divergence, Ctrl-C): it
returns a `TrainResult` that says why it stopped, and calls `on_epoch` after every epoch so that
the caller can show progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from babynn_cli.core.model import Model, Params
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
    epoch: int
    epochs: int
    updates: int
    lr: float
    train_loss: float
    val_loss: float | None
    seconds: float


@dataclass(frozen=True)
class History:
    """One row per epoch, epoch 0 the initial weights; lr is the epoch's last update's rate."""

    epoch: np.ndarray
    updates: np.ndarray
    lr: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray | None
    seconds: np.ndarray


@dataclass(frozen=True)
class TrainResult:
    params: Params  # to keep: the last finite epoch's, or the best epoch's with early stopping
    history: History
    stop_reason: StopReason
    epochs_run: int
    best_epoch: int | None = None  # with early stopping: the epoch whose weights were kept
    diverged_epoch: int | None = None
    diverged_lr: float | None = None


def train(
    model: Model,
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    schedule: Schedule,
    settings: TrainSettings,
    rng: np.random.Generator,
    *,
    X_val: np.ndarray | None = None,
    Y_val: np.ndarray | None = None,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> TrainResult:
    """Train `model` from `params` on X: (N, m), Y: (N, n); `rng` shuffles the rows each epoch."""
    N = len(X)
    batch = N if settings.batch_size is None else min(settings.batch_size, N)
    full_batch = batch == N
    has_val = X_val is not None and Y_val is not None
    if settings.early_stopping and not has_val:
        raise ValueError("early stopping needs validation data")

    params = {k: v.copy() for k, v in params.items()}
    start = time.perf_counter()
    rows: list[tuple[int, int, float, float, float, float]] = []

    def val_loss(p: Params) -> float:
        return model.loss(p, X_val, Y_val) if has_val else float("nan")  # type: ignore[arg-type]

    loss, grads = model.loss_and_grads(params, X, Y)
    rows.append((0, 0, float("nan"), loss, val_loss(params), 0.0))
    spread = float(np.mean(((Y - Y.mean(axis=0)) ** 2).sum(axis=1)))
    ceiling = DIVERGENCE_FACTOR * max(loss, spread, np.finfo(float).tiny)

    best_monitor = rows[0][4] if settings.early_stopping else loss
    best_params, best_epoch = params, 0
    stale = rising = 0
    best_train = prev_train = loss
    t = 0
    stop = StopReason.MAX_EPOCHS
    diverged_epoch = diverged_lr = None
    lr = float("nan")

    for epoch in range(1, settings.epochs + 1):
        try:
            with np.errstate(all="ignore"):
                if full_batch:
                    lr = schedule(t)
                    new = {k: v - lr * grads[k] for k, v in params.items()}  # w ← w - η∇L_w
                    t += 1
                    loss, grads = model.loss_and_grads(new, X, Y)
                else:
                    new = {k: v.copy() for k, v in params.items()}
                    order = rng.permutation(N)
                    for lo in range(0, N, batch):
                        idx = order[lo : lo + batch]
                        lr = schedule(t)
                        _, g = model.loss_and_grads(new, X[idx], Y[idx])
                        for k, v in new.items():
                            v -= lr * g[k]  # w ← w - η∇L_w on this batch
                        t += 1
                    loss = model.loss(new, X, Y)
                v_loss = val_loss(new)
        except KeyboardInterrupt:
            stop = StopReason.INTERRUPTED
            break

        rising = rising + 1 if loss > prev_train * (1 + RISE) else 0
        best_train, prev_train = min(best_train, loss), loss
        steady_rise = rising >= settings.patience and (full_batch or loss > 2 * best_train)
        if not np.isfinite(loss) or loss > ceiling or steady_rise:
            stop = StopReason.DIVERGED
            diverged_epoch, diverged_lr = epoch, lr
            rows.append((epoch, t, lr, loss, v_loss, time.perf_counter() - start))
            break

        params = new
        rows.append((epoch, t, lr, loss, v_loss, time.perf_counter() - start))
        try:
            if on_epoch is not None:
                shown_val = v_loss if has_val else None
                on_epoch(EpochInfo(epoch, settings.epochs, t, lr, loss, shown_val, rows[-1][5]))
        except KeyboardInterrupt:
            stop = StopReason.INTERRUPTED
            break

        monitor = v_loss if settings.early_stopping else loss
        if settings.early_stopping and monitor < best_monitor:
            best_params, best_epoch = params, epoch
        if settings.tol > 0:
            if best_monitor - monitor > settings.tol * abs(best_monitor):
                stale = 0
            else:
                stale += 1
        best_monitor = min(best_monitor, monitor)
        if settings.tol > 0 and stale >= settings.patience:
            stop = StopReason.EARLY_STOPPING if settings.early_stopping else StopReason.CONVERGED
            break

    table = np.array(rows, dtype=float)
    history = History(
        epoch=table[:, 0].astype(int),
        updates=table[:, 1].astype(int),
        lr=table[:, 2],
        train_loss=table[:, 3],
        val_loss=table[:, 4] if has_val else None,
        seconds=table[:, 5],
    )
    kept = best_params if settings.early_stopping and stop is not StopReason.DIVERGED else params
    return TrainResult(
        params=kept,
        history=history,
        stop_reason=stop,
        epochs_run=int(history.epoch[-1]),
        best_epoch=best_epoch if settings.early_stopping else None,
        diverged_epoch=diverged_epoch,
        diverged_lr=diverged_lr,
    )
