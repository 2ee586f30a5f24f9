"""The command line: the only module that imports typer.

Commands parse options, check them in one place, call data, core, persistence and report, and
turn babynn's exceptions into one `Error: ...` line and an exit code. numpy and pandas are
imported inside the commands, so that `babynn --help` and `--version` start fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from babynn_cli import __version__
from babynn_cli.errors import BabynnError, DivergedError, UsageError

EXIT_INTERRUPTED = 130

app = typer.Typer(
    help="Train models by gradient descent from the command line: CSV in, model file and "
    "loss tables out.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


class ScheduleName(StrEnum):
    constant = "constant"
    inverse = "inverse"
    power = "power"
    exponential = "exponential"
    step = "step"
    cosine = "cosine"


class Init(StrEnum):
    normal = "normal"
    zeros = "zeros"


# -- options shared by fit, compare and sweep-lr, defined once ---------------------------------
DATA, RATE, TRAINING, OUTPUT = "Data", "Learning rate", "Training", "Output"


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
ScheduleOpt = Annotated[
    ScheduleName,
    option(
        "--schedule",
        metavar="NAME",
        panel=RATE,
        help="η(t), t = 0, 1, 2, ... counting updates: constant η0 · inverse η0/(1+k·t) · "
        "power η0/(1+k·t)^p · exponential η0·γ^t · step η0·γ^⌊t/s⌋ · "
        "cosine η_min+(η0-η_min)·(1+cos(π·t/T))/2, T the run's updates.",
    ),
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
QuietOpt = Annotated[
    bool,
    option(
        "--quiet", "-q", panel=OUTPUT, help="No progress, tables or messages; errors still print."
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"babynn {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", metavar="", callback=_version, is_eager=True, help="Show the version."
        ),
    ] = None,
) -> None:
    """Train the affine model ŷ = Wᵀx + w0 by gradient descent: CSV in, model file out."""


@app.command(
    epilog="Example: babynn fit sample_data/notes_example.csv --lr 0.1 --epochs 500",
)
@reports_errors
def fit(
    data: DataArg,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    sep: SepOpt = ",",
    dropna: DropnaOpt = False,
    schedule: ScheduleOpt = ScheduleName.constant,
    lr: LrOpt = 0.1,
    decay: DecayOpt = 0.01,
    power: PowerOpt = 0.75,
    gamma: GammaOpt = None,
    step_size: StepSizeOpt = 100,
    lr_min: LrMinOpt = 0.0,
    epochs: EpochsOpt = 1000,
    batch_size: BatchOpt = None,
    tol: TolOpt = 1e-10,
    patience: PatienceOpt = 5,
    seed: SeedOpt = 0,
    init: InitOpt = Init.normal,
    standardize: StandardizeOpt = True,
    intercept: InterceptOpt = True,
    val_frac: ValFracOpt = 0.0,
    early_stopping: Annotated[
        bool,
        option(
            "--early-stopping",
            panel=TRAINING,
            help="Stop on validation loss (needs --val-frac) and keep the best epoch's weights.",
        ),
    ] = False,
    warm_start: Annotated[
        Path | None,
        option(
            "--warm-start",
            metavar="MODEL",
            panel=TRAINING,
            help="Start from a saved model's weights.",
            show_default=False,
        ),
    ] = None,
    history: Annotated[
        Path | None,
        option(
            "--history",
            metavar="FILE.csv",
            panel=OUTPUT,
            help="Write one CSV row per epoch to this file.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path, option("--output", "-o", metavar="PATH", panel=OUTPUT, help="Model file to write.")
    ] = Path("model.json"),
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train the affine model on DATA by gradient descent and save it as a JSON model file."""
    check_lr(lr)
    if early_stopping and val_frac == 0:
        raise UsageError("--early-stopping needs a validation set: add --val-frac, e.g. 0.2")
    if val_frac >= 1:
        raise UsageError(f"--val-frac must be below 1 (got {val_frac:g})")

    from babynn_cli import core, persistence
    from babynn_cli import data as datamod
    from babynn_cli.report import Reporter

    for path in (output, history):
        if path is not None:
            persistence.check_writable(path)
    report = Reporter(quiet=quiet or json_out)
    feature_list = split_list(features)
    dataset = datamod.load(data, sep, target, feature_list, dropna)
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
    warm = None
    if warm_start is not None:
        warm = warm_start_weights(persistence.load_model(warm_start), dataset, intercept)
    params = core.initial_params(problem, seed, init.value, warm)
    settings = core.TrainSettings(
        epochs=epochs,
        batch_size=batch_size,
        tol=tol,
        patience=patience,
        early_stopping=early_stopping,
    )
    sched = core.make_schedule(
        schedule.value,
        lr,
        decay=decay,
        power=power,
        gamma=gamma,
        step_size=step_size,
        lr_min=lr_min,
        total_updates=epochs * core.updates_per_epoch(problem.n_train, batch_size),
    )
    curv = problem.curvature()
    report.fit_header(data, dataset, problem, sched, curv, batch_size)

    with report.progress(epochs) as on_epoch:
        fitted = core.fit(problem, params, sched, settings, seed, on_epoch)
    result = fitted.result

    if result.stop_reason is core.StopReason.DIVERGED:
        raise DivergedError(divergence_message(result, curv, batch_size, problem.n_train))

    interrupted = result.stop_reason is core.StopReason.INTERRUPTED
    model = persistence.ModelFile(
        features=dataset.features,
        targets=dataset.targets,
        weights=fitted.W,
        bias=fitted.bias,
        intercept=intercept,
        standardized=standardize,
        mean=problem.scaler.mean,
        scale=problem.scaler.scale,
        training={
            "data": data,
            "schedule": {"name": schedule.value, "formula": core.describe(sched)},
            "lr": lr,
            "batch_size": batch_size,
            "epochs": epochs,
            "tol": tol,
            "patience": patience,
            "seed": seed,
            "init": "warm-start" if warm is not None else init.value,
            "warm_start": str(warm_start) if warm_start is not None else None,
            "val_frac": val_frac,
            "early_stopping": early_stopping,
        },
        result={
            "epochs_run": result.epochs_run,
            "stop_reason": result.stop_reason.value,
            "interrupted": interrupted,
            "interrupted_at_epoch": result.epochs_run + 1 if interrupted else None,
            "best_epoch": result.best_epoch,
            "final_loss": fitted.train_loss,
            "r2": fitted.train_r2.tolist(),
            "val_loss": fitted.val_loss,
            "val_r2": None if fitted.val_r2 is None else fitted.val_r2.tolist(),
            "n_train": problem.n_train,
            "n_val": problem.n_val,
        },
    )
    persistence.save_model(output, model)
    if history is not None:
        h = result.history
        columns = {
            "epoch": h.epoch,
            "updates": h.updates,
            "lr": h.lr,
            "train_loss": h.train_loss,
            "val_loss": h.val_loss if h.val_loss is not None else [float("nan")] * len(h.epoch),
            "seconds": h.seconds,
        }
        datamod.write_table(columns, history)

    if json_out:
        report.emit_json(
            {
                "model_file": str(output),
                "features": dataset.features,
                "targets": dataset.targets,
                "weights": fitted.W.tolist(),
                "bias": fitted.bias.tolist(),
                **model.result,
                "schedule": core.describe(sched),
                "stable_lr_full_batch": curv.stable_lr,
                "fastest_lr_full_batch": curv.best_lr,
                "history": [
                    {
                        "epoch": int(result.history.epoch[i]),
                        "updates": int(result.history.updates[i]),
                        "lr": float(result.history.lr[i]),
                        "train_loss": float(result.history.train_loss[i]),
                        "val_loss": None
                        if result.history.val_loss is None
                        else float(result.history.val_loss[i]),
                    }
                    for i in range(len(result.history.epoch))
                ],
            }
        )
    else:
        report.loss_table(result.history)
        report.fit_summary(fitted, problem, dataset.targets, tol, patience, output)
        report.weights_table(dataset.features, dataset.targets, fitted.W, fitted.bias)
    if interrupted:
        raise typer.Exit(code=EXIT_INTERRUPTED)


