"""babynn fit: train the affine model on a CSV and write the model file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from babynn_cli import interrupts
from babynn_cli.cli.app import Command, app
from babynn_cli.cli.common import check_memory, load_problem
from babynn_cli.cli.options import (
    OUTPUT,
    RATE,
    TRAINING,
    BatchOpt,
    DataOptions,
    JsonOpt,
    ModelOptions,
    PlotOpt,
    QuietOpt,
    ScheduleName,
    ScheduleOpt,
    ScheduleParameters,
    StopOptions,
    check_lr,
    option,
    option_groups,
    reports_errors,
)
from babynn_cli.core.choices import VERDICTS
from babynn_cli.errors import DivergedError, NotConvergedError, UsageError

if TYPE_CHECKING:
    from babynn_cli.core.auto import Plan

AutoLrOpt = Annotated[
    str | None,
    option(
        "--lr",
        metavar="ETA0|auto",
        panel=RATE,
        help="Initial learning rate η0 (> 0), or auto (the default): at full batch on the affine "
        "model η* = 2/(λmax+λmin), the fastest constant rate for this data; otherwise the rate a "
        "short sweep picks (7 rates, a few epochs each). The header says which.",
        show_default=False,
    ),
]

EarlyStoppingOpt = Annotated[
    bool,
    option(
        "--early-stopping",
        panel=TRAINING,
        help="Stop on validation loss (needs --val-frac) and keep the best epoch's weights.",
    ),
]
WarmStartOpt = Annotated[
    Path | None,
    option(
        "--warm-start",
        metavar="MODEL",
        panel=TRAINING,
        help="Start from a saved model's weights.",
        show_default=False,
    ),
]
HistoryOpt = Annotated[
    str | None,
    option(
        "--history",
        metavar="FILE.csv",
        panel=OUTPUT,
        help="Write one CSV row per epoch to this file.",
        show_default=False,
    ),
]
HistoryEveryOpt = Annotated[
    int | None,
    option(
        "--history-every",
        metavar="N",
        panel=OUTPUT,
        min=1,
        help="Keep every Nth epoch in the history (--json, --history, the tables) instead of "
        "every epoch to 2,000 and then about 200 a decade (log-spaced); epoch 0, the best and "
        "the last are always kept.",
        show_default=False,
    ),
]
RequireConvergedOpt = Annotated[
    bool,
    option(
        "--require-converged",
        panel=OUTPUT,
        help="Exit 4, and write no model file, unless the verdict is converged: a gate for "
        "Makefiles.",
    ),
]
OutputOpt = Annotated[
    str, option("--output", "-o", metavar="PATH", panel=OUTPUT, help="Model file to write.")
]


@app.command(
    cls=Command,
    help="Train the affine model (or, with --hidden, a network) on DATA by gradient descent and "
    "save it as a JSON model file. The run ends with its verdict: "
    + "; ".join(f"{name}: {meaning}" for name, meaning in VERDICTS)
    + ". Exit codes: 0, or 3 when diverged or unstable (no model file written), or 4 with "
    "--require-converged when not converged.",
    epilog="Example: babynn fit sample:notes_example",
)
@reports_errors
@option_groups
def fit(
    data: DataOptions,
    *,
    schedule: ScheduleOpt = ScheduleName.constant,  # type: ignore[attr-defined]
    lr: AutoLrOpt = None,
    rate: ScheduleParameters,
    stop: StopOptions,
    batch_size: BatchOpt = None,
    model: ModelOptions,
    early_stopping: EarlyStoppingOpt = False,
    warm_start: WarmStartOpt = None,
    history: HistoryOpt = None,
    history_every: HistoryEveryOpt = None,
    output: OutputOpt = "model.json",
    plot: PlotOpt = None,
    require_converged: RequireConvergedOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train, judge the run, save the model unless it failed, and say what happened.

    Longer than most functions here (a 20-line signature, two screens of body) because it is the
    command's whole story in order — check, load, choose the rate and epochs, train, judge, save,
    show, exit — each step one call into the layer that owns it."""
    given_lr = parse_lr(lr)
    if given_lr is not None:
        rate.check(schedule.value, given_lr)
    model.check(early_stopping)

    from babynn_cli import persistence
    from babynn_cli.core import auto
    from babynn_cli.core.fit import fit as fit_problem
    from babynn_cli.core.fit import run_record
    from babynn_cli.core.problem import initial_params, updates_per_epoch
    from babynn_cli.core.schedules import describe
    from babynn_cli.core.stopping import StopReason
    from babynn_cli.core.verdict import Verdict, advise
    from babynn_cli.data.read import table_csv
    from babynn_cli.outputs import Outputs
    from babynn_cli.report import fit as fit_report
    from babynn_cli.report.console import Reporter
    from babynn_cli.report.plot import require_matplotlib
    from babynn_cli.report.words import next_step, what_happened

    outputs = Outputs([("the DATA file", data.data), ("--warm-start", warm_start)])
    outputs.name("--output", output)
    outputs.name("--history", history)
    outputs.name("--plot", plot)
    if plot is not None:
        require_matplotlib()
    start_from = persistence.load_model(warm_start) if warm_start is not None else None
    report = Reporter(quiet=quiet or json_out)
    dataset, problem = load_problem(data, model, quiet or json_out, full_batch=batch_size is None)
    check_memory(problem, batch_size)
    warm = None
    if start_from is not None:
        warm = start_from.warm_start(dataset.features, dataset.targets, problem)
    params = initial_params(problem, model.seed, model.init.value, warm)
    # a schedule's length T is the run's updates: --epochs, or the default (cosine never runs
    # until converged, the one schedule whose shape needs T)
    total = stop.most_epochs * updates_per_epoch(problem.n_train, batch_size)
    spec = rate.spec(schedule.value, total)

    def planned(on_probe: Any = None) -> auto.Plan:
        """The rate and epochs, babynn's where not given (a short sweep may run: see core.auto)."""
        try:
            return auto.plan(
                problem, params, lr=given_lr, epochs=stop.epochs, tol=stop.tol,
                batch_size=batch_size, spec=spec, seed=model.seed, gap_tol=stop.gap_tol,
                patience=stop.patience, on_epoch=on_probe,
            )  # fmt: skip
        except ValueError as error:
            raise DivergedError(str(error)) from None

    if auto.probes(problem, batch_size, given_lr):
        probe = auto.probe_epochs(problem, batch_size, stop.most_epochs)
        with report.progress(probe, label="choosing --lr") as on_probe:
            plan = planned(on_probe)
    else:
        plan = planned()
    rate.check(schedule.value, plan.lr)
    settings = plan.settings(problem, batch_size, stop.patience, early_stopping, stop.gap_tol)
    settings = dataclasses.replace(settings, history_every=history_every)
    sched = spec.at(plan.lr)
    fit_report.header(
        report, data.data, dataset.features, dataset.targets, problem, sched, batch_size, plan,
        stop.gap_tol,
    )  # fmt: skip
    with report.progress(plan.epochs) as on_epoch:
        fitted = fit_problem(problem, params, sched, settings, model.seed, on_epoch, stop.gap_tol)
    verdict = fitted.verdict
    advice = advise(
        problem, params, fitted.params, fitted.history, batch_size, stop.gap_tol, verdict
    )
    happened = what_happened(fitted, stop.gap_tol, stop.patience)
    step = next_step(fitted, problem, advice, batch_size, plan.lr)
    keep = not verdict.failed and (verdict is Verdict.CONVERGED or not require_converged)
    result = run_record(fitted, problem) | {"next_step": step} | plan_record(plan)
    init = "warm-start" if warm is not None else model.init.value
    training = training_record(data, describe(sched), plan, batch_size, stop, model, init) | {
        "warm_start": str(warm_start) if warm_start is not None else None,
        "early_stopping": early_stopping,
    }
    saved = persistence.ModelFile.of(
        fitted, problem, dataset.features, dataset.targets, training, result
    )
    if keep:
        outputs.stage(output, persistence.to_json(saved))
    if history is not None:
        outputs.stage(history, table_csv(fit_report.columns(fitted.history)))
    if plot is not None:
        outputs.stage(plot, fit_report.plot_png(fitted, problem))
    written = output if keep else None
    if json_out:
        report.emit_json(
            fit_report.as_json(fitted, problem, saved, result, describe(sched), written)
        )
    else:
        gaps = (plan.tol, stop.patience, stop.gap_tol)
        fit_report.show(report, fitted, problem, dataset.features, dataset.targets, gaps, written)
    outputs.commit()
    report.flush()
    line = happened if step is None else f"{happened}; {step}"
    if fitted.end.stop_reason is StopReason.INTERRUPTED:
        report.status(line)
        raise typer.Exit(code=interrupts.exit_code())
    if verdict.failed:
        raise DivergedError(f"{line}; no model file written")
    if not keep:
        raise NotConvergedError(f"{line}; --require-converged: no model file written")
    report.status(line)


def training_record(
    data: DataOptions,
    formula: str,
    plan: Plan,
    batch_size: int | None,
    stop: StopOptions,
    model: ModelOptions,
    init: str,
) -> dict[str, Any]:
    """How a model was trained, as its file records it."""
    return {
        "data": data.data,
        "schedule": {"name": formula.split(":")[0], "formula": formula},
        "lr": plan.lr,
        "batch_size": batch_size,
        "epochs": plan.epochs,
        "tol": plan.tol,
        "patience": stop.patience,
        "gap_tol": stop.gap_tol,
        "seed": model.seed,
        "init": init,
        "val_frac": model.val_frac,
    }


def plan_record(plan: Plan) -> dict[str, Any]:
    """What babynn chose, as the result records it."""
    return {
        "lr": plan.lr,
        "lr_rule": plan.lr_rule,
        "until_converged": plan.until_converged,
        "epochs_predicted": plan.predicted,
    }


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
