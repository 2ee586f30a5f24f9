"""babynn fit: train the affine model on a CSV and write the model file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from babynn_cli.cli.app import app
from babynn_cli.cli.common import divergence_hint, load_problem
from babynn_cli.cli.options import (
    EXIT_INTERRUPTED,
    OUTPUT,
    TRAINING,
    Activation,
    ActivationOpt,
    BatchOpt,
    DataArg,
    DecayOpt,
    DropnaOpt,
    EpochsOpt,
    FeaturesOpt,
    GammaOpt,
    HiddenOpt,
    Init,
    InitOpt,
    InterceptOpt,
    JsonOpt,
    LrMinOpt,
    LrOpt,
    PatienceOpt,
    PowerOpt,
    QuietOpt,
    ScheduleName,
    ScheduleOpt,
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
from babynn_cli.errors import DivergedError, ModelFileError, UsageError

if TYPE_CHECKING:
    from babynn_cli.core import Problem
    from babynn_cli.data import Dataset
    from babynn_cli.persistence import ModelFile


@app.command(epilog="Example: babynn fit sample_data/notes_example.csv --lr 0.1 --epochs 500")
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
    hidden: HiddenOpt = None,
    activation: ActivationOpt = Activation.tanh,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train the affine model (or, with --hidden, a network) on DATA by gradient descent and save
    it as a JSON model file."""
    check_lr(lr)
    layers = check_network(hidden, intercept)
    check_validation(val_frac, early_stopping)

    from babynn_cli import core, persistence
    from babynn_cli import data as datamod
    from babynn_cli.report import Reporter, fmt, records

    for path in (output, history):
        if path is not None:
            persistence.check_writable(path)
    start_from = persistence.load_model(warm_start) if warm_start is not None else None
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
    warm = None if start_from is None else warm_start_weights(start_from, dataset, problem)
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
    curvature = problem.curvature() if problem.affine else None
    report.fit_header(data, dataset, problem, sched, curvature, batch_size)

    with report.progress(epochs) as on_epoch:
        fitted = core.fit(problem, params, sched, settings, seed, on_epoch)
    run = fitted.run

    if run.stop_reason is core.StopReason.DIVERGED:
        loss = fmt(float(fitted.history.train_loss[-1, 0]))
        raise DivergedError(
            f"training diverged at epoch {run.diverged_epoch} with learning rate "
            f"{fmt(run.diverged_lr)} (loss {loss}); " + divergence_hint(problem, batch_size)
        )

    interrupted = run.stop_reason is core.StopReason.INTERRUPTED
    result = {
        "epochs_run": run.epochs_run,
        "stop_reason": run.stop_reason.value,
        "interrupted": interrupted,
        "interrupted_at_epoch": run.epochs_run + 1 if interrupted else None,
        "best_epoch": run.best_epoch,
        "final_loss": fitted.train_loss,
        "optimum_loss": core.optimum_loss(problem),
        "r2": fitted.train_r2.tolist(),
        "val_loss": fitted.val_loss,
        "val_r2": None if fitted.val_r2 is None else fitted.val_r2.tolist(),
        "n_train": problem.n_train,
        "n_val": problem.n_val,
    }
    network = core.layers_of(fitted.params) if not problem.affine else None
    model = persistence.ModelFile(
        features=dataset.features,
        targets=dataset.targets,
        weights=fitted.W,
        bias=fitted.bias,
        kind="affine" if problem.affine else "mlp",
        layers=network,
        activation=None if problem.affine else activation.value,
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
        result=result,
    )
    persistence.save_model(output, model)
    h = fitted.history
    columns = {
        "epoch": h.epoch,
        "updates": h.updates,
        "lr": h.lr[:, 0],
        "train_loss": h.train_loss[:, 0],
        "val_loss": h.val_loss[:, 0] if h.val_loss is not None else [None] * len(h.epoch),
        "seconds": h.seconds,
    }
    if history is not None:
        datamod.write_table(columns, history)

    if json_out:
        doc: dict[str, Any] = {
            "model_file": str(output),
            "kind": model.kind,
            "features": dataset.features,
            "targets": dataset.targets,
        }
        if fitted.W is not None and fitted.bias is not None and curvature is not None:
            doc |= {
                "weights": fitted.W.tolist(),
                "bias": fitted.bias.tolist(),
                "stable_lr_full_batch": curvature.stable_lr,
                "fastest_lr_full_batch": curvature.best_lr,
            }
        else:
            assert network is not None
            doc |= {
                "activation": activation.value,
                "hidden": list(layers),
                "layers": [{"weights": W.tolist(), "bias": b.tolist()} for W, b in network],
                "standardization": {
                    "mean": problem.scaler.mean.tolist(),
                    "scale": problem.scaler.scale.tolist(),
                },
            }
        doc |= {**result, "schedule": core.describe(sched), "history": records(columns)}
        report.emit_json(doc)
    else:
        report.loss_table(h)
        report.fit_summary(fitted, dataset.targets, tol, patience, output, result["optimum_loss"])
        if fitted.W is not None and fitted.bias is not None:
            report.weights_table(dataset.features, dataset.targets, fitted.W, fitted.bias)
        else:
            report.network_table(problem.model)
    if interrupted:
        raise typer.Exit(code=EXIT_INTERRUPTED)


def warm_start_weights(model: ModelFile, dataset: Dataset, problem: Problem) -> Any:
    """The saved model's weights, its input rows put in the data's feature order."""
    from babynn_cli.core import Saved, params_of

    if sorted(model.features) != sorted(dataset.features) or model.targets != dataset.targets:
        raise ModelFileError(
            f"--warm-start model has features {', '.join(model.features)} → "
            f"{', '.join(model.targets)}; the data has {', '.join(dataset.features)} → "
            f"{', '.join(dataset.targets)}"
        )
    order = [model.features.index(f) for f in dataset.features]
    assert model.mean is not None and model.scale is not None
    mean, scale = model.mean[order], model.scale[order]
    wanted = getattr(problem.model, "hidden", ())
    if model.kind == "affine":
        if wanted:
            raise UsageError("--warm-start model is affine; drop --hidden to continue it")
        if model.intercept and not problem.model.intercept:
            raise UsageError("--warm-start model has an intercept; drop --no-intercept")
        assert model.weights is not None and model.bias is not None
        return Saved({"W": model.weights[order], "w0": model.bias}, mean, scale)
    assert model.layers is not None
    hidden = tuple(W.shape[1] for W, _ in model.layers[:-1])
    if hidden != wanted or model.activation != getattr(problem.model, "activation", None):
        shape = " ".join(f"--hidden {h}" for h in hidden)
        raise UsageError(
            f"--warm-start model is a network ({shape} --activation {model.activation}); "
            "give the same --hidden and --activation"
        )
    params = params_of(model.layers)
    params["W1"] = params["W1"][order]
    return Saved(params, mean, scale)
