"""Options shared by the commands, defined once, and the checks of their values.

The commands are the only modules that import typer. They parse options, check them before any work
starts, and call data, core, persistence and report; their errors become one `Error: ...` line and
an exit code at their boundary (`cli.boundary`). numpy and pandas are imported inside the commands,
so that `babynn --help` and `--version` start fast.

Options that several commands take are grouped in `cli.groups`; this module holds the single
options, their panels and the checks of their values.
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from babynn_cli.core.choices import (
    ACTIVATIONS,
    ADAM_DEFAULTS,
    DEFAULT_MOMENTUM,
    INITIALISATIONS,
    LOSSES,
    NETWORK_BATCH,
    OPTIMIZERS,
    SCHEDULE_NAMES,
    SCHEDULES,
)
from babynn_cli.errors import UsageError

if TYPE_CHECKING:
    from babynn_cli.data.sources import Dialect

# Typer's choices, read from the core's declarations.
ScheduleName = StrEnum("ScheduleName", [(name, name) for name in SCHEDULE_NAMES])  # type: ignore[misc]
Activation = StrEnum("Activation", [(name, name) for name in ACTIVATIONS])  # type: ignore[misc]
Init = StrEnum("Init", [(name, name) for name in INITIALISATIONS])  # type: ignore[misc]
Loss = StrEnum("Loss", [(name, name) for name in LOSSES])  # type: ignore[misc]
OptimizerName = StrEnum("OptimizerName", [(name, name) for name in OPTIMIZERS])  # type: ignore[misc]

DATA, RATE, TRAINING, NETWORK, OUTPUT = "Data", "Learning rate", "Training", "Network", "Output"


def _finite(value: Any) -> Any:
    """A number option's value is finite: nan passes every range check (it compares false)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def option(*decls: str, help: str, panel: str, metavar: str = "", **kwargs: Any) -> Any:
    """A Typer option in a help panel; metavar "" for flags, which take no value. A number
    given must be finite."""
    return typer.Option(
        *decls, help=help, metavar=metavar, rich_help_panel=panel, callback=_finite, **kwargs
    )


