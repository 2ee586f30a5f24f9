"""The words every part of the core shares: parameters, stacks of them, and the loss.

A leaf: it imports nothing from babynn. Parameters live in a `Params` dict of arrays ("W", "w0"
for the affine model; "W1", "b1", ... for a network). The training loop trains K copies of a model
at once, one per learning rate, so it hands models *stacked* parameters: every array with a leading
axis of length K.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Params = dict[str, np.ndarray]
# Stacked parameters -> (losses (K,), stacked gradients) on a fixed data set: the full batch.
Oracle = Callable[[Params], tuple[np.ndarray, Params]]
# Stacked parameters -> losses (K,) on a fixed data set.
Evaluator = Callable[[Params], np.ndarray]


def stack(params: Params, k: int) -> Params:
    """K copies of one model's parameters along a new leading axis."""
    return {name: np.repeat(value[None], k, axis=0) for name, value in params.items()}


def unstack(stacked: Params, k: int) -> Params:
    """The k-th model of a stack."""
    return {name: value[k].copy() for name, value in stacked.items()}


def mse(Y: np.ndarray, Y_hat: np.ndarray) -> float:
    """L = (1/N) Σᵢ ||yᵢ - ŷᵢ||²: squared error summed over outputs, averaged over rows."""
    R = Y - Y_hat
    return float(np.einsum("ij,ij->", R, R) / len(Y))


def r2_per_output(Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
    """R² = 1 - SS_res / SS_tot for each output column (nan where the target is constant)."""
    ss_res = ((Y - Y_hat) ** 2).sum(axis=0)
    ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
