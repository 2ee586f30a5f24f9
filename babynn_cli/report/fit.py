"""fit's report: its header, the tables and the loss curve after the run, the summary, --json's
document and --history's columns, and the PNG of --plot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table

from babynn_cli.core.stopping import RunEnd, StopReason
from babynn_cli.report.advice import what_happened
from babynn_cli.report.console import Reporter
from babynn_cli.report.plot import HLine, Series, TextPlot, new_figure, png_bytes
from babynn_cli.report.words import (
    Chose,
    fmt,
    per_target,
    percent,
    run_header,
    stop_message,
)

if TYPE_CHECKING:
    from babynn_cli.core.auto import Plan
    from babynn_cli.core.fit import Progress
    from babynn_cli.core.fitted import Fitted
    from babynn_cli.core.history import History
    from babynn_cli.core.mlp import MLP
    from babynn_cli.core.problem import Problem
    from babynn_cli.core.schedules import Schedule
    from babynn_cli.persistence import ModelFile


def header(
    report: Reporter,
    source: str,
    features: Sequence[str],
    targets: Sequence[str],
    problem: Problem,
    schedule: Schedule,
    batch_size: int | None,
    plan: Plan | None = None,
    gap_tol: float = 1e-6,
    chose: Chose | None = None,
) -> None:
    """What is about to run, on stderr (see `words.run_header`)."""
    for line in run_header(
        source, features, targets, problem, schedule, batch_size, None, plan, gap_tol, chose
    ):
        report.status(line)


class Watch:
    """How fit shows a run while it happens (`core.fit.FitWatch`): progress while a short sweep
    chooses the rate, the header once the plan is known (after `check`, which may refuse it),
    progress while it trains."""

    def __init__(
        self,
        report: Reporter,
        source: str,
        features: Sequence[str],
        targets: Sequence[str],
        problem: Problem,
        batch_size: int | None,
        gap_tol: float,
        check: Callable[[Plan], None] = lambda plan: None,
        chose: Chose | None = None,
    ) -> None:
        self.report, self.check, self.chose = report, check, chose
        self.about = (source, features, targets, problem, batch_size, gap_tol)

    def probing(self, epochs: int) -> Progress:
        return self.report.progress(epochs, label="choosing --lr")

    def planned(self, plan: Plan, schedule: Schedule) -> None:
        self.check(plan)
        source, features, targets, problem, batch_size, gap_tol = self.about
        header(
            self.report, source, features, targets, problem, schedule, batch_size, plan, gap_tol,
            self.chose,
        )  # fmt: skip

    def training(self, epochs: int) -> Progress:
        return self.report.progress(epochs)


def show(
    report: Reporter,
    fitted: Fitted,
    problem: Problem,
    features: Sequence[str],
    targets: Sequence[str],
    stop: tuple[float, int, float],
    output: str | None,
    outputs: Sequence[str] | None = None,
    stopped_by: str = "Ctrl-C",
) -> None:
    """After a fit: the loss by epoch as a table and a curve, the summary, the weights beside
    the reference's (or the network's layers). stop: (tol, patience, gap_tol); output: the model
    file written, None when none was; `outputs`: the model's outputs' names (the targets')."""
    outputs = outputs if outputs is not None else targets
    report.print(loss_table(fitted.history))
    report.print(curve(fitted, problem, report.width))
    report.summary(summary(fitted, problem, targets, stop, output, stopped_by))
    if fitted.W is not None and fitted.bias is not None:
        reference = problem.optimum_in_data_units() if problem.has_optimum else None
        name = "Newton" if problem.classifies else "least squares"
        learned = (fitted.W, fitted.bias)
        at = weights_epoch_words(fitted.end)
        report.print(weights_table(features, outputs, learned, reference, name, at))
    else:
        report.print(network_table(problem.model))  # type: ignore[arg-type]


def summary(
    fitted: Fitted,
    problem: Problem,
    targets: Sequence[str],
    stop: tuple[float, int, float],
    output: str | None,
    stopped_by: str = "Ctrl-C",
) -> list[tuple[str, str]]:
    """The summary table's rows: the verdict, why it stopped, the losses beside L*, R², time, and
    which weights were saved where."""
    tol, patience, gap_tol = stop
    end = fitted.end
    if output is None:
        saved = "none: no model file written"
    elif end.best_epoch is not None:
        saved = f"epoch {end.weights_epoch} (the best validation loss) in {output}"
    else:
        saved = f"epoch {end.weights_epoch} (the last) in {output}"
    at = weights_epoch_words(end)  # the epoch every figure below is of, when not the last
    items = [
        ("verdict", what_happened(fitted, gap_tol, patience)),
        ("epochs run", str(end.epochs_run)),
        ("stopped because", stop_message(end, tol, patience, stopped_by)),
        (f"training loss{at}", fmt(fitted.train_loss, 10)),
    ]
    if problem.reference_exists:
        optimum = problem.optimum_loss
        gap = fitted.train_loss - optimum
        relative = f" ({fmt(100 * gap / optimum, 3)} % of L*)" if optimum > 0 else ""
        items.append((problem.reference_name, fmt(optimum, 10)))
        items.append((f"gap L - L*{at}", f"{fmt(gap, 3)}{relative}"))
    if fitted.train_accuracy is not None:
        items.append((f"accuracy{at}", percent(fitted.train_accuracy)))
    else:
        items.append((f"R²{at}", per_target(targets, fitted.train_r2)))
    if fitted.val_loss is not None:
        items.append((f"validation loss{at}", fmt(fitted.val_loss, 10)))
        if fitted.val_accuracy is not None:
            items.append((f"validation accuracy{at}", percent(fitted.val_accuracy)))
        elif fitted.val_r2 is not None:
            items.append((f"validation R²{at}", per_target(targets, fitted.val_r2)))
    items.append(("training time", f"{fitted.history.seconds[-1]:.3f} s (the epochs only)"))
    items.append(("weights saved", saved))
    return items


def weights_epoch_words(end: RunEnd) -> str:
    """ " (epoch k, …)" when the weights a run kept, which every figure of the summary is of, are
    not its last epoch's (the epoch before it diverged, the best with early stopping); else "".
    """
    if end.weights_epoch == end.epochs_run:
        return ""
    if end.stop_reason is StopReason.DIVERGED:
        return f" (epoch {end.weights_epoch}, before it diverged)"
    return f" (epoch {end.weights_epoch}, the best)"


def loss_table(history: History, rows: int = 12) -> Table:
    """Epochs spread on a log scale, plus the first and the last (of a long run's kept epochs,
    the first at or after each point of the scale)."""

    last = int(history.epoch[-1])
    wanted = {0, last}
    if last > 0:
        points = np.unique(np.round(np.geomspace(1, last, rows)))
        kept = history.epoch[np.searchsorted(history.epoch, points)]
        wanted |= {int(e) for e in kept}
    table = Table(title="Loss by epoch", title_justify="left")
    table.add_column("epoch", justify="right")
    table.add_column("updates", justify="right")
    table.add_column("η", justify="right")
    table.add_column("training loss", justify="right")
    if history.val_loss is not None:
        table.add_column("validation loss", justify="right")
    for i, epoch in enumerate(history.epoch):
        if int(epoch) not in wanted:
            continue
        cells = [
            str(epoch),
            str(history.updates[i]),
            fmt(float(history.lr[i, 0]), 4),
            fmt(float(history.train_loss[i, 0]), 8),
        ]
        if history.val_loss is not None:
            cells.append(fmt(float(history.val_loss[i, 0]), 8))
        table.add_row(*cells)
    return table


def network_table(model: MLP) -> Table:
    """Layer by layer: its shape, activation and parameters."""
    table = Table(title="Network (on standardised features)", title_justify="left")
    table.add_column("layer", justify="right")
    table.add_column("inputs → outputs")
    table.add_column("activation")
    table.add_column("parameters", justify="right")
    sizes = model.sizes
    for i in range(model.depth):
        act = model.activation if i < model.depth - 1 else "none (output)"
        params = (sizes[i] + 1) * sizes[i + 1]
        table.add_row(str(i + 1), f"{sizes[i]} → {sizes[i + 1]}", act, str(params))
    return table


# Past this many features the weights table shows the first SHOWN_WEIGHT_ROWS (10,000 rows of
# weights are read from --json or the model file, not from a terminal)
MAX_WEIGHT_ROWS = 100
SHOWN_WEIGHT_ROWS = 40


def weights_table(
    features: Sequence[str],
    outputs: Sequence[str],
    learned: tuple[np.ndarray, np.ndarray],
    optimum: tuple[np.ndarray, np.ndarray] | None,
    reference: str = "least squares",
    at: str = "",
) -> Table:
    """The learned W and w0 beside the reference's (least squares, Newton's), weight by weight;
    `outputs`: the model's outputs (the targets, or a classifier's classes); `at`: the learned
    weights' epoch, when not the last (`weights_epoch_words`)."""
    W, bias = learned
    beside = "" if optimum is None else f" and {reference}"
    title = f"Weights, learned{at}{beside} (data's own units)"
    table = Table(title=title, title_justify="left")
    table.add_column("feature")
    for t in outputs:
        name = t if len(outputs) > 1 else ""
        table.add_column(f"{name} learned".strip(), justify="right")
        if optimum is not None:
            table.add_column(f"{name} {reference}".strip(), justify="right")
    W_ref, b_ref = optimum if optimum is not None else (None, None)

    def row(values: np.ndarray, ref: np.ndarray | None) -> list[str]:
        cells = []
        for j in range(len(outputs)):
            cells.append(fmt(float(values[j]), 8))
            if ref is not None:
                cells.append(fmt(float(ref[j]), 8))
        return cells

    shown = len(features) if len(features) <= MAX_WEIGHT_ROWS else SHOWN_WEIGHT_ROWS
    for i, f in enumerate(features[:shown]):
        table.add_row(f, *row(W[i], None if W_ref is None else W_ref[i]))
    if shown < len(features):
        more = f"… {len(features) - shown:,} more"
        table.add_row(more, *[""] * (len(table.columns) - 1), style="dim")
        table.caption = "--json lists every weight"
    table.add_row("(bias)", *row(bias, b_ref), style="italic")
    return table


def columns(h: History, seconds: bool = True) -> dict[str, Any]:
    """One run's history as the columns of --json's `history` and (without the wall times
    `seconds`, so that identical runs write identical files) of --history."""
    table = {
        "epoch": h.epoch,
        "updates": h.updates,
        "lr": h.lr[:, 0],
        "train_loss": h.train_loss[:, 0],
        "val_loss": h.val_loss[:, 0] if h.val_loss is not None else [None] * len(h.epoch),
    }
    return {**table, "seconds": h.seconds} if seconds else table


def as_json(
    fitted: Fitted,
    problem: Problem,
    saved: ModelFile,
    result: dict[str, Any],
    schedule: str,
    output: str | None,
) -> dict[str, Any]:
    """What `fit --json` prints: the model, how the run went, its history. `output`: the model
    file written (None when none was)."""
    doc: dict[str, Any] = {
        "model_file": None if output is None else str(output),
        "kind": saved.kind,
        "features": saved.features,
        "targets": saved.targets,
        "loss": "mse" if saved.classes is None else "cross-entropy",
        "classes": None if saved.classes is None else list(saved.classes),
    }
    if fitted.W is not None and fitted.bias is not None:
        curvature = problem.curvature()
        reference = problem.optimum_in_data_units() if problem.has_optimum else None
        doc |= {
            "weights": fitted.W.tolist(),
            "bias": fitted.bias.tolist(),
            # the reference fit (least squares, Newton's), as the table shows it
            "optimum_weights": None if reference is None else reference[0].tolist(),
            "optimum_bias": None if reference is None else reference[1].tolist(),
            "stable_lr_full_batch": curvature.stable_lr,
            "fastest_lr_full_batch": curvature.best_lr if problem.has_optimum else None,
            "stable_lr_is_bound": not curvature.exact,
        }
    else:
        assert saved.layers is not None
        doc |= {
            "activation": saved.activation,
            "hidden": list(saved.hidden),
            "layers": [{"weights": W.tolist(), "bias": b.tolist()} for W, b in saved.layers],
            "standardization": {
                "mean": problem.scaler.mean.tolist(),
                "scale": problem.scaler.scale.tolist(),
            },
        }
    history = records(columns(fitted.history))
    return (
        doc
        | result
        | {"schedule": schedule, "history_kept": fitted.history.kept, "history": history}
    )


def records(columns: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns of equal length as a list of row dicts, numbers as Python numbers."""
    names = list(columns)
    rows = zip(*(columns[n] for n in names), strict=True)
    return [
        {
            n: (None if v is None else v.item() if hasattr(v, "item") else v)
            for n, v in zip(names, row, strict=True)
        }
        for row in rows
    ]


LOG_EPOCHS_FROM = 30  # runs longer than this get a log epoch axis: the early epochs show


def _curves(fitted: Fitted) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    h = fitted.history
    epochs = h.epoch.astype(float)
    val = h.val_loss[:, 0] if h.val_loss is not None else None
    return epochs, h.train_loss[:, 0], val


def curve(fitted: Fitted, problem: Problem, columns: int) -> Any:
    """The training loss (and validation loss) by epoch, log scales, L* as a line."""
    epochs, train, val = _curves(fitted)
    log_x = epochs[-1] > LOG_EPOCHS_FROM
    series = [Series(list(epochs), list(train), "•", "cyan", "training loss")]
    if val is not None:
        series.append(Series(list(epochs), list(val), "∘", "magenta", "validation loss"))
    hlines = []
    if problem.has_optimum:
        hlines.append(HLine(problem.optimum_loss, "┄", "yellow", _optimum_label(problem)))
    plot = TextPlot(
        series,
        hlines=hlines,
        x_log=log_x,
        x_label="epoch (log)" if log_x else "epoch",
        y_label="loss (log)" + (": epoch 0 is in the table" if log_x else ""),
    )
    return plot.fit(columns)


def _optimum_label(problem: Problem) -> str:
    return "L* (Newton)" if problem.classifies else "L* (least squares)"


def plot_png(fitted: Fitted, problem: Problem) -> bytes:
    figure, ax = new_figure()
    epochs, train, val = _curves(fitted)
    ax.plot(epochs, train, label="training loss")  # type: ignore[attr-defined]
    if val is not None:
        ax.plot(epochs, val, label="validation loss")  # type: ignore[attr-defined]
    if problem.has_optimum:
        label = _optimum_label(problem)
        ax.axhline(problem.optimum_loss, color="orange", ls="--", label=label)  # type: ignore[attr-defined]
    ax.set_yscale("log")  # type: ignore[attr-defined]
    if epochs[-1] > LOG_EPOCHS_FROM:
        ax.set_xscale("symlog", linthresh=1)  # type: ignore[attr-defined]  # epoch 0 stays on it
        ax.set_xlim(left=0)  # type: ignore[attr-defined]
    ax.set_xlabel("epoch")  # type: ignore[attr-defined]
    ax.set_ylabel("loss")  # type: ignore[attr-defined]
    title = f"babynn fit: {fitted.verdict.value}"
    if fitted.train_accuracy is not None:  # classes: how many rows the last weights get right
        title += f"; accuracy {percent(fitted.train_accuracy)} (training)"
        if fitted.val_accuracy is not None:
            title += f", {percent(fitted.val_accuracy)} (validation)"
    ax.set_title(title)  # type: ignore[attr-defined]
    ax.legend(loc="best")  # type: ignore[attr-defined]
    return png_bytes(figure)
