"""What fit, sweep-lr and compare do alike before training: load the data, build the problem."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babynn_cli.core import Problem
    from babynn_cli.data import Dataset


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
        )
    except core.ProblemError as e:
        raise datamod.DataError(f"{datamod.display_name(data)} has {e}") from None
    return dataset, problem


def divergence_hint(curvature: object, batch_size: int | None, n_train: int) -> str:
    """What rate would be stable, for the one-line divergence error."""
    from babynn_cli.report import fmt

    bound = fmt(curvature.stable_lr, 4)  # type: ignore[attr-defined]
    text = f"full-batch gradient descent on this data is stable below {bound} (2/λmax)"
    if batch_size is not None and batch_size < n_train:
        return f"{text}, and --batch-size {batch_size} needs a smaller rate"
    return f"{text}, e.g. --lr {fmt(curvature.suggested_lr)}"  # type: ignore[attr-defined]
