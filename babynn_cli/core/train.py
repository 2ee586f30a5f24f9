"""The training loop: gradient descent, minibatch or stochastic, for K learning rates at once.

Each of the K runs has its own schedule and its own stopping: it stops when its loss stops
improving, or when it diverges, and then keeps its weights while the others go on. All K start
from the same weights and see the rows in the same order, so run k is exactly what training with
schedule k alone would give; `babynn fit` is the loop with K = 1.

The loop never prints and never raises for what the caller should report (divergence, Ctrl-C): it
returns a `TrainResult` that says why each run stopped, and calls `on_epoch` after every block of
epochs so that the caller can show progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from babynn_cli.core.descent import Descent, Epochs, Rates
from babynn_cli.core.model import Model
from babynn_cli.core.rows import Rows
from babynn_cli.core.schedules import Schedule
from babynn_cli.core.threads import blas_threads
from babynn_cli.core.vocabulary import Evaluator, Params, stack

# The divergence rule: a run stops as diverged at the first epoch whose training loss
# - is not finite, or grows past DIVERGENCE_FACTOR times the larger of the initial loss and the
#   loss of predicting the mean target ("far past where it started"); or
# - when the descent is exact (the affine model at full batch), rises by more than RISE relative in
#   each of `patience` epochs in a row: on a quadratic loss, full-batch gradient descent at a stable
#   rate never raises the loss beyond rounding, so a steady rise means the rate is past the bound,
#   however slowly the loss grows; or
# - otherwise (minibatches, networks: the loss also rises by chance), is above where it started and
#   more than BLOW_UP times the lowest loss of the run so far, dips in between or not.
DIVERGENCE_FACTOR = 1e4
RISE = 1e-9
# ... and by more than this much of the loss's scale (the larger of L0 and the spread of the
# target): smaller rises are rounding, for example around an optimum with L* = 0
ROUNDING = 1e-13
BLOW_UP = 10.0
# Epochs run in blocks that double while a block takes less than BLOCK_SECONDS; the stopping rules
# are read over a block at once.
BLOCK_SECONDS = 0.05
MAX_BLOCK = 1024
# The history keeps every epoch up to FULL_HISTORY, then about PER_DECADE a decade (log-spaced):
# a run of 10⁶ epochs holds about 2,600 rows, whatever its length past that
FULL_HISTORY = 2000
PER_DECADE = 200


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
    kept: str = "every epoch"  # which epochs the rows are (see `_Kept`): past FULL_HISTORY, some
    # each run's first epoch at or below `TrainSettings.watch_loss` (None: not watched, or never)
    reached: tuple[int | None, ...] | None = None

    def column(self, k: int, epochs_run: int) -> History:
        """Run k alone, up to the epoch it stopped at (its diverged epoch too, even when the
        loss there is not a number)."""
        last = int(np.searchsorted(self.epoch, epochs_run, side="right"))
        return History(
            epoch=self.epoch[:last],
            updates=self.updates[:last],
            lr=self.lr[:last, k : k + 1],
            train_loss=self.train_loss[:last, k : k + 1],
            val_loss=None if self.val_loss is None else self.val_loss[:last, k : k + 1],
            seconds=self.seconds[:last],
            kept=self.kept,
            reached=None if self.reached is None else (_upto(self.reached[k], epochs_run),),
        )

    def row(self, epoch: int) -> int:
        """The row that holds `epoch` (a run's last, best and weights' epochs always have one)."""
        return int(np.searchsorted(self.epoch, epoch))


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
class TrainResult:
    params: Params  # stacked; per run the last finite epoch's, or the best with early stopping
    history: History
    runs: tuple[RunEnd, ...]


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
    descent = model.descent(data, settings.batch_size, rng, epochs=E, runs=K)
    val_losses = model.evaluator(val) if val is not None else None
    params = stack(params, K)
    start = descent.restart(params)
    record = _Record.start(
        E, start, val_losses, params, settings.history_every, settings.watch_loss
    )
    rules = _Rules.start(record, data, settings, descent.exact, params)
    running = np.ones(K, dtype=bool)
    ends: list[RunEnd | None] = [None] * K
    pins: set[int] = set()  # epochs the history must keep: where runs ended, and the one before
    clock = time.perf_counter()
    done, size, interrupted = 0, 1, False

    def rates(t0: int, count: int) -> np.ndarray:
        """(count, K): each run's rate for updates t0, t0 + 1, ...; 0 for runs that stopped."""
        t = np.arange(t0, t0 + count, dtype=float)
        return np.stack([s.rates(t) for s in schedules], axis=1) * running

    # a minibatch's products are small: one BLAS thread is faster, above all beside busy cores
    minibatch = settings.batch_size is not None and settings.batch_size < data.n_rows
    with blas_threads(1) if minibatch else nullcontext():
        while done < E and running.any() and not interrupted:
            first, last = done + 1, min(E, done + size)
            block_start = time.perf_counter()
            # -- schedule → update → record: the notes' rule, epoch after epoch, each run's rates
            snapshots, interrupted = _descend(
                descent, first, last, rates, record, val_losses, clock
            )
            if not snapshots:
                break
            last = first + len(snapshots) - 1
            if time.perf_counter() - block_start < BLOCK_SECONDS:
                size = min(2 * size, MAX_BLOCK)
            # -- stopping rules: read over the block at once; a run that stops keeps its weights
            params, stopped = rules.apply(record, first, snapshots, params, running, ends)
            running &= ~stopped
            if stopped.any():
                descent.restart(params, changed=stopped)
                for k in map(int, np.flatnonzero(stopped)):
                    end = ends[k]
                    assert end is not None
                    pins |= {end.epochs_run, max(end.epochs_run - 1, 0)}
            done = last
            # -- progress: show the caller where the runs are --------------------------------------
            if on_epoch is not None:
                info = record.info(last, E, descent.updates_per_epoch, running, val is not None)
                interrupted = _call(on_epoch, info) or interrupted
            record.slide(last, pins)

    end_reason = StopReason.INTERRUPTED if interrupted else StopReason.MAX_EPOCHS
    runs = [e if e is not None else RunEnd(end_reason, done) for e in ends]
    if settings.early_stopping:
        params, runs = rules.keep_best(params, runs)
    pins |= {r.epochs_run for r in runs} | {max(r.epochs_run - 1, 0) for r in runs}
    history = record.history(max(r.epochs_run for r in runs), descent.updates_per_epoch, val, pins)
    return TrainResult(params=params, history=history, runs=tuple(runs))


