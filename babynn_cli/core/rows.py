"""The rows as trained: raw arrays and their standardisation, applied on the fly.

Standardising a large X would copy it; `Rows` keeps the raw X and Y and hands out standardised
rows only as the training loop asks for them (a batch, a block), and the data's moments already in
standardised coordinates, derived exactly from the raw ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from babynn_cli.core.moments import Moments


@dataclass(frozen=True)
class Rows:
    """X: (N, m) raw features, Y: (N, n) targets; the model sees z = (x - mean) / scale."""

    X: np.ndarray
    Y: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    raw_moments: Moments | None = field(default=None, compare=False)

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
