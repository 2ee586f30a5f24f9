"""The problem as trained: which rows train and which validate, their standardisation, the model,
and the weights training starts from.

Seeds: one `np.random.SeedSequence(seed)` spawns independent streams for the validation split,
the initial weights and the shuffling, so changing one option (say --val-frac) does not change
the random numbers the others draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from babynn_cli.core import classify
from babynn_cli.core.affine import AffineModel, from_raw_units, to_raw_units
from babynn_cli.core.losses import CURVATURE_BOUND, spread_of
from babynn_cli.core.mlp import MLP
from babynn_cli.core.moments import MAX_FEATURES, Moments, TooManyFeatures
from babynn_cli.core.rows import RowFile, Rows, StreamedRows
from babynn_cli.core.scaling import Standardizer
from babynn_cli.core.theory import Curvature
from babynn_cli.core.vocabulary import Params, full_batch

MIN_TRAINING_ROWS = 2
# More weights than this (features + 1, times the classes) and the cross-entropy reference is not
# computed: Newton's Hessian is this squared, and its eigenvalues are needed too
MAX_NEWTON_UNKNOWNS = 2000
ROUNDING = 1e-13  # L* below this fraction of the targets' variance is 0 to rounding
TINY = 1e-150  # a column whose mean is this small (not 0) has squares past double precision


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

    train: Rows
    val: Rows | None
    scaler: Standardizer
    standardized: bool
    model: AffineModel | MLP
    # a network learns (y − target_mean) / target_scale (`target_scaling`); None: y itself
    target_mean: np.ndarray | None = None
    target_scale: float = 1.0
    val_frac: float = 0.0  # the share of the rows held out for validation, as asked

    @property
    def affine(self) -> bool:
        return isinstance(self.model, AffineModel)

    @property
    def n_train(self) -> int:
        return self.train.n_rows

    @property
    def n_val(self) -> int:
        return 0 if self.val is None else self.val.n_rows

    def full_batch(self, batch_size: int | None) -> bool:
        """Whether batches of `batch_size` rows (None: all) are the whole training set."""
        return full_batch(batch_size, self.n_train)

    @property
    def classifies(self) -> bool:
        """Whether the model learns classes (cross-entropy) rather than numbers."""
        return self.model.loss != "mse"

    @property
    def spread(self) -> float:
        """The loss of the best constant prediction on the training rows: the targets' variance
        (summed over outputs), or the classes' entropy."""
        moments = self.train.moments
        return spread_of(self.model.loss, moments.y_mean, moments.spread)

    @property
    def reference_exists(self) -> bool:
        """Whether the affine model's loss on these rows has a minimum that babynn knows (the
        reference L*, beside a network's runs too): always for squared error; for cross-entropy
        unless the classes are separable (the loss then falls forever) or the Hessian is too
        large to find it (more than MAX_NEWTON_UNKNOWNS weights)."""
        if not self.classifies:
            return True
        return self._too_large is None and not self._no_minimum

    @property
    def has_optimum(self) -> bool:
        """Whether this run's model is the affine model and its loss has a known minimum."""
        return self.affine and self.reference_exists

    @property
    def reference_name(self) -> str:
        """What the reference L* is, in a few words."""
        if self.classifies:
            fit = "cross-entropy optimum" if self.affine else "best affine (logistic) fit"
            return f"{fit} L* (Newton)"
        ridge = " (ridge, --l2)" if self.model.l2 and self.affine else ""
        return ("least-squares optimum" if self.affine else "best affine fit") + f" L*{ridge}"

    @property
    def separable(self) -> bool:
        """Cross-entropy of the affine model on separable classes: no finite optimum."""
        return self.affine and self.classifies and self._no_minimum

    @cached_property
    def _no_minimum(self) -> bool:
        """Whether the cross-entropy of the affine model has no minimum (separable classes), as
        Newton's method finds; with too many weights for it, fewer rows than weights in general
        position (X̃ of rank N, read from its eigenvalues) are separable whatever their labels.
        --l2 gives the loss a minimum."""
        if self._too_large is None:
            return self._reference.separable
        rows = self.train
        p = rows.n_features + int(self.model.intercept)
        if self.model.l2 or rows.streamed or rows.n_rows > p:
            return False
        return len(self._of_rows.eigenvalues) == rows.n_rows

    @property
    def _too_large(self) -> str | None:
        """Why the classification reference is not computed, or None."""
        p = self.train.n_features + int(self.model.intercept)
        unknowns = p * self.model.n_outputs
        if unknowns > MAX_NEWTON_UNKNOWNS:
            return f"{unknowns:,} weights: Newton's Hessian would have {unknowns**2:,} entries"
        return None

    def curvature(self) -> Curvature:
        """H = (2/N) X̃ᵀX̃ of the affine model on the data as trained (computed once); with --l2,
        2α more on W's diagonal; for cross-entropy the Hessian at the optimum and a bound for any
        weights (`core.classify`)."""
        return self._curvature

    @cached_property
    def _curvature(self) -> Curvature:
        rows, alpha = self.train, self.model.l2
        wide = rows.n_rows <= rows.n_features and not rows.streamed
        if self.classifies:
            if self._too_large is not None:  # the bound alone, with no local curvature
                if wide:  # λmax of X̃ᵀX̃/N: half H's, H = (2/N) X̃ᵀX̃
                    top = self._of_rows.lambda_max / 2
                else:
                    top = float(np.linalg.eigvalsh(rows.moments.gram(self.model.intercept))[-1])
                bound = CURVATURE_BOUND[self.model.loss] * top + 2.0 * alpha
                return Curvature(np.array([bound]), np.eye(1), bound=bound)
            gram = rows.moments.gram(self.model.intercept)
            return classify.curvature(self._reference, gram, self.model.loss, alpha)
        return self._of_rows if wide and not alpha else self._gram_curvature(alpha)

    @cached_property
    def _of_rows(self) -> Curvature:
        """H from the rows themselves, when there are fewer rows than columns: O(N²m), not
        O(m³), and no m × m matrix (computed once: the curvature and separability both read it)."""
        rows = self.train
        Z = rows.standardized()
        if self.model.intercept:
            Z = np.column_stack([Z, np.ones(rows.n_rows)])
        return Curvature.of_rows(Z)

    def _gram_curvature(self, alpha: float) -> Curvature:
        """H = 2(X̃ᵀX̃/N + α on W's diagonal), from the moments."""
        gram = self.train.moments.gram(self.model.intercept)
        if alpha:
            m = self.train.n_features
            gram = gram + np.diag(np.r_[np.full(m, alpha), np.zeros(len(gram) - m)])
        return Curvature.of(gram)

    @cached_property
    def _reference(self) -> classify.ClassOptimum:
        """The minimum of the cross-entropy by Newton's method on the training rows."""
        rows = self.train

        def blocks() -> Iterable[tuple[np.ndarray, np.ndarray]]:
            if not rows.streamed:
                return [(rows.standardized(), rows.Y)]
            return ((rows.standardize(X), Y) for X, Y in rows.passes())

        m, n = rows.n_features, self.model.n_outputs
        return classify.newton(self.model.loss, blocks, m, n, self.model.intercept, self.model.l2)

    @property
    def optimum(self) -> tuple[np.ndarray, np.ndarray, float]:
        """W*, w0* (standardised units) and L* of the best affine fit of the training rows
        (through the origin without an intercept): what gradient descent on the affine model
        tends to."""
        return self._optimum

    @cached_property
    def _optimum(self) -> tuple[np.ndarray, np.ndarray, float]:
        if self.classifies:
            ref = self._reference
            return ref.W, ref.w0, ref.loss
        return self.train.moments.ridged(self.model.l2).optimum(self.model.intercept)

    def _stacked(self, W: np.ndarray, w0: np.ndarray) -> np.ndarray:
        """W̃ = [W; w0ᵀ] as `Curvature` reads it (W alone without an intercept)."""
        return np.vstack([W, w0[None, :]]) if self.model.intercept else W

    def _unstacked(self, stacked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.train.n_features
        return stacked[:m], stacked[m] if self.model.intercept else np.zeros(stacked.shape[1])

    def toward_optimum(self, params: Params) -> Params:
        """Affine weights whose part that no gradient changes (along H's zero eigenvalues, when
        the features are collinear) is the reference optimum's: training from them ends at
        `optimum` itself, the least-squares fit of least norm, not at another of the many."""
        if self.affine and self.model.loss == "softmax":
            # moving every class's weights alike changes nothing, and no gradient does it (the
            # classes' gradients sum to zero): start, as Newton does, with no part along it
            return {k: v - v.mean(axis=-1, keepdims=True) for k, v in params.items()}
        if not self.affine or (self.optimum_unique and not self.curvature().singular):
            return params  # (nearly collinear: a direction theory counts as flat is set too)
        curvature = self.curvature()
        W_opt, w0_opt, _ = self.optimum
        start = self._stacked(params["W"], params.get("w0", w0_opt))
        best = self._stacked(W_opt, w0_opt)
        moved = curvature.in_range(start) + (best - curvature.in_range(best))
        W, w0 = self._unstacked(moved)
        return {"W": W, "w0": w0} if "w0" in params else {"W": W}

    @property
    def optimum_loss(self) -> float:
        return self.optimum[2]

    @property
    def optimum_unique(self) -> bool:
        """Whether the least-squares fit is the only one (else: the one of least norm); with
        --l2 or cross-entropy, it is (softmax's classes moved alike aside)."""
        if self.classifies or self.model.l2:
            return True
        return self.train.unscaled_moments.unique

    def optimum_in_data_units(self) -> tuple[np.ndarray, np.ndarray]:
        """W* and w0* of the least-squares fit for the raw features, as the model file writes W:
        solved in those units (`core.reference`), not converted from the standardised ones; with
        --l2 or cross-entropy, converted from those (their penalty and Newton's steps are in the
        units trained)."""
        if self.classifies or self.model.l2:
            W, w0, _ = self.optimum
            params = {"W": W, "w0": w0} if self.model.intercept else {"W": W}
            return to_raw_units(params, self.scaler.mean, self.scaler.scale)
        W, w0, _ = self.train.unscaled_moments.optimum(self.model.intercept)
        return W, w0

    @property
    def gap_scale(self) -> float:
        """What a gap L − L* is measured against: L*, unless L* is 0 to rounding (an exact fit);
        then the targets' variance (the loss of predicting their mean), or 1 for a constant
        target; with no known L* (`reference_exists`), the variance or the classes' entropy."""
        spread = self.spread
        if self.reference_exists and self.optimum_loss > ROUNDING * spread:
            return self.optimum_loss
        return spread if spread > 0 else 1.0

    def gap_target(self, gap_tol: float) -> float:
        """The largest L − L* that counts as converged: gap_tol × the gap scale."""
        return gap_tol * self.gap_scale

    def converged_loss(self, gap_tol: float) -> float:
        """The training loss at or below which the affine model has converged: L* plus
        `gap_target`."""
        return self.optimum_loss + self.gap_target(gap_tol)

    def error(self, params: Params) -> np.ndarray:
        """W̃ − W̃* of one affine model's parameters, as `Curvature` reads it: (p, n)."""
        W_opt, w0_opt, _ = self.optimum
        if not self.model.intercept:
            return params["W"] - W_opt
        return np.vstack([params["W"] - W_opt, (params["w0"] - w0_opt)[None, :]])


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
    loss: str = "mse",
    l2: float = 0.0,
) -> Problem:
    """Hold out round(val_frac·N) seeded rows, standardise with the training rows' statistics.

    No `hidden` layers: the affine model; otherwise a network with those hidden layers.
    Nothing is copied when no rows are held out: the rows are standardised as they are used.
    """
    N = len(X)
    n_val = n_validation_rows(N, val_frac)
    held = held_out(N, n_val, seed)
    if held is not None:
        val_idx, train_idx = np.flatnonzero(held), np.flatnonzero(~held)
        X_tr, Y_tr, X_va, Y_va = X[train_idx], Y[train_idx], X[val_idx], Y[val_idx]
    else:
        X_tr, Y_tr, X_va, Y_va = X, Y, None, None
    with _width_as_problem():
        raw = Moments.of(X_tr, Y_tr)

    def rows(scaler: Standardizer, target: TargetScaling) -> tuple[Rows, Rows | None]:
        train = Rows(X_tr, Y_tr, scaler.mean, scaler.scale, raw, None, *target)
        if X_va is None or Y_va is None:
            return train, None
        return train, Rows(X_va, Y_va, scaler.mean, scaler.scale, None, None, *target)

    def biggest() -> float:
        return float(np.abs(Y_tr).max())

    learner = Learner(hidden, activation, loss, l2)
    problem = _assembled(raw, rows, standardize, intercept, learner, biggest)
    return replace(problem, val_frac=val_frac if held is not None else 0.0)


