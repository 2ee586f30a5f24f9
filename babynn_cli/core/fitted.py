"""A run in the data's own units: train the problem's model (K runs at once), then read each run as
the user sees it (`Fitted`): its losses on the raw rows, its R², its verdict."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from babynn_cli.core.affine import to_raw_units
from babynn_cli.core.history import EpochInfo, History
from babynn_cli.core.losses import class_probabilities, row_losses
from babynn_cli.core.problem import Problem, predict_raw, streams
from babynn_cli.core.rows import Rows
from babynn_cli.core.schedules import Schedule
from babynn_cli.core.stopping import RunEnd
from babynn_cli.core.train import TrainResult, TrainSettings, train
from babynn_cli.core.verdict import Judgement, Verdict, judge
from babynn_cli.core.vocabulary import Params, mse, r2_per_output, stack, unstack


def train_problem(
    problem: Problem,
    params: Params,
    schedules: Sequence[Schedule],
    settings: TrainSettings,
    seed: int,
    on_epoch: Callable[[EpochInfo], None] | None = None,
) -> TrainResult:
    """Train one run per schedule, all from `params` and the same shuffling (seeded). Losses
    come back in the targets' own units, whatever units the model learns them in."""
    _, _, shuffle_rng = streams(seed)
    units = problem.target_scale**2 if problem.target_mean is not None else 1.0
    if units != 1.0:  # a network learns ỹ = (y − mean)/scale: its losses are L / scale²
        settings = replace(
            settings,
            target_loss=None if settings.target_loss is None else settings.target_loss / units,
            watch_loss=None if settings.watch_loss is None else settings.watch_loss / units,
        )
        if on_epoch is not None:
            on_epoch = _in_units(on_epoch, units)
    result = train(
        problem.model,
        params,
        problem.train,
        schedules,
        settings,
        shuffle_rng,
        val=problem.val,
        on_epoch=on_epoch,
    )
    if units == 1.0:
        return result
    h = result.history
    val_loss = None if h.val_loss is None else h.val_loss * units
    history = replace(h, train_loss=h.train_loss * units, val_loss=val_loss)
    return replace(result, history=history)


def _in_units(on_epoch: Callable[[EpochInfo], None], units: float) -> Callable[[EpochInfo], None]:
    """Progress with its losses in the targets' own units."""

    def shown(info: EpochInfo) -> None:
        val_loss = None if info.val_loss is None else info.val_loss * units
        on_epoch(replace(info, train_loss=info.train_loss * units, val_loss=val_loss))

    return shown


@dataclass(frozen=True)
class Fitted:
    """One finished run, its metrics computed directly on the raw rows."""

    end: RunEnd
    judgement: Judgement  # what happened: the verdict and the losses it was read from
    history: History  # this run's column of the training history
    params: Params  # as trained (standardised features)
    W: np.ndarray | None  # (m, n), the affine model's, in the data's own units
    bias: np.ndarray | None  # (n,)
    train_loss: float
    train_r2: np.ndarray
    val_loss: float | None
    val_r2: np.ndarray | None
    train_accuracy: float | None = None  # classes: the share of rows whose likeliest is theirs
    val_accuracy: float | None = None

    @property
    def verdict(self) -> Verdict:
        return self.judgement.verdict

    @classmethod
    def of(cls, problem: Problem, result: TrainResult, k: int, gap_tol: float) -> Fitted:
        """Run k of a result, in the data's own units, its losses computed on the raw data, and
        its verdict (`gap_tol`: how close to L* counts as converged)."""
        params = unstack(result.params, k)
        history = result.history.column(k, result.runs[k].epochs_run)
        train_loss, train_r2, train_accuracy = evaluate(problem, params, problem.train, True)
        optimum = problem.optimum_loss if problem.has_optimum else None
        scale = problem.gap_scale if problem.has_optimum else None
        judgement = judge(
            history.train_loss[:, 0], result.runs[k], optimum, gap_tol, scale, history.epoch,
            result.trend(k, problem.spread),
        )  # fmt: skip
        if problem.separable:
            judgement = judgement.without_minimum()
        stalled = result.exact and at_the_bound(problem, history)
        if stalled and judgement.verdict is Verdict.STILL_FALLING:
            judgement = replace(judgement, verdict=Verdict.PLATEAU)  # flat for ever, not falling
        W = bias = None
        if problem.affine:
            W, bias = to_raw_units(params, problem.scaler.mean, problem.scaler.scale)
        val_loss = val_r2 = val_accuracy = None
        if problem.val is not None:
            val_loss, val_r2, val_accuracy = evaluate(problem, params, problem.val)
        return cls(
            end=result.runs[k],
            judgement=judgement,
            history=history,
            params=params,
            W=W,
            bias=bias,
            train_loss=train_loss,
            train_r2=train_r2,
            val_loss=val_loss,
            val_r2=val_r2,
            train_accuracy=train_accuracy,
            val_accuracy=val_accuracy,
        )