DataArg = Annotated[
    str,
    typer.Argument(
        metavar="DATA",
        help="CSV file: '-' reads standard input, sample:NAME one of the samples (babynn sample "
        "lists them); .csv.gz and other compressions work.",
        show_default=False,
    ),
]
SepOpt = Annotated[str, option("--sep", metavar="CHAR", panel=DATA, help="Field delimiter.")]
SCHEDULE_HELP = (
    "η(t), t = 0, 1, 2, ... counting updates: "
    + " · ".join(f"{s.name} {s.formula}" for s in SCHEDULES)
    + ", T the run's updates."
)
ScheduleOpt = Annotated[
    ScheduleName, option("--schedule", metavar="NAME", panel=RATE, help=SCHEDULE_HELP)
]
BatchOpt = Annotated[
    str | None,
    option(
        "--batch-size",
        "-b",
        metavar="B|full",
        panel=TRAINING,
        help="Rows per update: a whole number, 1 for stochastic gradient descent, or 'full' for "
        "gradient descent on all of them. Default: full for the affine model; "
        f"{NETWORK_BATCH} for a network, which the notes train by stochastic descent.",
        show_default=False,
    ),
]
QuietOpt = Annotated[
    bool,
    option(
        "--quiet", "-q", panel=OUTPUT, help="No progress, tables or messages; errors still print."
    ),
]
PlotOpt = Annotated[
    str | None,
    option(
        "--plot",
        metavar="FILE.png",
        panel=OUTPUT,
        help="Also draw the plot to an image (needs matplotlib: pip install 'babynn\\[plot]').",
        show_default=False,
    ),
]
CsvOutOpt = Annotated[
    str | None,
    option(
        "--output",
        "-o",
        metavar="FILE.csv",
        panel=OUTPUT,
        help="Write the table as CSV, one row per line of the table.",
        show_default=False,
    ),
]
DecimalOpt = Annotated[
    str,
    option("--decimal", metavar="CHAR", panel=DATA, help="The decimal mark (',' in 1,5)."),
]
ThousandsOpt = Annotated[
    str | None,
    option(
        "--thousands",
        metavar="CHAR",
        panel=DATA,
        help="The thousands separator (',' in \"1,000,000\"). Default: none.",
        show_default=False,
    ),
]
NaValuesOpt = Annotated[
    str | None,
    option(
        "--na-values",
        metavar="A,B,...",
        panel=DATA,
        help="More cells that mean missing, besides the empty cell, NA, NaN, null, None and "
        "their kin (e.g. '?').",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, option("--json", panel=OUTPUT, help="Print one JSON object on stdout instead of tables.")
]
JsonFileOpt = Annotated[
    Path | None,
    option(
        "--json-file",
        metavar="PATH",
        panel=OUTPUT,
        help="Write the --json object to PATH as well (stdout keeps its tables unless --json), "
        "atomically with the other outputs and only when the command succeeds (exit 0): a "
        "failed run leaves no document for the next step to read.",
        show_default=False,
    ),
]


# -- option groups: the options fit, sweep-lr and compare share ----------------------------------


def dialect_of(sep: str, decimal: str, thousands: str | None, na_values: str | None) -> Dialect:
    """How DATA writes its values, from --sep, --decimal, --thousands and --na-values, checked:
    one character each, none the delimiter or a quote, the two marks apart."""
    from babynn_cli.data.sources import Dialect

    delimiter = check_sep(sep)
    for flag, mark in (("--decimal", decimal), ("--thousands", thousands)):
        if mark is not None and (len(mark) != 1 or mark == delimiter or mark in '\r\n"'):
            raise UsageError(
                f"{flag} must be one character, not the delimiter, a quote or a line break "
                f"(got {mark!r})"
            )
    if thousands is not None and thousands == decimal:
        raise UsageError("--thousands and --decimal must differ")
    na = tuple(split_list(na_values, "--na-values") or ())
    return Dialect(delimiter, decimal, thousands, na)


def parse_batch(value: str | None, network: bool) -> int | None:
    """--batch-size: a whole number of rows ≥ 1, or 'full' (None: every row, gradient descent);
    not given, babynn's default for the model (`core.auto.default_batch_size`)."""
    if value is None:
        from babynn_cli.core.auto import default_batch_size

        return default_batch_size(network)
    if value.strip().lower() in ("full", "all"):
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise UsageError(f"--batch-size takes a whole number of rows ≥ 1 or 'full' (got {value!r})")
    return size


def parse_lr(text: str | None) -> float | None:
    """--lr: a rate above 0, or None for auto (not given, or `auto`)."""
    if text is None or text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--lr takes a number above 0 or 'auto' (got {text!r})") from None
    check_lr(value)
    return value


def check_lr(lr: float, flag: str = "--lr") -> None:
    if not (lr > 0 and math.isfinite(lr)):
        raise UsageError(f"{flag} must be a finite number above 0 (got {lr:g})")


def check_sep(sep: str) -> str:
    """The field delimiter: exactly one character ('\\t' written out stands for a tab)."""
    if sep == "\\t":
        return "\t"
    if len(sep) != 1 or sep in '\r\n"':
        shown = repr(sep)
        raise UsageError(f"--sep must be one character, not a quote or a line break (got {shown})")
    return sep


def split_list(value: str | None, flag: str = "--features") -> list[str] | None:
    """A comma-separated option as a list (None when not given)."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UsageError(f"{flag} needs at least one value")
    return items


OptimizerOpt = Annotated[
    OptimizerName,
    option(
        "--optimizer",
        metavar="NAME",
        panel=TRAINING,
        help="The update rule: gd, the notes' w ← w − η∇L; momentum, the heavy ball v ← βv − η∇L, "
        "w ← w + v; nesterov, v ← βv − η∇L, w ← w + βv − η∇L; adam (β₁, β₂, ε). With --lr auto "
        "at full batch on the affine model, theory chooses momentum's η and β (Polyak's optimal "
        "pair) and nesterov's (η = 1/λmax, β = (√κ − 1)/(√κ + 1)) and predicts the epochs; "
        "adam's rate comes from a short sweep (no exact theory). The model file records the rule, "
        "not its state.",
    ),
]
MomentumOpt = Annotated[
    float | None,
    option(
        "--momentum",
        metavar="BETA",
        panel=TRAINING,
        help="β of momentum and nesterov, 0 ≤ β < 1. Default: theory's at full batch on the affine "
        f"model with --lr auto, else {DEFAULT_MOMENTUM:g}.",
        show_default=False,
    ),
]
Beta1Opt = Annotated[
    float,
    option("--beta1", metavar="B1", panel=TRAINING, help="Adam's β₁, 0 ≤ β₁ < 1."),
]
Beta2Opt = Annotated[
    float,
    option("--beta2", metavar="B2", panel=TRAINING, help="Adam's β₂, 0 ≤ β₂ < 1."),
]
AdamEpsOpt = Annotated[
    float,
    option("--adam-eps", metavar="EPS", panel=TRAINING, help="Adam's ε, above 0."),
]


def optimizer_spec(
    name: str, momentum: float | None, beta1: float, beta2: float, eps: float
) -> Any:
    """The update rule the options ask for (`core.optimizers.OptimizerSpec`), checked."""
    from babynn_cli.core.optimizers import OptimizerSpec

    if momentum is not None and name not in ("momentum", "nesterov"):
        raise UsageError(
            f"--momentum is the β of momentum and nesterov, not of {name}: add --optimizer "
            "momentum (or nesterov)"
        )
    adam_given = (beta1, beta2, eps) != ADAM_DEFAULTS
    if adam_given and name != "adam":
        raise UsageError(
            f"--beta1, --beta2 and --adam-eps are Adam's, not {name}'s: add --optimizer adam"
        )
    for flag, value in (("--momentum", momentum), ("--beta1", beta1), ("--beta2", beta2)):
        if value is not None and not 0.0 <= value < 1.0:
            raise UsageError(f"{flag} must be in [0, 1) (got {value:g})")
    if not eps > 0:
        raise UsageError(f"--adam-eps must be above 0 (got {eps:g})")
    return OptimizerSpec(name, momentum, beta1, beta2, eps)
