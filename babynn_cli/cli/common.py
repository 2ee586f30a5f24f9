"""What fit, sweep-lr and compare do alike before training: load the data, build the problem."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from babynn_cli.cli.options import DataOptions, ModelOptions

if TYPE_CHECKING:
    from babynn_cli.core.problem import Problem
    from babynn_cli.data import Dataset


def load_problem(data: DataOptions, model: ModelOptions) -> tuple[Dataset, Problem]:
    """The dataset and the problem as trained (split, standardised); DataError when it can't be."""
    from babynn_cli import data as datamod
    from babynn_cli.core.problem import ProblemError, make_problem

    if data.data == "-" and sys.stdin.isatty():
        typer.echo("reading the CSV from standard input: type or paste it, then Ctrl-D", err=True)
    dataset = datamod.load(data.data, data.separator, data.target, data.feature_list, data.dropna)
    try:
        problem = make_problem(
            dataset.X,
            dataset.Y,
            val_frac=model.val_frac,
            standardize=model.standardize,
            intercept=model.intercept,
            seed=model.seed,
            hidden=model.layers,
            activation=model.activation.value,
        )
    except ProblemError as e:
        raise datamod.DataError(f"{datamod.display_name(data.data)} has {e}") from None
    return dataset, problem
