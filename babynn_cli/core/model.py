"""The small interface every model of babynn offers to the training loop.

A model is a stateless description (its shapes and options); its parameters live in a `Params`
dict of arrays, stacked K deep when K runs train at once (see `core.vocabulary`). The affine model
is the network with no hidden layer (`core.affine`); a multi-layer perceptron is one more class
with the same methods (`core.mlp`).

A model says how it descends (`descent`): by default, the notes' update rule as written
(`core.descent.plain_descent`); the affine model overrides it with exact re-arrangements of the same
rule that run faster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from babynn_cli.core.descent import Descent, plain_descent
from babynn_cli.core.optimizers import GD, OptimizerSpec
from babynn_cli.core.rows import Rows
from babynn_cli.core.vocabulary import Evaluator, Oracle, Params


class Model(Protocol):
    n_inputs: int
    n_outputs: int
    intercept: bool  # whether ŷ has a bias term (a network always has its biases)
    loss: str  # what it learns by (`core.losses`): mse, logistic or softmax
    l2: float  # α of the penalty α·||W||² on its weights (not the biases)

    def init_params(self, rng: np.random.Generator, how: str = "normal") -> Params:
        """One model's initial parameters, drawn from `rng` (`"normal"`) or zero (`"zeros"`)."""
        ...

    def predict(self, params: Params, X: np.ndarray) -> np.ndarray:
        """ŷ of one model for every row of X: (N, m) -> (N, n)."""
        ...

    def losses(self, stack: Params, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """L = (1/N) Σᵢ ℓ(ŷᵢ, yᵢ) (+ the penalty) for each of the K stacked models: (K,)."""
        ...

    def losses_and_grads(
        self, stack: Params, X: np.ndarray, Y: np.ndarray
    ) -> tuple[np.ndarray, Params]:
        """The K losses and their gradients (stacked like the parameters), averaged over rows."""
        ...

    def penalty(self, stack: Params) -> np.ndarray | float:
        """α||W||² of each of the K stacked models (0 without --l2)."""
        ...

    def full_batch(self, data: Rows) -> Oracle:
        """Losses and gradients on all the (standardised) rows; streamed rows block by block,
        each block's averages weighted by its rows."""
        if data.streamed:
            return lambda stack: _blockwise(data, lambda Z, Y: self.losses_and_grads(stack, Z, Y))
        X, Y = data.standardized(), data.standardized_targets()
        return lambda stack: self.losses_and_grads(stack, X, Y)

    def evaluator(self, data: Rows) -> Evaluator:
        """Losses on all the rows, for the epoch's loss and the validation loss."""
        if data.streamed:
            return lambda stack: _blockwise(data, lambda Z, Y: (self.losses(stack, Z, Y), {}))[0]
        X, Y = data.standardized(), data.standardized_targets()
        return lambda stack: self.losses(stack, X, Y)

    def descent(
        self,
        data: Rows,
        batch_size: int | None,
        rng: np.random.Generator,
        epochs: int | None = None,
        runs: int = 1,
        optimizer: OptimizerSpec = GD,
    ) -> Descent:
        """How this model descends on `data` with batches of `batch_size` rows (None: all), the
        rows shuffled by `rng`, for at most `epochs` epochs (None: not known), `runs` runs at once:
        the notes' rule as written, unless the model knows better."""
        return plain_descent(self, data, batch_size, rng, False, optimizer)


def _blockwise(
    data: Rows, average: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, Params]]
) -> tuple[np.ndarray, Params]:
    """Averages over all the rows (losses, gradients) from one pass over streamed rows: each
    block's averages, weighted by its share of the rows."""
    losses: np.ndarray | None = None
    grads: Params = {}
    for X, Y in data.passes():
        if not len(X):
            continue
        share = len(X) / data.n_rows
        block_losses, block_grads = average(data.standardize(X), data.standardize_targets(Y))
        losses = block_losses * share if losses is None else losses + block_losses * share
        for k, g in block_grads.items():
            grads[k] = g * share if k not in grads else grads[k] + g * share
    assert losses is not None
    return losses, grads
