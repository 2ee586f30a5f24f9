"""The second moments of fewer rows than features, kept as the rows themselves.

With N rows and m > N features, xx = (1/N) Σ (x − x̄)(x − x̄)ᵀ has rank below N: it is FᵀF, F the
centred rows over √N, (N, m). Kept as F, its products, diagonal and rescaling cost O(Nm) memory
and work, where the m × m matrix costs O(m²) memory (800 MB at m = 10,000) and solving with it
O(m³) work. `core.moments.Moments.of_wide` builds the moments this way; everything that reads xx
goes through `xx @ E` and the few functions below, which take the dense matrix too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LowRank:
    """xx = FᵀF, F: (k, m) with k < m."""

    F: np.ndarray

    def __matmul__(self, E: np.ndarray) -> np.ndarray:
        """xx·E for E: (m, n) or stacked (K, m, n), as Fᵀ(F·E): O(kmn)."""
        return np.asarray(self.F.T @ (self.F @ E))

    def diagonal(self) -> np.ndarray:
        """Each column's Σ f²: the variances when F is the centred rows over √N."""
        return np.einsum("ij,ij->j", self.F, self.F)

    def dense(self) -> np.ndarray:
        """FᵀF itself, m × m: for checking on small data only."""
        return np.asarray(self.F.T @ self.F)


Second = np.ndarray | LowRank  # xx as `Moments` holds it: the m × m matrix, or its factor


def diagonal(xx: Second) -> np.ndarray:
    """xx's diagonal, a new array."""
    return xx.diagonal() if isinstance(xx, LowRank) else np.diag(xx).copy()


def rescaled(xx: Second, scale: np.ndarray) -> Second:
    """xx / (scale·scaleᵀ): the moments of x / scale."""
    if isinstance(xx, LowRank):
        return LowRank(xx.F / scale)
    return xx / np.outer(scale, scale)


def all_finite(xx: Second) -> bool:
    return bool(np.isfinite(xx.F if isinstance(xx, LowRank) else xx).all())


@dataclass(frozen=True)
class RowsOrigin:
    """The least-squares fit through the origin (`--no-intercept`) of rows in memory, of least
    norm (np.linalg.lstsq: the SVD of the N × m rows, O(N²m)), found when asked for."""

    X: np.ndarray
    Y: np.ndarray

    def found(self) -> tuple[np.ndarray, float]:
        """W (raw units) and L* of the fit through the origin."""
        W = np.linalg.lstsq(self.X, self.Y, rcond=None)[0]
        r = self.Y - self.X @ W
        return W, float(np.einsum("ij,ij->", r, r) / len(self.X))
