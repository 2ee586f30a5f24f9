"""The reference and the theory for classification, as `core.reference` and `core.theory` are for
squared error.

Cross-entropy has no closed form, but it is convex for the affine model, and Newton's method (IRLS)
finds its minimum to the last digits: from θ = 0, solve H·d = g for the step (g the gradient, H the
Hessian of the loss on all the rows), halve it until the loss falls, stop when the Newton decrement
gᵀd is at rounding's level. For the logistic loss H = X̃ᵀ diag(p(1 − p)) X̃ / N; for softmax
the (p·k)² matrix of blocks X̃ᵀ diag(pₐδₐᵦ − pₐpᵦ) X̃ / N; with --l2, 2α on W's diagonal. Softmax's k
outputs can all move by the same amount without changing p: H is singular there, and the step is the
least-norm solution, so the optimum found has no part along that direction (training starts with
none either, and no gradient adds one: `Problem.toward_optimum`).

**Separable classes** have no optimum: the loss falls toward its infimum only as the weights grow
without bound. The certificate is exact: when some iterate θ classifies every training row right
(each row's own class has the largest output, by a margin), the loss along tθ falls to 0 as t grows
and never reaches it. Newton's iterates reach such a θ within a few steps on separable data. When
only part of the rows are apart (one class from the others, say), no iterate separates them all,
but Newton's weights keep growing along one direction until rounding stops them: when the loss
falls forever along that direction (it moves no row's own class below another, `_recedes`), there
is no finite optimum either. With --l2 there is always one.

**Theory.** The Hessian now depends on the weights, so two things are said, and apart: a bound
that holds everywhere (ℓ'' ≤ ¼ for the logistic loss, ≼ ½·I for softmax, `losses.CURVATURE_BOUND`,
so H ≼ c·X̃ᵀX̃/N + 2αI: constant rates below 2/that never make the loss rise), and the exact
curvature at the optimum H*, which sets the speed near it (η* = 2/(λmax* + λmin*) and κ*; epochs
predicted from it are an estimate, exact only once the run is near the optimum).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from babynn_cli.core.losses import CURVATURE_BOUND, probabilities, row_losses
from babynn_cli.core.theory import Curvature

MAX_ITERATIONS = 100
DECREMENT = 1e-26  # Newton decrement gᵀH⁻¹g below this (times 1 + L): the optimum, to rounding
MARGIN = 1e-9  # a row is classified right when its class's output leads by this much
RECESSION = 10  # Newton's iterates this far back give the direction the weights grow in
RECESSION_TOL = 1e-9  # a row's lead along that direction (largest step 1) counts as ≥ 0 above −this

Blocks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]  # standardised (X, Y) blocks


@dataclass(frozen=True)
class ClassOptimum:
    """The minimum of the cross-entropy (+ α||W||²) of the affine model, in standardised units:
    W (m, n), w0 (n,), the loss L*; or, for separable classes, none (`separable`, with the loss
    where Newton stopped: above the infimum, which is 0 for complete separation)."""

    W: np.ndarray
    w0: np.ndarray
    loss: float
    separable: bool
    iterations: int
    hessian: np.ndarray  # H at the optimum, (p·n, p·n), θ stacked as [W; w0] column by column


def newton(
    kind: str, blocks: Blocks, m: int, n: int, intercept: bool, alpha: float
) -> ClassOptimum:
    """Newton's method on the rows `blocks()` yields (called once per pass)."""
    p = m + int(intercept)
    theta = np.zeros((p, n))
    ridge = np.zeros(p)
    ridge[:m] = 2.0 * alpha  # ∇²(α||W||²) = 2αI on W, nothing on w0
    loss, grad, hess, separated = _pass(kind, blocks, theta, intercept, alpha, ridge)
    history = [theta]
    for iteration in range(1, MAX_ITERATIONS + 1):
        if separated and alpha == 0:
            return _result(theta, m, intercept, loss, True, iteration - 1, hess)
        step = np.linalg.lstsq(hess, grad.reshape(-1, order="F"), rcond=None)[0]
        decrement = float(grad.reshape(-1, order="F") @ step)
        if decrement <= DECREMENT * (1.0 + abs(loss)):  # (a part apart converges too: its
            # gradient and curvature vanish together as its weights grow)
            grows = alpha == 0 and _recedes(kind, blocks, theta - history[0], intercept)
            return _result(theta, m, intercept, loss, grows, iteration - 1, hess)
        direction = step.reshape(p, n, order="F")
        t = 1.0
        while True:  # halve the step until the loss falls enough (Armijo)
            trial = theta - t * direction
            trial_loss = _loss(kind, blocks, trial, intercept, alpha)
            if trial_loss <= loss - 1e-4 * t * decrement or t < 1e-12:
                break
            t /= 2.0
        if not trial_loss < loss:  # rounding's floor: nothing left to gain
            grows = alpha == 0 and _recedes(kind, blocks, theta - history[0], intercept)
            return _result(theta, m, intercept, loss, grows, iteration - 1, hess)
        theta = trial
        history = [*history[-RECESSION:], theta]
        loss, grad, hess, separated = _pass(kind, blocks, theta, intercept, alpha, ridge)
    # still improving after every iteration: are the weights growing without bound?
    grows = alpha == 0 and _recedes(kind, blocks, theta - history[0], intercept)
    return _result(theta, m, intercept, loss, grows, MAX_ITERATIONS, hess)


