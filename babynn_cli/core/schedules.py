"""Learning-rate schedules: η as a function of the update count t = 0, 1, 2, ...

Each schedule is a small frozen dataclass; `schedule(t)` gives η(t) for one t and
`schedule.rates(t)` for an array of them (the training loop asks for a whole epoch at once). Their
names, formulas and parameters' defaults are declared once, in `core.choices`; `describe` prints a
schedule's formula with its numbers. `conditions()` says whether the schedule meets the notes'
conditions for stochastic gradient descent to converge: Σ η(t) = ∞ (it can travel any distance)
and Σ η(t)² < ∞ (its noise dies out).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np

from babynn_cli.core.choices import (
    DEFAULT_GAMMA,
    SCHEDULE_DEFAULTS,
    SCHEDULE_NAMES,
    SCHEDULES,
    SYMBOLS,
)


@dataclass(frozen=True)
class Conditions:
    sum_diverges: bool  # Σ η(t) = ∞
    sum_of_squares_converges: bool  # Σ η(t)² < ∞

    @property
    def both(self) -> bool:
        return self.sum_diverges and self.sum_of_squares_converges


class _Rate:
    name: ClassVar[str]
    lr: float

    def rates(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, t: int) -> float:
        return float(self.rates(np.asarray(t, dtype=float)))


@dataclass(frozen=True)
class Constant(_Rate):
    """η(t) = η0."""

    name = "constant"
    lr: float

    def rates(self, t: np.ndarray) -> np.ndarray:
        return np.full(np.shape(t), self.lr)

    def conditions(self) -> Conditions:
        return Conditions(sum_diverges=True, sum_of_squares_converges=False)


@dataclass(frozen=True)
class Inverse(_Rate):
    """η(t) = η0 / (1 + k·t)."""

    name = "inverse"
    lr: float
    decay: float

    def rates(self, t: np.ndarray) -> np.ndarray:
        return self.lr / (1.0 + self.decay * t)

    def conditions(self) -> Conditions:
        return Conditions(sum_diverges=True, sum_of_squares_converges=self.decay > 0)


@dataclass(frozen=True)
class Power(_Rate):
    """η(t) = η0 / (1 + k·t)^p."""

    name = "power"
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
    """η(t) = η0·γ^t."""

    name = "exponential"
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
    """η(t) = η0·γ^⌊t/s⌋ (multiply by γ every s updates)."""

    name = "step"
    lr: float
    gamma: float
    step_size: int

    def rates(self, t: np.ndarray) -> np.ndarray:
        return self.lr * self.gamma ** np.floor_divide(t, self.step_size)

    def conditions(self) -> Conditions:
        return Exponential(self.lr, self.gamma).conditions()


@dataclass(frozen=True)
class Cosine(_Rate):
    """η(t) = η_min + (η0 - η_min)·(1 + cos(π·t/T))/2 for t < T, then η_min.

    T is the number of updates of the whole run, so η falls from η0 to η_min over the run.
    """

    name = "cosine"
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
_BY_NAME: dict[str, type] = {
    cls.name: cls for cls in (Constant, Inverse, Power, Exponential, Step, Cosine)
}
assert tuple(_BY_NAME) == SCHEDULE_NAMES, "core.choices and the schedule classes disagree"
_FORMULAS = {s.name: s.formula for s in SCHEDULES}


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule without its rate: `spec.at(lr)` makes the schedule, so a sweep can vary η0."""

    name: str = "constant"
    decay: float = field(default=SCHEDULE_DEFAULTS["decay"])
    power: float = field(default=SCHEDULE_DEFAULTS["power"])
    gamma: float | None = None  # None: the schedule's own default (DEFAULT_GAMMA)
    step_size: int = field(default=int(SCHEDULE_DEFAULTS["step_size"]))
    lr_min: float = field(default=SCHEDULE_DEFAULTS["lr_min"])
    total_updates: int = 1

    def at(self, lr: float) -> Schedule:
        if self.name not in _BY_NAME:
            raise ValueError(
                f"unknown schedule {self.name!r}; choose one of {', '.join(SCHEDULE_NAMES)}"
            )
        values = asdict(self) | {"lr": lr, "total_updates": max(1, self.total_updates)}
        if values["gamma"] is None:
            values["gamma"] = DEFAULT_GAMMA.get(self.name, 1.0)
        cls = _BY_NAME[self.name]
        wanted = cls.__dataclass_fields__  # type: ignore[attr-defined]
        return cls(**{k: v for k, v in values.items() if k in wanted})  # type: ignore[no-any-return]


def make_schedule(name: str, lr: float, **parameters: float | int | None) -> Schedule:
    """The schedule called `name` at η0 = lr; parameters it does not use are ignored."""
    return ScheduleSpec(name, **parameters).at(lr)  # type: ignore[arg-type]


def describe(schedule: Schedule) -> str:
    """One line: the formula with the run's numbers, e.g. 'inverse: η(t) = 0.1 / (1 + 0.01·t)'."""
    text = _FORMULAS[schedule.name]
    values = asdict(schedule)
    for option, symbol in sorted(SYMBOLS.items(), key=lambda item: -len(item[1])):  # η_min first
        if option in values:  # the symbol as a whole word becomes the run's number
            text = re.sub(rf"(?<!\w){re.escape(symbol)}(?!\w)", f"{values[option]:g}", text)
    return f"{schedule.name}: η(t) = {text}"
