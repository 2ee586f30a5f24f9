"""Learning-rate schedules: η as a function of the update count t = 0, 1, 2, ...

Each schedule is a small frozen dataclass; `schedule(t)` gives η(t) for one t and
`schedule.rates(t)` for an array of them (the training loop asks for a whole epoch at once).
`conditions()` says whether the schedule meets the notes' conditions for stochastic gradient
descent to converge: Σ η(t) = ∞ (it can travel any distance) and Σ η(t)² < ∞ (its noise dies out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Conditions:
    sum_diverges: bool  # Σ η(t) = ∞
    sum_of_squares_converges: bool  # Σ η(t)² < ∞

    @property
    def both(self) -> bool:
        return self.sum_diverges and self.sum_of_squares_converges


class _Rate:
    lr: float

    def rates(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, t: int) -> float:
        return float(self.rates(np.asarray(t, dtype=float)))


@dataclass(frozen=True)
class Constant(_Rate):
    """constant: η(t) = η0."""

    lr: float

    def rates(self, t: np.ndarray) -> np.ndarray:
        return np.full(np.shape(t), self.lr)

    def conditions(self) -> Conditions:
        return Conditions(sum_diverges=True, sum_of_squares_converges=False)


@dataclass(frozen=True)
class Inverse(_Rate):
    """inverse: η(t) = η0 / (1 + k·t)."""

    lr: float
    decay: float

    def rates(self, t: np.ndarray) -> np.ndarray:
        return self.lr / (1.0 + self.decay * t)

    def conditions(self) -> Conditions:
        return Conditions(sum_diverges=True, sum_of_squares_converges=self.decay > 0)


@dataclass(frozen=True)
class Power(_Rate):
    """power: η(t) = η0 / (1 + k·t)^p."""

    lr: float
    decay: float
    power: float

    def rates(self, t: np.ndarray) -> np.ndarray:
        return self.lr / (1.0 + self.decay * t) ** self.power

    def conditions(self) -> Conditions:
        if self.decay == 0 or self.power == 0:
            return Constant(self.lr).conditions()
        # Σ 1/t^p diverges for p ≤ 1; Σ 1/t^(2p) converges for p > 1/2.
        return Conditions(sum_diverges=self.power <= 1, sum_of_squares_converges=self.power > 0.5)


@dataclass(frozen=True)
class Exponential(_Rate):
    """exponential: η(t) = η0·γ^t."""

    lr: float
    gamma: float

    def rates(self, t: np.ndarray) -> np.ndarray:
        return self.lr * self.gamma**t

    def conditions(self) -> Conditions:
        if self.gamma >= 1:
            return Constant(self.lr).conditions()
        # A geometric series: both sums are finite.
        return Conditions(sum_diverges=False, sum_of_squares_converges=True)


@dataclass(frozen=True)
class Step(_Rate):
    """step: η(t) = η0·γ^⌊t/s⌋ (multiply by γ every s updates)."""

    lr: float
    gamma: float
    step_size: int

    def rates(self, t: np.ndarray) -> np.ndarray:
        return self.lr * self.gamma ** np.floor_divide(t, self.step_size)

    def conditions(self) -> Conditions:
        return Exponential(self.lr, self.gamma).conditions()


@dataclass(frozen=True)
class Cosine(_Rate):
    """cosine: η(t) = η_min + (η0 - η_min)·(1 + cos(π·t/T))/2 for t < T, then η_min.

    T is the number of updates of the whole run, so η falls from η0 to η_min over the run.
    """

    lr: float
    lr_min: float
    total_updates: int

    def rates(self, t: np.ndarray) -> np.ndarray:
        T = self.total_updates
        falling = self.lr_min + (self.lr - self.lr_min) * (1.0 + np.cos(np.pi * t / T)) / 2.0
        return np.where(t < T, falling, self.lr_min)

    def conditions(self) -> Conditions:
        # After T updates η stays at η_min: Σ η = ∞ needs η_min > 0, and then Σ η² = ∞ too.
        return Conditions(sum_diverges=self.lr_min > 0, sum_of_squares_converges=self.lr_min == 0)


Schedule = Constant | Inverse | Power | Exponential | Step | Cosine

SCHEDULES = ("constant", "inverse", "power", "exponential", "step", "cosine")

# The per-schedule default of γ: a slow exponential decay, a halving at each step.
DEFAULT_GAMMA = {"exponential": 0.99, "step": 0.5}


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule without its rate: `spec.at(lr)` makes the schedule, so a sweep can vary η0."""

    name: str = "constant"
    decay: float = 0.01
    power: float = 0.75
    gamma: float | None = None
    step_size: int = 100
    lr_min: float = 0.0
    total_updates: int = 1

    def at(self, lr: float) -> Schedule:
        name = self.name
        if name == "constant":
            return Constant(lr)
        if name == "inverse":
            return Inverse(lr, self.decay)
        if name == "power":
            return Power(lr, self.decay, self.power)
        gamma = DEFAULT_GAMMA.get(name, 1.0) if self.gamma is None else self.gamma
        if name == "exponential":
            return Exponential(lr, gamma)
        if name == "step":
            return Step(lr, gamma, self.step_size)
        if name == "cosine":
            return Cosine(lr, self.lr_min, max(1, self.total_updates))
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


def make_schedule(name: str, lr: float, **parameters: float | int | None) -> Schedule:
    """The schedule called `name` at η0 = lr; parameters it does not use are ignored."""
    return ScheduleSpec(name, **parameters).at(lr)  # type: ignore[arg-type]


def describe(schedule: Schedule) -> str:
    """One line: the formula with the run's numbers, e.g. 'inverse: η(t) = 0.1 / (1 + 0.01·t)'."""
    s = schedule
    if isinstance(s, Constant):
        return f"constant: η(t) = {s.lr:g}"
    if isinstance(s, Inverse):
        return f"inverse: η(t) = {s.lr:g} / (1 + {s.decay:g}·t)"
    if isinstance(s, Power):
        return f"power: η(t) = {s.lr:g} / (1 + {s.decay:g}·t)^{s.power:g}"
    if isinstance(s, Exponential):
        return f"exponential: η(t) = {s.lr:g}·{s.gamma:g}^t"
    if isinstance(s, Step):
        return f"step: η(t) = {s.lr:g}·{s.gamma:g}^⌊t/{s.step_size}⌋"
    span = f"({s.lr:g} - {s.lr_min:g})"
    return f"cosine: η(t) = {s.lr_min:g} + {span}·(1 + cos(π·t/{s.total_updates}))/2"
