"""babynn fit: train the affine model on a CSV and write the model file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from babynn_cli import interrupts
from babynn_cli.cli.app import Command, app
from babynn_cli.cli.boundary import reports_errors
from babynn_cli.cli.common import begin, check_memory, finish, load_problem
from babynn_cli.cli.groups import (
    DataOptions,
    ModelOptions,
    ScheduleParameters,
    StopOptions,
    option_groups,
)
from babynn_cli.cli.options import (
    OUTPUT,
    RATE,
    TRAINING,
    AdamEpsOpt,
    BatchOpt,
    Beta1Opt,
    Beta2Opt,
    JsonFileOpt,
    JsonOpt,
    MomentumOpt,
    OptimizerName,
    OptimizerOpt,
    PlotOpt,
    QuietOpt,
    ScheduleName,
    ScheduleOpt,
    optimizer_spec,
    option,
    parse_batch,
    parse_lr,
)
from babynn_cli.core.choices import ADAM_DEFAULTS, MAX_EPOCHS, VERDICTS
from babynn_cli.errors import BabynnError, DivergedError, NotConvergedError

if TYPE_CHECKING:
    from babynn_cli.core.verdict import Verdict

AutoLrOpt = Annotated[
    str | None,
    option(
        "--lr",
        metavar="ETA0|auto",
        panel=RATE,
        help="Initial learning rate η0 (> 0), or auto (the default): at full batch on the affine "
        "model η* = 2/(λmax+λmin), the constant rate with the best worst-case contraction per "
        "epoch; otherwise the rate a "
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
        max=MAX_EPOCHS,
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
    optimizer: OptimizerOpt = OptimizerName.gd,  # type: ignore[attr-defined]
    momentum: MomentumOpt = None,
    beta1: Beta1Opt = ADAM_DEFAULTS[0],
    beta2: Beta2Opt = ADAM_DEFAULTS[1],
    adam_eps: AdamEpsOpt = ADAM_DEFAULTS[2],
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    json_file: JsonFileOpt = None,
) -> None:
    """Train, judge the run, save the model unless it failed, and say what happened."""
    given_lr = parse_lr(lr)
    if given_lr is not None:
        rate.check(schedule.value, given_lr)
    model.check(early_stopping)
    rule = optimizer_spec(optimizer.value, momentum, beta1, beta2, adam_eps)

    from babynn_cli import persistence
    from babynn_cli.core import auto
    from babynn_cli.core.auto import most_epochs
    from babynn_cli.core.fit import FitRequest, run
    from babynn_cli.core.problem import initial_params, updates_per_epoch
    from babynn_cli.core.schedules import describe
    from babynn_cli.core.stopping import StopReason
    from babynn_cli.core.verdict import Verdict
    from babynn_cli.data.read import table_csv
    from babynn_cli.report import fit as fit_report
    from babynn_cli.report.advice import next_step, weak_fit_words, what_happened
    from babynn_cli.report.words import Chose, output_names

    outputs, report = begin(
        [("the DATA file", data.data), ("--warm-start", warm_start)],
        {"--output": output, "--history": history, "--plot": plot, "--json-file": json_file},
        quiet or json_out,
    )  # fmt: skip
    start_from = persistence.load_model(warm_start) if warm_start is not None else None
    batch = parse_batch(batch_size, bool(model.hidden))
    dataset, problem = load_problem(
        data, model, quiet or json_out, batch is None, stop.epochs is not None, early_stopping,
        None if start_from is None else start_from.reads,
        None if start_from is None else start_from.classes,
    )  # fmt: skip
    check_memory(problem, batch)
    features, targets = dataset.features, dataset.targets
    warm = None
    if start_from is not None:
        warm = start_from.warm_start(features, targets, problem, dataset.reading.classes)
    params = initial_params(problem, model.seed, model.init.value, warm)
    ask = stop.ask(given_lr, early_stopping)
    total = most_epochs(problem, batch, ask, rule) * updates_per_epoch(problem.n_train, batch)
    spec = rate.spec(schedule.value, total)  # (cosine's T: the run's updates)
    request = FitRequest(ask, batch, spec, model.seed, history_every, rule)
    watch = fit_report.Watch(
        report, data.data, features, targets, problem, batch, stop.gap,
        check=lambda plan: rate.check(schedule.value, plan.lr),
        chose=Chose(batch_size is None, model.val_frac is None, stop.epochs is None),
    )  # fmt: skip
    try:
        done = run(problem, params, request, watch)
    except auto.NoRateFound as e:
        raise DivergedError(str(e)) from None

    fitted, verdict = done.fitted, done.fitted.verdict
    step = next_step(fitted, problem, done.advice, batch, done.plan)
    keep = not verdict.failed and (verdict is Verdict.CONVERGED or not require_converged)
    result = persistence.result_record(done, problem, step)
    init = "warm-start" if warm is not None else model.init.value
    training = persistence.training_record(
        data.data,
        done,
        request,
        init,
        problem.val_frac,
        None if warm_start is None else str(warm_start),
        "cross-entropy" if problem.classifies else "mse",
        model.l2,
    )
    reading = dataset.reading
    saved = persistence.ModelFile.of(
        fitted, problem, features, targets, training, result, reading.encoding, reading.ids,
        reading.classes,
    )  # fmt: skip
    written = output if keep else None
    outputs.stage(written, lambda: persistence.to_json(saved))
    outputs.stage(history, lambda: table_csv(fit_report.columns(fitted.history, seconds=False)))
    outputs.stage(plot, lambda: fit_report.plot_png(fitted, problem))

    def doc() -> dict:
        text = describe(done.schedule)
        return fit_report.as_json(fitted, problem, saved, result, text, written)

    if json_out:
        report.emit_json(doc())
    else:
        stops = (done.plan.tol, done.plan.patience, stop.gap)
        outputs_named = output_names(targets, reading.classes)
        fit_report.show(
            report, fitted, problem, features, targets, stops, written, outputs_named,
            interrupts.stopped_by(),
        )  # fmt: skip
    happened = what_happened(fitted, stop.gap, done.plan.patience)
    line = happened if step is None else f"{happened}; {step}"
    weak = weak_fit_words(fitted, problem)
    if weak is not None:
        line = f"{line}; but {weak}"
    interrupted = fitted.end.stop_reason is StopReason.INTERRUPTED
    if interrupted:  # `finish` names the signal; no advice for a run that was cut short
        end = fitted.end
        kept = (
            f"epoch {end.weights_epoch}'s weights saved in {written}"
            if written
            else "no model file written"
        )
        line = f"during epoch {end.epochs_run + 1} ({kept}); so far: {happened}"
    finish(
        outputs,
        report,
        interrupted=interrupted,
        failure=_failure(verdict, keep, line),
        last_line=line,
        json_file=(json_file, doc),
    )


def _failure(verdict: Verdict, kept: bool, line: str) -> BabynnError | None:
    """How a run that wrote no model file ends: exit 3 when it diverged or went unstable, 4
    when --require-converged refused it."""
    if verdict.failed:
        return DivergedError(f"{line}; no model file written")
    if not kept:
        return NotConvergedError(f"{line}; --require-converged: no model file written")
    return None
