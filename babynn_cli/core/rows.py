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
    def n_features(self) -> int:
        return self.X.shape[1]

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Standardised rows X[idx] (a copy of just those rows)."""
        Z = np.take(self._row_major, idx, axis=0)  # much faster than X[idx] for a 2-d array
        Z -= self.mean
        Z /= self.scale
        return Z

    @cached_property
    def _row_major(self) -> np.ndarray:
        """X in row order (a copy only when X is column-major): rows gathered at random stay
        a few cache lines each."""
        return np.ascontiguousarray(self.X)

    def standardized(self) -> np.ndarray:
        """All of X standardised: a full copy, for small data only."""
        return (self.X - self.mean) / self.scale

    @cached_property
    def moments(self) -> Moments:
        """The moments of (z, y)."""
        raw = self.raw_moments if self.raw_moments is not None else Moments.of(self.X, self.Y)
        return raw.scaled(self.mean, self.scale)


@dataclass(frozen=True)
class StreamedRows(Rows):
    """Rows that never sit in memory whole (`--stream`): the moments were gathered in passes over
    `blocks`, which reads the raw rows again, block by block, whenever another pass is needed (the
    final loss). X and Y hold no rows; what needs rows one by one (minibatches, networks, data with
    fewer rows than columns) is not trained from streamed rows."""

    @classmethod
    def of(
        cls,
        blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
        raw: Moments,
        mean: np.ndarray,
        scale: np.ndarray,
    ) -> StreamedRows:
        m, n = len(mean), len(raw.y_mean)
        return cls(np.empty((0, m)), np.empty((0, n)), mean, scale, raw, blocks)

    @property
    def streamed(self) -> bool:
        return True

    @property
    def n_rows(self) -> int:
        assert self.raw_moments is not None
        return self.raw_moments.n_rows

    def passes(self) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        assert self.blocks is not None
        return self.blocks()
