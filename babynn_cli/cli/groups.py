"""The option groups: options that several commands take, written once as small frozen
dataclasses (`DataOptions`, `ModelOptions`, `ScheduleParameters`, `StopOptions`). A command names a
group as one parameter and `@option_groups` spreads the group's fields into the command's options
(Typer sees each as its own), then hands the command the group built from them."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_type_hints

from babynn_cli.cli.options import (
    DATA,
    NETWORK,
    RATE,
    TRAINING,
    Activation,
    DataArg,
    DecimalOpt,
    Init,
    Loss,
    NaValuesOpt,
    SepOpt,
    ThousandsOpt,
    check_sep,
    dialect_of,
    option,
    split_list,
)
from babynn_cli.core.choices import (
    ACTIVATIONS,
    DEFAULT_EPOCHS,
    DEFAULT_GAMMA,
    DEFAULT_GAP_TOL,
    DEFAULT_PATIENCE,
    DEFAULT_TOL,
    INITIALISATIONS,
    LOSSES,
    MAX_EPOCHS,
    NETWORK_VAL_FRAC,
    ROUGH_PATIENCE,
    ROUGH_PATIENCE_SHARE,
    ROUGH_TOL,
    SCHEDULE_DEFAULTS,
)
from babynn_cli.errors import UsageError

if TYPE_CHECKING:
    from babynn_cli.core.auto import Ask
    from babynn_cli.core.encoding import Encoding
    from babynn_cli.core.schedules import ScheduleSpec
    from babynn_cli.data.read import Wanted
    from babynn_cli.data.sources import Dialect


_RIDGE_THROUGH_ORIGIN = (
    "--l2 with --no-intercept is for cross-entropy: squared error's ridge is solved on the "
    "centred moments, which need the intercept; keep it"
)


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """Which file, and which of its columns."""

    data: DataArg
    target: Annotated[
        list[str] | None,
        option(
            "--target",
            "-t",
            metavar="COL",
            panel=DATA,
            help="Target column; repeat for several outputs. Default: the last column.",
        ),
    ] = None
    features: Annotated[
        str | None,
        option(
            "--features",
            metavar="A,B,...",
            panel=DATA,
            help="Comma-separated feature columns. Default: every column but the targets, the "
            "ids and those --exclude leaves out. Text columns are categories (one indicator per "
            "value), true/false columns 1/0, ISO dates fractional years.",
        ),
    ] = None
    exclude: Annotated[
        list[str] | None,
        option(
            "--exclude",
            metavar="COL",
            panel=DATA,
            help="Leave this column out; repeatable.",
        ),
    ] = None
    ids: Annotated[
        list[str] | None,
        option(
            "--id",
            metavar="COL",
            panel=DATA,
            help="An identifier column: never a feature, recorded in the model, and written "
            "first, unchanged, beside predict's predictions; repeatable.",
        ),
    ] = None
    categorical: Annotated[
        list[str] | None,
        option(
            "--categorical",
            metavar="COL",
            panel=DATA,
            help="Read this column of numeric codes as categories; repeatable.",
        ),
    ] = None
    sep: SepOpt = ","
    decimal: DecimalOpt = "."
    thousands: ThousandsOpt = None
    na_values: NaValuesOpt = None
    impute: Annotated[
        bool,
        option(
            "--impute",
            panel=DATA,
            help="Fill a missing feature cell: a number with its column's mean, a category "
            "with a level of its own; recorded in the model, done by predict too.",
        ),
    ] = False
    dropna: Annotated[
        bool,
        option(
            "--dropna",
            panel=DATA,
            help="Drop the rows with a missing cell (or a missing target) instead of failing; "
            "the count is said.",
        ),
    ] = False
    stream: Annotated[
        bool,
        option(
            "--stream",
            panel=DATA,
            help="Read DATA in blocks, never whole: memory stays flat however many rows (a "
            "source too large for memory streams unasked).",
        ),
    ] = False
    cache: Annotated[
        str | None,
        option(
            "--cache",
            metavar="DIR",
            panel=DATA,
            help="Where --stream keeps its binary copy of the rows (a folder made inside DIR, "
            "removed when the command ends). Default: the system's temporary folder.",
        ),
    ] = None
    scheduler: Annotated[
        str | None,
        option(
            "--scheduler",
            metavar="ADDRESS",
            panel=DATA,
            help="Compute the moments on a Dask cluster: its scheduler's address "
            "(tcp://host:8786), 'env' for $DASK_SCHEDULER_ADDRESS, or 'local' for two worker "
            "processes on this machine. Streams (see --stream); needs "
            "pip install 'babynn\\[dask]'.",
        ),
    ] = None

    @property
    def feature_list(self) -> list[str] | None:
        return split_list(self.features)

    @property
    def separator(self) -> str:
        return check_sep(self.sep)

    @property
    def dialect(self) -> Dialect:
        """How DATA writes its values (checked: one character each, not the delimiter)."""
        return dialect_of(self.sep, self.decimal, self.thousands, self.na_values)

    def wanted(
        self,
        encoding: Encoding | None = None,
        loss: str | None = None,
        classes: tuple[str, ...] | None = None,
    ) -> Wanted:
        """What the command asks of DATA's columns (`encoding`, `classes`: a saved model's, to
        read DATA as it did; `loss`: --loss)."""
        from babynn_cli.data.read import Wanted

        def names(given: list[str] | None) -> list[str] | None:  # as the header's: stripped
            return None if given is None else [name.strip() for name in given]

        return Wanted(
            names(self.target), names(self.feature_list), names(self.exclude), names(self.ids),
            names(self.categorical), self.dropna, self.impute, encoding, loss, classes,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """The model, the rows it trains on, and where its weights start."""

    hidden: Annotated[
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
    ] = None
    activation: Annotated[
        Activation,
        option(
            "--activation",
            metavar="|".join(ACTIVATIONS),
            panel=NETWORK,
            help="The activation after each hidden layer.",
        ),
    ] = Activation.tanh  # type: ignore[attr-defined]
    seed: Annotated[
        int,
        option(
            "--seed",
            metavar="INT",
            panel=TRAINING,
            min=0,
            help="Seed of the initial weights, the shuffling and the validation split.",
        ),
    ] = 0
    init: Annotated[
        Init,
        option(
            "--init",
            metavar="|".join(INITIALISATIONS),
            panel=TRAINING,
            help="Initial weights: draws from N(0, 1/m), or zeros (the affine model only: a "
            "network's hidden units would stay equal for ever).",
        ),
    ] = Init.normal  # type: ignore[attr-defined]
    standardize: Annotated[
        bool,
        option(
            "--standardize/--no-standardize",
            panel=TRAINING,
            help="Train on features scaled to mean 0, standard deviation 1 (from the training "
            "rows).",
        ),
    ] = True
    intercept: Annotated[
        bool,
        option(
            "--intercept/--no-intercept", panel=TRAINING, help="Fit the bias w0 (ŷ = Wᵀx + w0)."
        ),
    ] = True
    loss: Annotated[
        Loss | None,
        option(
            "--loss",
            metavar="|".join(LOSSES),
            panel=TRAINING,
            help="What the model learns by: mse (squared error, for numbers) or cross-entropy "
            "(for classes: logistic regression for two, softmax for more; the model predicts "
            "each class's probability). Default: cross-entropy when the target holds text "
            "labels, mse otherwise.",
            show_default=False,
        ),
    ] = None
    l2: Annotated[
        float,
        option(
            "--l2",
            metavar="ALPHA",
            panel=TRAINING,
            min=0.0,
            help="Add α·||W||² to the loss (the weights as trained, on standardised features; "
            "not the biases): ridge regression for mse; for cross-entropy a finite optimum even "
            "when the classes are separable.",
        ),
    ] = 0.0
    val_frac: Annotated[
        float | None,
        option(
            "--val-frac",
            metavar="F",
            panel=TRAINING,
            min=0.0,
            max=1.0,
            help="Fraction of rows held out (seeded) for validation. Default: "
            f"{NETWORK_VAL_FRAC:g} for a network without --epochs (when that is at least 20 rows) "
            "and with --early-stopping, to stop on; 0 otherwise.",
            show_default=False,
        ),
    ] = None

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(self.hidden or ())

    def check(self, early_stopping: bool = False) -> None:
        """What the options alone rule out (`check_loss`: what the data's target does)."""
        if self.val_frac is not None and self.val_frac >= 1:
            raise UsageError(f"--val-frac must be below 1 (got {self.val_frac:g})")
        if early_stopping and self.val_frac == 0:
            raise UsageError("--early-stopping needs a validation set: drop --val-frac 0")
        if self.hidden and self.init.value == "zeros":
            raise UsageError(
                "--init zeros is for the affine model: a network started at zero keeps every "
                "hidden unit of a layer equal for ever (they get equal gradients), so it learns "
                "no more than one unit a layer could; leave out --init"
            )
        if self.hidden and not self.intercept:
            raise UsageError("--no-intercept is for the affine model; a network keeps its biases")
        if self.l2 and not self.intercept and self.loss is not None and self.loss.value == "mse":
            raise UsageError(_RIDGE_THROUGH_ORIGIN)
        if not math.isfinite(self.l2):
            raise UsageError(f"--l2 must be a finite number (got {self.l2:g})")

    def check_loss(self, classifies: bool) -> None:
        """What the options rule out once the data says whether the target holds classes."""
        if self.l2 and not self.intercept and not classifies:
            raise UsageError(_RIDGE_THROUGH_ORIGIN)


@dataclasses.dataclass(frozen=True)
class ScheduleParameters:
    """The parameters of the decaying schedules (η0 and the schedule's name are the command's)."""

    decay: Annotated[
        float,
        option(
            "--decay", metavar="K", panel=RATE, min=0.0, max=1e6, help="k of inverse and power."
        ),
    ] = SCHEDULE_DEFAULTS["decay"]
    power: Annotated[
        float,
        option(
            "--power",
            metavar="P",
            panel=RATE,
            min=0.0,
            max=10.0,
            help="p of power (0.5 < p ≤ 1 meets the notes' conditions).",
        ),
    ] = SCHEDULE_DEFAULTS["power"]
    gamma: Annotated[
        float | None,
        option(
            "--gamma",
            metavar="GAMMA",
            panel=RATE,
            help="γ of "
            + " and ".join(f"{name} (default {g:g})" for name, g in DEFAULT_GAMMA.items())
            + ", in (0, 1): it multiplies the rate.",
            show_default=False,
        ),
    ] = None
    step_size: Annotated[
        int, option("--step-size", metavar="S", panel=RATE, min=1, help="s of step, in updates.")
    ] = int(SCHEDULE_DEFAULTS["step_size"])
    lr_min: Annotated[
        float, option("--lr-min", metavar="ETA_MIN", panel=RATE, min=0.0, help="η_min of cosine.")
    ] = SCHEDULE_DEFAULTS["lr_min"]

    def check(self, name: str, lr: float | None = None) -> None:
        """The parameters the schedule `name` reads, in their valid ranges."""
        if self.gamma is not None and not 0 < self.gamma < 1:
            raise UsageError(
                f"--gamma must be in (0, 1): exponential and step multiply the rate by it (got "
                f"{self.gamma:g})"
            )
        if name == "cosine" and lr is not None and not self.lr_min < lr:
            raise UsageError(
                f"--lr-min must be below --lr: cosine falls from η0 to η_min (got --lr-min "
                f"{self.lr_min:g}, --lr {lr:g})"
            )

    def spec(self, name: str, total_updates: int = 1) -> ScheduleSpec:
        from babynn_cli.core.schedules import ScheduleSpec

        fields = dataclasses.asdict(self)
        return ScheduleSpec(name, total_updates=total_updates, **fields)


@dataclasses.dataclass(frozen=True)
class StopOptions:
    """How long to train."""

    epochs: Annotated[
        int | None,
        option(
            "--epochs",
            "-e",
            metavar="N",
            panel=TRAINING,
            min=1,
            help="Run N epochs, stopping early only by a rule you ask for (--tol, "
            "--early-stopping, --gap-tol), when the run diverges, or (the affine model at full "
            "batch) once the loss no longer changes to machine precision. Not given: the affine "
            "model at full batch runs until converged ((L - L*)/L* ≤ --gap-tol), at most 10× the "
            f"epochs theory predicts ({DEFAULT_EPOCHS:,} to {MAX_EPOCHS:,}); other runs at most "
            f"{DEFAULT_EPOCHS:,}, until the plateau rule stops them (see --tol).",
            show_default=False,
        ),
    ] = None
    tol: Annotated[
        float | None,
        option(
            "--tol",
            metavar="TOL",
            panel=TRAINING,
            min=0.0,
            help="The plateau rule: stop when the loss improves on its best by less than TOL "
            "(relative) for --patience epochs in a row (on the validation loss with "
            "--early-stopping); 0 turns it off. Default without --epochs: "
            f"{ROUGH_TOL:g} for minibatches and networks, whose loss rises and falls; "
            f"{DEFAULT_TOL:g} at full batch on the affine model (0 at a constant rate, which runs "
            "until converged); with --epochs: off, but 1e-10 at full batch on the affine model.",
            show_default=False,
        ),
    ] = None
    gap_tol: Annotated[
        float | None,
        option(
            "--gap-tol",
            metavar="EPS",
            panel=TRAINING,
            min=0.0,
            help="Converged: the affine model within (L - L*)/L* ≤ EPS of the least-squares "
            f"optimum [default: {DEFAULT_GAP_TOL:g}]; given with --epochs, the affine model stops "
            "there.",
            show_default=False,
        ),
    ] = None
    patience: Annotated[
        int | None,
        option(
            "--patience",
            metavar="N",
            panel=TRAINING,
            min=1,
            help=f"Epochs without improvement the plateau rule waits. Default: {DEFAULT_PATIENCE} "
            f"at full batch on the affine model; {ROUGH_PATIENCE}, or "
            f"{ROUGH_PATIENCE_SHARE:.0%} of the epochs run when that is more, for minibatches and "
            "networks.",
            show_default=False,
        ),
    ] = None

    @property
    def most_epochs(self) -> int:
        """--epochs, or the most a run without it may take (cosine's length; sweep-lr, compare)."""
        return DEFAULT_EPOCHS if self.epochs is None else self.epochs

    @property
    def gap(self) -> float:
        """--gap-tol, or its default."""
        return DEFAULT_GAP_TOL if self.gap_tol is None else self.gap_tol

    def ask(self, lr: float | None = None, early_stopping: bool = False) -> Ask:
        """What these options leave babynn to choose (`core.auto`)."""
        from babynn_cli.core.auto import Ask

        return Ask(lr, self.epochs, self.tol, self.patience, self.gap_tol, early_stopping)


GROUPS = (DataOptions, ModelOptions, ScheduleParameters, StopOptions)
F = TypeVar("F", bound=Callable[..., Any])


def option_groups(command: F) -> F:
    """Let `command` take option groups as parameters: Typer sees each group's fields as options
    of their own, and the command receives the group built from them."""
    hints = get_type_hints(command, include_extras=True)
    own = inspect.signature(command).parameters
    groups = {name: hints[name] for name in own if hints.get(name) in GROUPS}
    params: list[inspect.Parameter] = []
    for p in own.values():  # each group's fields where the group stands, in their order
        if p.name not in groups:
            params.append(_keyword(p.name, hints[p.name], p.default))
            continue
        cls = groups[p.name]
        field_hints = _field_hints(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else inspect.Parameter.empty
            params.append(_keyword(f.name, field_hints[f.name], default))

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        for name, cls in groups.items():
            kwargs[name] = cls(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(cls)})
        return command(**kwargs)

    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # type: ignore[attr-defined]  # Typer must read the new signature
    return wrapper  # type: ignore[return-value]


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    """A group's fields' annotations, read once for all the commands that take the group."""
    return get_type_hints(cls, include_extras=True)


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )
