"""The history of a training run: every epoch's rate and losses, kept in memory that does not grow
with the epochs.

While the loop runs, `Record` holds a window of the latest epochs (the block the stopping rules
read, and the epoch before it) and hands older epochs to `Kept`, which keeps every epoch up to
FULL_HISTORY, then about PER_DECADE a decade, and always epoch 0, each run's best and the epochs
where runs ended. `History` is what the run leaves: one row per kept epoch, a column per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from babynn_cli.core.descent import Epochs
from babynn_cli.core.rows import Rows
from babynn_cli.core.vocabulary import Evaluator, Params

# The history keeps every epoch up to FULL_HISTORY, then about PER_DECADE a decade (log-spaced):
# a run of 10⁶ epochs holds about 2,600 rows, whatever its length past that
FULL_HISTORY = 2000
PER_DECADE = 200


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
    kept: str = "every epoch"  # which epochs the rows are (see `Kept`): past FULL_HISTORY, some
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


@dataclass
class Record:
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
    kept: Kept
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
    ) -> Record:
        rows = min(E + 1, 1024)
        lr, loss, val = (np.full((rows, len(losses)), np.nan) for _ in range(3))
        kept = Kept(len(losses), every)
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


class Kept:
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


def _upto(epoch: int | None, last: int) -> int | None:
    return epoch if epoch is not None and epoch <= last else None
