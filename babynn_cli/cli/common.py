"""What fit, sweep-lr and compare do alike before training: load the data, build the problem."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from babynn_cli.core import Problem
    from babynn_cli.data import Dataset
    from babynn_cli.persistence import ModelFile


def load_problem(
    data: str,
    *,
    sep: str,
    target: list[str] | None,
    features: list[str] | None,
    dropna: bool,
    val_frac: float,
    standardize: bool,
    intercept: bool,
    seed: int,
    hidden: tuple[int, ...] = (),
    activation: str = "tanh",
) -> tuple[Dataset, Problem]:
    """The dataset and the problem as trained (split, standardised); DataError when it can't be."""
    from babynn_cli import core
    from babynn_cli import data as datamod

    dataset = datamod.load(data, sep, target, features, dropna)
    try:
        problem = core.make_problem(
            dataset.X,
            dataset.Y,
            val_frac=val_frac,
            standardize=standardize,
            intercept=intercept,
            seed=seed,
            hidden=hidden,
            activation=activation,
        )
    except core.ProblemError as e:
        raise datamod.DataError(f"{datamod.display_name(data)} has {e}") from None
    return dataset, problem


def divergence_hint(problem: Problem, batch_size: int | None) -> str:
    """What rate would be stable, for the one-line divergence error."""
    from babynn_cli.report import fmt

    if not problem.affine:
        return "try a smaller --lr (the 2/λmax bound is the affine model's, not a network's)"
    curvature = problem.curvature()
    n_train = problem.n_train
    bound = fmt(curvature.stable_lr, 4)
    text = f"full-batch gradient descent on this data is stable below {bound} (2/λmax)"
    if batch_size is not None and batch_size < n_train:
        return f"{text}, and --batch-size {batch_size} needs a smaller rate"
    return f"{text}, e.g. --lr {fmt(curvature.suggested_lr)}"


def saved_predictions(saved: ModelFile, X: np.ndarray) -> np.ndarray:
    """ŷ of a model file for raw rows X (its feature columns, in its order)."""
    from babynn_cli import core

    m, n = len(saved.features), len(saved.targets)
    if saved.kind == "affine":
        assert saved.weights is not None and saved.bias is not None
        return core.AffineModel(m, n).predict({"W": saved.weights, "w0": saved.bias}, X)
    assert saved.layers is not None and saved.mean is not None and saved.scale is not None
    hidden = tuple(W.shape[1] for W, _ in saved.layers[:-1])
    network = core.MLP(m, hidden, n, saved.activation or "tanh")
    scaler = core.Standardizer(saved.mean, saved.scale)
    return network.predict(core.params_of(saved.layers), scaler.transform(X))
