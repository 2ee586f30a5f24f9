"""The small interface every model of babynn offers to the training loop.

A model is a stateless description (its shapes and options); its parameters live in a `Params`
dict of arrays. The training loop trains K copies of a model at once, one per learning rate, so it
hands the model *stacked* parameters: every array with a leading axis of length K. A model computes
the K losses and gradients together, reading the data once for all of them.

The affine model is the network with no hidden layer; a multi-layer perceptron is one more class
with the same methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from babynn_cli.core.design import Design

Params = dict[str, np.ndarray]
# Stacked parameters -> (losses (K,), stacked gradients) on a fixed data set: the full batch.
Oracle = Callable[[Params], tuple[np.ndarray, Params]]
# Stacked parameters -> losses (K,) on a fixed data set.
Evaluator = Callable[[Params], np.ndarray]


class Model(Protocol):
    @property
    def n_inputs(self) -> int: ...

    @property
    def n_outputs(self) -> int: ...

    def init_params(self, rng: np.random.Generator, how: str = "normal") -> Params:
        """One model's initial parameters, drawn from `rng` (`"normal"`) or zero (`"zeros"`)."""
        ...

    def predict(self, params: Params, X: np.ndarray) -> np.ndarray:
        """ŷ of one model for every row of X: (N, m) -> (N, n)."""
        ...

    def losses(self, stack: Params, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """L = (1/N) Σᵢ ||yᵢ - ŷᵢ||² for each of the K stacked models: (K,)."""
        ...

    def losses_and_grads(
        self, stack: Params, X: np.ndarray, Y: np.ndarray
    ) -> tuple[np.ndarray, Params]:
        """The K losses and their gradients (stacked like the parameters), averaged over rows."""
        ...

    def full_batch(self, data: Design) -> Oracle:
        """Losses and gradients on all the rows; a model may precompute what it needs."""
        ...

    def evaluator(self, data: Design) -> Evaluator:
        """Losses on all the rows, for the epoch's loss and the validation loss."""
        ...


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