def _descend(
    descent: Descent,
    first: int,
    last: int,
    rates: Rates,
    record: _Record,
    val_losses: Evaluator | None,
    clock: float,
) -> tuple[Sequence[Params], bool]:
    """Epochs first..last, recorded as they come: the weights after each, and whether Ctrl-C
    stopped the block (the epochs it finished are kept)."""
    parts: list[Epochs] = []
    done = first
    interrupted = False
    try:
        with np.errstate(all="ignore"):
            for epochs in descent.epochs(first, last, rates):
                record.epochs(done, epochs, val_losses, time.perf_counter() - clock)
                parts.append(epochs)
                done += len(epochs.params)
    except KeyboardInterrupt:
        record.drop_after(done - 1)
        interrupted = True
    if len(parts) == 1:
        return parts[0].params, interrupted
    return [params for part in parts for params in part.params], interrupted


def _call(on_epoch: Callable[[EpochInfo], None], info: EpochInfo) -> bool:
    """Show progress; True when Ctrl-C came meanwhile."""
    try:
        on_epoch(info)
    except KeyboardInterrupt:
        return True
    return False


@dataclass
class _Record:
    """The history as it is written, in memory that does not grow with the epochs: a window of
    the latest epochs (the block the stopping rules read, and the epoch before it), and the
    epochs kept for the history (`_Kept`). Epochs are addressed by number, whatever row of the
    window holds them."""

    lr: np.ndarray  # (rows, K): the window, row 0 is epoch `base`
    loss: np.ndarray
    val: np.ndarray
    seconds: np.ndarray  # (rows,)
    base: int
    limit: int  # E + 1: the most epochs there can be
    start_loss: np.ndarray  # (K,) epoch 0's training losses, which the rules measure against
    kept: _Kept
    watch: float | None = None  # see `TrainSettings.watch_loss`
    reached: np.ndarray | None = None  # (K,) the first epoch at or below it (-1: not yet)

    @classmethod
    def start(
        cls,
        E: int,
        losses: np.ndarray,
        val_losses: Evaluator | None,
        params: Params,
        every: int | None = None,
        watch: float | None = None,
    ) -> _Record:
        rows = min(E + 1, 1024)
        lr, loss, val = (np.full((rows, len(losses)), np.nan) for _ in range(3))
        kept = _Kept(len(losses), every)
        record = cls(lr, loss, val, np.zeros(rows), 0, E + 1, losses.copy(), kept, watch)
        if watch is not None:
            record.reached = np.where(losses <= watch, 0, -1)
        record.loss[0] = losses
        if val_losses is not None:
            record.val[0] = val_losses(params)
        return record

    def rows(self, name: str, first: int, last: int) -> np.ndarray:
        """Epochs first..last of `name` (lr, loss or val): (last − first + 1, K)."""
        return getattr(self, name)[first - self.base : last - self.base + 1]

    def at(self, name: str, epoch: int, k: int) -> float:
        return float(getattr(self, name)[epoch - self.base, k])

    def _room(self, epochs: int) -> None:
        """Room in the window for epochs up to `epochs` − 1."""
        rows, have = epochs - self.base, len(self.seconds)
        if rows <= have:
            return
        size = min(self.limit - self.base, max(rows, 2 * have))
        for name in ("lr", "loss", "val"):
            old = getattr(self, name)
            new = np.full((size, old.shape[1]), np.nan)
            new[:have] = old
            setattr(self, name, new)
        self.seconds = np.concatenate([self.seconds, np.zeros(size - have)])

    def epochs(self, e: int, epochs: Epochs, val_losses: Evaluator | None, seconds: float) -> None:
        """Epochs e, e + 1, ... as the descent left them."""
        self._room(e + len(epochs.params))
        rows = slice(e - self.base, e - self.base + len(epochs.params))
        self.lr[rows], self.loss[rows], self.seconds[rows] = epochs.lrs, epochs.losses, seconds
        if self.reached is not None and self.watch is not None:
            with np.errstate(invalid="ignore"):
                below = epochs.losses <= self.watch  # (B, K)
            first = np.where(below.any(axis=0), e + np.argmax(below, axis=0), -1)
            self.reached = np.where(self.reached >= 0, self.reached, first)
        if val_losses is not None:
            for j, params in enumerate(epochs.params):
                self.val[e - self.base + j] = val_losses(params)

    def drop_after(self, e: int) -> None:
        """Forget epochs after e (an interrupted block)."""
        for rows in (self.lr, self.loss, self.val):
            rows[e + 1 - self.base :] = np.nan

    def mask_stopped(self, first: int, last: int, running: np.ndarray) -> None:
        """Runs that stopped before this block leave nothing in its rows."""
        for rows in (self.lr, self.loss, self.val):
            rows[first - self.base : last - self.base + 1, ~running] = np.nan

    def end_run(self, k: int, after: int, last: int) -> None:
        """Run k shows nothing after epoch `after`."""
        for rows in (self.lr, self.loss, self.val):
            rows[after + 1 - self.base : last - self.base + 1, k] = np.nan

    def info(
        self, last: int, E: int, per_epoch: int, running: np.ndarray, has_val: bool
    ) -> EpochInfo:
        j = last - self.base
        return EpochInfo(
            epoch=last,
            epochs=E,
            updates=last * per_epoch,
            lr=self.lr[j],
            train_loss=self.loss[j],
            val_loss=self.val[j] if has_val else None,
            seconds=float(self.seconds[j]),
            running=int(running.sum()),
        )

    def _hand_over(self, first: int, last: int, pinned: set[int]) -> None:
        """Epochs first..last of the window to the kept history."""
        lo, hi = first - self.base, last - self.base + 1
        if hi > lo:
            rows = (self.lr[lo:hi], self.loss[lo:hi], self.val[lo:hi], self.seconds[lo:hi])
            self.kept.offer(first, rows, pinned)

    def slide(self, upto: int, pins: set[int]) -> None:
        """Hand epochs before `upto` to the kept history (those it keeps) and move the window to
        start at `upto`: the rules read each block with the epoch before it."""
        self._hand_over(self.base, upto - 1, pins)
        shift = upto - self.base
        for name in ("lr", "loss", "val"):
            rows = getattr(self, name)
            rows[: len(rows) - shift] = rows[shift:]
            rows[len(rows) - shift :] = np.nan
        self.seconds[: len(self.seconds) - shift] = self.seconds[shift:]
        self.base = upto

    def history(self, epochs: int, per_epoch: int, val: Rows | None, pins: set[int]) -> History:
        """The kept epochs up to `epochs`, with every epoch in `pins` (where runs ended)."""
        last = min(epochs, self.base + len(self.seconds) - 1)
        self._hand_over(self.base, last, pins | {epochs})
        at, (lr, loss, vals, seconds) = self.kept.rows(epochs)
        return History(
            epoch=at,
            updates=at * per_epoch,
            lr=lr,
            train_loss=loss,
            val_loss=vals if val is not None else None,
            seconds=seconds,
            kept=self.kept.rule(epochs),
            reached=None
            if self.reached is None
            else tuple(int(r) if 0 <= r <= epochs else None for r in self.reached),
        )


