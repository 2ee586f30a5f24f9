"""Training configurations side by side, against the closed-form optimum.

Configurations that share a batch size train together, as one stack (they differ only in schedule
and rate); every run starts from the same weights and sees the rows in the same order. Each run,
and each saved model, is measured against the least-squares fit of the same training rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from babynn_cli.core.auto import Ask, most_epochs, rules
from babynn_cli.core.fitted import Fitted, train_problem
from babynn_cli.core.history import EpochInfo
from babynn_cli.core.losses import class_probabilities, row_losses
from babynn_cli.core.optimizers import GD, OptimizerSpec
from babynn_cli.core.problem import Problem, updates_per_epoch
from babynn_cli.core.reference import LeastSquares
from babynn_cli.core.rows import Rows
from babynn_cli.core.schedules import ScheduleSpec
from babynn_cli.core.stopping import StopReason
from babynn_cli.core.verdict import Verdict, relative_gap
from babynn_cli.core.vocabulary import Params, mse


@dataclass(frozen=True)
class ModelPredictions:
    """A saved model's loss on the training rows (and on the validation rows, when there are),
    and its weights in the data's own units when it is affine."""

    label: str
    train_loss: float
    val_loss: float | None
    W: np.ndarray | None = None
    bias: np.ndarray | None = None
    accuracy: float | None = None  # classes: the share of training rows it classifies right


@dataclass(frozen=True)
class Config:
    """One training configuration: a schedule (its name and parameters), η0 and a batch size."""

    schedule: ScheduleSpec
    lr: float
    batch_size: int | None  # None: the whole data set
    optimizer: OptimizerSpec = GD  # the update rule (`core.optimizers`)

    @property
    def label(self) -> str:
        batch = "full batch" if self.batch_size is None else f"batch {self.batch_size}"
        rule = self.optimizer
        by = ""
        if rule.heavy:
            by = f", {rule.name} β={rule.beta:.4g}"
        elif rule.name == "adam":
            by = ", adam"
        return f"{self.schedule.name} η0={self.lr:g}, {batch}{by}"


@dataclass(frozen=True)
class Row:
    """A run or a saved model, in the data's own units, measured against the optimum."""

    label: str
    config: Config | None  # None for a saved model
    W: np.ndarray | None  # (m, n), None for a network
    bias: np.ndarray | None  # (n,)
    train_loss: float
    val_loss: float | None
    gap: float  # L - L*
    relative_gap: float  # (L - L*)/L* (L - L* when L* = 0)
    weight_distance: float | None  # ||[W; w0] - [W*; w0*]||, Frobenius, data's units (affine)
    reached_epoch: int | None  # first epoch with relative gap ≤ gap_tol
    verdict: Verdict | None  # None for a saved model
    stop_reason: StopReason | None
    epochs_run: int | None
    seconds: float | None  # wall time of its training (runs of one stack share it)
    curve: np.ndarray | None  # relative gap at the epochs of `curve_epochs` (the loss: no L*)
    curve_epochs: np.ndarray | None = None  # epoch 0, 1, ... (a long run's history keeps some)
    accuracy: float | None = None  # classes: the share of training rows it classifies right
    final_epoch: int | None = None  # the epoch of its weights and losses (before it diverged)


@dataclass(frozen=True)
class Comparison:
    reference: LeastSquares  # in the data's own units, on the training rows (loss nan: none)
    reference_val_loss: float | None
    rows: tuple[Row, ...]  # ranked: by gap (by loss with no reference), diverged last
    classes: bool = False  # cross-entropy: the reference is Newton's, rows have an accuracy
    reference_accuracy: float | None = None
    ridge: bool = False  # squared error with --l2: the reference is ridge's closed form

    @property
    def reference_label(self) -> str:
        """How the reference was found, in a few words."""
        if self.classes:
            return "Newton's method"
        return "ridge (closed form, --l2)" if self.ridge else "least squares (closed form)"

    @property
    def optimum_name(self) -> str:
        """The optimum the runs are measured against."""
        if self.classes:
            return "cross-entropy optimum (Newton)"
        return "ridge optimum (--l2)" if self.ridge else "least-squares optimum"

    @property
    def has_reference(self) -> bool:
        """Whether there is an optimum to measure against (not for separable classes)."""
        return math.isfinite(self.reference.loss)

    @property
    def best(self) -> int | None:
        """The row closest to the optimum, unless even it failed."""
        if not self.rows or (self.rows[0].verdict is not None and self.rows[0].verdict.failed):
            return None
        return 0