@contextmanager
def _width_as_problem() -> Iterator[None]:
    """Too many features for the moments as the data's problem (`ProblemError`)."""
    try:
        yield
    except TooManyFeatures as e:
        raise ProblemError(str(e)) from None


TargetScaling = tuple[np.ndarray | None, float]  # (target_mean, target_scale): see `target_scaling`


@dataclass(frozen=True)
class Learner:
    """What learns from the rows: the hidden layers (none: the affine model), their activation,
    the loss's kind (`core.losses`) and the penalty's α."""

    hidden: Sequence[int] = ()
    activation: str = "tanh"
    loss: str = "mse"
    l2: float = 0.0

    def model(self, m: int, n: int, intercept: bool) -> AffineModel | MLP:
        if self.hidden:
            return MLP(m, tuple(self.hidden), n, self.activation, loss=self.loss, l2=self.l2)
        return AffineModel(m, n, intercept, loss=self.loss, l2=self.l2)


def _assembled(
    raw: Moments,
    rows: Callable[[Standardizer, TargetScaling], tuple[Rows, Rows | None]],
    standardize: bool,
    intercept: bool,
    learner: Learner,
    biggest: Callable[[], float | None] = lambda: None,
) -> Problem:
    """The problem from the training rows' moments `raw`, whichever way the rows come: their
    standardisation (and a network's target scaling), the rows as trained (`rows`), the model.
    `biggest()`: the target's largest value, to name it when the moments overflow (features
    of any size are kept in units of their own: `Moments.unit`)."""
    if raw.n_rows < MIN_TRAINING_ROWS:
        raise ProblemError(f"{raw.n_rows} row(s); a fit needs at least {MIN_TRAINING_ROWS}")
    if not raw.finite:
        largest = biggest()
        values = "target values" if largest is None else f"target values up to {largest:.3g},"
        raise ProblemError(
            f"{values} whose squares (the loss) overflow double precision; rescale the target "
            "(divide it by a power of ten) and try again"
        )
    means = np.abs(np.r_[raw.x_mean, raw.y_mean])
    small = means[(means > 0) & (means < TINY)]
    if small.size:  # their squares (the moments, the loss) would be 0 or a few digits
        raise ProblemError(
            f"values near {small.min():.3g} in a column, whose squares underflow double "
            "precision (the loss and the curvature would be 0 or lose their digits); rescale "
            "the columns (multiply them by a power of ten) and try again"
        )
    if raw.dense_xx() is None and learner.l2 and learner.loss == "mse":
        raise ProblemError(
            f"--l2 with {len(raw.x_mean):,} features and {raw.n_rows:,} rows: babynn's ridge "
            f"reference solves with the {len(raw.x_mean):,} × {len(raw.x_mean):,} moments, "
            f"which it forms for at most {MAX_FEATURES:,} features; drop --l2 or choose fewer "
            "features with --features or --exclude"
        )
    network = bool(learner.hidden)
    scaler = _scaler(raw, standardize, center=intercept or network)
    # a network's numeric targets are standardised; classes are 0s and 1s already
    target = target_scaling(raw, standardize and network and learner.loss == "mse")
    train, val = rows(scaler, target)
    m, n = len(raw.x_mean), len(raw.y_mean)
    return Problem(train, val, scaler, standardize, learner.model(m, n, intercept), *target)


