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


def full_batch(batch_size: int | None, n_rows: int) -> bool:
    """Whether batches of `batch_size` rows (None: all of them) are the whole of `n_rows`: an
    epoch is then one update with the gradient of every row, gradient descent as the notes
    write it first."""
    return batch_size is None or batch_size >= n_rows


def rows_times(A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """A @ W for rows A: (N, p), W: (p, q), each row's sums taken in one fixed order, so that a
    row's result never depends on the rows beside it. BLAS's kernels treat the rows at a block's
    edge differently (measured: a one-column product of 50 features differs in the last digit
    for some rows when the same rows come in other blocks), so predictions made partition by
    partition, or block by block, would not be the same bytes as those made at once."""
    return np.einsum("ij,jk->ik", A, W)  # einsum's own loops, not BLAS


def mse(Y: np.ndarray, Y_hat: np.ndarray) -> float:
    """L = (1/N) Σᵢ ||yᵢ - ŷᵢ||²: squared error summed over outputs, averaged over rows.

    The residuals are divided by a power of two near their largest before squaring (exact), so
    the sum stays finite whenever the mean is."""
    R = Y - Y_hat
    biggest = float(np.max(np.abs(R))) if R.size else 0.0
    if not np.isfinite(biggest) or biggest == 0.0:
        return float(np.einsum("ij,ij->", R, R) / len(Y)) if np.isfinite(biggest) else np.inf
    u = np.ldexp(1.0, int(np.frexp(biggest)[1]))
    R = R / u
    with np.errstate(over="ignore"):
        return float(np.einsum("ij,ij->", R, R) / len(Y) * u * u)


def r2_per_output(Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
    """R² = 1 - SS_res / SS_tot for each output column (nan where the target is constant).

    Both sums are taken on columns divided by one power of two (exact), so they stay finite."""
    with np.errstate(all="ignore"):
        centred = Y - Y.mean(axis=0)
        scale = np.max(np.abs(centred), axis=0) if len(Y) else np.ones(Y.shape[1])
        u = np.ldexp(1.0, np.frexp(np.where(np.isfinite(scale) & (scale > 0), scale, 1.0))[1])
        ss_res = (((Y - Y_hat) / u) ** 2).sum(axis=0)
        ss_tot = ((centred / u) ** 2).sum(axis=0)
        return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