def distance(W: np.ndarray | None, bias: np.ndarray | None, ref: LeastSquares) -> float | None:
    if W is None or bias is None:
        return None
    return float(np.sqrt(((W - ref.W) ** 2).sum() + ((bias - ref.w0) ** 2).sum()))


def _row(
    label: str,
    config: Config | None,
    W: np.ndarray | None,
    bias: np.ndarray | None,
    train_loss: float,
    val_loss: float | None,
    ref: LeastSquares,
    scale: float,
    *,
    verdict: Verdict | None = None,
    stop_reason: StopReason | None = None,
    reached_epoch: int | None = None,
    epochs_run: int | None = None,
    seconds: float | None = None,
    curve: np.ndarray | None = None,
    curve_epochs: np.ndarray | None = None,
    accuracy: float | None = None,
    final_epoch: int | None = None,
) -> Row:
    """A row measured against the optimum `ref`, its gap relative to `scale` (see
    `Problem.gap_scale`)."""
    gap = train_loss - ref.loss
    if W is not None and gap < 0:  # an affine model's loss is never below L*: this is rounding
        gap = 0.0
    return Row(
        label=label,
        config=config,
        W=W,
        bias=bias,
        train_loss=train_loss,
        val_loss=val_loss,
        gap=gap,
        relative_gap=relative_gap(ref.loss + gap, ref.loss, scale),
        weight_distance=distance(W, bias, ref),
        reached_epoch=reached_epoch,
        verdict=verdict,
        stop_reason=stop_reason,
        epochs_run=epochs_run,
        seconds=seconds,
        curve=curve,
        curve_epochs=curve_epochs,
        accuracy=accuracy,
        final_epoch=final_epoch,
    )


def compare(
    problem: Problem,
    params: Params,
    configs: Sequence[Config],
    ask: Ask,
    seed: int,
    on_epoch: Callable[[EpochInfo], None] | None = None,
    saved: Sequence[ModelPredictions] = (),
) -> Comparison:
    """Run every configuration and set them, and the saved models, beside the optimum: the
    least-squares affine fit (for networks too: the table shows how far they get past it). Each
    run stops by the rules `fit` gives it (`core.auto.rules`: `ask` holds the options given)."""
    if problem.reference_exists:  # the one optimum: fit's L* is its loss
        W, w0 = problem.optimum_in_data_units()
        ref = LeastSquares(W, w0, problem.optimum_loss, problem.optimum_unique)
    else:  # separable classes: nothing to measure against but the losses themselves
        n = problem.model.n_outputs
        ref = LeastSquares(np.zeros((problem.train.n_features, n)), np.zeros(n), math.nan)
    val = problem.val
    ref_val, ref_accuracy = None, None
    if problem.classifies and problem.reference_exists:
        ref_accuracy = _class_metrics(problem, ref, problem.train)[1]
        if val is not None:
            ref_val = _class_metrics(problem, ref, val)[0]
    elif val is not None and val.raw_moments is not None and val.streamed:  # no pass over rows
        ref_val = val.raw_moments.loss_and_r2({"W": ref.W, "w0": ref.w0})[0]
    elif val is not None and problem.reference_exists:
        ref_val = mse(val.Y, val.X @ ref.W + ref.w0)
    rows = _runs(problem, params, configs, ask, seed, ref, on_epoch)
    for model in saved:
        loss = model.train_loss
        row = _row(
            model.label, None, model.W, model.bias, loss, model.val_loss, ref, problem.gap_scale,
            accuracy=model.accuracy,
        )  # fmt: skip
        rows.append(row)

    def rank(row: Row) -> tuple[bool, float, float]:
        gap = row.gap if math.isfinite(ref.loss) else row.train_loss
        gap = gap if math.isfinite(gap) else math.inf
        reached = row.reached_epoch if row.reached_epoch is not None else math.inf
        return (row.verdict is not None and row.verdict.failed, gap, reached)

    ranked = tuple(sorted(rows, key=rank))
    ridge = bool(problem.model.l2) and not problem.classifies
    return Comparison(ref, ref_val, ranked, problem.classifies, ref_accuracy, ridge)


