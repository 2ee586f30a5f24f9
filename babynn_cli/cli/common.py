"""What fit, sweep-lr and compare do alike before training: load the data, build the problem."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import typer

from babynn_cli.cli.options import DataOptions, ModelOptions
from babynn_cli.errors import UsageError

if TYPE_CHECKING:
    from babynn_cli.core.problem import Problem
    from babynn_cli.data import Dataset


BIG_FILE = 32_000_000  # bytes: a file this large takes a second or more to read: say so first


def load_problem(
    data: DataOptions, model: ModelOptions, quiet: bool = False
) -> tuple[Dataset, Problem]:
    """The dataset and the problem as trained (split, standardised); DataError when it can't be."""
    from babynn_cli import data as datamod
    from babynn_cli.core.problem import ProblemError, make_problem

    if data.data == "-" and sys.stdin.isatty():
        typer.echo("reading the CSV from standard input: type or paste it, then Ctrl-D", err=True)
    elif not quiet and os.path.isfile(data.data) and os.path.getsize(data.data) >= BIG_FILE:
        size = os.path.getsize(data.data) / 1e6
        typer.echo(f"reading '{data.data}' ({size:,.0f} MB)…", err=True)
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


def check_memory(problem: Problem, batch_size: int | None, runs: int = 1) -> None:
    """Refuse, before allocating, a network that cannot fit in this machine's memory."""
    from babynn_cli.core.mlp import MLP

    if not isinstance(problem.model, MLP):
        return
    rows = min(problem.n_train, batch_size or problem.n_train, 1 << 14)
    needed = problem.model.memory_bytes(rows, runs)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > 0.8 * total:
        layers = " ".join(f"--hidden {h}" for h in problem.model.hidden)
        raise UsageError(
            f"{layers} needs about {needed / 2**30:,.1f} GiB of memory to train; this machine "
            f"has {total / 2**30:,.1f} GiB: use fewer or smaller hidden layers"
        )
