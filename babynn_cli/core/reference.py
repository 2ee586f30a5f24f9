"""The closed-form optimum W̃ = argmin ||Y - X̃W̃||², computed stably.

The notes write it as (X̃ᵀX̃)⁻¹X̃ᵀY; forming X̃ᵀX̃ squares the condition number, so instead the
columns are centred (with an intercept, w0 = ȳ - x̄ᵀW solves the intercept's equation exactly),
scaled to unit norm, and the least-squares problem is solved by the SVD (numpy's lstsq). Rank
deficient designs get the minimum-norm solution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from babynn_cli.core.vocabulary import mse


@dataclass(frozen=True)
class LeastSquares:
    """W: (m, n), w0: (n,) in the coordinates of the X given; loss L* on that data."""

    W: np.ndarray
    w0: np.ndarray
    loss: float


def least_squares(X: np.ndarray, Y: np.ndarray, intercept: bool = True) -> LeastSquares:
    """The least-squares affine fit of Y: (N, n) on X: (N, m)."""
    if intercept:
        x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
        Xc, Yc = X - x_mean, Y - y_mean
    else:
        x_mean, y_mean = np.zeros(X.shape[1]), np.zeros(Y.shape[1])
        Xc, Yc = X, Y
    norms = np.sqrt(np.einsum("ij,ij->j", Xc, Xc))
    norms = np.where(norms > 0, norms, 1.0)
    scaled = np.linalg.lstsq(Xc / norms, Yc, rcond=None)[0]
    W = scaled / norms[:, None]
    w0 = y_mean - x_mean @ W
    return LeastSquares(W=W, w0=w0, loss=mse(Y, X @ W + w0))