def _class_metrics(problem: Problem, ref: LeastSquares, rows: Rows) -> tuple[float, float]:
    """The cross-entropy and accuracy of the reference's weights (data's own units) on rows."""
    kind = problem.model.loss
    total, right = 0.0, 0
    for X, Y in rows.passes():
        Z = X @ ref.W + ref.w0
        total += float(row_losses(kind, Z, Y).sum())
        truth = Y[:, 0].astype(int) if kind == "logistic" else Y.argmax(axis=1)
        right += int((class_probabilities(kind, Z).argmax(axis=1) == truth).sum())
    return total / rows.n_rows, right / rows.n_rows


def _runs(
    problem: Problem,
    params: Params,
    configs: Sequence[Config],
    ask: Ask,
    seed: int,
    ref: LeastSquares,
    on_epoch: Callable[[EpochInfo], None] | None,
) -> list[Row]:
    """Train the configurations, those of one batch size together as one stack, under the rules
    of the group's first schedule (runs that train together stop by one set of rules)."""
    gap_tol = ask.gap
    rows: list[Row] = []
    groups: dict[tuple[int | None, OptimizerSpec], list[Config]] = {}
    for config in configs:  # runs of one batch size and one rule (β and all) train as a stack
        groups.setdefault((config.batch_size, config.optimizer), []).append(config)
    for (batch_size, rule), group in groups.items():
        epochs = most_epochs(problem, batch_size, ask, rule)
        total = epochs * updates_per_epoch(problem.n_train, batch_size)
        schedules = [replace(c.schedule, total_updates=total).at(c.lr) for c in group]
        # (L − L*)/L* ≤ gap_tol, noted exactly
        watch = problem.converged_loss(gap_tol) if problem.reference_exists else None
        chosen = replace(rules(problem, batch_size, ask, group[0].schedule, epochs, rule),
                         optimizer=rule)  # fmt: skip
        group_settings = replace(chosen.settings(batch_size), watch_loss=watch)
        result = train_problem(problem, params, schedules, group_settings, seed, on_epoch)
        for k, config in enumerate(group):
            fitted = Fitted.of(problem, result, k, gap_tol)
            losses = fitted.history.train_loss[:, 0]
            if problem.reference_exists:
                curve = np.array([relative_gap(L, ref.loss, problem.gap_scale) for L in losses])
            else:
                curve = losses.copy()
            reached = fitted.history.reached[0] if fitted.history.reached else None
            rows.append(
                _row(
                    config.label,
                    config,
                    fitted.W,
                    fitted.bias,
                    fitted.train_loss,
                    fitted.val_loss,
                    ref,
                    problem.gap_scale,
                    verdict=fitted.verdict,
                    stop_reason=fitted.end.stop_reason,
                    reached_epoch=reached,
                    epochs_run=fitted.end.epochs_run,
                    seconds=float(fitted.history.seconds[-1]),
                    curve=curve,
                    curve_epochs=fitted.history.epoch,
                    accuracy=fitted.train_accuracy,
                    final_epoch=fitted.end.weights_epoch,
                )
            )
        if any(r.stop_reason is StopReason.INTERRUPTED for r in result.runs):
            break
    return rows
