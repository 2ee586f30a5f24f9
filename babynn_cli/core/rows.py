"""The rows as trained: raw arrays (or a stream of them) and their standardisation, applied on the
fly.

Standardising a large X would copy it; `Rows` keeps the raw X and Y and hands out standardised
rows only as the training loop asks for them (a batch, a block), and the data's moments already in
standardised coordinates, derived exactly from the raw ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from babynn_cli.core.moments import CHUNK_ROWS, Moments


@dataclass(frozen=True)
class Rows:
    """X: (N, m) raw features, Y: (N, n) targets; the model sees z = (x - mean) / scale."""

    X: np.ndarray
    Y: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    raw_moments: Moments | None = field(default=None, compare=False)
    blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]] | None = field(
        default=None, compare=False
    )
    # a network's targets are standardised too: it sees (y − target_mean) / target_scale
    target_mean: np.ndarray | None = field(default=None, compare=False)
    target_scale: float = field(default=1.0, compare=False)

    @property
    def streamed(self) -> bool:
        return False

    def passes(self) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        """The raw rows (X, Y), block by block."""
        for lo in range(0, len(self.X), CHUNK_ROWS):
            yield self.X[lo : lo + CHUNK_ROWS], self.Y[lo : lo + CHUNK_ROWS]

    @property
    def n_rows(self) -> int:
        return len(self.X)

    @property
    def random_access(self) -> bool:
        """Whether the rows can be read in any order (minibatches): rows in memory can, streamed
        rows once they have their row file."""
        return True

    def order(self, rng: np.random.Generator) -> np.ndarray:
        """An epoch's order of the rows: a full permutation."""
        return rng.permutation(self.n_rows)

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Standardised rows X[idx] (a copy of just those rows)."""
        Z = np.take(self._row_major, idx, axis=0)  # much faster than X[idx] for a 2-d array
        Z -= self.mean
        Z /= self.scale
        return Z

    def targets(self, idx: np.ndarray) -> np.ndarray:
        """Y[idx] (a copy of just those rows), standardised when the model sees it so."""
        return self.standardize_targets(np.take(self.Y, idx, axis=0))

    def standardize_targets(self, Y: np.ndarray) -> np.ndarray:
        """Targets as the model sees them: (y − target_mean) / target_scale, or as they are."""
        if self.target_mean is None:
            return Y
        return (Y - self.target_mean) / self.target_scale

    def standardized_targets(self) -> np.ndarray:
        return self.standardize_targets(self.Y)

    def raw(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The raw rows idx as [x, y], without a copy where they sit in memory: (rows, at), with
        rows[at[i]] the raw row idx[i], features then targets, row-major."""
        return self._rows_and_targets, idx

    @cached_property
    def _rows_and_targets(self) -> np.ndarray:
        """[X Y] in row order: a row's features and targets in one place, read together."""
        return np.ascontiguousarray(np.column_stack([self.X, self.Y]), dtype=float)

    @cached_property
    def _row_major(self) -> np.ndarray:
        """X in row order (a copy only when X is column-major): rows gathered at random stay
        a few cache lines each."""
        return np.ascontiguousarray(self.X)

    def standardize(self, X: np.ndarray) -> np.ndarray:
        """Raw rows X (a block of them) standardised: a new array."""
        return (X - self.mean) / self.scale

    def standardized(self) -> np.ndarray:
        """All of X standardised: a full copy, for small data only."""
        return (self.X - self.mean) / self.scale

    @cached_property
    def moments(self) -> Moments:
        """The moments of (z, y)."""
        return self.unscaled_moments.scaled(self.mean, self.scale)

    @cached_property
    def unscaled_moments(self) -> Moments:
        """The moments of the raw (x, y), with the least-squares fit in the data's own units."""
        return self.raw_moments if self.raw_moments is not None else Moments.of(self.X, self.Y)


SHUFFLE_BLOCK_ROWS = 1 << 16  # streamed rows are shuffled within blocks of this many rows
HELD_BLOCKS = 3  # blocks of a row file held at once (a batch may straddle two, three with a split)


