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


# |values| inside (2⁻⁴⁰⁰, 2⁴⁰⁰) have squares, and sums of up to 2¹⁰⁰ of them, far inside double
# precision: summed as they are; past it, after division by a power of two (exact)
SAFE = 2.0**400
SUM_ROWS = 1 << 15  # rows summed at a time: small temporaries, reused (no page faults)


def mse(Y: np.ndarray, Y_hat: np.ndarray) -> float:
    """L = (1/N) Σᵢ ||yᵢ - ŷᵢ||²: squared error summed over outputs, averaged over rows.

    Residuals past SAFE are divided by a power of two near the largest before squaring
    (exact), so the sum stays finite whenever the mean is."""
    if not len(Y):
        return 0.0
    sums, biggest = _squares(Y, Y_hat)
    u = _unit(biggest)
    if u is None:
        return float(sums.sum() / len(Y))
    with np.errstate(over="ignore"):  # the mean in u² units first: the sum itself may overflow
        return float((_squares(Y, Y_hat, u)[0] / len(Y) * u * u).sum())


def r2_per_output(Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
    """R² = 1 - SS_res / SS_tot for each output column (nan where the target is constant).

    Past SAFE, both sums are taken on columns divided by one power of two (exact), so their
    ratio stays finite for any finite data."""
    with np.errstate(all="ignore"):
        mean = Y.mean(axis=0)[None, :]
        ss_tot, biggest = _squares(Y, mean)
        u = _unit(biggest)
        ss_res = _squares(Y, Y_hat, u)[0]
        if u is not None:
            ss_tot = _squares(Y, mean, u)[0]
        return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)


def _squares(
    Y: np.ndarray, Z: np.ndarray, u: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Σ ((y − z)/u)² of each column (u None: 1) and each column's largest |y − z| / u, SUM_ROWS
    rows at a time, so the temporaries are small and reused; Z has Y's rows, or one row to
    subtract from each. A nan is passed over by the largest, and makes its column's sum nan."""
    sums, biggest = np.zeros(Y.shape[1]), np.zeros(Y.shape[1])
    with np.errstate(all="ignore"):
        for lo in range(0, len(Y), SUM_ROWS):
            R = Y[lo : lo + SUM_ROWS] - (Z if len(Z) == 1 else Z[lo : lo + SUM_ROWS])
            if u is not None:
                R /= u
            biggest = np.fmax(biggest, np.fmax(R.max(axis=0), -R.min(axis=0)))
            sums += np.einsum("ij,ij->j", R, R)
    return sums, biggest


def _unit(biggest: np.ndarray) -> np.ndarray | None:
    """None when every column's largest |y − z| is inside (1/SAFE, SAFE) (or 0): their squares
    are summed as they are. Otherwise each column's power of two near it (1 for a column of
    zeros or one holding inf), to divide by first (exact)."""
    if np.all((biggest < SAFE) & ((biggest > 1 / SAFE) | (biggest == 0))):
        return None
    ok = np.isfinite(biggest) & (biggest > 0)
    return np.ldexp(1.0, np.frexp(np.where(ok, biggest, 1.0))[1])