@app.command(
    epilog="Example: babynn predict model.json sample_data/notes_example.csv -o predictions.csv",
)
@reports_errors
def predict(
    model: Annotated[
        Path, typer.Argument(help="Model file written by babynn fit.", show_default=False)
    ],
    data: DataArg,
    output: Annotated[
        Path | None,
        option(
            "--output",
            "-o",
            metavar="PATH",
            panel=OUTPUT,
            help="Write the predictions (CSV) to this file, atomically, instead of stdout.",
            show_default=False,
        ),
    ] = None,
    sep: SepOpt = ",",
    quiet: QuietOpt = False,
    json_out: Annotated[
        bool,
        option(
            "--json",
            panel=OUTPUT,
            help="Print one JSON object (predictions, and MSE and R² when DATA has the targets) "
            "on stdout instead of CSV.",
        ),
    ] = False,
) -> None:
    """Predict the targets of every row of DATA with a saved model; CSV on stdout or in -o."""
    from babynn_cli import core, persistence
    from babynn_cli import data as datamod
    from babynn_cli.report import Reporter

    if output is not None:
        persistence.check_writable(output)
    report = Reporter(quiet=quiet)
    saved = persistence.load_model(model)
    frame = datamod.read_table(data, sep)
    datamod.require_columns(frame, data, saved.features, "feature column(s)")
    X = datamod.numeric_block(frame, saved.features, data, dropna=None)
    affine = core.AffineModel(len(saved.features), len(saved.targets))
    Y_hat = affine.predict({"W": saved.weights, "w0": saved.bias}, X)
    has_targets = all(t in frame.columns for t in saved.targets)
    metrics: dict[str, Any] = {}
    if has_targets:
        Y = datamod.numeric_block(frame, saved.targets, data, dropna=None)
        metrics = {"mse": core.mse(Y, Y_hat), "r2": core.r2_per_output(Y, Y_hat).tolist()}
    predictions = {t: Y_hat[:, j] for j, t in enumerate(saved.targets)}
    if output is not None or not json_out:
        datamod.write_table(predictions, output)
    if json_out:
        report.emit_json({"targets": saved.targets, "predictions": Y_hat.tolist(), **metrics})
    elif metrics:
        report.metrics_line(metrics["mse"], metrics["r2"], saved.targets)


