"""Minibatch gradient descent on the affine model, a whole epoch in a few array operations.

For squared loss one minibatch update of θ = [W; w0] is an affine map: with the batch's
moments Ĝ = (1/B) Σ x̃x̃ᵀ and ĉ = (1/B) Σ x̃yᵀ (x̃ = [x; 1]), ∇L_θ = 2(Ĝθ - ĉ) (answers 1.d and 1.e,
averaged over the batch), so θ ← θ - η∇L_θ is θ̂ ← (I - η·D)·θ̂ on θ̂ = [θ; I], D = 2[[Ĝ, -ĉ], [0, 0]].
An epoch is the product of its batches' maps, in order. The maps of a block of batches are built
at once from the batches' moments (one batched product), multiplied together pairwise in a tree
(log₂ of the batches' number of batched products), and applied to the K runs' θ̂ — the same
iterates as updating batch after batch, to rounding, with no Python loop over the batches.
"""

from __future__ import annotations

import numpy as np

from babynn_cli.core.design import Design
from babynn_cli.core.model import Params

# Up to this many columns in θ̂ (m + 1 + n), composing maps costs less than a Python step per batch.
MAX_WIDTH = 48
ROWS_PER_BLOCK = 1 << 16  # rows gathered at a time
FLOATS_PER_BLOCK = 1 << 22  # bounds the block's maps: batches × K × width²


class EpochRunner:
    """Runs minibatch epochs of the affine model on `data` with batches of `batch` rows."""

    def __init__(self, data: Design, batch: int, intercept: bool) -> None:
        self.data, self.batch, self.intercept = data, batch, intercept
        self.m, self.n = data.n_features, data.Y.shape[1]
        self.p = self.m + (1 if intercept else 0)  # rows of θ
        self.width = self.p + self.n

    def state(self, stack: Params) -> np.ndarray:
        """θ̂ = [W; w0; I] of each run: (K, width, n)."""
        K = len(stack["W"])
        parts = [stack["W"]]
        if self.intercept:
            parts.append(stack["w0"][:, None, :])
        parts.append(np.broadcast_to(np.eye(self.n), (K, self.n, self.n)))
        return np.concatenate(parts, axis=1)

    def params(self, theta: np.ndarray) -> Params:
        params = {"W": theta[:, : self.m, :].copy()}
        if self.intercept:
            params["w0"] = theta[:, self.m, :].copy()
        return params

    def run(self, stack: Params, order: np.ndarray, rates: np.ndarray) -> Params:
        """One epoch: batches of `order`'s rows in turn; rates: (batches, K), one row a batch."""
        theta = self.state(stack)
        K = theta.shape[0]
        B = self.batch
        per_block = max(1, min(ROWS_PER_BLOCK // B, FLOATS_PER_BLOCK // (K * self.width**2)))
        batches = len(rates)
        for first in range(0, batches, per_block):
            last = min(batches, first + per_block)
            maps = self._maps(order[first * B : last * B], rates[first:last])
            theta = _compose(maps) @ theta
        return self.params(theta)

    def _maps(self, rows: np.ndarray, rates: np.ndarray) -> np.ndarray:
        """I - η·D for each batch of `rows` and each run: (batches, K, width, width)."""
        B, m, p = self.batch, self.m, self.p
        count = len(rates)
        Z = self.data.rows(rows)
        Y = np.take(self.data.Y, rows, axis=0)
        short = count * B - len(rows)  # the epoch's last batch may be short: pad with zeros
        if short:
            Z = np.concatenate([Z, np.zeros((short, m))])
            Y = np.concatenate([Y, np.zeros((short, Y.shape[1]))])
        Zb, Yb = Z.reshape(count, B, m), Y.reshape(count, B, -1)
        D = np.empty((count, self.width, self.width))
        if B == 1:  # outer products: faster than a product of 1-row matrices
            D[:, :m, :m] = Z[:, :, None] * Z[:, None, :]  # Σ xxᵀ
            D[:, :m, p:] = -Z[:, :, None] * Y[:, None, :]  # -Σ xyᵀ
        else:
            D[:, :m, :m] = np.matmul(Zb.transpose(0, 2, 1), Zb)
            D[:, :m, p:] = -np.matmul(Zb.transpose(0, 2, 1), Yb)
        if self.intercept:  # x̃ = [x; 1]: the sums of x and y, and the batch's size
            sums = Zb.sum(axis=1)
            D[:, :m, m] = sums
            D[:, m, :m] = sums
            D[:, m, m] = B
            D[:, m, p:] = -Yb.sum(axis=1)
        D[:, p:, :] = 0.0
        sizes = np.full(count, float(B))
        sizes[-1] -= short
        if short and self.intercept:
            D[-1, m, m] = sizes[-1]
        D *= (2.0 / sizes)[:, None, None]
        maps = -rates[:, :, None, None] * D[:, None]  # -η·D, (batches, K, width, width)
        maps += np.eye(self.width)
        return maps

    @staticmethod
    def supports(width: int) -> bool:
        return width <= MAX_WIDTH


def _compose(maps: np.ndarray) -> np.ndarray:
    """maps[-1] @ ... @ maps[0] for maps (batches, K, w, w): pairwise, in a tree."""
    while len(maps) > 1:
        paired = np.matmul(maps[1::2], maps[0 : len(maps) - 1 : 2])  # later batch on the left
        maps = paired if len(maps) % 2 == 0 else np.concatenate([paired, maps[-1:]])
    return maps[0]