def target_scaling(raw: Moments, network: bool) -> tuple[np.ndarray | None, float]:
    """How a network sees the targets: centred on each output's mean and divided by one scale,
    the root mean square of the outputs' standard deviations (one scale keeps the loss a
    multiple of the targets' own, so every loss converts back exactly). The rates and the sweep
    then mean the same on any target scale. The affine model sees y itself: its curvature, and
    so every rate's behaviour, does not depend on y."""
    if not network:
        return None, 1.0
    scale = math.sqrt(raw.spread / len(raw.y_mean)) if raw.spread > 0 else 1.0
    return raw.y_mean.copy(), scale


def _scaler(raw: Moments, standardize: bool, center: bool) -> Standardizer:
    """The training rows' standardisation (`center`: subtract the mean; a network's biases and
    the affine model's w0 absorb the shift), or none."""
    if standardize:
        scaler = Standardizer.from_statistics(raw.x_mean, raw.variance, center=center)
        if raw.unit is None:
            return scaler
        return Standardizer(scaler.mean * raw.unit, scaler.scale * raw.unit)  # of the raw x
    if raw.unit is not None:
        raise ProblemError(
            "features beyond about 1e77 (or below 1e-77) in size, whose squares leave double "
            "precision unless they are standardised: drop --no-standardize"
        )
    return Standardizer.identity(len(raw.x_mean))


