"""babynn compare: training configurations side by side, against the closed-form optimum."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

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
    RATE,
    SCHEDULE_HELP,
    TRAINING,
    AdamEpsOpt,
    Beta1Opt,
    Beta2Opt,
    CsvOutOpt,
    JsonFileOpt,
    JsonOpt,
    MomentumOpt,
    OptimizerName,
    PlotOpt,
    QuietOpt,
    ScheduleName,
    optimizer_spec,
    option,
    parse_batch,
    parse_lr,
)
from babynn_cli.core.choices import ADAM_DEFAULTS
from babynn_cli.errors import DivergedError, UsageError

DEFAULT_LR = 0.1
# With no --schedule, --lr or --batch-size: a constant rate and two decaying schedules at full
# batch, and minibatch stochastic gradient descent with a schedule that meets the notes' conditions.
# The full-batch ones start at fit's auto rate for the affine model, η* = 2/(λmax+λmin) (None
# here: it is known once the data is); the rest at DEFAULT_LR. A network trains by minibatches, as
# fit trains it: the three schedules at its batch size, at the rate fit's short sweep picks.
AUTO = "auto"  # the batch size fit chooses for the model
DEFAULT_SET: tuple[tuple[str, float | None, int | str | None], ...] = (
    ("constant", None, None),
    ("inverse", None, None),
    ("exponential", None, None),
    ("inverse", DEFAULT_LR, 32),
)
NETWORK_SET: tuple[tuple[str, float | None, int | str | None], ...] = (
    ("constant", None, AUTO),
    ("inverse", None, AUTO),
    ("exponential", None, AUTO),
)


OptimizersOpt = Annotated[
    list[OptimizerName] | None,
    option(
        "--optimizer",
        metavar="NAME",
        panel=TRAINING,
        help="Repeatable: gd, momentum, nesterov, adam (see fit -h); each configuration runs by "
        "each rule given. Given alone: a constant rate at full batch (the model's own batch size "
        "for a network), by each rule, at fit's rate for it (theory's η and β for momentum).",
        show_default=False,
    ),
]
SchedulesOpt = Annotated[
    list[ScheduleName] | None,
    option(
        "--schedule",
        metavar="NAME",
        panel=RATE,
        help=f"Repeatable. {SCHEDULE_HELP}",
        show_default=False,
    ),
]
LrsOpt = Annotated[
    list[str] | None,
    option(
        "--lr",
        metavar="ETA0|auto",
        panel=RATE,
        help="Initial learning rate η0 (> 0), or auto: fit's own rate for the run's batch size "
        "(the default); repeatable.",
        show_default=False,
    ),
]
BatchSizesOpt = Annotated[
    list[str] | None,
    option(
        "--batch-size",
        "-b",
        metavar="B|full",
        panel=TRAINING,
        help="Rows per update, or 'full' for gradient descent; repeatable. Default: full for the "
        "affine model, the batch size fit gives a network for a network.",
        show_default=False,
    ),
]
EarlyStoppingOpt = Annotated[
    bool,
    option(
        "--early-stopping",
        panel=TRAINING,
        help="Stop each run on validation loss (needs --val-frac); keep its best epoch.",
    ),
]
ModelsOpt = Annotated[
    list[Path] | None,
    option(
        "--model",
        metavar="MODEL",
        panel=TRAINING,
        help="A model file written by fit, evaluated on DATA as a row; repeatable.",
        show_default=False,
    ),
]


@app.command(
    cls=Command,
    help="Train several configurations on DATA from the same initial weights and set them beside "
    "the closed-form least-squares optimum: final loss, gap L - L*, distance of the weights, "
    "epochs to reach --gap-tol, verdict (as `babynn fit` gives it: see fit --help) and time; "
    "saved models (--model) join as rows. Every "
    "combination of the --schedule, --lr and --batch-size values given runs; with none given, "
    "constant, inverse and exponential at full batch, at η0 = η* = 2/(λmax+λmin) (fit's auto "
    "rate), and inverse at batch 32 at η0 = 0.1 — for a network, the three schedules by "
    "minibatches, as fit trains it, at the rate fit's short sweep picks — "
    "or, with --model, no training at all: the saved models against the optimum. Each run stops "
    "by the rules fit gives it. "
    "With --hidden every configuration trains that network; the optimum stays the best affine "
    "fit, so the table shows how far the network gets past it.",
    epilog="Example: babynn compare sample:notes_example --schedule constant "
    "--schedule inverse --batch-size full --batch-size 16",
)
@reports_errors
@option_groups
def compare(
    data: DataOptions,
    *,
    schedules: SchedulesOpt = None,
    lrs: LrsOpt = None,
    rate: ScheduleParameters,
    batch_sizes: BatchSizesOpt = None,
    stop: StopOptions,
    model: ModelOptions,
    early_stopping: EarlyStoppingOpt = False,
    models: ModelsOpt = None,
    output: CsvOutOpt = None,
    plot: PlotOpt = None,
    optimizers: OptimizersOpt = None,
    momentum: MomentumOpt = None,
    beta1: Beta1Opt = ADAM_DEFAULTS[0],
    beta2: Beta2Opt = ADAM_DEFAULTS[1],
    adam_eps: AdamEpsOpt = ADAM_DEFAULTS[2],
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    json_file: JsonFileOpt = None,
) -> None:
    etas = [parse_lr(text) for text in lrs or []]  # None: fit's own rate
    model.check(early_stopping)
    names = [o.value for o in optimizers or []] or ["gd"]
    if momentum is not None and not any(n in ("momentum", "nesterov") for n in names):
        optimizer_spec(names[0], momentum, beta1, beta2, adam_eps)  # the one-line refusal
    if (beta1, beta2, adam_eps) != ADAM_DEFAULTS and "adam" not in names:
        optimizer_spec(names[0], None, beta1, beta2, adam_eps)
    rules = [
        optimizer_spec(n, momentum if n in ("momentum", "nesterov") else None, *adam)
        for n in dict.fromkeys(names)
        for adam in [(beta1, beta2, adam_eps) if n == "adam" else ADAM_DEFAULTS]
    ]
    network = bool(model.hidden)
    batches = [parse_batch(b, network) for b in batch_sizes or []]
    combos = combinations(schedules, etas, batches, models, network)
    if optimizers and not (schedules or etas or batches):
        combos = [("constant", None, AUTO)]  # the rules side by side, each at fit's rate
    for name, eta, _ in combos:
        rate.check(name, eta if eta is not None else DEFAULT_LR)
    if plot is not None and not combos:
        raise UsageError("--plot draws the runs' curves; with --model alone nothing is trained")

    from babynn_cli import persistence
    from babynn_cli.core import auto
    from babynn_cli.core.compare import Config, compare
    from babynn_cli.core.problem import initial_params
    from babynn_cli.core.schedules import ScheduleSpec
    from babynn_cli.core.stopping import StopReason
    from babynn_cli.data.read import table_csv
    from babynn_cli.report import compare as compare_report

    inputs: list[tuple[str, str | Path | None]] = [("the DATA file", data.data)]
    inputs += [("--model", m) for m in models or []]
    named = {"--output": output, "--plot": plot, "--json-file": json_file}
    outputs, report = begin(inputs, named, quiet or json_out)
    saved_files = [(path, persistence.load_model(path)) for path in models or []]
    asked = [(s, lr, _batch(b, network)) for s, lr, b in combos]
    dataset, problem = load_problem(
        data, model, quiet or json_out, all(b is None for _, _, b in asked),
        stop.epochs is not None, early_stopping,
    )  # fmt: skip
    check_memory(problem, None, len(asked))
    features, targets = dataset.features, dataset.targets
    classes = dataset.reading.classes
    saved = [
        file.evaluated(path, features, targets, problem, classes) for path, file in saved_files
    ]
    params = initial_params(problem, model.seed, model.init.value)
    ask = stop.ask(None, early_stopping)
    # fit's rate (and β) for each batch size and rule, when none is given
    plans: dict[tuple[int | None, Any], Any] = {}

    def plan_for(batch: int | None, rule: Any) -> Any:
        if (batch, rule) not in plans:
            spec = ScheduleSpec("constant", total_updates=1)
            plans[batch, rule] = auto.plan(
                problem, params, ask, batch_size=batch, spec=spec, seed=model.seed,
                optimizer=rule,
            )  # fmt: skip
        return plans[batch, rule]

    def config(s: str, lr: float | None, b: int | None, rule: Any) -> Any:
        chosen = plan_for(b, rule)
        given = chosen.optimizer if lr is None else rule  # theory's β goes with theory's rate
        if given.heavy and given.momentum is None:
            given = replace(given, momentum=given.beta)
        return Config(rate.spec(s), chosen.lr if lr is None else lr, b, given)

    try:
        configs = list(
            dict.fromkeys(config(s, lr, b, rule) for s, lr, b in asked for rule in rules)
        )
    except auto.NoRateFound as e:
        raise DivergedError(str(e)) from None
    compare_report.header(report, data.data, problem, len(configs), len(saved))
    with report.progress(stop.most_epochs, label="compare") as on_epoch:
        result = compare(problem, params, configs, ask, model.seed, on_epoch, saved)

    outputs.stage(output, lambda: table_csv(compare_report.columns(result, features)))
    outputs.stage(plot, lambda: compare_report.plot_png(result, stop.gap))

    def doc() -> dict:
        return compare_report.as_json(result, features, targets, stop.gap)

    if json_out:
        report.emit_json(doc())
    else:
        compare_report.show(report, result, stop.gap)
    runs = [row for row in result.rows if row.verdict is not None]
    failure = None
    if runs and all(row.verdict.failed for row in runs):  # type: ignore[union-attr]
        failure = DivergedError("every configuration diverged or went unstable")
    stopped = any(row.stop_reason is StopReason.INTERRUPTED for row in result.rows)
    finish(outputs, report, interrupted=stopped, failure=failure, json_file=(json_file, doc))


def _batch(size: int | str | None, network: bool) -> int | None:
    """A run's batch size: AUTO is fit's choice for the model."""
    from babynn_cli.core.auto import default_batch_size

    if size == AUTO or isinstance(size, str):
        return default_batch_size(network)
    return size


def combinations(
    schedules: list[ScheduleName] | None,
    lrs: list[float | None],
    batches: list[int | None],
    models: list[Path] | None,
    network: bool,
) -> list[tuple[str, float | None, int | str | None]]:
    """(schedule, η0 or None for fit's rate, batch size or AUTO) of every run asked for: every
    combination of the values given (a batch size not given: the model's own, as fit's); none
    given: the default set (a network's, or the affine model's), or nothing at all when saved
    models are compared."""
    if schedules or lrs or batches:
        sizes: list[int | str | None] = list(batches) if batches else [AUTO]
        return [
            (s.value, lr, b)
            for s in schedules or [ScheduleName.constant]  # type: ignore[attr-defined]
            for lr in lrs or [None]
            for b in sizes
        ]
    if models:
        return []
    return list(NETWORK_SET if network else DEFAULT_SET)
