"""The losses a model can learn by, each with its gradient with respect to the model's outputs: the
one place a loss is written. Every model computes its outputs z (ŷ for regression, the logits for
classification), asks here for each row's loss and for ∇L_z, and passes ∇L_z back through its own
layers (`core.affine`, `core.mlp`): the update rule W ← W − η∇L never changes.

- "mse": squared error, ℓ = ||y − z||², ∇ℓ_z = −2(y − z) (the notes' answer 1.a).
- "logistic": two classes, one output z, p = σ(z) the probability of the second class, y ∈ {0, 1}:
  ℓ = −y log p − (1 − y) log(1 − p) = log(1 + eᶻ) − y·z, ∇ℓ_z = p − y.
- "softmax": k classes, k outputs, p = softmax(z), y one-hot:
  ℓ = −Σⱼ yⱼ log pⱼ = logsumexp(z) − yᵀz, ∇ℓ_z = p − y.

"cross-entropy" is the name a user gives both classification losses: `kind_of` picks logistic for
two classes and softmax for more. Each is computed without overflow for any z (log(1 + eᶻ) as
max(z, 0) + log(1 + e^−|z|), logsumexp with its maximum taken out).

The curvature of a classification loss with respect to z is bounded, whatever the weights: for
the logistic loss ℓ'' = p(1 − p) ≤ ¼; for softmax, diag(p) − ppᵀ ≼ ½·I. `CURVATURE_BOUND` holds
these, against squared error's exact 2: the affine model's Hessian is at most that share of the
squared-error one's, which gives a stability bound that holds everywhere (`core.classify`).
"""

from __future__ import annotations

import numpy as np

KINDS = ("mse", "logistic", "softmax")
# ℓ'' with respect to z is at most this (a bound for classification, squared error's exact value)
CURVATURE_BOUND = {"mse": 2.0, "logistic": 0.25, "softmax": 0.5}


def kind_of(loss: str, n_classes: int) -> str:
    """The loss a model learns by: "mse", or for "cross-entropy" logistic (two classes) or
    softmax (more)."""
    if loss == "mse":
        return "mse"
    return "logistic" if n_classes == 2 else "softmax"


def row_losses(kind: str, Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Each row's loss ℓ(z, y), summed over the last axis (outputs): Z, Y (..., n) -> (...)."""
    if kind == "mse":
        R = Z - Y
        return np.einsum("...j,...j->...", R, R)
    if kind == "logistic":
        return (_softplus(Z) - Y * Z)[..., 0]
    return _logsumexp(Z) - np.einsum("...j,...j->...", Y, Z)


def row_losses_and_deltas(kind: str, Z: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's loss and ∇ℓ_z, the gradient of its loss with respect to its outputs."""
    if kind == "mse":
        R = Z - Y
        return np.einsum("...j,...j->...", R, R), 2.0 * R  # ∇ℓ_ŷ = −2(y − ŷ) (answer 1.a)
    P = probabilities(kind, Z)
    return row_losses(kind, Z, Y), P - Y  # ∇ℓ_z = p − y, for logistic and softmax alike


def probabilities(kind: str, Z: np.ndarray) -> np.ndarray:
    """The classes' probabilities from the outputs: σ(z) (the second class's) or softmax(z)."""
    if kind == "logistic":
        return 0.5 * (1.0 + np.tanh(0.5 * Z))  # 1/(1 + e^−z), without overflow
    shifted = Z - Z.max(axis=-1, keepdims=True)
    E = np.exp(shifted)
    return E / E.sum(axis=-1, keepdims=True)


def class_probabilities(kind: str, Z: np.ndarray) -> np.ndarray:
    """Every class's probability, one column each (N, k): for the logistic loss [1 − p, p]."""
    P = probabilities(kind, Z)
    return np.column_stack([1.0 - P[:, 0], P[:, 0]]) if kind == "logistic" else P


def null_loss(kind: str, y_mean: np.ndarray) -> float:
    """The cross-entropy of the best constant prediction (the classes' frequencies p̄, the
    targets' means): their entropy −Σ p̄ log p̄. (Squared error's is the targets' variance,
    `Moments.spread`.)"""
    p = np.asarray(y_mean, dtype=float)
    if kind == "logistic":
        p = np.array([1.0 - p[0], p[0]])
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def spread_of(kind: str, y_mean: np.ndarray, variance: float) -> float:
    """The loss of the best constant prediction: the targets' variance (summed over outputs) for
    squared error, the classes' entropy for cross-entropy. What 'how far did the loss fall' is
    measured against."""
    return variance if kind == "mse" else null_loss(kind, y_mean)


def _softplus(Z: np.ndarray) -> np.ndarray:
    return np.maximum(Z, 0.0) + np.log1p(np.exp(-np.abs(Z)))  # log(1 + eᶻ)


def _logsumexp(Z: np.ndarray) -> np.ndarray:
    top = Z.max(axis=-1)
    return top + np.log(np.exp(Z - top[..., None]).sum(axis=-1))
