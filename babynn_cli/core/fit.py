"""One fit from start to end: split, standardise, initialise, train, express in raw units.

Seeds: one `np.random.SeedSequence(seed)` spawns independent streams for the validation split,
the initial weights and the shuffling, so changing one option (say --val-frac) does not change
the random numbers the others draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from babynn_cli.core.affine import AffineModel, from_raw_units, to_raw_units
from babynn_cli.core.design import Design
from babynn_cli.core.model import Params, mse, r2_per_output, unstack
from babynn_cli.core.moments import Moments
from babynn_cli.core.scaling import Standardizer
from babynn_cli.core.schedules import Schedule
from babynn_cli.core.theory import Curvature, curvature_of
from babynn_cli.core.train import EpochInfo, History, Run, TrainResult, TrainSettings, train

MIN_TRAINING_ROWS = 2


class ProblemError(ValueError):
    """The data cannot be trained on as asked (too few rows, nothing left for training)."""


def streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for (validation split, initial weights, shuffling)."""
    split, init, shuffle = np.random.SeedSequence(seed).spawn(3)
    return np.random.default_rng(split), np.random.default_rng(init), np.random.default_rng(shuffle)


def n_validation_rows(n_rows: int, val_frac: float) -> int:
    """round(F·N) rows, at least one whenever a fraction is asked for."""
    return 0 if val_frac <= 0 else max(1, round(val_frac * n_rows))


def updates_per_epoch(n_rows: int, batch_size: int | None) -> int:
    return 1 if batch_size is None else math.ceil(n_rows / min(batch_size, n_rows))


@dataclass(frozen=True)
class Problem:
    """The data as trained: training (and validation) rows, their standardisation, the model."""

    train: Design
    val: Design | None
    scaler: Standardizer
    standardized: bool
    model: AffineModel

    @property
    def n_train(self) -> int:
        return self.train.n_rows

    @property
    def n_val(self) -> int:
        return 0 if self.val is None else self.val.n_rows

    def curvature(self) -> Curvature:
        """λmax, λmin of the Hessian H = (2/N) X̃ᵀX̃ of the data as trained."""
        return curvature_of(self.train.moments.gram(self.model.intercept))


def make_problem(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    val_frac: float = 0.0,
    standardize: bool = True,
    intercept: bool = True,
    seed: int = 0,
) -> Problem:
    """Hold out round(val_frac·N) seeded rows, standardise with the training rows' statistics.

    Nothing is copied when no rows are held out: the rows are standardised as they are used.
    """
    N = len(X)
    n_val = n_validation_rows(N, val_frac)
    if N - n_val < MIN_TRAINING_ROWS:
        held = f" after holding out {n_val} for validation" if n_val else ""
        raise ProblemError(
            f"{N - n_val} training row(s){held}; a fit needs at least {MIN_TRAINING_ROWS}"
        )
    split_rng, _, _ = streams(seed)
    if n_val:
        order = split_rng.permutation(N)
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        X_tr, Y_tr, X_va, Y_va = X[train_idx], Y[train_idx], X[val_idx], Y[val_idx]
    else:
        X_tr, Y_tr, X_va, Y_va = X, Y, None, None
    m, n = X.shape[1], Y.shape[1]
    raw = Moments.of(X_tr, Y_tr)
    if standardize:
        scaler = Standardizer.from_statistics(raw.x_mean, raw.variance, center=intercept)
    else:
        scaler = Standardizer.identity(m)
    train = Design(X_tr, Y_tr, scaler.mean, scaler.scale, raw)
    val = None if X_va is None else Design(X_va, Y_va, scaler.mean, scaler.scale)  # type: ignore[arg-type]
    return Problem(train, val, scaler, standardize, AffineModel(m, n, intercept))


def initial_params(
    problem: Problem,
    seed: int,
    how: str = "normal",
    warm_start: tuple[np.ndarray, np.ndarray] | None = None,
) -> Params:
    """N(0, 1/m) weights from the seed, zeros, or a saved model's raw-unit (W, w0) carried over."""
    if warm_start is not None:
        W, w0 = warm_start
        s = problem.scaler
        return from_raw_units(W, w0, s.mean, s.scale, problem.model.intercept)
    _, init_rng, _ = streams(seed)
    return problem.model.init_params(init_rng, how)


@dataclass(frozen=True)
class Fitted:
    """One finished run: weights in the data's own units, metrics computed directly with them."""

    run: Run
    history: History  # this run's column of the training history
    params: Params  # as trained (standardised features)
    W: np.ndarray  # (m, n), data's own units
    bias: np.ndarray  # (n,)
    train_loss: float
    train_r2: np.ndarray
    val_loss: float | None
    val_r2: np.ndarray | None


def run_schedules(
    problem: Problem,
    params: Params,
    schedules: Sequence[Schedule],
    settings: TrainSettings,
    seed: int,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> TrainResult:
    """Train one run per schedule, all from `params` and the same shuffling (seeded)."""
    _, _, shuffle_rng = streams(seed)
    return train(
        problem.model,
        params,
        problem.train,
        schedules,
        settings,
        shuffle_rng,
        val=problem.val,
        on_epoch=on_epoch,
    )


def finish(problem: Problem, result: TrainResult, k: int) -> Fitted:
    """Run k of a result, in the data's own units, with its losses computed on the raw data."""
    params = unstack(result.params, k)
    W, bias = to_raw_units(params, problem.scaler.mean, problem.scaler.scale)
    raw = AffineModel(problem.model.n_inputs, problem.model.n_outputs, intercept=True)
    raw_params = {"W": W, "w0": bias}
    Y_hat = raw.predict(raw_params, problem.train.X)
    val_loss = val_r2 = None
    if problem.val is not None:
        Y_val_hat = raw.predict(raw_params, problem.val.X)
        val_loss, val_r2 = mse(problem.val.Y, Y_val_hat), r2_per_output(problem.val.Y, Y_val_hat)
    return Fitted(
        run=result.runs[k],
        history=result.history.column(k),
        params=params,
        W=W,
        bias=bias,
        train_loss=mse(problem.train.Y, Y_hat),
        train_r2=r2_per_output(problem.train.Y, Y_hat),
        val_loss=val_loss,
        val_r2=val_r2,
    )


def fit(
    problem: Problem,
    params: Params,
    schedule: Schedule,
    settings: TrainSettings,
    seed: int,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> Fitted:
    """Train one run with `schedule`."""
    result = run_schedules(problem, params, [schedule], settings, seed, on_epoch)
    return finish(problem, result, 0)
