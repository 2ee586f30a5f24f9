"""The small interface every model of babynn offers to the training loop.

A model is a stateless description (its shapes and options); its parameters live in a
`Params` dict of arrays, so that the training loop can copy, update and keep the best of them
without knowing what they mean. The affine model is the network with no hidden layer; a
multi-layer perceptron is one more class with the same four methods.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

Params = dict[str, np.ndarray]


class Model(Protocol):
    n_inputs: int
    n_outputs: int

    def init_params(self, rng: np.random.Generator, how: str = "normal") -> Params:
        """Initial parameters, drawn from `rng` (`how="normal"`) or all zero (`how="zeros"`)."""
        ...

    def predict(self, params: Params, X: np.ndarray) -> np.ndarray:
        """ŷ for every row of X: (N, m) -> (N, n)."""
        ...

    def loss(self, params: Params, X: np.ndarray, Y: np.ndarray) -> float:
        """L = (1/N) Σᵢ ||yᵢ - ŷᵢ||²."""
        ...

    def loss_and_grads(self, params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[float, Params]:
        """L and ∇L with respect to each parameter, averaged over the N rows given."""
        ...


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
