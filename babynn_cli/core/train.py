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
from typing import Any

import numpy as np

from babynn_cli.core.design import Design
from babynn_cli.core.model import Model, Params, stack
from babynn_cli.core.schedules import Schedule

# Divergence is declared when the training loss
# - is not finite, or grows past DIVERGENCE_FACTOR times the larger of the initial loss and the
#   loss of predicting the mean target ("far past where it started"); or
# - rises by more than RISE relative in each of `patience` epochs in a row, and, unless the loss is
#   quadratic (the affine model) and the batch full, ends above where it started. On a quadratic
#   loss, full-batch gradient descent at a stable rate never raises the loss beyond rounding, so a
#   steady rise means the rate is past the bound, however slowly the loss grows; a minibatch loss,
#   or a network's, also rises by chance, so there it must rise past the start.
DIVERGENCE_FACTOR = 1e4
RISE = 1e-9
# Epochs run in blocks that double while a block takes less than BLOCK_SECONDS.
BLOCK_SECONDS = 0.05
MAX_BLOCK = 1024


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
    data: Design,
    schedules: Sequence[Schedule],
    settings: TrainSettings,
    rng: np.random.Generator,
    *,
    val: Design | None = None,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> TrainResult:
    """Train one copy of `params` per schedule on `data` (rows standardised as they are used).

    `rng` shuffles the rows each epoch (the same order for every run). Epochs run in blocks, a
    block growing while it takes under BLOCK_SECONDS: the stopping rules are read over a whole
    block at once, and `on_epoch` is called after each block, with its last epoch.
    """
    N, K = data.n_rows, len(schedules)
    batch = N if settings.batch_size is None else min(settings.batch_size, N)
    full_batch = batch == N
    if settings.early_stopping and val is None:
        raise ValueError("early stopping needs validation data")
    per_epoch = -(-N // batch)
    exact = full_batch and getattr(model, "quadratic", False)  # see RISE
    # At full batch a model may offer a stepper (many epochs in a few calls) or an oracle (the
    # loss and gradient, an epoch at a time); with minibatches, an evaluator gives epoch losses.
    stepper = model.stepper(data) if full_batch and hasattr(model, "stepper") else None
    oracle = model.full_batch(data) if full_batch and stepper is None else None
    runner = (
        None
        if full_batch or not hasattr(model, "epoch_runner")
        else model.epoch_runner(data, batch)
    )
    train_losses = model.evaluator(data) if not full_batch else None
    val_losses = model.evaluator(val) if val is not None else None
    E = settings.epochs

    def rates(t0: int, count: int) -> np.ndarray:
        """(count, K): the rates of updates t0, t0 + 1, ..."""
        t = np.arange(t0, t0 + count, dtype=float)
        return np.stack([s.rates(t) for s in schedules], axis=1)

    # history, preallocated: row e is epoch e (row 0 the initial weights)
    lr_hist = np.full((E + 1, K), np.nan)
    loss_hist = np.full((E + 1, K), np.nan)
    val_hist = np.full((E + 1, K), np.nan)
    seconds = np.zeros(E + 1)

    params = stack(params, K)
    start = time.perf_counter()
    if full_batch:
        full_rates = rates(0, E)  # one update an epoch: every rate of the run at once
    if stepper is not None:
        state = stepper.state(params)
        loss = stepper.moments.losses(params)
    elif oracle is not None:
        loss, grads = oracle(params)
    else:
        loss = train_losses(params)  # type: ignore[misc]
    loss_hist[0] = loss
    if val_losses is not None:
        val_hist[0] = val_losses(params)
    Y = data.Y
    spread = float(np.mean(((Y - Y.mean(axis=0)) ** 2).sum(axis=1)))
    ceiling = DIVERGENCE_FACTOR * np.maximum(np.maximum(loss, spread), np.finfo(float).tiny)

    running = np.ones(K, dtype=bool)
    outcome: list[Run | None] = [None] * K
    monitor_hist = val_hist if settings.early_stopping else loss_hist
    best_monitor, stale = monitor_hist[0].copy(), np.zeros(K, dtype=int)
    rising = np.zeros(K, dtype=int)
    best_params = {k: v.copy() for k, v in params.items()}
    best_epoch = np.zeros(K, dtype=int)
    done_epochs = 0  # epochs finished and kept
    interrupted = False
    size = 1

    while done_epochs < E and running.any() and not interrupted:
        first = done_epochs + 1
        last = min(E, done_epochs + size)
        at_start = params
        snapshots: list[Params] = []  # the weights after each epoch of the block
        block_start = time.perf_counter()
        if full_batch:
            block_rates = full_rates[first - 1 : last] * running  # a stopped run: steps of 0
        try:
            with np.errstate(all="ignore"):
                if stepper is not None:  # the whole block in a few calls
                    states, snapshots = _stepper_block(
                        stepper, val_losses, state, block_rates, first, last,
                        (lr_hist, loss_hist, val_hist),
                    )  # fmt: skip
                    seconds[first : last + 1] = time.perf_counter() - start
                    params = snapshots[-1]
                    epochs: range = range(0)
                else:
                    epochs = range(first, last + 1)
                if oracle is not None:  # the rates, shaped to scale each parameter
                    steps = {k: _per_run(block_rates, v) for k, v in params.items()}
                for epoch in epochs:
                    if oracle is not None:
                        j = epoch - first
                        new = {
                            k: v - steps[k][j] * grads[k] for k, v in params.items()
                        }  # w ← w - η∇L_w
                        lr = block_rates[j]
                        loss, grads = oracle(new)
                    else:
                        table = rates((epoch - 1) * per_epoch, per_epoch) * running
                        order = rng.permutation(N)
                        if runner is not None:  # the epoch's batches as one product of maps
                            new = runner.run(params, order, table)
                        else:
                            new = _minibatch_epoch(model, params, data, order, batch, table)
                        loss = train_losses(new)  # type: ignore[misc]
                        lr = table[-1]
                    v_loss = val_losses(new) if val_losses is not None else None
                    lr_hist[epoch], loss_hist[epoch] = lr, loss
                    if v_loss is not None:
                        val_hist[epoch] = v_loss
                    seconds[epoch] = time.perf_counter() - start
                    snapshots.append(new)
                    params = new
        except KeyboardInterrupt:
            interrupted = True  # keep the epochs this block finished, then stop
            last = first + len(snapshots) - 1
            for hist in (lr_hist, loss_hist, val_hist):
                hist[last + 1 :] = np.nan
            if not snapshots:
                params = at_start
                break
        if time.perf_counter() - block_start < BLOCK_SECONDS:
            size = min(2 * size, MAX_BLOCK)

        # -- the stopping rules, read over the block at once -----------------------------------
        L = loss_hist[first : last + 1]  # (B, K)
        rises = _run_lengths(loss_hist[first - 1 : last] * (1 + RISE) < L, rising)
        M = monitor_hist[first : last + 1]
        best_before = np.fmin.accumulate(np.vstack([best_monitor, M]), axis=0)[:-1]
        with np.errstate(invalid="ignore"):
            steady = (rises >= settings.patience) & (exact | (loss_hist[0] < L))
            diverges = ~np.isfinite(L) | (ceiling < L) | steady
            improved = best_before - M > settings.tol * np.abs(best_before)
        stales = _run_lengths(~improved, stale)
        converges = stales >= settings.patience if settings.tol > 0 else np.zeros_like(improved)
        reason = StopReason.EARLY_STOPPING if settings.early_stopping else StopReason.CONVERGED

        for hist in (lr_hist, loss_hist, val_hist):
            hist[first : last + 1, ~running] = np.nan  # runs stopped before this block
        kept = {name: value.copy() for name, value in params.items()}
        for k in np.flatnonzero(running):
            j_div = _first(diverges[:, k])
            j_conv = _first(converges[:, k])
            diverged = j_div is not None and (j_conv is None or j_div <= j_conv)
            if diverged:
                assert j_div is not None
                epoch = first + j_div
                lr_k = float(lr_hist[epoch, k])
                outcome[k] = Run(StopReason.DIVERGED, epoch, diverged_epoch=epoch, diverged_lr=lr_k)
                source, valid = (snapshots[j_div - 1] if j_div else at_start), j_div
            elif j_conv is not None:
                outcome[k] = Run(reason, first + j_conv)
                source, valid = snapshots[j_conv], j_conv + 1
            else:
                source, valid = snapshots[-1], len(snapshots)
            for name in kept:
                kept[name][k] = source[name][k]
            shown = valid + 1 if diverged else valid  # a diverged epoch stays in the history
            for hist in (lr_hist, loss_hist, val_hist):
                hist[first + shown : last + 1, k] = np.nan  # nothing after the run stopped
            if valid:
                j = int(np.argmin(M[:valid, k]))  # the first epoch at the block's lowest
                if settings.early_stopping and M[j, k] < best_monitor[k]:
                    best_epoch[k] = int(first + j)
                    for name in best_params:
                        best_params[name][k] = snapshots[j][name][k]
                best_monitor[k] = np.fmin(best_monitor[k], M[j, k])
                stale[k], rising[k] = stales[valid - 1, k], rises[valid - 1, k]
        params = kept
        stopped = running & np.array([o is not None for o in outcome])
        running &= ~stopped
        if stepper is not None:  # carry the state on as it is: no rounding between blocks
            state = np.where(stopped[:, None, None], stepper.state(kept), states[-1])
        if stopped.any() and oracle is not None:
            _, grads = oracle(params)  # the gradients of the weights kept
        done_epochs = last

        try:
            if on_epoch is not None:
                on_epoch(
                    EpochInfo(
                        epoch=last,
                        epochs=E,
                        updates=last * per_epoch,
                        lr=lr_hist[last],
                        train_loss=loss_hist[last],
                        val_loss=val_hist[last] if val is not None else None,
                        seconds=float(seconds[last]),
                        running=int(running.sum()),
                    )
                )
        except KeyboardInterrupt:
            interrupted = True

    end_reason = StopReason.INTERRUPTED if interrupted else StopReason.MAX_EPOCHS
    runs = tuple(o if o is not None else Run(end_reason, done_epochs) for o in outcome)
    if settings.early_stopping:
        for i, run in enumerate(runs):
            if run.stop_reason is not StopReason.DIVERGED:
                for name in params:
                    params[name][i] = best_params[name][i]
        runs = tuple(
            Run(r.stop_reason, r.epochs_run, int(best_epoch[k]), r.diverged_epoch, r.diverged_lr)
            for k, r in enumerate(runs)
        )
    rows = max(r.epochs_run for r in runs) + 1  # a block may end after the last run stopped
    history = History(
        epoch=np.arange(rows),
        updates=np.arange(rows) * per_epoch,
        lr=lr_hist[:rows],
        train_loss=loss_hist[:rows],
        val_loss=val_hist[:rows] if val is not None else None,
        seconds=seconds[:rows],
    )
    return TrainResult(params=params, history=history, runs=runs)


def _stepper_block(
    stepper: Any,
    val_losses: Callable[[Params], np.ndarray] | None,
    state: np.ndarray,
    rates: np.ndarray,
    first: int,
    last: int,
    history: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, list[Params]]:
    """Epochs first..last of full-batch descent from the moments; fills the history rows and
    returns the states and the weights after each epoch."""
    lr_hist, loss_hist, val_hist = history
    states = stepper.run(state, rates)  # (B, K, M, n)
    B, K = rates.shape
    every = stepper.params(states)  # (B, K, ...)
    flat = {k: v.reshape((B * K, *v.shape[2:])) for k, v in every.items()}
    loss_hist[first : last + 1] = stepper.moments.losses(flat).reshape(B, K)
    if val_losses is not None:
        val_hist[first : last + 1] = val_losses(flat).reshape(B, K)
    lr_hist[first : last + 1] = rates
    return states, [{k: v[j] for k, v in every.items()} for j in range(B)]


def _minibatch_epoch(
    model: Model, params: Params, data: Design, order: np.ndarray, batch: int, table: np.ndarray
) -> Params:
    """One epoch, a batch at a time: w ← w - η∇L_w on each batch of `order`'s rows."""
    new = {k: v.copy() for k, v in params.items()}
    steps = {k: _per_run(table, v) for k, v in new.items()}
    for j, lo in enumerate(range(0, len(order), batch)):
        idx = order[lo : lo + batch]
        _, g = model.losses_and_grads(new, data.rows(idx), np.take(data.Y, idx, axis=0))
        for k, v in new.items():
            v -= steps[k][j] * g[k]
    return new


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


def _per_run(lr: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Rates shaped to scale a stacked parameter (K, ...): (..., K) -> (..., K, 1, ...)."""
    return lr.reshape(lr.shape + (1,) * (value.ndim - 1))
