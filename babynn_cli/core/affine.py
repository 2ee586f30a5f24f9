"""The affine model of the notes: ŷ = Wᵀx + w0, W: (m, n), w0: (n,).

Each gradient line carries the answer key's formula (exercise 1). The notes state them for one
pair (x, y); here they are averaged over a batch of N rows, so ∇L_ŷ = -(2/N)(y - ŷ) per row.

K stacked models (W: (K, m, n), w0: (K, n)) are evaluated as one wide model: their weights side
by side make an (m, K·n) matrix, so one product X @ W reads the data once for all K.

Its loss is a quadratic in (W, w0), so it descends faster than the notes' rule written out (see
`descent`): at full batch from the data's centred moments (`core.moments.Moments`), gathered in one
pass, which give every epoch's loss and gradient in O(m²n) operations however many rows there are;
with minibatches, an epoch as the product of its batches' affine maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from babynn_cli.core import compiled
from babynn_cli.core.compiled import CompiledDescent
from babynn_cli.core.descent import (
    BatchMapDescent,
    Descent,
    GradientDescent,
    MomentDescent,
    plain_descent,
)
from babynn_cli.core.losses import row_losses, row_losses_and_deltas
from babynn_cli.core.model import Model
from babynn_cli.core.optimizers import GD, OptimizerSpec
from babynn_cli.core.rows import Rows
from babynn_cli.core.vocabulary import Evaluator, Oracle, Params, full_batch, rows_times


@dataclass(frozen=True)
class AffineModel(Model):
    """ŷ = Wᵀx + w0 (or ŷ = Wᵀx when `intercept` is False)."""

    n_inputs: int
    n_outputs: int
    intercept: bool = True
    loss: str = "mse"  # its kind (`core.losses`): mse, logistic or softmax
    l2: float = 0.0  # α of the penalty α·||W||² (w0 is not penalised)

    def init_params(self, rng: np.random.Generator, how: str = "normal") -> Params:
        """W and w0 from N(0, 1/m), variance 1/m as in the notes; or zeros."""
        m, n = self.n_inputs, self.n_outputs
        if how == "zeros":
            params = {"W": np.zeros((m, n)), "w0": np.zeros(n)}
        elif how == "normal":
            sd = np.sqrt(1.0 / m)
            params = {"W": rng.normal(0.0, sd, size=(m, n)), "w0": rng.normal(0.0, sd, size=n)}
        else:
            raise ValueError(f"unknown initialisation {how!r}")
        if not self.intercept:
            del params["w0"]
        return params

    def predict(self, params: Params, X: np.ndarray) -> np.ndarray:
        """ŷ of one model for every row, each row alone (`rows_times`): (N, m) -> (N, n)."""
        Y_hat = rows_times(X, params["W"])  # ŷ = Wᵀx for every row
        if "w0" in params:
            Y_hat += params["w0"]  # ... + w0
        return Y_hat

    def _outputs(self, stack: Params, X: np.ndarray) -> np.ndarray:
        """ŷ (the outputs z) of each of the K models: (N, K, n)."""
        W = stack["W"]
        K, m, n = W.shape
        wide = W.transpose(1, 0, 2).reshape(m, K * n)  # (m, K·n): the K models side by side
        Z = (X @ wide).reshape(len(X), K, n)
        if "w0" in stack:
            Z += stack["w0"]
        return Z

    def losses(self, stack: Params, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        Z = self._outputs(stack, X)  # L = (1/N) Σᵢ ℓ(ŷᵢ, yᵢ) (+ α||W||²), (K,)
        return row_losses(self.loss, Z, Y[:, None, :]).sum(axis=0) / len(X) + self.penalty(stack)

    def losses_and_grads(
        self, stack: Params, X: np.ndarray, Y: np.ndarray
    ) -> tuple[np.ndarray, Params]:
        """X: (N, m), Y: (N, n); W: (K, m, n) -> losses (K,), ∇W (K, m, n), ∇w0 (K, n)."""
        N = len(X)
        Z = self._outputs(stack, X)
        # ∇L_ŷ: −2(y − ŷ) for squared error (answer 1.a), p − y for cross-entropy, per row
        row, delta = row_losses_and_deltas(self.loss, Z, Y[:, None, :])
        losses = row.sum(axis=0) / N + self.penalty(stack)
        G = delta / N  # averaged over the rows
        K, m, n = stack["W"].shape
        grad_W = X.T @ G.reshape(N, K * n)  # ∇L_W = ∇L_ŷ ∇ŷ_W = xᵀ∇L_ŷ (answers 1.b, 1.d)
        grads = {"W": grad_W.reshape(m, K, n).transpose(1, 0, 2)}
        if self.l2:
            grads["W"] += 2.0 * self.l2 * stack["W"]  # ∇(α||W||²) = 2αW
        if "w0" in stack:
            grads["w0"] = G.sum(axis=0)  # ∇L_w0 = ∇L_ŷ I (answers 1.c, 1.e), (K, n)
        return losses, grads

    def penalty(self, stack: Params) -> np.ndarray | float:
        """α||W||² of each of the K models (0 without --l2)."""
        if not self.l2:
            return 0.0
        return self.l2 * np.einsum("kij,kij->k", stack["W"], stack["W"])

    @property
    def quadratic(self) -> bool:
        """Squared error: the loss is a quadratic of the weights, and the moments give it."""
        return self.loss == "mse"

    def full_batch(self, data: Rows) -> Oracle:
        """From the data's moments for squared error; the direct way when there are fewer rows
        than features, and for cross-entropy."""
        if data.n_rows < data.n_features or not self.quadratic:
            return super().full_batch(data)
        return data.moments.ridged(self.l2).losses_and_grads

    def evaluator(self, data: Rows) -> Evaluator:
        if data.n_rows < data.n_features or not self.quadratic:
            return super().evaluator(data)
        return data.moments.ridged(self.l2).losses

    def descent(
        self,
        data: Rows,
        batch_size: int | None,
        rng: np.random.Generator,
        epochs: int | None = None,
        runs: int = 1,
        optimizer: OptimizerSpec = GD,
    ) -> Descent:
        """The notes' rule re-arranged: from the moments at full batch (momentum and Nesterov
        too); with minibatches, compiled row by row when numba is installed and that is the
        faster way (`compiled.pays`; the notes' rule only), else as a product of batch maps (while
        θ is narrow enough for that to pay; momentum and Nesterov too); as written otherwise, and
        for Adam (`core.optimizers`)."""
        full = full_batch(batch_size, data.n_rows)
        if not full and not data.random_access:
            raise ValueError("streamed rows without their row file train at full batch only")
        linear = optimizer.plain or optimizer.heavy
        if full and (data.n_rows < data.n_features or not self.quadratic or not linear):
            # convex: exact too, with the notes' rule
            return GradientDescent(self.full_batch(data), optimizer.plain, optimizer)
        if full:
            return MomentDescent(data.moments.ridged(self.l2), self.intercept, optimizer)
        assert batch_size is not None
        if not self.quadratic or self.l2 or not linear:
            return plain_descent(self, data, batch_size, rng, False, optimizer)
        p = self.n_inputs + int(self.intercept)
        faster = compiled.pays(data.n_rows, epochs, runs, batch_size, p, self.n_outputs)
        if faster and optimizer.plain and compiled.kernel() is not None:
            return CompiledDescent(data, batch_size, self.intercept, rng, self.evaluator(data))
        if BatchMapDescent.supports(self.n_inputs, self.n_outputs, self.intercept, optimizer):
            losses = self.evaluator(data)
            return BatchMapDescent(data, batch_size, self.intercept, rng, losses, optimizer)
        return plain_descent(self, data, batch_size, rng, False, optimizer)


def to_raw_units(
    params: Params, mean: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """W, w0 of a model trained on z = (x - mean) / scale, expressed for the raw x.

    ŷ = Wᵀz + w0 = (W / scale)ᵀx + (w0 - meanᵀ(W / scale)).
    """
    W = params["W"] / scale[:, None]
    w0 = params.get("w0", np.zeros(W.shape[1])) - mean @ W
    return W, w0


def from_raw_units(
    W: np.ndarray, w0: np.ndarray, mean: np.ndarray, scale: np.ndarray, intercept: bool
) -> Params:
    """The inverse of `to_raw_units`: raw-unit weights for a model trained on standardised z."""
    params = {"W": W * scale[:, None]}
    if intercept:
        params["w0"] = w0 + mean @ W
    return params
