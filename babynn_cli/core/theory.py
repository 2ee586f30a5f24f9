"""What theory says about full-batch gradient descent on the affine model with squared loss.

The loss is quadratic in W̃ = [W; w0ᵀ] with Hessian H = (2/N) X̃ᵀX̃ (X̃ the features with a column
of ones when there is an intercept). Gradient descent with a constant rate η converges exactly
when η < 2/λmax(H), fastest at η = 2/(λmax + λmin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curvature:
    lambda_max: float
    lambda_min: float

    @property
    def stable_lr(self) -> float:
        """The stability bound 2/λmax: constant rates below it converge at full batch."""
        return 2.0 / self.lambda_max if self.lambda_max > 0 else float("inf")

    @property
    def best_lr(self) -> float:
        """2/(λmax + λmin): the constant rate that converges fastest at full batch."""
        return 2.0 / (self.lambda_max + self.lambda_min) if self.lambda_max > 0 else float("inf")

    @property
    def suggested_lr(self) -> float:
        """2/(λmax + λmin) rounded down to two significant digits: a rate to type."""
        lr = self.best_lr
        if not np.isfinite(lr) or lr <= 0:
            return lr
        unit = 10.0 ** (np.floor(np.log10(lr)) - 1)
        return float(np.floor(lr / unit) * unit)

    @property
    def condition_number(self) -> float:
        """κ = λmax/λmin (inf when H is singular)."""
        return self.lambda_max / self.lambda_min if self.lambda_min > 0 else float("inf")


def curvature_of(gram: np.ndarray) -> Curvature:
    """Extreme eigenvalues of H = 2·gram, gram = X̃ᵀX̃ / N."""
    eig = np.linalg.eigvalsh(2.0 * gram)
    lam_min = float(max(eig[0], 0.0))  # rounding can make a singular H's smallest one negative
    return Curvature(lambda_max=float(eig[-1]), lambda_min=lam_min)
