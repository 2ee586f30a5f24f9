"""Feature standardisation: z = (x - mean) / scale, statistics from the training rows only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
        if center:
            mean = X.mean(axis=0)
            scale = X.std(axis=0)
        else:
            mean = np.zeros(X.shape[1])
            scale = np.sqrt((X * X).mean(axis=0))
        scale = np.where(scale > 0, scale, 1.0)
        return cls(mean=mean, scale=scale)

    @classmethod
    def identity(cls, m: int) -> Standardizer:
        return cls(mean=np.zeros(m), scale=np.ones(m))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.scale
