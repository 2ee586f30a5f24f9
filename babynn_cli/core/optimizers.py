"""The update rules beside the notes' own, each written once, as the textbook writes it.

For every parameter w with gradient g = ∇L_w, at rate η:

    gd          w ← w − ηg                                     (the notes' rule)
    momentum    v ← βv − ηg;   w ← w + v                       (Polyak's heavy ball)
    nesterov    v ← βv − ηg;   w ← w + βv − ηg                 (Nesterov's look-ahead, with
                                                                 the gradient where w is)
    adam        m ← β₁m + (1 − β₁)g;   s ← β₂s + (1 − β₂)g²
                m̂ = m/(1 − β₁ᵗ);   ŝ = s/(1 − β₂ᵗ);   w ← w − η·m̂/(√ŝ + ε)

v, m and s start at 0, t counts the updates from 1. Nesterov's rule is the form PyTorch and
scikit-learn use: the weights kept are the look-ahead point, so the gradient is taken where they
are. The state (v; m, s, t) lives as long as a run: it is not saved in the model file, and a run
that starts again (`reset`) starts it at 0.

All the rules work on K stacked runs at once (a leading axis of length K), η a vector of K rates;
a run with η = 0 whose state is 0 does not move (a stopped run's state is reset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from babynn_cli.core.choices import ADAM_DEFAULTS, DEFAULT_MOMENTUM, OPTIMIZERS
from babynn_cli.core.vocabulary import Params

__all__ = ["OPTIMIZERS", "Optimizer", "OptimizerSpec", "update"]


@dataclass(frozen=True)
class OptimizerSpec:
    """Which rule, with its constants (`momentum`: β of momentum and nesterov)."""

    name: str = "gd"
    momentum: float | None = None  # None: babynn chooses (`core.auto`), else DEFAULT_MOMENTUM
    beta1: float = ADAM_DEFAULTS[0]
    beta2: float = ADAM_DEFAULTS[1]
    eps: float = ADAM_DEFAULTS[2]

    @property
    def beta(self) -> float:
        """β of momentum and nesterov: the one given or chosen, else DEFAULT_MOMENTUM."""
        return DEFAULT_MOMENTUM if self.momentum is None else self.momentum

    @property
    def plain(self) -> bool:
        """The notes' rule: no state."""
        return self.name == "gd"

    @property
    def heavy(self) -> bool:
        """A momentum rule (heavy ball or Nesterov): linear in the gradients, with velocity v."""
        return self.name in ("momentum", "nesterov")

    def start(self) -> Optimizer:
        return Optimizer(self)

    def describe(self) -> str:
        """The rule in a few words, as the run's header says it."""
        if self.name == "momentum":
            return f"heavy-ball momentum, β = {self.beta:.4g} (v ← βv − η∇L; w ← w + v)"
        if self.name == "nesterov":
            return f"Nesterov momentum, β = {self.beta:.4g} (v ← βv − η∇L; w ← w + βv − η∇L)"
        if self.name == "adam":
            return f"Adam, β₁ = {self.beta1:g}, β₂ = {self.beta2:g}, ε = {self.eps:g}"
        return "gradient descent (w ← w − η∇L)"

    def record(self) -> dict:
        """What the model file keeps of it (the state is not kept)."""
        doc: dict = {"name": self.name}
        if self.heavy:
            doc["momentum"] = self.beta
        if self.name == "adam":
            doc |= {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}
        return doc


GD = OptimizerSpec()


def update(params: Params, grads: Params, lr: np.ndarray) -> Params:
    """The notes' update rule, w ← w − η∇L_w for every parameter w, for K stacked runs.

    params, grads: stacked alike (K, ...); lr: (K,), each run's η.
    """
    return {name: w - _per_run(lr, w) * grads[name] for name, w in params.items()}


class Optimizer:
    """One rule and its state, for K stacked runs."""

    def __init__(self, spec: OptimizerSpec) -> None:
        self.spec = spec
        self.state: dict[str, dict[str, np.ndarray]] = {}  # per parameter: v, or m and s
        self.t: np.ndarray | None = None  # Adam's update count, per run

    def reset(self, changed: np.ndarray | None = None) -> None:
        """Start the state again at 0: for every run (None) or for the runs `changed` marks."""
        if changed is None:
            self.state, self.t = {}, None
            return
        for slots in self.state.values():
            for value in slots.values():
                value[changed] = 0.0
        if self.t is not None:
            self.t[changed] = 0

    def step(self, params: Params, grads: Params, lr: np.ndarray) -> Params:
        """One update of every parameter; lr: (K,)."""
        rule = self.spec
        if rule.plain:
            return update(params, grads, lr)
        if rule.name == "adam":
            if self.t is None:
                self.t = np.zeros(len(lr), dtype=np.int64)
            self.t = self.t + 1
        out = {}
        for name, w in params.items():
            g, eta = grads[name], _per_run(lr, w)
            if rule.heavy:
                v = self._slot(name, "v", w)
                v *= rule.beta
                v -= eta * g  # v ← βv − ηg
                if rule.name == "momentum":
                    out[name] = w + v  # w ← w + v
                else:
                    out[name] = w + rule.beta * v - eta * g  # w ← w + βv − ηg
                continue
            m, s = self._slot(name, "m", w), self._slot(name, "s", w)
            m *= rule.beta1
            m += (1.0 - rule.beta1) * g  # m ← β₁m + (1 − β₁)g
            s *= rule.beta2
            s += (1.0 - rule.beta2) * g * g  # s ← β₂s + (1 − β₂)g²
            assert self.t is not None
            t = _per_run(self.t.astype(float), w)
            m_hat = m / (1.0 - rule.beta1**t)
            s_hat = s / (1.0 - rule.beta2**t)
            out[name] = w - eta * m_hat / (np.sqrt(s_hat) + rule.eps)
        return out

    def _slot(self, name: str, slot: str, like: np.ndarray) -> np.ndarray:
        slots = self.state.setdefault(name, {})
        if slot not in slots or slots[slot].shape != like.shape:
            slots[slot] = np.zeros_like(like)
        return slots[slot]


def _per_run(lr: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Rates shaped to scale a stacked parameter (K, ...): (..., K) -> (..., K, 1, ...)."""
    return lr.reshape(lr.shape + (1,) * (value.ndim - 1))
