"""`babynn fit` from start to end, as the notes tell it: choose the rate and the epochs
(`core.auto`: what the user gave, babynn's choice for the rest), train (`core.train`), judge the
run (`core.verdict`) and compute what theory says of the next step.

The caller sees the run through a `FitWatch`: progress while a short sweep chooses the rate, the
plan before training (where it may refuse it), progress while training. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from babynn_cli.core import auto
from babynn_cli.core.fitted import Fitted, train_problem
from babynn_cli.core.history import EpochInfo
from babynn_cli.core.optimizers import GD, OptimizerSpec
from babynn_cli.core.problem import Problem
from babynn_cli.core.schedules import Schedule, ScheduleSpec
from babynn_cli.core.verdict import Advice, advise
from babynn_cli.core.vocabulary import Params

Progress = AbstractContextManager[Callable[[EpochInfo], None]]


@dataclass(frozen=True)
class FitRequest:
    """What the user asked for: the run's options (`ask`: None where babynn chooses, see
    `core.auto`), the batch size (None: full batch), the schedule, the seed."""

    ask: auto.Ask
    batch_size: int | None
    schedule: ScheduleSpec
    seed: int
    history_every: int | None = None
    optimizer: OptimizerSpec = GD  # the update rule (`core.optimizers`)


class FitWatch(Protocol):
    """How the caller sees a fit."""

    def probing(self, epochs: int) -> Progress:
        """Progress of the short sweep that chooses the rate (`epochs` a rate)."""
        ...

    def planned(self, plan: auto.Plan, schedule: Schedule) -> None:
        """The plan, before any training: shown, or refused by raising."""
        ...

    def training(self, epochs: int) -> Progress:
        """Progress of the run itself (at most `epochs` epochs)."""
        ...


@dataclass(frozen=True)
class FitRun:
    """A finished fit: what was planned, the schedule it ran, the run in the data's units, and
    theory's numbers for the next step."""

    plan: auto.Plan
    schedule: Schedule
    fitted: Fitted
    advice: Advice


def run(problem: Problem, params: Params, request: FitRequest, watch: FitWatch) -> FitRun:
    """Plan, train and judge one run from `params`; auto.NoRateFound when no probed rate worked."""
    r, ask = request, request.ask

    def planned(on_probe: Callable[[EpochInfo], None] | None = None) -> auto.Plan:
        return auto.plan(
            problem, params, ask, batch_size=r.batch_size, spec=r.schedule, seed=r.seed,
            on_epoch=on_probe, optimizer=r.optimizer,
        )  # fmt: skip

    if auto.probes(problem, r.batch_size, ask.lr, r.optimizer):
        budget = auto.most_epochs(problem, r.batch_size, ask, r.optimizer)
        with watch.probing(auto.probe_epochs(problem, r.batch_size, budget)) as on_probe:
            plan = planned(on_probe)
    else:
        plan = planned()
    schedule = r.schedule.at(plan.lr)
    watch.planned(plan, schedule)
    settings = plan.settings(r.batch_size, r.history_every)
    with watch.training(plan.epochs) as on_epoch:
        result = train_problem(problem, params, [schedule], settings, r.seed, on_epoch)
    fitted = Fitted.of(problem, result, 0, ask.gap)
    advice = advise(
        problem, params, fitted.params, fitted.history, r.batch_size, ask.gap, fitted.verdict,
        plan.optimizer,
    )  # fmt: skip
    return FitRun(plan, schedule, fitted, advice)