def held_out(N: int, n_val: int, seed: int) -> np.ndarray | None:
    """Which of N rows are held out for validation (a mask), n_val of them drawn from the seed's
    split stream; None when none are. An error when too few rows are left to train on."""
    if N - n_val < MIN_TRAINING_ROWS:
        held = f" after holding out {n_val} for validation" if n_val else ""
        raise ProblemError(
            f"{N - n_val} training row(s){held}; a fit needs at least {MIN_TRAINING_ROWS}"
        )
    if not n_val:
        return None
    split_rng, _, _ = streams(seed)
    mask = np.zeros(N, dtype=bool)
    mask[split_rng.permutation(N)[:n_val]] = True
    return mask


def _masked(
    blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], keep: np.ndarray
) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """The rows of `blocks` where `keep` is true, block by block, in their order."""

    def kept() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        at = 0
        for X, Y in blocks():
            k = keep[at : at + len(X)]
            at += len(X)
            yield X[k], Y[k]

    return kept


def make_streamed_problem(
    blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
    *,
    standardize: bool = True,
    intercept: bool = True,
    raw: Moments | None = None,
    row_file: Callable[[], RowFile] | None = None,
    val_frac: float = 0.0,
    seed: int = 0,
    hidden: Sequence[int] = (),
    activation: str = "tanh",
    loss: str = "mse",
    l2: float = 0.0,
) -> Problem:
    """The affine model (or a network with `hidden` layers) on rows that never sit in memory:
    `blocks()` yields them (X, Y) block by block, and is called for each pass (two for the
    moments and L*, when `raw`, the moments computed elsewhere, is not given; a network's epochs
    at full batch make one more each). `row_file()`, called after those passes, gives the row file
    the first pass wrote, for minibatches. With `val_frac`, a first pass counts the
    rows, the same rows as in memory are held out (`held_out`), and the training and validation
    rows each get their moments; minibatches read the training rows' places in the file."""
    held, val_blocks = None, None
    if val_frac > 0:
        assert raw is None
        N = sum(len(X) for X, _ in blocks())
        held = held_out(N, n_validation_rows(N, val_frac), seed)
        if held is not None:
            val_blocks, blocks = _masked(blocks, held), _masked(blocks, ~held)
    if raw is None:
        with _width_as_problem():
            raw = Moments.of_blocks(blocks)
    moments = raw
    training = blocks

    def rows(scaler: Standardizer, target: TargetScaling) -> tuple[Rows, Rows | None]:
        file = None if row_file is None else row_file()
        in_file = None if held is None or file is None else np.flatnonzero(~held)
        scaled = scaler.mean, scaler.scale
        train = StreamedRows.of(training, moments, *scaled, file, in_file)
        train = replace(train, target_mean=target[0], target_scale=target[1])
        if val_blocks is None:
            return train, None
        val = StreamedRows.of(val_blocks, Moments.of_blocks(val_blocks), *scaled)
        return train, replace(val, target_mean=target[0], target_scale=target[1])

    problem = _assembled(raw, rows, standardize, intercept, Learner(hidden, activation, loss, l2))
    return replace(problem, val_frac=val_frac if val_blocks is not None else 0.0)