def _recedes(kind: str, blocks: Blocks, direction: np.ndarray, intercept: bool) -> bool:
    """Whether the loss falls forever along `direction` (the way Newton's last iterates went):
    it moves no row's own class's output below another's, and some above (partial separation:
    one class apart from the rest, say). Then there is no finite optimum."""
    scale = float(np.abs(direction).max())
    if scale == 0.0:
        return False
    D = direction / scale
    worst, best = np.inf, -np.inf
    for X, Y in blocks():
        if not len(X):
            continue
        dZ = _outputs(X, D, intercept)
        if kind == "logistic":
            lead = np.where(Y[:, 0] > 0.5, dZ[:, 0], -dZ[:, 0])
        else:
            lead = np.einsum("ij,ij->i", dZ, Y) - np.where(Y > 0.5, -np.inf, dZ).max(axis=1)
        worst, best = min(worst, float(lead.min())), max(best, float(lead.max()))
    return worst >= -RECESSION_TOL and best > 1e3 * RECESSION_TOL


def _result(theta: np.ndarray, m: int, intercept: bool, loss: float, separable: bool,
            iterations: int, hess: np.ndarray) -> ClassOptimum:  # fmt: skip
    w0 = theta[m] if intercept else np.zeros(theta.shape[1])
    return ClassOptimum(theta[:m].copy(), w0.copy(), loss, separable, iterations, hess)


def _outputs(X: np.ndarray, theta: np.ndarray, intercept: bool) -> np.ndarray:
    m = X.shape[1]
    Z = X @ theta[:m]
    return Z + theta[m] if intercept else Z


def _loss(kind: str, blocks: Blocks, theta: np.ndarray, intercept: bool, alpha: float) -> float:
    total, rows = 0.0, 0
    for X, Y in blocks():
        total += float(row_losses(kind, _outputs(X, theta, intercept), Y).sum())
        rows += len(X)
    m = theta.shape[0] - int(intercept)
    return total / rows + alpha * float((theta[:m] ** 2).sum())


def _pass(kind: str, blocks: Blocks, theta: np.ndarray, intercept: bool, alpha: float,
          ridge: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, bool]:  # fmt: skip
    """The loss, gradient (p, n) and Hessian (p·n, p·n) at θ in one pass, and whether θ
    classifies every row right."""
    p, n = theta.shape
    total, rows, separated = 0.0, 0, True
    grad = np.zeros((p, n))
    hess = np.zeros((p * n, p * n))
    for X, Y in blocks():
        if not len(X):
            continue
        Xt = np.column_stack([X, np.ones(len(X))]) if intercept else X
        Z = Xt @ theta
        total += float(row_losses(kind, Z, Y).sum())
        rows += len(X)
        P = probabilities(kind, Z)
        grad += Xt.T @ (P - Y)
        if kind == "logistic":
            hess += (Xt * (P[:, 0] * (1.0 - P[:, 0]))[:, None]).T @ Xt
            margin = np.where(Y[:, 0] > 0.5, Z[:, 0], -Z[:, 0])
        else:
            for a in range(n):
                for b in range(a, n):
                    weight = (P[:, a] if a == b else 0.0) - P[:, a] * P[:, b]
                    block = (Xt * weight[:, None]).T @ Xt
                    hess[a * p : (a + 1) * p, b * p : (b + 1) * p] += block
                    if a != b:
                        hess[b * p : (b + 1) * p, a * p : (a + 1) * p] += block.T
            own = np.einsum("ij,ij->i", Z, Y)
            margin = own - np.where(Y > 0.5, -np.inf, Z).max(axis=1)
        separated = separated and bool((margin > MARGIN).all())
    m = p - int(intercept)
    loss = total / rows + alpha * float((theta[:m] ** 2).sum())
    grad = grad / rows
    grad[:m] += 2.0 * alpha * theta[:m]
    hess = hess / rows + np.diag(np.tile(ridge, n))
    return loss, grad, hess, separated


def curvature(optimum: ClassOptimum, gram: np.ndarray, kind: str, alpha: float) -> Curvature:
    """The curvature at the optimum, with the bound that holds for any weights:
    c·λmax(X̃ᵀX̃/N) + 2α. Softmax's outputs moved alike change nothing: p such directions (only the
    intercepts' one with --l2, which holds W's), expected to be zero."""
    lam, V = np.linalg.eigh(optimum.hessian)
    lam = np.maximum(lam, 0.0)
    bound = CURVATURE_BOUND[kind] * float(np.linalg.eigvalsh(gram)[-1]) + 2.0 * alpha
    p = len(gram)
    free = 0 if kind == "logistic" else (1 if alpha else p)
    return Curvature(lam, V, bound=bound, expected_zeros=free)
