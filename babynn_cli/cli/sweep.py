"""babynn sweep-lr: find the learning rate by experiment and by theory, side by side."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

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
    TRAINING,
    AdamEpsOpt,
    BatchOpt,
    Beta1Opt,
    Beta2Opt,
    CsvOutOpt,
    JsonFileOpt,
    JsonOpt,
    MomentumOpt,
    OptimizerName,
    OptimizerOpt,
    PlotOpt,
    QuietOpt,
    ScheduleName,
    ScheduleOpt,
    check_lr,
    optimizer_spec,
    option,
    parse_batch,
    split_list,
)
from babynn_cli.core.choices import ADAM_DEFAULTS, SUGGESTION_RULE
from babynn_cli.errors import DivergedError, UsageError

GRID = "Grid"
EarlyStoppingOpt = Annotated[
    bool,
    option(
        "--early-stopping",
        panel=TRAINING,
        help="Stop each rate on the validation loss (holding out 10% of the rows unless "
        "--val-frac says otherwise); the suggestion reads the validation loss.",
    ),
]


LrLoOpt = Annotated[
    float | None,
    option(
        "--min",
        metavar="ETA",
        panel=GRID,
        help="Smallest rate of the grid. [default: 0.001]",
        show_default=False,
    ),
]
LrHiOpt = Annotated[
    float | None,
    option(
        "--max",
        metavar="ETA",
        panel=GRID,
        help="Largest rate of the grid. [default: 10]",
        show_default=False,
    ),
]
NumOpt = Annotated[
    int | None,
    option(
        "--num",
        metavar="K",
        panel=GRID,
        help="Rates in the grid, evenly spaced in log. [default: 17]",
        show_default=False,
    ),
]
LrsOpt = Annotated[
    str | None,
    option(
        "--lrs",
        metavar="A,B,...",
        panel=GRID,
        help="An explicit list of rates instead of --min/--max/--num.",
        show_default=False,
    ),
]


@app.command(
    "sweep-lr",
    cls=Command,
    help="Train DATA at many learning rates at once and set the result beside theory: the "
    "stability bound 2/λmax and η* = 2/(λmax+λmin), the rate with the best worst-case "
    "contraction per epoch, of full-batch gradient descent. "
    "Suggests one rate (the rule fit --lr auto picks by): "
    f"{SUGGESTION_RULE}. Each rate's verdict is the one `babynn fit` gives it "
    "(see babynn fit --help).",
    epilog="Example: babynn sweep-lr sample:diabetes --min 0.01 --max 1 --num 9",
)
@reports_errors
@option_groups
def sweep_lr(
    data: DataOptions,
    *,
    lr_lo: LrLoOpt = None,
    lr_hi: LrHiOpt = None,
    num: NumOpt = None,
    lrs: LrsOpt = None,
    schedule: ScheduleOpt = ScheduleName.constant,  # type: ignore[attr-defined]
    rate: ScheduleParameters,
    stop: StopOptions,
    batch_size: BatchOpt = None,
    model: ModelOptions,
    early_stopping: EarlyStoppingOpt = False,
    output: CsvOutOpt = None,
    plot: PlotOpt = None,
    optimizer: OptimizerOpt = OptimizerName.gd,  # type: ignore[attr-defined]
    momentum: MomentumOpt = None,
    beta1: Beta1Opt = ADAM_DEFAULTS[0],
    beta2: Beta2Opt = ADAM_DEFAULTS[1],
    adam_eps: AdamEpsOpt = ADAM_DEFAULTS[2],
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    json_file: JsonFileOpt = None,
) -> None:
    rates = grid_from_options(lr_lo, lr_hi, num, lrs)
    rate.check(schedule.value, min(rates))
    model.check(early_stopping)
    rule = optimizer_spec(optimizer.value, momentum, beta1, beta2, adam_eps)
    if rule.heavy and rule.momentum is None:  # one β for every rate of the grid
        rule = replace(rule, momentum=rule.beta)

    from babynn_cli.core import auto
    from babynn_cli.core.problem import initial_params, updates_per_epoch
    from babynn_cli.core.stopping import StopReason
    from babynn_cli.core.sweep import sweep
    from babynn_cli.data.read import table_csv
    from babynn_cli.report import sweep as sweep_report
    from babynn_cli.report.advice import stable_rate_hint

    outputs, report = begin(
        [("the DATA file", data.data)],
        {"--output": output, "--plot": plot, "--json-file": json_file},
        quiet or json_out,
    )
    batch = parse_batch(batch_size, bool(model.hidden))
    dataset, problem = load_problem(
        data, model, quiet or json_out, batch is None, stop.epochs is not None, early_stopping
    )
    check_memory(problem, batch, len(rates) + 1)
    params = initial_params(problem, model.seed, model.init.value)
    ask = stop.ask(None, early_stopping)
    epochs = auto.most_epochs(problem, batch, ask, rule)
    spec = rate.spec(schedule.value, epochs * updates_per_epoch(problem.n_train, batch))
    # each rate trains under the rules fit gives a run of these options (`core.auto`), at one β
    chosen = auto.rules(problem, batch, ask, spec, epochs, rule)
    settings = replace(chosen, optimizer=rule).settings(batch)
    sweep_report.header(
        report, data.data, dataset.features, dataset.targets, problem, spec.at(rates[0]), batch,
        rule,
    )  # fmt: skip
    with report.progress(epochs, label="sweep") as on_epoch:
        result = sweep(problem, params, rates, spec, settings, model.seed, stop.gap, on_epoch)

    outputs.stage(output, lambda: table_csv(sweep_report.columns(result)))
    outputs.stage(plot, lambda: sweep_report.plot_png(result))

    def doc() -> dict:
        return sweep_report.as_json(result, SUGGESTION_RULE, stop.gap)

    if json_out:
        report.emit_json(doc())
    else:
        sweep_report.show(report, result, stop.gap)
    failure = None
    if all(row.verdict.failed for row in result.rows):
        hint = stable_rate_hint(problem, batch, min(rates), rule)
        failure = DivergedError(f"every rate diverged or went unstable; {hint}")
    stopped = any(row.stop_reason is StopReason.INTERRUPTED for row in result.rows)
    finish(outputs, report, interrupted=stopped, failure=failure, json_file=(json_file, doc))


def grid_from_options(
    lr_lo: float | None, lr_hi: float | None, num: int | None, lrs: str | None
) -> list[float]:
    """The rates to sweep: an explicit --lrs list, or --num rates from --min to --max."""
    if lrs is not None:
        given = [
            f for f, v in (("--min", lr_lo), ("--max", lr_hi), ("--num", num)) if v is not None
        ]
        if given:
            raise UsageError(f"--lrs lists the rates itself: drop {' and '.join(given)}")
        values = []
        for item in split_list(lrs, "--lrs") or []:
            try:
                values.append(float(item))
            except ValueError:
                raise UsageError(f"--lrs takes numbers; got {item!r}") from None
        for value in values:
            check_lr(value, "--lrs")
        if len(set(values)) < 2:
            raise UsageError("--lrs needs at least two different rates")
        return sorted(set(values))
    lr_lo = 1e-3 if lr_lo is None else lr_lo
    lr_hi = 10.0 if lr_hi is None else lr_hi
    num = 17 if num is None else num
    check_lr(lr_lo, "--min")
    check_lr(lr_hi, "--max")
    if lr_lo >= lr_hi:
        raise UsageError(f"--min must be below --max (got {lr_lo:g} and {lr_hi:g})")
    if num < 2:
        raise UsageError(f"--num must be at least 2 (got {num})")
    from babynn_cli.core.sweep import lr_grid

    return [float(v) for v in lr_grid(lr_lo, lr_hi, num)]
