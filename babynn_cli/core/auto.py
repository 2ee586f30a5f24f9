"""What babynn chooses when the user does not: the batch size, the validation split, the learning
rate, the epochs and the rules that stop a run. The numbers are declared in `core.choices`.

Two kinds of run. The affine model at full batch descends *exactly*: its loss is a quadratic, it
falls at every epoch below the stability bound, and theory times it (`core.theory`). Every other
run is *rough*: minibatches make its loss noisy, a network's loss is not convex, so it may rise for
a while and fall again. Each gets the rules that fit its curve:

- exact, no --epochs: until (L − L*)/L* ≤ --gap-tol, at most 10× theory's prediction (1,000 to
  10⁶ epochs; cosine: 1,000); the --tol rule off at a constant rate, 1e-10 for 5 epochs otherwise.
- rough, no --epochs: at most 1,000 epochs, or 1.5 million row visits (rows × epochs, at least
  100 epochs) when that is fewer; the affine model stops within --gap-tol of L*; the
  plateau rule: no new best by more than 5e-4 of the targets' variance (R² no better by 5e-4)
  for 20 epochs, or a quarter of the epochs run when that is more, on the validation loss when
  there is a split (keeping the best epoch's weights: early stopping), on the training loss
  otherwise.
- exact, `--epochs N`: N epochs, or fewer once the loss has stopped changing to machine
  precision (the --tol rule, 1e-10 for 5 epochs: nothing is left to gain, and the weights are
  those of every run before); --gap-tol given: stops within it of L*.
- rough, `--epochs N`: N epochs, and a rule only where one is asked for (--tol, --early-stopping,
  --gap-tol) — as PyTorch, Keras and scikit-learn's max_iter users expect.

- The batch size (`--batch-size` not given): all rows for the affine model, as the notes begin;
  NETWORK_BATCH for a network, which the notes train by stochastic (minibatch) descent.
- The validation split (`--val-frac` not given): a network without --epochs holds out
  NETWORK_VAL_FRAC of the rows (when that is at least MIN_VAL_ROWS) and stops on them; other runs
  train on every row.
- The rate (`--lr` not given, or `auto`). An exact run has a best constant rate, and theory names
  it: η* = 2/(λmax + λmin), printed and used to four significant digits, rounded down. For a rough
  run no formula holds, so a short sweep picks it: PROBE_RATES rates, evenly spaced in log from
  1/1000 of a ceiling to the ceiling (the affine model's full-batch bound 2/λmax, or 1 for a network
  on standardised features), each trained from the same start for about PROBE_UPDATES updates
  under the rules the run itself will use (`probe_epochs`), and read by `core.sweep.suggest`, the
  rule `sweep-lr` suggests by.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from babynn_cli.core.choices import (
    DEFAULT_EPOCHS,
    DEFAULT_GAP_TOL,
    DEFAULT_PATIENCE,
    DEFAULT_TOL,
    MAX_EPOCHS,
    MIN_ROUGH_EPOCHS,
    MIN_VAL_ROWS,
    NETWORK_BATCH,
    NETWORK_VAL_FRAC,
    ROUGH_PATIENCE,
    ROUGH_PATIENCE_SHARE,
    ROUGH_ROW_VISITS,
    ROUGH_TOL,
)
from babynn_cli.core.history import EpochInfo
from babynn_cli.core.optimizers import GD, OptimizerSpec
from babynn_cli.core.problem import Problem, n_validation_rows
from babynn_cli.core.schedules import ScheduleSpec
from babynn_cli.core.theory import FAR, four_digits_down
from babynn_cli.core.train import TrainSettings
from babynn_cli.core.vocabulary import Params

HEADROOM = 10  # a run until convergence may take this many times the epochs theory predicts
PROBE_RATES = 7
PROBE_UPDATES = 1000  # a probe runs about this many updates a rate ...
PROBE_SHARE = 20  # ... but no more than 1/20 of the run's epochs


class NoRateFound(Exception):
    """Every rate the short sweep tried failed: babynn found no rate to offer."""


@dataclass(frozen=True)
class Ask:
    """What the user gave for the run; None (or False) where babynn chooses."""

    lr: float | None = None
    epochs: int | None = None
    tol: float | None = None
    patience: int | None = None
    gap_tol: float | None = None
    early_stopping: bool = False

    @property
    def gap(self) -> float:
        """--gap-tol, or its default."""
        return DEFAULT_GAP_TOL if self.gap_tol is None else self.gap_tol


def default_batch_size(network: bool) -> int | None:
    """Rows an update when --batch-size is not given: all of them (None) for the affine model,
    NETWORK_BATCH for a network."""
    return NETWORK_BATCH if network else None


def default_val_frac(
    n_rows: int | None, network: bool, epochs_given: bool, early_stopping: bool
) -> float:
    """The validation split when --val-frac is not given: NETWORK_VAL_FRAC when early stopping is
    asked for, or for a network that runs until its plateau rule stops it when that holds out at
    least MIN_VAL_ROWS rows (`n_rows` None: not counted yet, a stream, which is large); else
    none."""
    if early_stopping:
        return NETWORK_VAL_FRAC
    if not network or epochs_given:
        return 0.0
    if n_rows is not None and n_validation_rows(n_rows, NETWORK_VAL_FRAC) < MIN_VAL_ROWS:
        return 0.0
    return NETWORK_VAL_FRAC


def most_epochs(
    problem: Problem, batch_size: int | None, ask: Ask, optimizer: OptimizerSpec = GD
) -> int:
    """The most epochs a run may take: --epochs; without it, DEFAULT_EPOCHS for an exact run
    (which `plan` lets run until converged instead) and, for a rough one, DEFAULT_EPOCHS or
    ROUGH_ROW_VISITS row visits, whichever is fewer (at least MIN_ROUGH_EPOCHS)."""
    if ask.epochs is not None:
        return ask.epochs
    if exact(problem, batch_size, optimizer):
        return DEFAULT_EPOCHS
    budget = ROUGH_ROW_VISITS // max(problem.n_train, 1)
    return int(min(DEFAULT_EPOCHS, max(MIN_ROUGH_EPOCHS, budget)))


def exact(problem: Problem, batch_size: int | None, optimizer: OptimizerSpec = GD) -> bool:
    """Whether the run descends exactly to a known optimum (the affine model at full batch: a
    convex loss, toward the reference L*, by a rule theory times: plain descent or momentum);
    every other run is rough (minibatches, networks, separable classes, whose loss has no
    minimum, and Adam, whose steps at a constant rate keep their size near the optimum; and
    momentum on cross-entropy, whose curvature theory knows only at the optimum)."""
    linear = optimizer.plain or (optimizer.heavy and not problem.classifies)
    return problem.has_optimum and problem.full_batch(batch_size) and linear


@dataclass(frozen=True)
class Probe:
    """The short sweep that picked a rate."""

    rates: tuple[float, ...]
    epochs: int


@dataclass(frozen=True)
class IllConditioned:
    """Why even MAX_EPOCHS will not bring the run to --gap-tol, and what would help."""

    condition_number: float
    standardized: bool
    pair: tuple[int, int] | None  # the two features most correlated ...
    correlation: float  # ... and their correlation


@dataclass(frozen=True)
class Plan:
    """The rate, the epochs and the stopping rules a run will use, and how they were chosen."""

    lr: float
    lr_rule: str  # "given", "theory" (η*) or "sweep" (the probe picked it)
    epochs: int  # the most epochs to run
    until_converged: bool  # the run stops once (L − L*)/L* ≤ --gap-tol (`target_loss`)
    predicted: int | None  # theory's epochs at this rate (full batch, affine, constant rate)
    tol: float
    patience: int
    patience_share: float
    early_stopping: bool  # the plateau rule reads the validation loss, and keeps the best epoch
    target_loss: float | None  # stop once the training loss is at or below this (None: no goal)
    tol_of_spread: bool  # tol is a fraction of the targets' variance (a rough run's)
    probe: Probe | None = None
    ill: IllConditioned | None = None
    # a given rate whose epochs, predicted past MAX_EPOCHS, babynn does not run unasked
    beyond: int | None = None
    optimizer: OptimizerSpec = GD  # the update rule, with β chosen where it was not given
    optimizer_chose_beta: bool = False  # β is theory's (not given)

    def settings(self, batch_size: int | None, history_every: int | None = None) -> TrainSettings:
        """The training settings this plan asks for."""
        return TrainSettings(
            self.epochs, batch_size, self.tol, self.patience, self.early_stopping,
            self.target_loss, history_every, patience_share=self.patience_share,
            tol_of_spread=self.tol_of_spread, optimizer=self.optimizer,
        )  # fmt: skip


def probes(
    problem: Problem, batch_size: int | None, lr: float | None, optimizer: OptimizerSpec = GD
) -> bool:
    """Whether choosing the rate takes a short sweep: none given, and no formula for it (a rough
    run, or Adam, which has no exact theory)."""
    return lr is None and not exact(problem, batch_size, optimizer)


def theory_times(
    problem: Problem, batch_size: int | None, schedule: str, optimizer: OptimizerSpec = GD
) -> bool:
    """Whether theory can say how many epochs the run needs: the affine model at full batch with
    a constant rate, by plain descent or momentum (not Adam)."""
    linear = optimizer.plain or optimizer.heavy
    return exact(problem, batch_size, optimizer) and schedule == "constant" and linear


def momentum_choice(problem: Problem, optimizer: OptimizerSpec) -> tuple[float, OptimizerSpec]:
    """The rate (and β, when not given) of momentum at full batch on the affine model, from the
    curvature: heavy ball, Polyak's optimal pair (β given: η = (1 + √β)²/λmax, the largest rate
    at which λmax's direction still contracts by √β an epoch); Nesterov, η = 1/λmax (the step of
    a 1/λmax-smooth loss) with β = (√κ − 1)/(√κ + 1) (Nesterov's constant for strongly convex
    losses) unless given. Rates rounded down to four digits, as η* is."""
    curvature = problem.curvature()
    if optimizer.name == "momentum":
        if optimizer.momentum is None:
            lr, beta = curvature.polyak()
        else:
            beta = optimizer.momentum
            lr = (1.0 + math.sqrt(beta)) ** 2 / curvature.lambda_max
    else:
        root = math.sqrt(curvature.condition_number)
        beta = optimizer.momentum if optimizer.momentum is not None else (root - 1) / (root + 1)
        lr = 1.0 / curvature.lambda_max
    return four_digits_down(lr), replace(optimizer, momentum=beta)


def rules(
    problem: Problem,
    batch_size: int | None,
    ask: Ask,
    spec: ScheduleSpec,
    epochs: int,
    optimizer: OptimizerSpec = GD,
) -> Plan:
    """The stopping rules of the run (the module's table), for `epochs` epochs at most; the rate
    is left to `plan` (0 here)."""
    rough = not exact(problem, batch_size, optimizer)
    given = ask.epochs is not None
    until = not given and not rough and spec.name != "cosine"  # cosine's shape needs its length
    goal = (not given and (until or (rough and problem.has_optimum))) or ask.gap_tol is not None
    target = problem.converged_loss(ask.gap) if goal and problem.has_optimum else None
    if rough:
        tol = ask.tol if ask.tol is not None else (0.0 if given else ROUGH_TOL)
        patience = ask.patience if ask.patience is not None else ROUGH_PATIENCE
        share = 0.0 if ask.patience is not None else ROUGH_PATIENCE_SHARE
        stops_on_val = ask.early_stopping or (not given and problem.val is not None)
    else:
        constant = spec.name == "constant"
        # momentum's loss rises while its velocity overshoots: no plateau rule unless asked
        default_tol = 0.0 if (until and constant) or optimizer.heavy else DEFAULT_TOL
        tol = ask.tol if ask.tol is not None else default_tol
        patience = ask.patience if ask.patience is not None else DEFAULT_PATIENCE
        share, stops_on_val = 0.0, ask.early_stopping
    return Plan(0.0, "", epochs, until, None, tol, patience, share, stops_on_val, target, rough)


def plan(
    problem: Problem,
    params: Params,
    ask: Ask,
    *,
    batch_size: int | None,
    spec: ScheduleSpec,
    seed: int,
    on_epoch: Callable[[EpochInfo], None] | None = None,
    optimizer: OptimizerSpec = GD,
) -> Plan:
    """The rate, epochs and stopping rules for a run: what was given, and for what was not,
    babynn's choice (the module's table); with momentum at full batch on the affine model, its
    rate and β from theory (`momentum_choice`)."""
    epochs = most_epochs(problem, batch_size, ask, optimizer)
    heavy_exact = optimizer.heavy and exact(problem, batch_size, optimizer)
    theory_lr = None
    chose_beta = optimizer.heavy and optimizer.momentum is None
    if heavy_exact and ask.lr is None:
        theory_lr, optimizer = momentum_choice(problem, optimizer)
    elif optimizer.heavy and optimizer.momentum is None:
        optimizer = replace(optimizer, momentum=optimizer.beta)
    chosen = replace(
        rules(problem, batch_size, ask, spec, epochs, optimizer),
        optimizer=optimizer,
        optimizer_chose_beta=chose_beta,
    )
    lr, rule, probe = ask.lr, "given", None
    if theory_lr is not None:
        lr, rule = theory_lr, "theory"
    elif probes(problem, batch_size, ask.lr, optimizer):
        lr, probe = probed_rate(problem, params, batch_size, spec, seed, ask.gap, chosen, on_epoch)
        rule = "sweep"
    elif lr is None:
        lr, rule = problem.curvature().suggested_lr, "theory"
    predicted = ill = beyond = None
    if theory_times(problem, batch_size, spec.name, optimizer) and optimizer.heavy:
        curvature = problem.curvature()
        target = problem.gap_target(ask.gap)
        nesterov = optimizer.name == "nesterov"
        predicted = curvature.momentum_epochs_to_reach(
            problem.error(params), lr, optimizer.beta, target, MAX_EPOCHS, nesterov
        )
    elif theory_times(problem, batch_size, spec.name, optimizer):
        curvature = problem.curvature()
        target = problem.gap_target(ask.gap)
        predicted = curvature.epochs_to_reach(problem.error(params), lr, target, MAX_EPOCHS)
        if predicted is None and rule == "given" and lr < curvature.stable_lr:
            beyond = curvature.epochs_to_reach(problem.error(params), lr, target, FAR)
        if chosen.until_converged and (
            curvature.epochs_to_reach(problem.error(params), curvature.best_lr, target, MAX_EPOCHS)
            is None
        ):  # not even the fastest rate gets there within the cap: say why before training
            ill = ill_conditioned(problem)
    if chosen.until_converged:
        epochs = MAX_EPOCHS
        if predicted is not None:
            epochs = min(MAX_EPOCHS, max(DEFAULT_EPOCHS, HEADROOM * predicted))
        elif rule == "given":  # too slow (or never) to finish unasked: a look, DEFAULT_EPOCHS
            epochs = DEFAULT_EPOCHS
    return replace(
        chosen, lr=lr, lr_rule=rule, epochs=epochs, predicted=predicted, probe=probe, ill=ill,
        beyond=beyond,
    )  # fmt: skip


def probe_epochs(problem: Problem, batch_size: int | None, budget: int) -> int:
    """Epochs a probed rate trains: about PROBE_UPDATES updates, at most 1/PROBE_SHARE of the
    run's `budget` of epochs, at least one."""
    from babynn_cli.core.problem import updates_per_epoch

    per_epoch = updates_per_epoch(problem.n_train, batch_size)
    return max(1, min(budget // PROBE_SHARE, math.ceil(PROBE_UPDATES / per_epoch)))


def probe_grid(problem: Problem) -> tuple[float, ...]:
    """The rates a probe tries: PROBE_RATES from 1/1000 of the ceiling to the ceiling (the affine
    model's full-batch bound 2/λmax; 1 for a network on standardised features and targets)."""
    ceiling = problem.curvature().stable_lr if problem.affine else 1.0
    return tuple(float(r) for r in np.geomspace(ceiling / 1000, ceiling, PROBE_RATES))


def probed_rate(
    problem: Problem,
    params: Params,
    batch_size: int | None,
    spec: ScheduleSpec,
    seed: int,
    gap_tol: float,
    chosen: Plan,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> tuple[float, Probe]:
    """The rate a short sweep picks, each rate trained under the run's own rules (`chosen`) for
    `probe_epochs`, read by the rule sweep-lr suggests by; NoRateFound when every rate failed."""
    from babynn_cli.core.sweep import sweep

    rates = probe_grid(problem)
    epochs = probe_epochs(problem, batch_size, chosen.epochs)
    settings = replace(chosen, epochs=epochs).settings(batch_size)
    found = sweep(problem, params, rates, spec, settings, seed, gap_tol, on_epoch)
    if found.suggested_lr is None:
        raise NoRateFound(
            f"every rate --lr auto tried ({_span(rates)}, {epochs} epoch(s) each) failed: "
            "pass a smaller --lr"
        )
    return found.suggested_lr, Probe(rates, epochs)


def ill_conditioned(problem: Problem) -> IllConditioned:
    """Why the data needs so many epochs: its κ, and the pair of features whose correlation is
    nearest ±1 (a feature that is nearly a combination of others)."""
    curvature = problem.curvature()
    xx = problem.train.unscaled_moments.dense_xx()  # (None past MAX_FEATURES: m × m)
    pair, correlation = None, 0.0
    if xx is not None and len(xx) >= 2:
        sd = np.sqrt(np.diag(xx))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = xx / np.outer(sd, sd)
        corr = np.where(np.isfinite(corr), corr, 0.0)
        np.fill_diagonal(corr, 0.0)
        i, j = np.unravel_index(int(np.argmax(np.abs(corr))), corr.shape)
        pair, correlation = (int(min(i, j)), int(max(i, j))), float(corr[i, j])
    return IllConditioned(curvature.condition_number, problem.standardized, pair, correlation)


def _span(rates: tuple[float, ...]) -> str:
    return f"{len(rates)} rates from {rates[0]:.3g} to {rates[-1]:.3g}"