# -- helpers: option checks and messages, no arithmetic ------------------------------------------
def check_lr(lr: float) -> None:
    if not lr > 0:
        raise UsageError(f"--lr must be a number above 0 (got {lr:g})")


def split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UsageError("--features needs at least one column name")
    return items


def warm_start_weights(model: Any, dataset: Any, intercept: bool) -> tuple[Any, Any]:
    """The saved model's raw-unit (W, w0), its rows put in the data's feature order."""
    from babynn_cli.errors import ModelFileError

    if sorted(model.features) != sorted(dataset.features) or model.targets != dataset.targets:
        raise ModelFileError(
            f"--warm-start model has features {', '.join(model.features)} → "
            f"{', '.join(model.targets)}; the data has {', '.join(dataset.features)} → "
            f"{', '.join(dataset.targets)}"
        )
    if model.intercept and not intercept:
        raise UsageError("--warm-start model has an intercept; drop --no-intercept")
    order = [model.features.index(f) for f in dataset.features]
    return model.weights[order], model.bias


def divergence_message(result: Any, curv: Any, batch_size: int | None, n_train: int) -> str:
    from babynn_cli.report import fmt

    loss = float(result.history.train_loss[-1])
    where = (
        f"training diverged at epoch {result.diverged_epoch} with learning rate "
        f"{fmt(result.diverged_lr)} (loss {fmt(loss)})"
    )
    bound = f"full-batch gradient descent on this data is stable below {fmt(curv.stable_lr, 4)}"
    if batch_size is not None and batch_size < n_train:
        return f"{where}; {bound} (2/λmax), and --batch-size {batch_size} needs a smaller rate"
    return f"{where}; {bound} (2/λmax), e.g. --lr {fmt(curv.suggested_lr)}"


def main() -> None:
    app()