@dataclass(frozen=True)
class WarmStart:
    """A saved model's weights to start from: the affine model's W and w0 in the data's own
    units; a network's layers in the standardised units of `mean` and `scale`."""

    params: Params
    mean: np.ndarray
    scale: np.ndarray


def initial_params(
    problem: Problem, seed: int, how: str = "normal", warm_start: WarmStart | None = None
) -> Params:
    """N(0, 1/fan_in) weights from the seed, zeros, or a saved model's weights carried over."""
    s = problem.scaler
    if warm_start is None:
        _, init_rng, _ = streams(seed)
        return problem.toward_optimum(problem.model.init_params(init_rng, how))
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
    if problem.target_mean is not None and isinstance(problem.model, MLP):
        last = len(problem.model.hidden) + 1  # the saved last layer gives y; this one learns ỹ
        params[f"W{last}"] = params[f"W{last}"] / problem.target_scale
        params[f"b{last}"] = (params[f"b{last}"] - problem.target_mean) / problem.target_scale
    return params


def predict_raw(problem: Problem, params: Params, X: np.ndarray) -> np.ndarray:
    """ŷ for raw rows X, as `babynn predict` computes it from the model file."""
    if problem.affine:
        W, w0 = to_raw_units(params, problem.scaler.mean, problem.scaler.scale)
        return AffineModel(W.shape[0], W.shape[1]).predict({"W": W, "w0": w0}, X)
    return problem.model.predict(in_target_units(problem, params), problem.scaler.transform(X))


def in_target_units(problem: Problem, params: Params) -> Params:
    """A network's parameters predicting y itself: it learnt ỹ = (y − mean)/scale, so its last
    layer times scale, plus mean, gives y (the model file holds these)."""
    if problem.target_mean is None or not isinstance(problem.model, MLP):
        return params
    last = len(problem.model.hidden) + 1
    folded = dict(params)
    folded[f"W{last}"] = params[f"W{last}"] * problem.target_scale
    folded[f"b{last}"] = params[f"b{last}"] * problem.target_scale + problem.target_mean
    return folded
