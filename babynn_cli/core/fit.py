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
from babynn_cli.core.mlp import MLP
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
    model: AffineModel | MLP

    @property
    def affine(self) -> bool:
        return isinstance(self.model, AffineModel)

    @property
    def n_train(self) -> int:
        return self.train.n_rows

    @property
    def n_val(self) -> int:
        return 0 if self.val is None else self.val.n_rows

    def curvature(self) -> Curvature:
        """λmax, λmin of the affine model's Hessian H = (2/N) X̃ᵀX̃ on the data as trained."""
        return curvature_of(self.train.moments.gram(getattr(self.model, "intercept", True)))


def make_problem(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    val_frac: float = 0.0,
    standardize: bool = True,
    intercept: bool = True,
    seed: int = 0,
    hidden: Sequence[int] = (),
    activation: str = "tanh",
) -> Problem:
    """Hold out round(val_frac·N) seeded rows, standardise with the training rows' statistics.

    No `hidden` layers: the affine model; otherwise a network with those hidden layers.
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
    center = intercept or bool(hidden)  # a network's biases absorb the shift
    if standardize:
        scaler = Standardizer.from_statistics(raw.x_mean, raw.variance, center=center)
    else:
        scaler = Standardizer.identity(m)
    train = Design(X_tr, Y_tr, scaler.mean, scaler.scale, raw)
    val = None if X_va is None else Design(X_va, Y_va, scaler.mean, scaler.scale)  # type: ignore[arg-type]
    model = MLP(m, tuple(hidden), n, activation) if hidden else AffineModel(m, n, intercept)
    return Problem(train, val, scaler, standardize, model)


@dataclass(frozen=True)
class Saved:
    """A trained model's weights as a model file keeps them: the affine model's W and w0 in the
    data's own units; a network's layers in the standardised units of `mean` and `scale`."""

    params: Params
    mean: np.ndarray
    scale: np.ndarray


def initial_params(
    problem: Problem, seed: int, how: str = "normal", warm_start: Saved | None = None
) -> Params:
    """N(0, 1/fan_in) weights from the seed, zeros, or a saved model's weights carried over."""
    s = problem.scaler
    if warm_start is None:
        _, init_rng, _ = streams(seed)
        return problem.model.init_params(init_rng, how)
    if problem.affine:
        W, w0 = warm_start.params["W"], warm_start.params["w0"]
        return from_raw_units(W, w0, s.mean, s.scale, problem.model.intercept)
    # The first layer read z' = (x - mean')/scale'; now it reads z = (x - mean)/scale, and
    # z' = (scale·z + mean - mean')/scale': fold that map into W1 and b1.
    params = {k: v.copy() for k, v in warm_start.params.items()}
    ratio = s.scale / warm_start.scale
    shift = (s.mean - warm_start.mean) / warm_start.scale
    params["b1"] = params["b1"] + shift @ params["W1"]
    params["W1"] = params["W1"] * ratio[:, None]
    return params


def optimum_loss(problem: Problem) -> float:
    """L* of the best affine fit of the training rows (through the origin without an intercept),
    from the moments already gathered: what gradient descent on the affine model tends to."""
    return problem.train.moments.optimum(getattr(problem.model, "intercept", True))[2]


def predict_raw(problem: Problem, params: Params, X: np.ndarray) -> np.ndarray:
    """ŷ for raw rows X, as `babynn predict` computes it from the model file."""
    if problem.affine:
        W, w0 = to_raw_units(params, problem.scaler.mean, problem.scaler.scale)
        return AffineModel(W.shape[0], W.shape[1]).predict({"W": W, "w0": w0}, X)
    return problem.model.predict(params, problem.scaler.transform(X))


@dataclass(frozen=True)
class Fitted:
    """One finished run, its metrics computed directly on the raw rows."""

    run: Run
    history: History  # this run's column of the training history
    params: Params  # as trained (standardised features)
    W: np.ndarray | None  # (m, n), the affine model's, in the data's own units
    bias: np.ndarray | None  # (n,)
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
    W = bias = None
    if problem.affine:
        W, bias = to_raw_units(params, problem.scaler.mean, problem.scaler.scale)
    Y_hat = predict_raw(problem, params, problem.train.X)
    val_loss = val_r2 = None
    if problem.val is not None:
        Y_val_hat = predict_raw(problem, params, problem.val.X)
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