class _Kept:
    """The epochs a history keeps: every one up to FULL_HISTORY, then the first of each of
    PER_DECADE bins a decade, evenly spaced on a log scale (or every `every`-th, as
    --history-every asks), and always epoch 0, each run's best (by training and by validation
    loss) and the epochs pinned (where runs ended, and the one before)."""

    def __init__(self, K: int, every: int | None) -> None:
        self.every = every
        self.parts: list[tuple[np.ndarray, tuple[np.ndarray, ...]]] = []  # (epochs, rows)
        self.best = [np.full(K, np.inf), np.full(K, np.inf)]  # by training, by validation loss
        self.best_at = [np.full(K, -1), np.full(K, -1)]
        self.best_rows: dict[int, tuple[np.ndarray, ...]] = {}

    def _on_grid(self, epochs: np.ndarray) -> np.ndarray:
        if self.every is not None:
            return epochs % self.every == 0
        past = np.maximum(epochs, 1)
        bins = np.floor(PER_DECADE * np.log10(past))
        new_bin = bins > np.floor(PER_DECADE * np.log10(np.maximum(past - 1, 1)))
        return (epochs <= FULL_HISTORY) | new_bin

    def offer(self, first: int, rows: tuple[np.ndarray, ...], pinned: set[int]) -> None:
        """Epochs first, first + 1, ... (rows: lr, loss, val (B, K), seconds (B,)), in order:
        kept when on the grid or pinned, and while they are a run's best."""
        epochs = np.arange(first, first + len(rows[3]))
        keep = self._on_grid(epochs) | (epochs == 0) | np.isin(epochs, list(pinned))
        if keep.any():
            self.parts.append((epochs[keep], tuple(r[keep].copy() for r in rows)))
        for which, losses in enumerate((rows[1], rows[2])):
            finite = np.where(np.isfinite(losses), losses, np.inf)
            j = np.argmin(finite, axis=0)  # (K,): each run's lowest in these epochs
            low = finite[j, np.arange(finite.shape[1])]
            better = low < self.best[which]
            for k in map(int, np.flatnonzero(better)):
                self.best[which][k], self.best_at[which][k] = low[k], first + j[k]
                self.best_rows[first + int(j[k])] = tuple(r[j[k]].copy() for r in rows)
        wanted = {int(e) for at in self.best_at for e in at}
        for stale in [e for e in self.best_rows if e not in wanted]:
            del self.best_rows[stale]

    def rows(self, last: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """The kept epochs up to `last` (a block may run on after the last run stopped), in
        order, and their rows."""
        parts = list(self.parts)
        if self.best_rows:
            at = sorted(self.best_rows)
            parts.append((np.array(at), tuple(np.stack([self.best_rows[e][i] for e in at])
                                              for i in range(4))))  # fmt: skip
        epochs = np.concatenate([at for at, _ in parts])
        order = np.argsort(epochs, kind="stable")
        epochs = epochs[order]
        keep = np.concatenate([[True], epochs[1:] != epochs[:-1]]) & (epochs <= last)
        columns = (np.concatenate([rows[i] for _, rows in parts])[order][keep] for i in range(4))
        return epochs[keep], tuple(columns)

    def rule(self, epochs: int) -> str:
        """Which epochs the history holds, in words."""
        if self.every is not None:
            return f"every {self.every}th epoch (--history-every), and each run's best and last"
        if epochs <= FULL_HISTORY:
            return "every epoch"
        return (
            f"every epoch to {FULL_HISTORY:,}, then about {PER_DECADE} a decade, evenly spaced "
            "on a log scale, and each run's best and last"
        )


@dataclass(frozen=True)
class _Stops:
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

    def decide(self, k: int, first: int, record: _Record) -> tuple[RunEnd | None, int]:
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
class _Rules:
    """The stopping rules and what they carry from block to block, per run."""

    settings: TrainSettings
    exact: bool
    ceiling: np.ndarray  # (K,) the loss past which a run has diverged
    floor: np.ndarray  # (K,) the smallest rise of the loss that is not rounding
    best_monitor: np.ndarray  # (K,) the best monitored loss so far
    stale: np.ndarray  # (K,) epochs in a row without improvement
    rising: np.ndarray  # (K,) epochs in a row with a rising loss
    lowest: np.ndarray  # (K,) the lowest training loss so far
    best_epoch: np.ndarray  # (K,) with early stopping: the epoch of the best validation loss
    best_params: Params  # with early stopping: the weights of that epoch

    @classmethod
    def start(
        cls, record: _Record, data: Rows, settings: TrainSettings, exact: bool, params: Params
    ) -> _Rules:
        loss = record.start_loss
        spread = data.moments.spread  # the loss of ŷ = ȳ
        scale = np.maximum(np.maximum(loss, spread), np.finfo(float).tiny)
        with np.errstate(over="ignore"):  # past double precision: no ceiling
            ceiling = DIVERGENCE_FACTOR * scale
        floor = ROUNDING * scale
        K = len(loss)
        monitor = record.rows("val" if settings.early_stopping else "loss", 0, 0)
        zeros = np.zeros(K, dtype=int)
        best = {name: value.copy() for name, value in params.items()}
        lowest = loss.copy()
        return cls(
            settings, exact, ceiling, floor, monitor[0].copy(), zeros, zeros.copy(), lowest,
            zeros.copy(), best,
        )  # fmt: skip

    def read(self, record: _Record, first: int, last: int) -> _Stops:
        """Divergence and the tol rule over epochs first..last, for every run at once."""
        s = self.settings
        L = record.rows("loss", first, last)  # (B, K)
        rose = record.rows("loss", first - 1, last - 1) * (1 + RISE) + self.floor < L
        rises = _run_lengths(rose, self.rising)
        M = record.rows("val" if s.early_stopping else "loss", first, last)
        best_before = np.fmin.accumulate(np.vstack([self.best_monitor, M]), axis=0)[:-1]
        lowest = np.fmin.accumulate(np.vstack([self.lowest, L]), axis=0)[1:]  # up to each epoch
        with np.errstate(invalid="ignore"):
            if self.exact:
                rule = rises >= s.patience
            else:
                rule = (record.start_loss < L) & (BLOW_UP * lowest < L)
            far = self.ceiling < L
            diverges = ~np.isfinite(L) | far | rule
            # a loss within rounding of 0 has nothing left to gain (a constant target, an exact fit)
            improved = (best_before - M > s.tol * np.abs(best_before)) & (self.floor < M)
        stales = _run_lengths(~improved, self.stale)
        converges = stales >= s.patience if s.tol > 0 else np.zeros_like(improved)
        reason = StopReason.EARLY_STOPPING if s.early_stopping else StopReason.TOL
        reached = np.zeros_like(diverges)
        if s.target_loss is not None:
            with np.errstate(invalid="ignore"):
                reached = s.target_loss >= L
        return _Stops(
            diverges, far, converges, rises, stales, M, lowest, reason, self.exact, reached
        )

    def apply(
        self,
        record: _Record,
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
        self, k: int, first: int, stops: _Stops, valid: int, snapshots: Sequence[Params]
    ) -> None:
        """Carry run k's counts and best loss past the `valid` epochs it kept of this block."""
        if not valid:
            return
        M = stops.monitor
        j = int(np.argmin(M[:valid, k]))  # the first epoch at the block's lowest
        if self.settings.early_stopping and M[j, k] < self.best_monitor[k]:
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


def _upto(epoch: int | None, last: int) -> int | None:
    return epoch if epoch is not None and epoch <= last else None


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
