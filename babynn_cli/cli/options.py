"""Options shared by the commands, defined once, and the error boundary of every command.

The commands are the only modules that import typer. They parse options, check them before any work
starts, call data, core, persistence and report, and turn babynn's exceptions into one
`Error: ...` line and an exit code. numpy and pandas are imported inside the commands, so that
`babynn --help` and `--version` start fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from babynn_cli.errors import BabynnError, UsageError

EXIT_INTERRUPTED = 130


class ScheduleName(StrEnum):
    constant = "constant"
    inverse = "inverse"
    power = "power"
    exponential = "exponential"
    step = "step"
    cosine = "cosine"


class Activation(StrEnum):
    tanh = "tanh"
    relu = "relu"
    sigmoid = "sigmoid"


class Init(StrEnum):
    normal = "normal"
    zeros = "zeros"


# -- options shared by fit, compare and sweep-lr, defined once ---------------------------------
DATA, RATE, TRAINING, NETWORK, OUTPUT = "Data", "Learning rate", "Training", "Network", "Output"


def option(*decls: str, help: str, panel: str, metavar: str = "", **kwargs: Any) -> Any:
    """A Typer option in a help panel; metavar "" for flags, which take no value."""
    return typer.Option(*decls, help=help, metavar=metavar, rich_help_panel=panel, **kwargs)


DataArg = Annotated[
    str,
    typer.Argument(
        help="CSV file ('-' reads standard input; .csv.gz and other compressions work).",
        show_default=False,
    ),
]
TargetOpt = Annotated[
    list[str] | None,
    option(
        "--target",
        "-t",
        metavar="COL",
        panel=DATA,
        help="Target column; repeat for several outputs. Default: the last column.",
    ),
]
FeaturesOpt = Annotated[
    str | None,
    option(
        "--features",
        metavar="A,B,...",
        panel=DATA,
        help="Comma-separated feature columns. Default: every column but the targets.",
    ),
]
SepOpt = Annotated[str, option("--sep", metavar="CHAR", panel=DATA, help="Field delimiter.")]
DropnaOpt = Annotated[
    bool, option("--dropna", panel=DATA, help="Drop rows with missing values instead of failing.")
]
SCHEDULE_HELP = (
    "η(t), t = 0, 1, 2, ... counting updates: constant η0 · inverse η0/(1+k·t) · "
    "power η0/(1+k·t)^p · exponential η0·γ^t · step η0·γ^⌊t/s⌋ · "
    "cosine η_min+(η0-η_min)·(1+cos(π·t/T))/2, T the run's updates."
)
ScheduleOpt = Annotated[
    ScheduleName, option("--schedule", metavar="NAME", panel=RATE, help=SCHEDULE_HELP)
]
LrOpt = Annotated[
    float, option("--lr", metavar="ETA0", panel=RATE, help="Initial learning rate η0 (> 0).")
]
DecayOpt = Annotated[
    float,
    option("--decay", metavar="K", panel=RATE, min=0.0, help="k of inverse and power."),
]
PowerOpt = Annotated[
    float,
    option(
        "--power",
        metavar="P",
        panel=RATE,
        min=0.0,
        help="p of power (0.5 < p ≤ 1 meets the notes' conditions).",
    ),
]
GammaOpt = Annotated[
    float | None,
    option(
        "--gamma",
        metavar="GAMMA",
        panel=RATE,
        min=0.0,
        help="γ of exponential (default 0.99) and step (default 0.5).",
        show_default=False,
    ),
]
StepSizeOpt = Annotated[
    int, option("--step-size", metavar="S", panel=RATE, min=1, help="s of step, in updates.")
]
LrMinOpt = Annotated[
    float, option("--lr-min", metavar="ETA_MIN", panel=RATE, min=0.0, help="η_min of cosine.")
]
EpochsOpt = Annotated[
    int,
    option("--epochs", "-e", metavar="N", panel=TRAINING, min=1, help="The most epochs to run."),
]
BatchOpt = Annotated[
    int | None,
    option(
        "--batch-size",
        "-b",
        metavar="B",
        panel=TRAINING,
        min=1,
        help="Rows per update. Default: all (gradient descent); 1 is stochastic gradient descent.",
        show_default=False,
    ),
]
TolOpt = Annotated[
    float,
    option(
        "--tol",
        metavar="TOL",
        panel=TRAINING,
        min=0.0,
        help="Stop when the loss improves by less than TOL (relative) for --patience epochs in a "
        "row; 0 runs every epoch.",
    ),
]
PatienceOpt = Annotated[
    int,
    option("--patience", metavar="N", panel=TRAINING, min=1, help="Epochs without improvement."),
]
SeedOpt = Annotated[
    int,
    option(
        "--seed",
        metavar="INT",
        panel=TRAINING,
        min=0,
        help="Seed of the initial weights, the shuffling and the validation split.",
    ),
]
InitOpt = Annotated[
    Init,
    option(
        "--init",
        metavar="normal|zeros",
        panel=TRAINING,
        help="Initial weights: draws from N(0, 1/m), or zeros.",
    ),
]
StandardizeOpt = Annotated[
    bool,
    option(
        "--standardize/--no-standardize",
        panel=TRAINING,
        help="Train on features scaled to mean 0, standard deviation 1 (from the training rows).",
    ),
]
InterceptOpt = Annotated[
    bool,
    option("--intercept/--no-intercept", panel=TRAINING, help="Fit the bias w0 (ŷ = Wᵀx + w0)."),
]
ValFracOpt = Annotated[
    float,
    option(
        "--val-frac",
        metavar="F",
        panel=TRAINING,
        min=0.0,
        max=1.0,
        help="Fraction of rows held out (seeded) for validation.",
    ),
]
HiddenOpt = Annotated[
    list[int] | None,
    option(
        "--hidden",
        metavar="UNITS",
        panel=NETWORK,
        min=1,
        help="A hidden layer of UNITS units; repeat for more layers (--hidden 16 --hidden 8). "
        "None: the affine model.",
        show_default=False,
    ),
]
ActivationOpt = Annotated[
    Activation,
    option(
        "--activation",
        metavar="tanh|relu|sigmoid",
        panel=NETWORK,
        help="The activation after each hidden layer.",
    ),
]
QuietOpt = Annotated[
    bool,
    option(
        "--quiet", "-q", panel=OUTPUT, help="No progress, tables or messages; errors still print."
    ),
]
GapTolOpt = Annotated[
    float,
    option(
        "--gap-tol",
        metavar="EPS",
        panel=TRAINING,
        min=0.0,
        help="A run has reached the best loss once within this relative gap of it.",
    ),
]
PlotOpt = Annotated[
    Path | None,
    option(
        "--plot",
        metavar="FILE.png",
        panel=OUTPUT,
        help="Also draw the plot to an image (needs matplotlib: pip install 'babynn[plot]').",
        show_default=False,
    ),
]
CsvOutOpt = Annotated[
    Path | None,
    option(
        "--output",
        "-o",
        metavar="FILE.csv",
        panel=OUTPUT,
        help="Write the table as CSV, one row per line of the table.",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, option("--json", panel=OUTPUT, help="Print one JSON object on stdout instead of tables.")
]

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(command: F) -> F:
    """Turn babynn's errors into `Error: <message>` on stderr and their exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BabynnError as e:
            typer.echo(f"Error: {e}", err=True)
            raise typer.Exit(code=e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(code=EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


def check_lr(lr: float, flag: str = "--lr") -> None:
    if not lr > 0:
        raise UsageError(f"{flag} must be a number above 0 (got {lr:g})")


def check_validation(val_frac: float, early_stopping: bool = False) -> None:
    if val_frac >= 1:
        raise UsageError(f"--val-frac must be below 1 (got {val_frac:g})")
    if early_stopping and val_frac == 0:
        raise UsageError("--early-stopping needs a validation set: add --val-frac, e.g. 0.2")


def check_network(hidden: list[int] | None, intercept: bool) -> tuple[int, ...]:
    """The hidden layers asked for; a network has its biases, so --no-intercept does not fit."""
    if hidden and not intercept:
        raise UsageError("--no-intercept is for the affine model; a network keeps its biases")
    return tuple(hidden or ())


def split_list(value: str | None, flag: str = "--features") -> list[str] | None:
    """A comma-separated option as a list (None when not given)."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UsageError(f"{flag} needs at least one value")
    return items
