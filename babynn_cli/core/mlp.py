"""A multi-layer perceptron: x → [affine → activation]* → affine → ŷ, trained by backpropagation.

The notes' affine model is the network with no hidden layer; each layer here is that model,
a⁽ˡ⁾ = φ(z⁽ˡ⁾), z⁽ˡ⁾ = W⁽ˡ⁾ᵀa⁽ˡ⁻¹⁾ + b⁽ˡ⁾, and the output layer has no activation. The gradients are
the answer key's, applied layer by layer with the chain rule (the notes' ∂L/∂w = ∂L/∂ŷ·∂ŷ/∂w):
for a layer, ∇L_W = aᵀδ and ∇L_b = Σδ (answers 1.d and 1.e with a in the place of x and δ = ∇L_z in
the place of ∇L_ŷ), and δ is passed down as δ⁽ˡ⁻¹⁾ = (δ⁽ˡ⁾W⁽ˡ⁾ᵀ) ⊙ φ'(z⁽ˡ⁻¹⁾).

Parameters are named W1, b1, W2, b2, ... (layer 1 takes the inputs). Like the affine model, K
stacked networks are trained at once: every array has a leading axis of length K, and the rows
pass through all K networks in the same batched products.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from babynn_cli.core.choices import ACTIVATIONS
from babynn_cli.core.losses import row_losses, row_losses_and_deltas
from babynn_cli.core.model import Model
from babynn_cli.core.vocabulary import Params, rows_times

ROWS_PER_BLOCK = 1 << 14  # rows evaluated at a time when only the loss is needed


def activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # 1/(1 + e^-z), without overflow
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


def derivative(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """φ'(z), given a = φ(z)."""
    if name == "tanh":
        return 1.0 - a * a  # tanh' = 1 - tanh²
    if name == "relu":
        return np.greater(z, 0.0)  # relu' = 1 where z > 0 (booleans multiply as 0 and 1)
    return a * (1.0 - a)  # σ' = σ(1 - σ)


