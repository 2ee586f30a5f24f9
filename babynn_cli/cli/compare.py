"""babynn compare: training configurations side by side, against the closed-form optimum."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from babynn_cli.cli.app import app
from babynn_cli.cli.common import load_problem, saved_predictions
from babynn_cli.cli.options import (
    EXIT_INTERRUPTED,
    RATE,
    SCHEDULE_HELP,
    TRAINING,
    Activation,
    ActivationOpt,
    CsvOutOpt,
    DataArg,
    DecayOpt,
    DropnaOpt,
    EpochsOpt,
    FeaturesOpt,
    GammaOpt,
    GapTolOpt,
    HiddenOpt,
    Init,
    InitOpt,
    InterceptOpt,
    JsonOpt,
    LrMinOpt,
    PatienceOpt,
    PlotOpt,
    PowerOpt,
    QuietOpt,
    ScheduleName,
    SeedOpt,
    SepOpt,
    StandardizeOpt,
    StepSizeOpt,
    TargetOpt,
    TolOpt,
    ValFracOpt,
    check_lr,
    check_network,
    check_validation,
    option,
    reports_errors,
    split_list,
)
from babynn_cli.errors import ModelFileError, UsageError

if TYPE_CHECKING:
    from babynn_cli.core import Problem, SavedRow
    from babynn_cli.data import Dataset
    from babynn_cli.persistence import ModelFile

DEFAULT_LR = 0.1
# With no --schedule, --lr or --batch-size: a constant rate and two decaying schedules at full
# batch, and minibatch stochastic gradient descent with a schedule that meets the notes' conditions.
DEFAULT_SET = (
    ("constant", DEFAULT_LR, None),
    ("inverse", DEFAULT_LR, None),
    ("exponential", DEFAULT_LR, None),
    ("inverse", DEFAULT_LR, 32),
)


@app.command(
    help="Train several configurations on DATA from the same initial weights and set them beside "
    "the closed-form least-squares optimum: final loss, gap L - L*, distance of the weights, "
    "epochs to reach --gap-tol, status and time; saved models (--model) join as rows. Every "
    "combination of the --schedule, --lr and --batch-size values given runs; with none given, "
    "constant, inverse and exponential at full batch and inverse at batch 32, all at η0 = 0.1. "
    "With --hidden every configuration trains that network; the optimum stays the best affine "
    "fit, so the table shows how far the network gets past it.",
    epilog="Example: babynn compare sample_data/notes_example.csv --schedule constant "
    "--schedule inverse --batch-size full --batch-size 16",
)
@reports_errors
def compare(
    data: DataArg,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    sep: SepOpt = ",",
    dropna: DropnaOpt = False,
    schedules: Annotated[
        list[ScheduleName] | None,
        option(
            "--schedule",
            metavar="NAME",
            panel=RATE,
            help=f"Repeatable. {SCHEDULE_HELP}",
            show_default=False,
        ),
    ] = None,
    lrs: Annotated[
        list[float] | None,
        option(
            "--lr",
            metavar="ETA0",
            panel=RATE,
            help=f"Initial learning rate η0 (> 0); repeatable. Default: {DEFAULT_LR}.",
            show_default=False,
        ),
    ] = None,
    decay: DecayOpt = 0.01,
    power: PowerOpt = 0.75,
    gamma: GammaOpt = None,
    step_size: StepSizeOpt = 100,
    lr_min: LrMinOpt = 0.0,
    batch_sizes: Annotated[
        list[str] | None,
        option(
            "--batch-size",
            "-b",
            metavar="B|full",
            panel=TRAINING,
            help="Rows per update, or 'full' for gradient descent; repeatable. Default: full.",
            show_default=False,
        ),
    ] = None,
    epochs: EpochsOpt = 1000,
    tol: TolOpt = 1e-10,
    patience: PatienceOpt = 5,
    gap_tol: GapTolOpt = 1e-6,
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
            help="Stop each run on validation loss (needs --val-frac); keep its best epoch.",
        ),
    ] = False,
    models: Annotated[
        list[Path] | None,
        option(
            "--model",
            metavar="MODEL",
            panel=TRAINING,
            help="A model file written by fit, evaluated on DATA as a row; repeatable.",
            show_default=False,
        ),
    ] = None,
    hidden: HiddenOpt = None,
    activation: ActivationOpt = Activation.tanh,
    output: CsvOutOpt = None,
    plot: PlotOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    for lr in lrs or []:
        check_lr(lr)
    layers = check_network(hidden, intercept)
    check_validation(val_frac, early_stopping)
    batches = [parse_batch(b) for b in batch_sizes or []]

    from babynn_cli import core, persistence
    from babynn_cli import data as datamod
    from babynn_cli.report import Reporter
    from babynn_cli.report import compare as compare_report
    from babynn_cli.report import plot as plots

    for path in (output, plot):
        if path is not None:
            persistence.check_writable(path)
    if plot is not None:
        plots.require_matplotlib()
    saved_files = [(path, persistence.load_model(path)) for path in models or []]
    report = Reporter(quiet=quiet or json_out)
    dataset, problem = load_problem(
        data,
        sep=sep,
        target=target,
        features=split_list(features),
        dropna=dropna,
        val_frac=val_frac,
        standardize=standardize,
        intercept=intercept,
        seed=seed,
        hidden=layers,
        activation=activation.value,
    )
    saved = [saved_row(path, model, dataset, problem) for path, model in saved_files]

    def spec(name: str) -> core.ScheduleSpec:
        return core.ScheduleSpec(
            name, decay=decay, power=power, gamma=gamma, step_size=step_size, lr_min=lr_min
        )

    if schedules or lrs or batches:
        configs = [
            core.Config(spec(s.value), lr, b)
            for s in schedules or [ScheduleName.constant]
            for lr in lrs or [DEFAULT_LR]
            for b in batches or [None]
        ]
    else:
        configs = [core.Config(spec(name), lr, b) for name, lr, b in DEFAULT_SET]
    configs = list(dict.fromkeys(configs))  # a combination given twice runs once

    params = core.initial_params(problem, seed, init.value)
    settings = core.TrainSettings(
        epochs=epochs, tol=tol, patience=patience, early_stopping=early_stopping
    )
    report.status(
        f"{datamod.display_name(data)}: {problem.n_train} training rows"
        + (f", {problem.n_val} held out for validation" if problem.n_val else "")
        + f"; {len(configs)} configuration(s)"
        + (f" and {len(saved)} saved model(s)" if saved else "")
        + " against the least-squares optimum"
    )
    with report.progress(epochs, label="compare") as on_epoch:
        result = core.compare(problem, params, configs, settings, seed, gap_tol, on_epoch, saved)

    if output is not None:
        datamod.write_table(compare_report.columns(result, dataset.features), output)
    if plot is not None:
        compare_report.save_plot(result, plot, gap_tol)
    if json_out:
        report.emit_json(compare_report.as_json(result, dataset.features, dataset.targets, gap_tol))
    else:
        compare_report.show(report, result, gap_tol)
    if any(row.status == core.INTERRUPTED for row in result.rows):
        raise typer.Exit(code=EXIT_INTERRUPTED)


def parse_batch(value: str) -> int | None:
    if value.strip().lower() in ("full", "all"):
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise UsageError(f"--batch-size takes a whole number of rows ≥ 1 or 'full' (got {value!r})")
    return size


def saved_row(path: Path, model: ModelFile, dataset: Dataset, problem: Problem) -> SavedRow:
    """A saved model's row: its predictions on the same rows, its weights placed on the data's
    feature columns when it is affine."""
    import numpy as np

    from babynn_cli.core import SavedRow

    features, targets = dataset.features, dataset.targets
    lacking = [f for f in model.features if f not in features]
    if lacking:
        raise ModelFileError(
            f"model '{path}' uses column(s) {', '.join(lacking)} that are not among the data's "
            f"features ({', '.join(features)})"
        )
    if list(model.targets) != list(targets):
        raise ModelFileError(
            f"model '{path}' predicts {', '.join(model.targets)}; the data's target is "
            f"{', '.join(targets)}"
        )
    columns = [features.index(f) for f in model.features]
    train = saved_predictions(model, problem.train.X[:, columns])
    val = None if problem.val is None else saved_predictions(model, problem.val.X[:, columns])
    W = bias = None
    if model.kind == "affine" and model.weights is not None:
        W = np.zeros((len(features), len(targets)))
        W[columns] = model.weights
        bias = model.bias
    return SavedRow(f"model {path}", train, val, W, bias)
