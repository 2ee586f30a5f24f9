"""Feature standardisation: z = (x - mean) / scale, statistics from the training rows only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from babynn_cli.core.moments import CHUNK_ROWS


@dataclass(frozen=True)
class Standardizer:
    """mean: (m,), scale: (m,). A constant column gets scale 1, so nothing divides by zero."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, center: bool = True) -> Standardizer:
        """Mean 0 and standard deviation 1 per column of X: (N, m).

        Without centring (a model with no intercept cannot absorb a shift) each column is divided
        by its root mean square instead, so that ŷ = Wᵀx keeps its meaning.
        """
        mean = X.mean(axis=0)
        variance = np.zeros(X.shape[1])
        for lo in range(0, len(X), CHUNK_ROWS):  # block by block: no copy of X
            block = X[lo : lo + CHUNK_ROWS] - mean
            variance += np.einsum("ij,ij->j", block, block)
        return cls.from_statistics(mean, variance / len(X), center)

    @classmethod
    def from_statistics(cls, mean: np.ndarray, variance: np.ndarray, center: bool) -> Standardizer:
        """From each column's mean and variance (ddof 0)."""
        if center:
            scale = np.sqrt(variance)
        else:
            scale = np.sqrt(variance + mean * mean)
            mean = np.zeros_like(mean)
        return cls(mean=mean, scale=np.where(scale > 0, scale, 1.0))

    @classmethod
    def identity(cls, m: int) -> Standardizer:
        return cls(mean=np.zeros(m), scale=np.ones(m))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.scale