@dataclass(frozen=True)
class MLP(Model):
    """Layer sizes n_inputs → hidden... → n_outputs, with `activation` after each hidden layer."""

    n_inputs: int
    hidden: tuple[int, ...]
    n_outputs: int
    activation: str = "tanh"
    intercept: bool = True  # every layer has its bias (kept for the Model interface)
    loss: str = "mse"  # its kind (`core.losses`): mse, logistic or softmax
    l2: float = 0.0  # α of the penalty α·Σ||Wˡ||² (the biases are not penalised)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.n_inputs, *self.hidden, self.n_outputs)

    @property
    def depth(self) -> int:
        return len(self.hidden) + 1

    def init_params(self, rng: np.random.Generator, how: str = "normal") -> Params:
        """Each layer's W and b from N(0, 1/fan_in), as the notes draw the affine model's;
        N(0, 2/fan_in) after relu, which zeroes half of its inputs. Or all zero."""
        params: Params = {}
        gain = 2.0 if self.activation == "relu" else 1.0
        for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(self.sizes), start=1):
            sd = np.sqrt(gain / fan_in) if layer > 1 else np.sqrt(1.0 / fan_in)
            if how == "zeros":
                params[f"W{layer}"] = np.zeros((fan_in, fan_out))
                params[f"b{layer}"] = np.zeros(fan_out)
            elif how == "normal":
                params[f"W{layer}"] = rng.normal(0.0, sd, size=(fan_in, fan_out))
                params[f"b{layer}"] = rng.normal(0.0, sd, size=fan_out)
            else:
                raise ValueError(f"unknown initialisation {how!r}")
        return params

    # -- forward -----------------------------------------------------------------------------
    def _forward(self, stack: Params, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The pre-activations z and activations a of every layer, for K stacked networks.

        X: (N, m) -> a[0] = X, z[l], a[l]: (K, N, size l); the last a is ŷ (no activation).
        """
        acts: list[np.ndarray] = [X]
        pres: list[np.ndarray] = []
        depth = self.depth
        for layer in range(1, depth + 1):
            z = np.matmul(acts[-1], stack[f"W{layer}"])  # z = Wᵀa for every row, (K, N, out)
            z += stack[f"b{layer}"][:, None, :]  # ... + b
            pres.append(z)
            acts.append(z if layer == depth else activate(self.activation, z))
        return pres, acts

    def predict(self, params: Params, X: np.ndarray) -> np.ndarray:
        """ŷ of one network: (N, m) -> (N, n), each row alone (`rows_times`)."""
        a = X
        for layer in range(1, self.depth + 1):
            z = rows_times(a, params[f"W{layer}"]) + params[f"b{layer}"]  # z = Wᵀa + b
            a = z if layer == self.depth else activate(self.activation, z)
        return a

    def losses(self, stack: Params, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        total = np.zeros(len(stack["W1"]))
        for lo in range(0, len(X), ROWS_PER_BLOCK):  # bounded memory: (K, block, width)
            Z = self._forward(stack, X[lo : lo + ROWS_PER_BLOCK])[1][-1]
            total += row_losses(self.loss, Z, Y[lo : lo + ROWS_PER_BLOCK]).sum(axis=1)
        return total / len(X) + self.penalty(stack)  # L = (1/N) Σᵢ ℓ(ŷᵢ, yᵢ) (+ α Σ||Wˡ||²)

    def penalty(self, stack: Params) -> np.ndarray | float:
        """α Σ||Wˡ||² of each of the K networks (0 without --l2)."""
        if not self.l2:
            return 0.0
        return self.l2 * sum(
            np.einsum("kij,kij->k", stack[f"W{layer}"], stack[f"W{layer}"])
            for layer in range(1, self.depth + 1)
        )

    # -- backward ----------------------------------------------------------------------------
    def losses_and_grads(
        self, stack: Params, X: np.ndarray, Y: np.ndarray
    ) -> tuple[np.ndarray, Params]:
        """Losses (K,) and gradients by backpropagation, averaged over the N rows of X: (N, m)."""
        N = len(X)
        pres, acts = self._forward(stack, X)
        # δ = ∇L_ŷ: −2(y − ŷ) for squared error (answer 1.a), p − y for cross-entropy; averaged
        row, delta = row_losses_and_deltas(self.loss, acts[-1], Y)
        losses = row.sum(axis=1) / N + self.penalty(stack)
        delta /= N
        grads: Params = {}
        for layer in range(self.depth, 0, -1):
            a_in = acts[layer - 1]  # the layer's input: X (N, m) or (K, N, width)
            a_t = a_in.T if a_in.ndim == 2 else a_in.transpose(0, 2, 1)
            grads[f"W{layer}"] = np.matmul(a_t, delta)  # ∇L_W = aᵀδ (answer 1.d), (K, in, out)
            if self.l2:
                grads[f"W{layer}"] += 2.0 * self.l2 * stack[f"W{layer}"]  # ∇(α||W||²) = 2αW
            grads[f"b{layer}"] = delta.sum(axis=1)  # ∇L_b = Σ δ (answer 1.e), (K, out)
            if layer > 1:
                back = np.matmul(delta, stack[f"W{layer}"].transpose(0, 2, 1))  # δW ᵀ: ∇L_a
                delta = back * derivative(self.activation, pres[layer - 2], acts[layer - 1])
                # δ⁽ˡ⁻¹⁾ = (δ⁽ˡ⁾W⁽ˡ⁾ᵀ) ⊙ φ'(z⁽ˡ⁻¹⁾): the chain rule through the activation
        return losses, grads

    def n_params(self) -> int:
        return sum((a + 1) * b for a, b in itertools.pairwise(self.sizes))

    def memory_bytes(self, rows: int, runs: int) -> int:
        """About what training `runs` stacked copies on batches of `rows` rows holds at once:
        the weights a few times over (weights, gradients, the step, the best epoch's) and each
        layer's pre-activations and activations for the rows."""
        return 8 * runs * (6 * self.n_params() + 3 * rows * sum(self.sizes))


def layers_of(params: Params) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W1, b1), (W2, b2), ...] of one network's parameters."""
    depth = sum(1 for name in params if name.startswith("W"))
    return [(params[f"W{i}"], params[f"b{i}"]) for i in range(1, depth + 1)]


def params_of(layers: list[tuple[np.ndarray, np.ndarray]]) -> Params:
    """The inverse of `layers_of`."""
    params: Params = {}
    for i, (W, b) in enumerate(layers, start=1):
        params[f"W{i}"], params[f"b{i}"] = W.copy(), b.copy()
    return params