def at_the_bound(problem: Problem, history: History) -> bool:
    """Whether a full-batch run of the affine model on squared error ran at a constant rate of
    2/λmax (to rounding): the error along λmax's direction then flips sign each epoch and never
    shrinks, so the loss settles above L* however long it runs."""
    rates = history.lr[1:, 0]
    if not (problem.has_optimum and not problem.classifies and len(rates)):
        return False
    bound = problem.curvature().stable_lr
    return bool(np.all(rates == rates[0])) and math.isclose(rates[-1], bound, rel_tol=1e-9)


def evaluate(
    problem: Problem, params: Params, rows: Rows, penalized: bool = False
) -> tuple[float, np.ndarray, float | None]:
    """The loss L, each output's R² and (for classes) the accuracy of one model (standardised
    units) on `rows`: directly on the raw rows; for streamed rows, from their moments (L* + the
    excess, each output's, which keeps every digit near the optimum) with no further pass, or,
    for a network or classes, in one pass. `penalized`: the loss as trained, with --l2's α||W||²
    (the training rows'; a validation loss is the data's alone)."""
    penalty = float(np.sum(problem.model.penalty(stack(params, 1)))) if penalized else 0.0
    if problem.target_mean is not None:  # a network learnt ỹ = (y − mean)/s: its objective,
        penalty *= problem.target_scale**2  # in y's units, is s²·(L_ỹ + α||W||²)
    if problem.classifies:
        loss, accuracy = _class_metrics(problem, params, rows)
        return loss + penalty, np.array([]), accuracy
    if not rows.streamed:
        Y_hat = predict_raw(problem, params, rows.X)
        return mse(rows.Y, Y_hat) + penalty, r2_per_output(rows.Y, Y_hat), None
    if problem.affine:
        loss, r2 = rows.moments.loss_and_r2(params)
        return loss + penalty, r2, None
    raw = rows.raw_moments  # a network: one pass for each output's squared error
    assert raw is not None
    sse = np.zeros(len(raw.y_mean))
    for X, Y in rows.passes():
        R = Y - predict_raw(problem, params, X)
        sse += np.einsum("ij,ij->j", R, R)
    per_output = sse / rows.n_rows
    return float(per_output.sum()) + penalty, raw.r2(per_output), None


def _class_metrics(problem: Problem, params: Params, rows: Rows) -> tuple[float, float]:
    """The cross-entropy and the accuracy (the share of rows whose most probable class is
    theirs) on the raw rows, block by block."""
    kind = problem.model.loss
    total, right = 0.0, 0
    for X, Y in rows.passes():
        Z = predict_raw(problem, params, X)
        total += float(row_losses(kind, Z, Y).sum())
        P = class_probabilities(kind, Z)
        truth = Y[:, 0].astype(int) if kind == "logistic" else Y.argmax(axis=1)
        right += int((P.argmax(axis=1) == truth).sum())
    return total / rows.n_rows, right / rows.n_rows


def fit(
    problem: Problem,
    params: Params,
    schedule: Schedule,
    settings: TrainSettings,
    seed: int,
    on_epoch: Callable[[EpochInfo], None] | None = None,
    gap_tol: float = 1e-6,
) -> Fitted:
    """Train one run with `schedule`."""
    result = train_problem(problem, params, [schedule], settings, seed, on_epoch)
    return Fitted.of(problem, result, 0, gap_tol)