@dataclass(frozen=True)
class RowFile:
    """A stream's row file: its checked rows [x, y] as raw float64, row after row, written by its
    first pass (`data.stream.RowFileWriter`), read one block of SHUFFLE_BLOCK_ROWS rows at a
    time: memory holds HELD_BLOCKS blocks, however many rows the file has."""

    path: str
    n_rows: int
    width: int  # features, then targets

    def block(self, b: int) -> np.ndarray:
        """Block b's rows, (≤ SHUFFLE_BLOCK_ROWS, width), read from the file."""
        lo = b * SHUFFLE_BLOCK_ROWS
        count = min(SHUFFLE_BLOCK_ROWS, self.n_rows - lo) * self.width
        with open(self.path, "rb") as f:
            f.seek(lo * self.width * 8)
            return np.fromfile(f, dtype=np.float64, count=count).reshape(-1, self.width)


@dataclass(frozen=True)
class StreamedRows(Rows):
    """Rows that never sit in memory whole (`--stream`): the moments were gathered in passes over
    `blocks`, which reads the raw rows again, block by block, whenever another pass is needed.
    For minibatches the rows are read from the stream's `row_file`, a block at a time,
    in the order `order` draws; at full batch no rows are read but the passes' (X and Y are
    empty), which a network's full-batch epochs make one more of each (`core.model`)."""

    row_file: RowFile | None = field(default=None, compare=False)
    # these rows' places in the row file, when they are not all its rows (a validation split)
    in_file: np.ndarray | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
        raw: Moments,
        mean: np.ndarray,
        scale: np.ndarray,
        row_file: RowFile | None = None,
        in_file: np.ndarray | None = None,
    ) -> StreamedRows:
        m, n = len(mean), len(raw.y_mean)
        X, Y = np.empty((0, m)), np.empty((0, n))
        return cls(X, Y, mean, scale, raw, blocks, row_file=row_file, in_file=in_file)

    @property
    def streamed(self) -> bool:
        return True

    @property
    def n_rows(self) -> int:
        assert self.raw_moments is not None
        return self.raw_moments.n_rows

    @property
    def random_access(self) -> bool:
        return self.row_file is not None

    def passes(self) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        assert self.blocks is not None
        return self.blocks()

    def order(self, rng: np.random.Generator) -> np.ndarray:
        """An epoch's order, read from the file in blocks: the blocks of SHUFFLE_BLOCK_ROWS rows
        in a random order, and the rows of each block in a random order (so a batch's rows come
        from one block, or two where blocks meet; counted among these rows, so with a validation
        split a block spans a few more of the file's). Data of one block gets the in-memory full
        permutation, draw for draw."""
        N = self.n_rows
        if N <= SHUFFLE_BLOCK_ROWS:
            return rng.permutation(N)
        starts = np.arange(0, N, SHUFFLE_BLOCK_ROWS)[rng.permutation(-(-N // SHUFFLE_BLOCK_ROWS))]
        return np.concatenate(
            [lo + rng.permutation(min(SHUFFLE_BLOCK_ROWS, N - lo)) for lo in starts]
        )

    def rows(self, idx: np.ndarray) -> np.ndarray:
        Z = self._gather(idx)[:, : len(self.mean)]
        Z -= self.mean
        Z /= self.scale
        return Z

    def targets(self, idx: np.ndarray) -> np.ndarray:
        return self.standardize_targets(self._gather(idx)[:, len(self.mean) :])

    def raw(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._gather(idx), np.arange(len(idx))

    def _gather(self, idx: np.ndarray) -> np.ndarray:
        """The raw rows idx ([x, y]), from the blocks they lie in (one or two, in `order`)."""
        assert self.row_file is not None
        if self.in_file is not None:
            idx = self.in_file[idx]
        which = idx // SHUFFLE_BLOCK_ROWS
        out = np.empty((len(idx), self.row_file.width))
        for b in np.unique(which):
            at = which == b
            out[at] = np.take(self._block(int(b)), idx[at] - b * SHUFFLE_BLOCK_ROWS, axis=0)
        return out

    def _block(self, b: int) -> np.ndarray:
        held = self._held
        if b not in held:
            if len(held) >= HELD_BLOCKS:
                del held[next(iter(held))]  # the block read longest ago
            assert self.row_file is not None
            held[b] = self.row_file.block(b)
        return held[b]

    @cached_property
    def _held(self) -> dict[int, np.ndarray]:
        return {}
